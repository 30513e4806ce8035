"""Synthetic MethodResults for the reporting tests (random walks; independent of other packages)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from alphaminer.reporting import MethodResults


def synthetic_method(name: str, seed: int = 0, n_days: int = 260, n_alphas: int = 4,
                     n_seeds: int | None = None, attribution: bool = False) -> MethodResults:
    """A plausible method result: random-walk returns, noisy positive IC, noisy group returns."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2021-01-04", periods=n_days)
    bench = rng.normal(0.0002, 0.010, n_days)
    ret = bench + rng.normal(0.0004, 0.004, n_days)
    equity = 1e6 * np.cumprod(1 + ret)
    daily = pd.DataFrame({
        "date": dates, "equity": equity, "cash": 0.01 * equity,
        "holdings_value": 0.99 * equity, "return": ret, "benchmark_return": bench,
        "excess_return": ret - bench, "turnover": np.abs(rng.normal(0.1, 0.03, n_days)),
        "cost": rng.uniform(0, 50, n_days), "n_holdings": rng.integers(45, 51, n_days),
    })
    ic = rng.normal(0.04, 0.08, n_days)
    ic_series = pd.DataFrame({"date": dates, "ic": ic, "rank_ic": ic + rng.normal(0, 0.02, n_days)})
    q = np.column_stack([rng.normal(0.0002 * k, 0.01, n_days) for k in range(-2, 3)])
    quantiles = pd.DataFrame(q, columns=[f"q{i}" for i in range(1, 6)])
    quantiles.insert(0, "date", dates)
    quantiles["long_short"] = quantiles["q5"] - quantiles["q1"]
    formulas = ["Div(Sub(close,open),Sub(high,low))", "Corr(close,volume,20d)",
                "Mean(Div(close,Ref(close,5d)),10d)", "CSRank(Std(close,30d))",
                "Greater(Sub(vwap,close),0.5)", "TsRank(volume,40d)"]
    alphas = pd.DataFrame({
        "name": [f"{name}_a{i}" for i in range(n_alphas)],
        "formula": [formulas[i % len(formulas)] for i in range(n_alphas)],
        "ic_train": rng.normal(0.05, 0.01, n_alphas), "ic_valid": rng.normal(0.04, 0.01, n_alphas),
        "ic_test": rng.normal(0.03, 0.01, n_alphas),
        "rank_ic_train": rng.normal(0.06, 0.01, n_alphas),
        "rank_ic_valid": rng.normal(0.05, 0.01, n_alphas),
        "rank_ic_test": rng.normal(0.04, 0.01, n_alphas), "weight": rng.normal(0, 0.3, n_alphas),
    })
    metrics = {"ic": float(ic.mean()), "rank_ic": float(ic.mean()) + 0.003,
               "icir": float(ic.mean() / ic.std(ddof=1)), "rank_icir": 0.5,
               "num_factors": float(n_alphas), "sharpe_standard": 1.1 + rng.normal(0, 0.1),
               "cagr_standard": 0.12, "max_drawdown_standard": -0.15, "sharpe_qlib": 1.0,
               "annualized_return_qlib": 0.11, "max_drawdown_qlib": -0.14,
               "turnover": 0.1, "hit_rate": 0.53,
               "benchmark_cagr_standard": 0.05, "benchmark_ann_vol_standard": 0.16,
               "benchmark_sharpe_standard": 0.31, "benchmark_max_drawdown_standard": -0.2}
    seed_metrics = None
    if n_seeds:
        seed_metrics = [{k: v + rng.normal(0, 0.01) for k, v in metrics.items()}
                        for _ in range(n_seeds)]
    attr = None
    if attribution:
        attr = pd.DataFrame({"rank": [1, 2, 3],
                             "feature": ["BN(ts_max(BN(ts_corr(open,low,10)),3))",
                                         "ts_mean(close,10)", "ts_zscore(volume,10)"],
                             "score": [0.9, 0.5, 0.2]})
    # tear sheet: IC decaying with the horizon, a slowly changing signal (high autocorrelation)
    ts = {"date": dates}
    for h, scale in ((1, 0.3), (5, 0.6), (10, 0.8), (20, 1.0)):
        ts[f"ic_{h}d"] = scale * ic + rng.normal(0, 0.01, n_days)
        ts[f"rank_ic_{h}d"] = ts[f"ic_{h}d"] + rng.normal(0, 0.01, n_days)
    for lag, level in ((1, 0.95), (5, 0.8), (20, 0.5)):
        ts[f"rank_autocorr_{lag}d"] = np.clip(rng.normal(level, 0.03, n_days), -1, 1)
    tearsheet = pd.DataFrame(ts)
    return MethodResults(name=name, alphas=alphas, daily=daily, ic_series=ic_series,
                         quantiles=quantiles, metrics=metrics, seed_metrics=seed_metrics,
                         attribution=attr, notes=[f"synthetic {name} run, seed {seed}"],
                         tearsheet=tearsheet, label_horizon=20)


@pytest.fixture(scope="session")
def make_method() -> Callable[..., MethodResults]:
    return synthetic_method


@pytest.fixture(scope="session")
def manifest() -> dict:
    return {"created_utc": "2024-01-01T00:00:00+00:00", "git_commit": "abc123",
            "git_dirty": False, "params_sha256": "f" * 64, "data_fingerprint": "deadbeef",
            "python": "3.11", "platform": "linux", "packages": {"torch": "2.13.0"},
            "extra": {"run": "test"}}
