"""Thin adapters: the formulas in the parameters (+ the classic set) → IC table + alpha set."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from alphaminer.evaluation.alphaset import AlphaSet, split_summary
from alphaminer.expr import Evaluator, parse, parse_alphagen, parse_qlib
from alphaminer.expr.classic import classic_alphas
from alphaminer.panel import Panel
from alphaminer.pipelines._common import labels_tensor, split_ranges

log = logging.getLogger(__name__)

_PARSERS = {"infix": parse, "alphagen": parse_alphagen, "qlib": parse_qlib}


def collect_formulas(params: dict[str, Any]) -> AlphaSet:
    """User formulas (``name: formula`` in the chosen syntax) first, then the classic set."""
    syntax = params.get("syntax", "infix")
    if syntax not in _PARSERS:
        raise ValueError(f"alpha_library.syntax must be one of {sorted(_PARSERS)}, got {syntax!r}")
    names, formulas, notes = [], [], []
    for name, text in (params.get("formulas") or {}).items():
        try:
            formulas.append(str(_PARSERS[syntax](str(text))))
        except Exception as e:  # noqa: BLE001 - re-raised with the parameter's name
            raise ValueError(f"alpha_library.formulas.{name}: {e}") from e
        names.append(str(name))
        notes.append("user")
    if params.get("include_classic", True):
        for a in classic_alphas():
            names.append(a["name"])
            formulas.append(a["formula"])
            notes.append(a["note"])
    if not formulas:
        raise ValueError("alpha_library has no formulas: set `formulas` or include_classic: true")
    return AlphaSet("library", formulas, names, meta={"notes": dict(zip(names, notes))})


def evaluate_library(panel: Panel, labels: pd.DataFrame, splits: dict[str, Any],
                     params: dict[str, Any], min_stocks: int) -> tuple[pd.DataFrame, dict]:
    alphas = collect_formulas(params)
    values = alphas.values(panel, Evaluator(panel))
    table = split_summary(values, labels_tensor(panel, labels), split_ranges(splits),
                          alphas.names, min_stocks)
    out = alphas.with_metrics(table)
    ic_table = out.table()
    ic_table["note"] = [alphas.meta["notes"][n] for n in alphas.names]
    log.info("evaluated %d library alphas; best |valid IC| %.4f", len(alphas),
             float(table.filter(like="ic_valid").abs().max().max()))
    return ic_table, out.to_dict()
