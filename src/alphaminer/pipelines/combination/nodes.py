"""Thin adapter: a method's alpha set → one trading signal (``alphaminer.combination``)."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import torch

from alphaminer.combination import combine
from alphaminer.evaluation.alphaset import AlphaSet
from alphaminer.expr import Evaluator
from alphaminer.panel import DATE_COL, INSTRUMENT_COL, Panel
from alphaminer.parameters import CombinationParams
from alphaminer.pipelines._common import SIGNAL_COL, labels_tensor, signal_frame, split_ranges

log = logging.getLogger(__name__)


def candidates_frame(panel: Panel, signals: dict[str, torch.Tensor]) -> pd.DataFrame:
    """Long ``datetime, instrument, <combiner>...``: one column per combiner's signal, on every
    (day, stock) where at least one is finite."""
    return panel.frames(signals)


def combine_alphas(alphas: dict[str, Any], panel: Panel, labels: pd.DataFrame,
                   splits: dict[str, Any], params: CombinationParams, min_stocks: int
                   ) -> tuple[pd.DataFrame, dict, dict, pd.DataFrame, pd.DataFrame]:
    """Returns ``signal`` (long), ``model`` (JSON), ``metrics``, the optuna ``trials`` and
    ``candidate_signals``: every ``auto`` candidate's signal (just the one combiner's
    otherwise), which :func:`compare_combiners` backtests side by side."""
    p = CombinationParams.coerce(params)
    aset = AlphaSet.from_dict(alphas)
    model = p.model
    if len(aset) == 0:
        log.warning("%s: empty alpha set, no signal", aset.method)
        return (pd.DataFrame(columns=["datetime", "instrument", "signal"]),
                {"skipped": "empty alpha set"}, {}, pd.DataFrame(),
                pd.DataFrame(columns=["datetime", "instrument"]))
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
    candidates = candidates_frame(panel, res.candidates or {res.method: res.signal})
    return signal_frame(panel, res.signal), model_desc, metrics, trials, candidates


def compare_combiners(candidate_signals: pd.DataFrame, combination_metrics: dict[str, Any],
                      panel: Panel, labels: pd.DataFrame, splits: dict[str, Any],
                      backtest: dict[str, Any], min_stocks: int) -> pd.DataFrame:
    """Every combiner of this method backtested exactly as the method's own signal is (the
    ``backtest`` pipeline's node, on ``backtest.segment``): one row per combiner with every
    scalar backtest/IC figure, its validation RankIC (what ``auto`` chose by) and whether it
    is the method's signal (``chosen``)."""
    from alphaminer.pipelines.backtest.nodes import backtest_signal

    names = [c for c in candidate_signals.columns if c not in (DATE_COL, INSTRUMENT_COL)]
    cm = combination_metrics or {}
    valid = cm.get("auto_candidates") or {}
    rows = []
    for name in names:
        sig = candidate_signals[[DATE_COL, INSTRUMENT_COL, name]].dropna()
        _, metrics, _, _, _ = backtest_signal(sig.rename(columns={name: SIGNAL_COL}), panel,
                                              labels, splits, backtest, min_stocks)
        vr = (valid.get(name) or {}).get("valid_rank_ic", cm.get("valid_rank_ic"))
        rows.append({"combiner": name, "chosen": name == cm.get("combiner") or len(names) == 1,
                     "valid_rank_ic": vr,
                     **{k: v for k, v in metrics.items()
                        if isinstance(v, (int, float, str)) and k != "valid_rank_ic"}})
    return pd.DataFrame(rows)
