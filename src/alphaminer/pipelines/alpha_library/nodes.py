"""Thin adapters: the formulas in the parameters (+ built-in sets) → IC table + alpha set."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from alphaminer.evaluation.alphaset import AlphaSet, split_summary
from alphaminer.expr import Evaluator, parse, parse_alphagen, parse_qlib
from alphaminer.expr.alpha158 import alpha158_alphas
from alphaminer.expr.classic import classic_alphas
from alphaminer.panel import Panel
from alphaminer.pipelines._common import labels_tensor, split_ranges
from alphaminer.runtime import config_from

log = logging.getLogger(__name__)

_PARSERS = {"infix": parse, "alphagen": parse_alphagen, "qlib": parse_qlib}


@dataclass
class AlphaLibraryParams:
    """The keys ``alpha_library`` accepts: a misspelt one (``formuals``) raises, naming them."""

    syntax: str = "infix"
    formulas: dict[str, Any] = field(default_factory=dict)
    include_classic: bool = True
    #: qlib's Alpha158 set (alphaminer.expr.alpha158), after the classic set
    include_alpha158: bool = False
    #: rolling windows: None = full windows; 1 = qlib's partial windows (Evaluator(min_periods))
    min_periods: int | None = None

    def __post_init__(self) -> None:
        for key in ("include_classic", "include_alpha158"):
            if not isinstance(getattr(self, key), bool):
                raise ValueError(f"alpha_library.{key} must be true or false, "
                                 f"got {getattr(self, key)!r}")
        mp = self.min_periods
        if mp is not None and (isinstance(mp, bool) or not isinstance(mp, int) or mp < 1):
            raise ValueError(f"alpha_library.min_periods must be null or an integer >= 1, "
                             f"got {mp!r}")


def collect_formulas(params: dict[str, Any]) -> AlphaSet:
    """User formulas (``name: formula`` in the chosen syntax) first, then the built-in sets."""
    cfg = config_from(AlphaLibraryParams, params)
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
                     params: dict[str, Any], min_stocks: int) -> tuple[pd.DataFrame, dict]:
    alphas = collect_formulas(params)
    min_periods = config_from(AlphaLibraryParams, params).min_periods
    values = alphas.values(panel, Evaluator(panel, min_periods=min_periods))
    table = split_summary(values, labels_tensor(panel, labels), split_ranges(splits),
                          alphas.names, min_stocks)
    out = alphas.with_metrics(table)
    ic_table = out.table()
    ic_table["note"] = [alphas.meta["notes"][n] for n in alphas.names]
    log.info("evaluated %d library alphas; best |valid IC| %.4f", len(alphas),
             float(table.filter(like="ic_valid").abs().max().max()))
    return ic_table, out.to_dict()
