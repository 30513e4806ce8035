"""Thin adapter: a method's signal → portfolio backtest, quantiles and IC on one segment."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from alphaminer.backtest import run_backtest
from alphaminer.backtest.analysis import ic_analysis, quantile_analysis, quantile_metrics
from alphaminer.panel import Panel
from alphaminer.parameters import BacktestParams
from alphaminer.pipelines._common import labels_tensor, signal_tensor, split_ranges

log = logging.getLogger(__name__)


def backtest_signal(signal: pd.DataFrame, panel: Panel, labels: pd.DataFrame,
                    splits: dict[str, Any], params: BacktestParams, min_stocks: int
                    ) -> tuple[pd.DataFrame, dict, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Returns ``daily, metrics, quantiles, ic_series, trades`` on ``params.segment``."""
    p = BacktestParams.coerce(params)
    segment = p.segment
    ranges = split_ranges(splits)
    if segment not in ranges:
        raise ValueError(f"backtest.segment {segment!r} is not a split; have {sorted(ranges)}")
    if signal is None or len(signal) == 0:
        log.warning("empty signal: nothing to backtest")
        empty = pd.DataFrame()
        return empty, {"skipped": "empty signal"}, empty, empty, empty
    i0, i1 = ranges[segment]
    sig = signal_tensor(panel, signal)
    cfg = p.portfolio.to_config()
    bt = run_backtest(sig, panel, cfg, start=i0, end=i1 - 1)
    seg = panel.slice_dates(i0, i1)
    q = quantile_analysis(sig[i0:i1], seg, n_groups=p.n_groups,
                          deal_price=cfg.deal_price)
    ic = ic_analysis(sig[i0:i1], labels_tensor(panel, labels)[i0:i1], seg, min_stocks,
                     horizon=int(splits.get("horizon", 1)))
    metrics = {"segment": segment, **bt.metrics, **ic.summary, **quantile_metrics(q)}
    quantiles = q.returns.reset_index().rename(columns={"index": "date"})
    return (bt.daily.reset_index(drop=False) if "date" not in bt.daily.columns else bt.daily,
            metrics, quantiles, ic.daily.reset_index(), bt.trades)
