"""Thin adapter: a method's alpha set → one trading signal (``alphaminer.combination``)."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from alphaminer.combination import combine
from alphaminer.evaluation.alphaset import AlphaSet
from alphaminer.expr import Evaluator
from alphaminer.panel import Panel
from alphaminer.parameters import CombinationParams
from alphaminer.pipelines._common import labels_tensor, signal_frame, split_ranges

log = logging.getLogger(__name__)


def combine_alphas(alphas: dict[str, Any], panel: Panel, labels: pd.DataFrame,
                   splits: dict[str, Any], params: CombinationParams, min_stocks: int
                   ) -> tuple[pd.DataFrame, dict, dict, pd.DataFrame]:
    """Returns ``signal`` (long), ``model`` (JSON), ``metrics`` and the optuna ``trials``."""
    p = CombinationParams.coerce(params)
    aset = AlphaSet.from_dict(alphas)
    model = p.model
    if len(aset) == 0:
        log.warning("%s: empty alpha set, no signal", aset.method)
        return (pd.DataFrame(columns=["datetime", "instrument", "signal"]),
                {"skipped": "empty alpha set"}, {}, pd.DataFrame())
    values = aset.values(panel, Evaluator(panel))
    horizon = int(splits["horizon"])  # label look-ahead (h, or h + 1 for the vwap-lag label)
    res = combine(model, values, aset.formulas, labels_tensor(panel, labels),
                  split_ranges(splits), horizon, p.combiner_config(), min_stocks=min_stocks)
    model_desc = {**res.model, "alpha_method": aset.method, "model": model,
                  "params": res.params, "selected": res.selected}
    auto = res.model.get("auto") or {}
    metrics = {"model": model, "combiner": auto.get("chosen", model),
               "num_factors": len(res.selected) or len(aset), **res.metrics}
    if auto:  # every candidate's validation figures, so the report can show the choice
        metrics["auto_criterion"] = auto.get("criterion")
        metrics["auto_candidates"] = {n: {k: v for k, v in m.items()
                                          if k.startswith("valid_") or k == "error"}
                                      for n, m in auto.get("candidates", {}).items()}
    trials = res.study if res.study is not None else pd.DataFrame()
    return signal_frame(panel, res.signal), model_desc, metrics, trials
