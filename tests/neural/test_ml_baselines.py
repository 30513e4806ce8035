"""ML baselines (MLP, LSTM, XGBoost, LightGBM on raw-feature windows): the windows against a
numpy computation, no look-ahead, and each model learning a planted reversal at tiny sizes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from alphaminer.combination.ml_baselines import TreeConfig, feature_names, train_tree
from alphaminer.data.splits import Splits
from alphaminer.neural.baselines import (
    NetConfig,
    WindowConfig,
    Windows,
    predict_windows,
    train_net,
)
from alphaminer.panel import Panel

FEATS = ("open", "high", "low", "close", "volume", "vwap", "amount")


def make_panel(T: int = 160, S: int = 30, seed: int = 0) -> tuple[Panel, torch.Tensor]:
    """A random-walk market whose label is minus *today's* 1-day return plus noise: a planted
    one-day reversal a window model can see (the close at lag 1)."""
    rng = np.random.default_rng(seed)
    r = rng.normal(0, 0.02, (T, S))
    close = 10 * np.exp(np.cumsum(r, axis=0))
    vals = np.empty((T, S, len(FEATS)), dtype=np.float32)
    vals[..., 0] = close * np.exp(rng.normal(0, 0.005, (T, S)))
    vals[..., 1] = close * 1.01
    vals[..., 2] = close * 0.99
    vals[..., 3] = close
    vals[..., 4] = np.exp(rng.normal(10, 0.3, (T, S)))
    vals[..., 5] = close * 1.001
    vals[..., 6] = vals[..., 4] * vals[..., 5]
    ones = torch.ones(T, S, dtype=torch.bool)
    panel = Panel(torch.from_numpy(vals), pd.bdate_range("2020-01-01", periods=T),
                  [f"S{i}" for i in range(S)], FEATS, ones, ones.clone(), ones.clone())
    ret1 = np.full((T, S), np.nan)
    ret1[1:] = close[1:] / close[:-1] - 1
    y = -ret1 + rng.normal(0, 0.01, (T, S))
    y[-1] = np.nan  # the last label is unknown (horizon 1)
    return panel, torch.from_numpy(y.astype(np.float32))


def splits_for(T: int) -> Splits:
    a, b = int(T * 0.5), int(T * 0.75)
    return Splits(dates=None, ranges={"train": (0, a - 1), "valid": (a, b - 1), "test": (b, T)},
                  horizon=1, purge=1)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


# ----------------------------------------------------------------------------- windows
def test_windows_match_numpy_and_mark_incomplete() -> None:
    panel, _ = make_panel(T=12, S=4)
    v = panel.values.clone()
    v[5, 1, 3] = float("nan")  # stock 1: close missing on day 5
    v[9, 2, 4] = 0.0  # stock 2: zero volume on day 9 (division by the last value)
    uni = panel.universe.clone()
    uni[8, 3] = False
    from dataclasses import replace
    panel = replace(panel, values=v, universe=uni)
    W = 4
    win = Windows(panel, WindowConfig(window=W, clip=None))
    assert win.features == ("open", "high", "low", "close", "volume", "vwap")  # no amount
    x, ok = win.days(np.arange(12))
    raw = v.numpy()[..., :6].astype(np.float64)
    for d in range(12):
        for s in range(4):
            if d < W - 1:
                assert not ok[d, s]
                continue
            w = raw[d - W + 1:d + 1, s]  # [W, F]
            with np.errstate(divide="ignore", invalid="ignore"):
                ref = w / w[-1] - 1.0
            complete = np.isfinite(ref).all() and (w[-1] != 0).all() and bool(uni[d, s])
            assert bool(ok[d, s]) == complete, (d, s)
            if complete:
                np.testing.assert_allclose(x[d, s].numpy(), ref, rtol=1e-5, atol=1e-6)
            else:
                assert (x[d, s] == 0).all()
    # the hand-picked holes: close NaN on day 5 spoils stock 1's windows ending on days 5..8
    assert [bool(ok[d, 1]) for d in range(3, 12)] == [True, True, False, False, False, False,
                                                       True, True, True]
    assert not ok[9, 2] and ok[10, 2] and not ok[8, 3] and ok[9, 3]


def test_clip_and_feature_names_order() -> None:
    panel, _ = make_panel(T=10, S=3)
    v = panel.values.clone()
    v[6, 0, 4] = v[7, 0, 4] * 50  # a volume spike 50x the last value → 49 before clipping
    from dataclasses import replace
    panel = replace(panel, values=v)
    win = Windows(panel, WindowConfig(window=3, clip=5.0))
    x, ok = win.days([7])
    assert ok[0, 0] and float(x[0, 0, 1, 4]) == 5.0
    names = feature_names(win)
    flat = x[0].reshape(panel.S, -1)
    assert names[:6] == [f"{f}_2" for f in win.features] and names[-1] == "vwap_0"
    last = [i for i, n in enumerate(names) if n.endswith("_0")]
    assert (flat[:, last] == 0).all()  # day t divided by itself, minus 1
    i = names.index("close_1")
    c = v[..., 3].numpy()
    np.testing.assert_allclose(flat[:, i].numpy(), c[6] / c[7] - 1, rtol=1e-5)


# ----------------------------------------------------------------------------- no look-ahead
def _perturb_after(panel: Panel, labels: torch.Tensor, t0: int) -> tuple[Panel, torch.Tensor]:
    from dataclasses import replace
    v = panel.values.clone()
    g = torch.Generator().manual_seed(7)
    v[t0 + 1:] *= torch.exp(torch.randn(v[t0 + 1:].shape, generator=g))
    y = labels.clone()
    y[t0 + 1:] = torch.randn(y[t0 + 1:].shape, generator=g)
    return replace(panel, values=v), y


def test_windows_and_predictions_ignore_future_data() -> None:
    panel, y = make_panel(T=60, S=8)
    t0 = 40
    cfg = WindowConfig(window=10)
    p2, _ = _perturb_after(panel, y, t0)
    a, oka = Windows(panel, cfg).days(np.arange(t0 + 1))
    b, okb = Windows(p2, cfg).days(np.arange(t0 + 1))
    assert torch.equal(a, b) and torch.equal(oka, okb)
    w = torch.randn(cfg.window * 6)
    score = lambda x: (x.reshape(len(x), -1) @ w).numpy()  # noqa: E731  a fixed model
    s1 = predict_windows(Windows(panel, cfg), score)
    s2 = predict_windows(Windows(p2, cfg), score)
    assert torch.equal(s1[:t0 + 1].isnan(), s2[:t0 + 1].isnan())
    torch.testing.assert_close(s1[:t0 + 1], s2[:t0 + 1], equal_nan=True)
    assert not torch.allclose(s1[t0 + 1:], s2[t0 + 1:], equal_nan=True)


@pytest.mark.parametrize("kind", ["mlp", "xgb"])
def test_training_uses_no_data_after_the_valid_segment(kind: str) -> None:
    """Changing prices and labels inside the test segment leaves every signal value up to the
    valid segment's end unchanged (the model only saw train/valid fit rows)."""
    panel, y = make_panel(T=120, S=20)
    sp = splits_for(120)
    t0 = sp.valid[1]  # first test-segment day is t0 + 1 .. (valid ends before t0)
    p2, y2 = _perturb_after(panel, y, t0)
    win = WindowConfig(window=5)
    if kind == "mlp":
        cfg = NetConfig(kind="mlp", hidden=8, max_epochs=2, batch_size=128)
        a, b = (train_net(p, yy, sp, win, cfg, 5).signal for p, yy in ((panel, y), (p2, y2)))
    else:
        cfg = TreeConfig(kind="xgb", n_estimators=10, max_depth=2, n_jobs=1)
        a, b = (train_tree(p, yy, sp, win, cfg, 5).signal for p, yy in ((panel, y), (p2, y2)))
    torch.testing.assert_close(a[:t0 + 1], b[:t0 + 1], equal_nan=True)


# ----------------------------------------------------------------------------- models
def _check_result(res, panel: Panel, W: int) -> None:  # noqa: ANN001
    sig = res.signal
    assert sig.shape == (panel.T, panel.S) and sig.dtype == torch.float32
    assert sig[:W - 1].isnan().all() and torch.isfinite(sig[W - 1:]).all()
    for seg in ("train", "valid", "test"):
        assert np.isfinite(res.metrics[f"{seg}_ic"])


CASES = {
    "mlp": NetConfig(kind="mlp", hidden=16, max_epochs=6, patience=3, batch_size=64),
    "lstm": NetConfig(kind="lstm", hidden=16, max_epochs=8, patience=3, batch_size=64),
    "xgb": TreeConfig(kind="xgb", n_estimators=40, max_depth=3, early_stopping_rounds=10,
                      n_jobs=1),
    "lgbm": TreeConfig(kind="lgbm", n_estimators=40, num_leaves=7, max_depth=3,
                       early_stopping_rounds=10, n_jobs=1),
}


@pytest.mark.parametrize("kind", list(CASES))
def test_each_baseline_learns_the_planted_reversal(kind: str) -> None:
    """label ≈ −(today's return) + noise; the close at lag 1 in the window is
    close[t−1]/close[t] − 1 ≈ −return, so every model should reach a clearly positive test IC
    (the noise-free IC of the true predictor is about 0.9)."""
    panel, y = make_panel(T=160, S=30)
    sp = splits_for(160)
    W = 5
    cfg = CASES[kind]
    fit = train_net if isinstance(cfg, NetConfig) else train_tree
    res = fit(panel, y, sp, WindowConfig(window=W), cfg, 5)
    _check_result(res, panel, W)
    assert res.metrics["test_ic"] > 0.4, res.metrics
    assert res.metrics["best_valid_ic"] > 0.4
    best = res.metrics["best_epoch"] if kind in ("mlp", "lstm") else res.metrics["best_iteration"]
    assert best >= 1


@pytest.mark.parametrize("kind", ["mlp", "lgbm"])
def test_same_seed_same_signal(kind: str) -> None:
    panel, y = make_panel(T=80, S=12)
    sp = splits_for(80)
    cfg = CASES[kind]
    fit = train_net if isinstance(cfg, NetConfig) else train_tree
    a = fit(panel, y, sp, WindowConfig(window=4), cfg, 5).signal
    b = fit(panel, y, sp, WindowConfig(window=4), cfg, 5).signal
    assert torch.equal(a.isnan(), b.isnan())
    torch.testing.assert_close(a, b, equal_nan=True, rtol=0, atol=0)


def test_early_stopping_keeps_the_best_epoch() -> None:
    panel, y = make_panel(T=100, S=16)
    res = train_net(panel, y, splits_for(100), WindowConfig(window=4),
                    NetConfig(kind="mlp", hidden=8, max_epochs=5, patience=1, batch_size=32), 5)
    ics = [h["valid_ic"] for h in res.history]
    assert res.metrics["best_epoch"] == int(np.nanargmax(ics)) + 1
    assert res.metrics["best_valid_ic"] == pytest.approx(max(ics))


def test_too_short_panel_raises() -> None:
    panel, y = make_panel(T=30, S=6)
    with pytest.raises(ValueError, match="too short"):
        train_tree(panel, y, splits_for(30), WindowConfig(window=25), CASES["xgb"], 5)
