"""Risk metrics against hand computation, and the oracle / random / negated sanity check."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from alphaminer.backtest import BacktestConfig, hit_rate, max_drawdown, risk_metrics, run_backtest
from alphaminer.backtest.metrics import all_risk_metrics


def test_standard_metrics_by_hand():
    r = [0.1, -0.2, 0.05, 0.1]
    m = risk_metrics(r, "standard", annualisation=4)
    # Π(1+r) = 1.1 · 0.8 · 1.05 · 1.1 = 1.0164
    assert m["total_return_standard"] == pytest.approx(0.0164, rel=1e-12)
    # 4 periods a year, 4 observed → CAGR = 1.0164^(4/4) − 1
    assert m["cagr_standard"] == pytest.approx(0.0164, rel=1e-12)
    # mean 0.0125; squared deviations 0.00765625+0.04515625+0.00140625+0.00765625 = 0.061875;
    # var (ddof 1) = 0.020625
    sd = math.sqrt(0.020625)
    assert m["ann_vol_standard"] == pytest.approx(sd * 2, rel=1e-12)
    assert m["sharpe_standard"] == pytest.approx(0.0125 / sd * 2, rel=1e-12)
    # equity 1, 1.1, 0.88, 0.924, 1.0164 → worst 0.88 / 1.1 − 1 = −0.2
    assert m["max_drawdown_standard"] == pytest.approx(-0.2, rel=1e-12)
    assert m["n_days"] == 4
    # CAGR with 2 periods a year over 4 periods (2 years): sqrt(1.0164) − 1
    m2 = risk_metrics(r, "standard", annualisation=2)
    assert m2["cagr_standard"] == pytest.approx(math.sqrt(1.0164) - 1, rel=1e-12)


def test_qlib_metrics_by_hand():
    r = [0.1, -0.2, 0.05, 0.1, np.nan]  # NaN is dropped
    m = risk_metrics(r, "qlib")
    sd = math.sqrt(0.020625)
    assert m["mean_qlib"] == pytest.approx(0.0125, rel=1e-12)
    assert m["std_qlib"] == pytest.approx(sd, rel=1e-12)
    assert m["annualized_return_qlib"] == pytest.approx(0.0125 * 238, rel=1e-12)
    assert m["information_ratio_qlib"] == pytest.approx(0.0125 / sd * math.sqrt(238), rel=1e-12)
    # cumsum 0.1, −0.1, −0.05, 0.05; cummax 0.1 throughout → min −0.2
    assert m["max_drawdown_qlib"] == pytest.approx(-0.2, rel=1e-12)
    assert all(k.endswith("_qlib") or k == "n_days" for k in m)


def test_conventions_differ_on_first_day_loss():
    """qlib's running max starts at the first cumulative value, so a day-one loss is no
    drawdown there, while the standard curve starts at 1 before the first return."""
    r = [-0.1, 0.05]
    assert risk_metrics(r, "standard")["max_drawdown_standard"] == pytest.approx(-0.1)
    assert risk_metrics(r, "qlib")["max_drawdown_qlib"] == 0.0
    # pandas reference of qlib's formula
    s = pd.Series(r)
    assert (s.cumsum() - s.cumsum().cummax()).min() == 0.0


def test_max_drawdown_hand_curve():
    # peaks 120 then 130; troughs 90 (−25 %) and 65 (−50 %)
    assert max_drawdown([100, 120, 90, 110, 130, 65, 80]) == pytest.approx(-0.5)
    assert max_drawdown([1, 2, 3]) == 0.0
    with pytest.raises(ValueError):
        max_drawdown([1, 0, 2])


def test_metric_edge_cases():
    m = risk_metrics([], "standard")
    assert math.isnan(m["sharpe_standard"]) and m["n_days"] == 0
    assert math.isnan(risk_metrics([0.01, 0.01], "qlib")["information_ratio_qlib"])  # std 0
    ruin = risk_metrics([0.1, -1.0, 0.2], "standard")
    assert ruin["total_return_standard"] == -1 and ruin["max_drawdown_standard"] == -1
    with pytest.raises(ValueError, match="convention"):
        risk_metrics([0.1], "geometric")
    both = all_risk_metrics([0.01, -0.02, 0.03], prefix="x_")
    assert {"x_sharpe_standard", "x_information_ratio_qlib"} <= set(both)


def test_hit_rate():
    assert hit_rate([0.1, 0.0, -0.1, np.nan], [0.0, 0.0, -0.2, 0.1]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        hit_rate([0.1], [0.1, 0.2])


# ----------------------------------------------------------------------------- oracle test
def _controlled_panel(make_panel, T=1200, S=100, seed=0):
    """Close-to-close simple returns = market + idiosyncratic noise, zero mean."""
    rng = np.random.default_rng(seed)
    r = rng.normal(0, 0.01, (T, 1)) + rng.normal(0, 0.02, (T, S))
    close = 20.0 * np.cumprod(1.0 + r, axis=0)
    return make_panel(close, close), close


def test_oracle_random_negated(make_panel):
    panel, close = _controlled_panel(make_panel)
    T, S = close.shape
    # deal at close: the signal on t buys at close t+1 and earns close t+1 → t+2
    oracle = np.full((T, S), np.nan)
    oracle[:-2] = close[2:] / close[1:-1] - 1.0
    cfg = BacktestConfig(topk=10, n_drop=10, deal_price="close", buy_cost=0.0,
                         sell_cost=0.0, progress=False)
    sharpe = {}
    for name, sig in (("oracle", oracle), ("negated", -oracle)):
        res = run_backtest(sig, panel, cfg)
        sharpe[name] = res.metrics["excess_sharpe_standard"]
        assert res.metrics["hit_rate"] > (0.9 if name == "oracle" else -1)
    rand = [run_backtest(np.random.default_rng(s).normal(size=(T, S)), panel, cfg)
            .metrics["excess_sharpe_standard"] for s in range(5)]
    assert sharpe["oracle"] > 10
    assert sharpe["negated"] < -10
    assert np.mean(np.abs(rand)) < 0.8
    # with the default (costly, slow-turnover) setup the oracle still wins clearly
    res = run_backtest(oracle, panel, BacktestConfig(topk=20, n_drop=5, deal_price="close",
                                                     progress=False))
    assert res.metrics["sharpe_standard"] > 3
