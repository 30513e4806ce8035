"""Thin adapter: a method's signal → portfolio backtest, quantiles and IC on one segment."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from alphaminer.backtest import run_backtest
from alphaminer.backtest.analysis import ic_analysis, quantile_analysis, quantile_metrics
from alphaminer.panel import Panel
from alphaminer.parameters import BacktestParams, LabelParams
from alphaminer.pipelines._common import labels_tensor, signal_tensor, split_ranges
from alphaminer.reporting.tearsheet import DEFAULT_HORIZONS, DEFAULT_LAGS, factor_tearsheet

log = logging.getLogger(__name__)

#: horizon (days) of the forward returns of the quantile analysis (named in the report)
QUANTILE_HORIZON = 1


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
    q = quantile_analysis(sig[i0:i1], seg, n_groups=p.n_groups, horizon=QUANTILE_HORIZON,
                          deal_price=cfg.deal_price)
    ic = ic_analysis(sig[i0:i1], labels_tensor(panel, labels)[i0:i1], seg, min_stocks,
                     horizon=int(splits.get("horizon", 1)))
    metrics = {"segment": segment, **bt.metrics, **ic.summary, **quantile_metrics(q)}
    quantiles = q.returns.reset_index().rename(columns={"index": "date"})
    return (bt.daily.reset_index(drop=False) if "date" not in bt.daily.columns else bt.daily,
            metrics, quantiles, ic.daily.reset_index(), bt.trades)


def signal_tearsheet(signal: pd.DataFrame, panel: Panel, splits: dict[str, Any],
                     params: BacktestParams, labels: LabelParams, min_stocks: int
                     ) -> pd.DataFrame:
    """The signal's daily tear-sheet series on ``params.segment``: IC / RankIC against the
    forward returns of :data:`~alphaminer.reporting.tearsheet.DEFAULT_HORIZONS` and the label's
    own horizon (the label's kind), and its rank autocorrelation (empty for an empty signal)."""
    p = BacktestParams.coerce(params)
    lab = LabelParams.coerce(labels)
    ranges = split_ranges(splits)
    if p.segment not in ranges:
        raise ValueError(f"backtest.segment {p.segment!r} is not a split; have {sorted(ranges)}")
    if signal is None or len(signal) == 0:
        return pd.DataFrame()
    horizons = sorted({*DEFAULT_HORIZONS, lab.horizon})
    return factor_tearsheet(signal_tensor(panel, signal), panel, ranges[p.segment], horizons,
                            DEFAULT_LAGS, kind=lab.kind, min_stocks=min_stocks)
