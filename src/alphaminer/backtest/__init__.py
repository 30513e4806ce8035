"""Backtesting: top-k/drop-n portfolio simulation, quantile and IC analysis, risk metrics."""

from alphaminer.backtest.metrics import (
    QLIB_ANNUALISATION,
    all_risk_metrics,
    hit_rate,
    max_drawdown,
    risk_metrics,
)
from alphaminer.backtest.portfolio import (
    BacktestConfig,
    BacktestResult,
    run_backtest,
    signal_to_numpy,
)

__all__ = [
    "QLIB_ANNUALISATION",
    "BacktestConfig",
    "BacktestResult",
    "all_risk_metrics",
    "hit_rate",
    "max_drawdown",
    "risk_metrics",
    "run_backtest",
    "signal_to_numpy",
]
