"""Thin adapters: the formulas in the parameters (+ built-in sets) → IC table + alpha set."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pandas as pd

from alphaminer.evaluation.alphaset import AlphaSet, split_summary
from alphaminer.expr import Evaluator, parse, parse_alphagen, parse_qlib
from alphaminer.expr.alpha158 import alpha158_alphas
from alphaminer.expr.classic import classic_alphas
from alphaminer.panel import Panel
from alphaminer.parameters import AlphaLibraryParams
from alphaminer.pipelines._common import labels_tensor, split_ranges

log = logging.getLogger(__name__)

_PARSERS = {"infix": parse, "alphagen": parse_alphagen, "qlib": parse_qlib}


def collect_formulas(params: AlphaLibraryParams | Mapping[str, Any]) -> AlphaSet:
    """User formulas (``name: formula`` in the chosen syntax) first, then the built-in sets."""
    cfg = AlphaLibraryParams.coerce(params)
    names, formulas, notes = [], [], []
    for name, text in cfg.formulas.items():
        try:
            formulas.append(str(_PARSERS[cfg.syntax](str(text))))
        except Exception as e:  # noqa: BLE001 - re-raised with the parameter's name
            raise ValueError(f"alpha_library.formulas.{name}: {e}") from e
        names.append(str(name))
        notes.append("user")
    builtin = [(cfg.include_classic, classic_alphas), (cfg.include_alpha158, alpha158_alphas)]
    for wanted, loader in builtin:
        if wanted:
            for a in loader():
                names.append(a["name"])
                formulas.append(a["formula"])
                notes.append(a["note"])
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"alpha_library: duplicate alpha names {dupes} (a user formula may not "
                         f"reuse a built-in name)")
    if not formulas:
        raise ValueError("alpha_library has no formulas: set `formulas`, include_classic: true "
                         "or include_alpha158: true")
    return AlphaSet("library", formulas, names, meta={"notes": dict(zip(names, notes))})


def evaluate_library(panel: Panel, labels: pd.DataFrame, splits: dict[str, Any],
                     params: AlphaLibraryParams, min_stocks: int) -> tuple[pd.DataFrame, dict]:
    alphas = collect_formulas(params)
    min_periods = AlphaLibraryParams.coerce(params).min_periods
    values = alphas.values(panel, Evaluator(panel, min_periods=min_periods))
    table = split_summary(values, labels_tensor(panel, labels), split_ranges(splits),
                          alphas.names, min_stocks)
    out = alphas.with_metrics(table)
    ic_table = out.table()
    ic_table["note"] = [alphas.meta["notes"][n] for n in alphas.names]
    log.info("evaluated %d library alphas; best |valid IC| %.4f", len(alphas),
             float(table.filter(like="ic_valid").abs().max().max()))
    return ic_table, out.to_dict()
