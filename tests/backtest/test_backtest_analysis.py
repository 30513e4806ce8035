"""Quantile and IC analysis against plain pandas / scipy references."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from alphaminer.backtest.analysis import (
    forward_returns,
    ic_analysis,
    quantile_analysis,
    quantile_metrics,
)


def _panel(make_random_panel, T=60, S=23, seed=4):
    return make_random_panel(T, S, seed=seed, suspend=0.1, delist=2)


@pytest.mark.parametrize(("horizon", "deal"), [(1, "open"), (3, "close")])
def test_forward_returns_reference(make_random_panel, horizon, deal):
    p = _panel(make_random_panel)
    fwd = forward_returns(p, horizon, deal)
    price = p.feature(deal).double().numpy()
    obs, trad = p.observed.numpy(), p.tradable.numpy()
    ref = np.full_like(fwd, np.nan)
    for t in range(p.T):
        for s in range(p.S):
            a, b = t + 1, t + 1 + horizon
            if b < p.T and trad[a, s] and obs[b, s]:
                ref[t, s] = price[b, s] / price[a, s] - 1
    np.testing.assert_allclose(fwd, ref, rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize(("n_groups", "horizon"), [(5, 1), (3, 2), (4, 1)])
def test_quantile_groups_reference(make_random_panel, n_groups, horizon):
    p = _panel(make_random_panel)
    rng = np.random.default_rng(0)
    sig = rng.normal(size=(p.T, p.S))
    sig[:, :6] = np.round(sig[:, :6])  # ties
    sig[rng.random(sig.shape) < 0.1] = np.nan
    q = quantile_analysis(sig, p, n_groups=n_groups, horizon=horizon, deal_price="open")
    fwd = forward_returns(p, horizon, "open")
    uni = p.universe.numpy()
    rows = []
    for t in range(p.T):
        ok = np.isfinite(sig[t]) & np.isfinite(fwd[t]) & uni[t]
        n = ok.sum()
        if n < n_groups:
            continue
        r = pd.Series(sig[t][ok]).rank(method="average").to_numpy()
        g = np.ceil(r * n_groups / n).astype(int)  # 1..G
        f = fwd[t][ok]
        rows.append([f[g == k].mean() if (g == k).any() else np.nan
                     for k in range(1, n_groups + 1)] + [f.mean()])
    ref = np.array(rows)
    cols = [f"Q{k}" for k in range(1, n_groups + 1)]
    np.testing.assert_allclose(q.returns[cols].to_numpy(), ref[:, :-1], rtol=1e-12)
    np.testing.assert_allclose(q.returns["universe"], ref[:, -1], rtol=1e-12)
    np.testing.assert_allclose(q.returns["long_short"], ref[:, n_groups - 1] - ref[:, 0])
    np.testing.assert_allclose(q.cumulative.iloc[-1], np.nansum(q.returns, axis=0) / horizon)
    assert (q.counts.sum(axis=1) > 0).all()
    m = quantile_metrics(q)
    assert m["Q1_mean"] == pytest.approx(np.nanmean(ref[:, 0]))


def test_quantile_perfect_signal_is_monotone(make_random_panel):
    p = _panel(make_random_panel, T=80, S=50)
    fwd = forward_returns(p, 1, "open")
    q = quantile_analysis(fwd, p, n_groups=5)
    means = q.summary.loc[[f"Q{k}" for k in range(1, 6)], "mean"].to_numpy()
    assert (np.diff(means) > 0).all()
    assert q.monotonicity == pytest.approx(1.0)
    assert (q.returns["long_short"] > 0).all()
    neg = quantile_analysis(-fwd, p, n_groups=5)
    assert neg.monotonicity == pytest.approx(-1.0)


def test_quantile_future_prices_only_affect_later_rows(make_random_panel):
    p = _panel(make_random_panel)
    sig = np.random.default_rng(1).normal(size=(p.T, p.S))
    base = quantile_analysis(sig, p, horizon=2)
    t = 30
    vals = p.values.clone()
    vals[t + 1:] *= 1.7 * torch.rand(vals[t + 1:].shape) + 0.1
    alt = quantile_analysis(sig, replace(p, values=vals), horizon=2)
    # the row of signal day d uses prices up to d + 1 + horizon
    cut = p.dates[t - 3]
    pd.testing.assert_frame_equal(base.returns[base.returns.index <= cut],
                                  alt.returns[alt.returns.index <= cut])
    assert not base.returns.iloc[-1:].equals(alt.returns.iloc[-1:])


def test_quantile_bad_args(make_random_panel):
    p = _panel(make_random_panel)
    sig = np.zeros((p.T, p.S))
    with pytest.raises(ValueError, match="n_groups"):
        quantile_analysis(sig, p, n_groups=1)
    with pytest.raises(ValueError, match="horizon"):
        quantile_analysis(sig, p, horizon=0)
    with pytest.raises(ValueError, match="deal_price"):
        quantile_analysis(sig, p, deal_price="mid")


def test_ic_analysis_vs_scipy(make_random_panel):
    p = _panel(make_random_panel, T=40, S=30)
    rng = np.random.default_rng(3)
    label = forward_returns(p, 1, "close")
    sig = label + rng.normal(0, 0.02, label.shape)
    sig[rng.random(sig.shape) < 0.1] = np.nan
    res = ic_analysis(torch.from_numpy(sig), label, panel=p, min_stocks=10)
    uni = p.universe.numpy()
    ic_ref, ric_ref = [], []
    for t in range(p.T):
        ok = np.isfinite(sig[t]) & np.isfinite(label[t]) & uni[t]
        if ok.sum() < 10:
            ic_ref.append(np.nan)
            ric_ref.append(np.nan)
            continue
        ic_ref.append(stats.pearsonr(sig[t][ok], label[t][ok])[0])
        ric_ref.append(stats.spearmanr(sig[t][ok], label[t][ok])[0])
    np.testing.assert_allclose(res.daily["ic"], ic_ref, rtol=1e-6, atol=1e-9, equal_nan=True)
    np.testing.assert_allclose(res.daily["rank_ic"], ric_ref, rtol=1e-6, atol=1e-9,
                               equal_nan=True)
    s = pd.Series(ic_ref).dropna()
    assert res.summary["ic"] == pytest.approx(s.mean(), rel=1e-6)
    assert res.summary["icir"] == pytest.approx(s.mean() / s.std(ddof=1), rel=1e-6)
    assert res.summary["n_days"] == len(s)
    assert res.summary["ic_positive_rate"] == pytest.approx((s > 0).mean())
    assert res.summary["ic"] > 0.3
    assert list(res.daily.index) == list(p.dates)
    # without a panel: plain arrays, positional index
    raw = ic_analysis(sig, label, min_stocks=10)
    assert isinstance(raw.daily.index, pd.RangeIndex)
    assert not math.isnan(raw.summary["rank_ic"])
    with pytest.raises(ValueError):
        ic_analysis(sig, label[:, :5])


def test_ic_analysis_newey_west_t_matches_a_hand_computation():
    """The summary's NW t of the daily IC, against the textbook Bartlett-kernel formula."""
    import numpy as np

    from alphaminer.backtest.analysis import ic_analysis

    g = np.random.default_rng(3)
    T, S, h = 120, 40, 5
    common = np.convolve(g.standard_normal(T + h), np.ones(h), "valid")[:T]  # overlapping
    y = g.standard_normal((T, S))
    f = y * (0.1 + 0.05 * common[:, None]) + g.standard_normal((T, S))
    res = ic_analysis(f, y, min_stocks=10, horizon=h)
    x = res.daily["ic"].to_numpy()
    n, L = len(x), h - 1
    d = x - x.mean()
    gamma = [float(d[lag:] @ d[: n - lag]) / n for lag in range(L + 1)]
    var = (gamma[0] + 2 * sum((1 - lag / (L + 1)) * gamma[lag] for lag in range(1, L + 1))) / n
    assert res.summary["ic_nw_t"] == pytest.approx(x.mean() / np.sqrt(var), rel=1e-9)
    assert res.summary["ic_nw_lags"] == L
    assert res.summary["ic_positive_rate"] == pytest.approx(float(np.mean(x > 0)))
