"""dynamic_linear: window arithmetic, no label leakage, a loop reference, planted recovery."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch
from combination_data import (
    BETA,
    HORIZON,
    SPLITS,
    np_daily_ic,
    np_mean_ic,
    planted_linear,
    regime_overlap,
)

from alphaminer.combination.base import CombinationInputs
from alphaminer.combination.dynamic import (
    DynamicLinearConfig,
    DynamicLinearState,
    fit_dynamic_linear,
    fit_windows,
)


@pytest.mark.parametrize("T,h,window,min_periods", [
    (50, 0, 5, None), (120, 5, 20, None), (120, 20, 30, 10), (40, 3, 60, 2), (30, 40, 5, None),
])
def test_fit_windows_end_at_least_h_plus_1_days_before_prediction(T, h, window, min_periods):
    start, end, ok = fit_windows(T, h, window, min_periods=min_periods)
    mp = window if min_periods is None else min_periods
    for t in range(T):  # plain reference per day
        last_known = t - (h + 1)  # label of day s is known at the close of s + h
        exp_end = min(max(last_known + 1, 0), T)
        exp_start = max(0, exp_end - window)
        assert int(end[t]) == exp_end and int(start[t]) == exp_start
        assert bool(ok[t]) == (exp_end - exp_start >= mp)
        if ok[t]:
            # every label day used is >= h + 1 days before t, and its label is fully known by t
            assert t - (int(end[t]) - 1) >= h + 1
            assert int(end[t]) - 1 + h < t
            assert int(start[t]) >= 0 and int(end[t]) - int(start[t]) <= window


def _inputs(f, names, y, h, splits=None):
    T = f.shape[1]
    splits = splits or {"train": (0, T // 2), "valid": (T // 2, 3 * T // 4),
                        "test": (3 * T // 4, T)}
    return CombinationInputs.build(f, names, y, splits, h)


def _leak_ic(shift):
    h = 10
    f, names, y = regime_overlap(h=h)
    inputs = _inputs(f, names, y, h)
    cfg = DynamicLinearConfig(window=2, n_select=3, icir_threshold=0.0, n_trials=0)
    res = fit_dynamic_linear(inputs, cfg, shift=shift)
    return np_mean_ic(res.signal, y)


@pytest.mark.parametrize("shift", [0, 1, 3, 5])
def test_leakage_is_detected_when_window_reaches_unknown_labels(shift):
    # With a shift <= h the window holds labels that overlap y[t]'s future returns: the
    # behavioural check must flag it (IC far above what honest data allows).
    assert _leak_ic(shift) > 0.2


@pytest.mark.parametrize("shift", [None, 10, 14])
def test_no_leakage_with_default_shift(shift):
    # None = the library default (h + 1); h itself is the earliest legitimate lag.
    assert abs(_leak_ic(shift)) < 0.1


def _zscore_np(a):
    m = np.nanmean(a, axis=-1, keepdims=True)
    s = np.nanstd(a, axis=-1, ddof=1, keepdims=True)
    return (a - m) / s


def _ref_weights(f, y, t, h, window, n_select, thr):
    """Per-day reference: loop over window days, scipy Spearman, numpy lstsq."""
    end = t - h
    start = max(0, end - window)
    if end - start < window:
        return None
    K = f.shape[0]
    ic = np.full((K, end - start), np.nan)
    ric = np.full((K, end - start), np.nan)
    for k in range(K):
        ic[k] = np_daily_ic(f[k, start:end], y[start:end])
        for j, d in enumerate(range(start, end)):
            m = np.isfinite(f[k, d]) & np.isfinite(y[d])
            if m.sum() >= 10:
                ric[k, j] = scipy.stats.spearmanr(f[k, d][m], y[d][m]).statistic
    mean, rmean = np.nanmean(ic, 1), np.nanmean(ric, 1)
    icir = mean / np.nanstd(ic, 1, ddof=1)
    elig = (np.abs(icir) >= thr) & (np.sign(mean) == np.sign(rmean))
    cand = [k for k in np.argsort(-np.abs(rmean), kind="stable") if elig[k]][:n_select]
    z = _zscore_np(f)
    yz = _zscore_np(y)
    X, Y = [], []
    for d in range(start, end):
        m = np.isfinite(yz[d])
        X.append(np.nan_to_num(z[cand][:, d, m]).T)
        Y.append(yz[d, m])
    w_sel = np.linalg.lstsq(np.concatenate(X), np.concatenate(Y), rcond=None)[0]
    w = np.zeros(K)
    w[cand] = w_sel
    return w


def test_weights_match_loop_reference():
    f, names, y = planted_linear(T=120, S=40)
    h, window, n_select, thr = 3, 15, 3, 0.2
    inputs = CombinationInputs.build(f, names, y, {"train": (0, 60), "valid": (63, 90),
                                                   "test": (93, 120)}, h)
    cfg = DynamicLinearConfig(window=window, n_select=n_select, icir_threshold=thr,
                              ridge=0.0, n_trials=0)
    res = fit_dynamic_linear(inputs, cfg)
    fn, yn = f.numpy().astype(np.float64), y.numpy().astype(np.float64)
    checked = 0
    for t in range(0, 120, 7):
        ref = _ref_weights(fn, yn, t, h, window, n_select, thr)
        got = res.daily_weights[t].numpy()
        if ref is None:
            assert np.isnan(got).all()
            continue
        np.testing.assert_allclose(got, ref, rtol=2e-3, atol=2e-4)
        checked += 1
    assert checked >= 10
    # the signal is the weighted sum of NaN→0 z-scores on each day
    z = np.nan_to_num(_zscore_np(fn))
    t = 100
    exp = np.einsum("k,ks->s", res.daily_weights[t].numpy().astype(np.float64), z[:, t])
    np.testing.assert_allclose(res.signal[t].numpy(), exp, rtol=1e-4, atol=1e-5)


def test_recovers_planted_linear_signal(planted):
    f, names, y = planted
    inputs = CombinationInputs.build(f, names, y, SPLITS, HORIZON)
    res = fit_dynamic_linear(inputs, DynamicLinearConfig(window=30, n_select=4, n_trials=0))
    assert res.metrics["test_ic"] > 0.3
    assert np_mean_ic(res.signal, y, SPLITS["test"]) == pytest.approx(
        res.metrics["test_ic"], abs=0.02)
    t0, t1 = SPLITS["test"]
    mean_w = np.nanmean(res.daily_weights[t0:t1].numpy(), axis=0)
    for k in np.flatnonzero(BETA):
        assert np.sign(mean_w[k]) == np.sign(BETA[k])
    assert res.model["label_shift"] == HORIZON + 1


def test_future_data_cannot_change_past_signal(planted):
    f, names, y = planted
    cfg = DynamicLinearConfig(window=20, n_select=3, n_trials=0)
    base = fit_dynamic_linear(CombinationInputs.build(f, names, y, SPLITS, HORIZON), cfg).signal
    g = torch.Generator().manual_seed(3)
    for u in (60, 170, 230):
        f2, y2 = f.clone(), y.clone()
        f2[:, u:] = torch.randn(f2[:, u:].shape, generator=g)
        y2[u:] = torch.randn(y2[u:].shape, generator=g) * 5
        sig = fit_dynamic_linear(CombinationInputs.build(f2, names, y2, SPLITS, HORIZON),
                                 cfg).signal
        torch.testing.assert_close(sig[:u], base[:u], equal_nan=True)
        # labels of days >= u become known at u + h: the signal may only change after that
        f3 = f.clone()
        y3 = y.clone()
        y3[u:] = -y3[u:]
        sig3 = fit_dynamic_linear(CombinationInputs.build(f3, names, y3, SPLITS, HORIZON),
                                  cfg).signal
        torch.testing.assert_close(sig3[:u + HORIZON + 1], base[:u + HORIZON + 1],
                                   equal_nan=True)
        assert not torch.allclose(sig3[u + HORIZON + 1:], base[u + HORIZON + 1:],
                                  equal_nan=True)


def test_state_is_shared_and_config_validated(planted):
    f, names, y = planted
    inputs = CombinationInputs.build(f, names, y, SPLITS, HORIZON)
    state = DynamicLinearState(inputs, "zscore")
    a = fit_dynamic_linear(inputs, DynamicLinearConfig(window=20, n_trials=0), state)
    b = fit_dynamic_linear(inputs, DynamicLinearConfig(window=20, n_trials=0))
    torch.testing.assert_close(a.signal, b.signal, equal_nan=True)
    with pytest.raises(ValueError, match="window"):
        DynamicLinearConfig(window=1)
    with pytest.raises(ValueError, match="target"):
        DynamicLinearConfig(target="nope")
