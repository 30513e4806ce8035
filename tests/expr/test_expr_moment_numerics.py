"""Rolling moments are exact whatever the level of the data and wherever the panel starts.

The moment kernels used to shift each series by its FIRST value before float64 prefix sums; a
window far from that value relative to its own spread then cancelled catastrophically (Kurt of
``[0, 100.01, 100, 100, 100]`` gave -1283.98 instead of 4.0), and a window's value depended on
what came before it. These tests pin the reproducers, compare with a float64 two-pass reference
on windows with large offsets, and check the property that prepending ANY history never changes
a window's moments beyond rounding — for both the fused CPU kernels and the torch kernels.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from alphaminer.expr import kernels

SINGLE = {"Var": kernels.ts_var, "Std": kernels.ts_std, "TsZScore": kernels.ts_zscore,
          "Skew": kernels.ts_skew, "Kurt": kernels.ts_kurt}
PAIR = {"Cov": kernels.ts_cov, "Corr": kernels.ts_corr}
MIN_WINDOW = {"Var": 2, "Std": 2, "TsZScore": 2, "Skew": 3, "Kurt": 4, "Cov": 2, "Corr": 2}


@pytest.fixture(params=[True, False], ids=["fused", "torch"])
def backend(request, monkeypatch) -> bool:  # noqa: ANN001
    monkeypatch.setattr(kernels, "JIT_MOMENTS", request.param)
    return request.param


def _col(values) -> torch.Tensor:  # noqa: ANN001
    return torch.tensor(np.asarray(values, dtype=np.float64), dtype=torch.float32).reshape(-1, 1)


# ----------------------------------------------------------------------------- the reproducers
def test_kurt_reproducer(backend: bool) -> None:
    out = kernels.ts_kurt(_col([0, 100.01, 100, 100, 100]), 4)
    assert out[-1, 0].item() == pytest.approx(4.0, rel=1e-4)


def test_skew_reproducer_reaches_its_ceiling(backend: bool) -> None:
    out = kernels.ts_skew(_col([0, 1000.01, 1000, 1000]), 3)
    assert out[-1, 0].item() == pytest.approx(math.sqrt(3.0), rel=1e-4)  # the maximum for n=3


def test_same_window_same_kurt_after_a_prefix(backend: bool) -> None:
    rng = np.random.default_rng(0)
    w = (100 + rng.normal(0, 0.01, 10)).round(2)
    alone = kernels.ts_kurt(_col(w), 10)[-1, 0].item()
    after = kernels.ts_kurt(_col(np.r_[0.0, 100.0, w]), 10)[-1, 0].item()
    assert after == pytest.approx(alone, rel=1e-5)
    assert alone == pytest.approx(_two_pass(w.astype(np.float32).astype(np.float64), "Kurt"),
                                  rel=1e-5)


# ----------------------------------------------------------------------------- reference
def _two_pass(w: np.ndarray, op: str, v: np.ndarray | None = None) -> float:
    """float64 two-pass moments of one window (the textbook definitions; pandas' conventions)."""
    n = len(w)
    dev = w - w.mean()
    if op in ("Cov", "Corr"):
        assert v is not None
        dv = v - v.mean()
        if np.all(w == w[0]) or np.all(v == v[0]):
            return 0.0 if op == "Cov" else math.nan
        if op == "Cov":
            return float((dev * dv).sum() / (n - 1))
        return float((dev * dv).sum() / math.sqrt((dev * dev).sum() * (dv * dv).sum()))
    if np.all(w == w[0]):
        return {"Var": 0.0, "Std": 0.0}.get(op, math.nan)
    m2 = (dev ** 2).mean()
    if op == "Var":
        return float((dev ** 2).sum() / (n - 1))
    if op == "Std":
        return math.sqrt((dev ** 2).sum() / (n - 1))
    if op == "TsZScore":
        return float(dev[-1] / math.sqrt((dev ** 2).sum() / (n - 1)))
    if op == "Skew":
        m3 = (dev ** 3).mean()
        return math.sqrt(n * (n - 1)) / (n - 2) * m3 / m2 ** 1.5
    m4 = (dev ** 4).mean()
    return ((n * n - 1) * m4 / m2 ** 2 - 3 * (n - 1) ** 2) / ((n - 2) * (n - 3))


def _assert_windows(out: np.ndarray, x: np.ndarray, d: int, op: str,
                    y: np.ndarray | None = None, rtol: float = 1e-4) -> None:
    for t in range(d - 1, len(x)):
        w = x[t - d + 1:t + 1]
        want = _two_pass(w, op, None if y is None else y[t - d + 1:t + 1])
        got = float(out[t])
        if math.isnan(want):
            assert math.isnan(got), (op, t, got)
        else:
            assert got == pytest.approx(want, rel=rtol, abs=1e-5), (op, d, t, w)


@pytest.mark.parametrize("level", [1e4, 1e5, -3e4])
@pytest.mark.parametrize("d", [4, 5, 10, 40])
def test_large_offsets_match_a_two_pass_reference(backend: bool, level: float, d: int) -> None:
    """Prices at a level of 1e4-1e5 moving by ticks: every window's moments are exact."""
    rng = np.random.default_rng(d)
    T = 160
    ticks = np.cumsum(rng.integers(-3, 4, T)) * 0.25
    x = (level + ticks).astype(np.float32).astype(np.float64)
    x[:7] = 0.0  # a far-away start must not matter
    y = (2 * level + np.cumsum(rng.integers(-2, 3, T)) * 0.5).astype(np.float32).astype(
        np.float64)
    xt, yt = _col(x), _col(y)
    for op, fn in SINGLE.items():
        if d >= MIN_WINDOW[op]:
            _assert_windows(fn(xt, d)[:, 0].numpy(), x, d, op)
    for op, fn in PAIR.items():
        _assert_windows(fn(xt, yt, d)[:, 0].numpy(), x, d, op, y)


# ----------------------------------------------------------------------------- prefix invariance
finite_or_not = st.one_of(
    st.floats(min_value=-1e7, max_value=1e7, allow_nan=False, width=32),
    st.sampled_from([0.0, float("nan"), float("inf"), -float("inf"), 1e6, -1e6]))


@st.composite
def windows_and_prefix(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int]:
    d = draw(st.integers(4, 25))
    n = draw(st.integers(d, d + 40))
    level = draw(st.sampled_from([0.0, 1.0, 100.0, 1e4, -5e3]))
    tick = draw(st.sampled_from([0.01, 0.25, 1.0]))
    steps = draw(st.lists(st.integers(-5, 5), min_size=n, max_size=n))
    body_x = level + np.cumsum(steps) * tick
    steps_y = draw(st.lists(st.integers(-5, 5), min_size=n, max_size=n))
    body_y = 3 * level + 7 + np.cumsum(steps_y) * tick
    prefix = np.asarray(draw(st.lists(finite_or_not, min_size=1, max_size=30)))
    body = np.stack([body_x, body_y], axis=1).astype(np.float32).astype(np.float64)
    return body, prefix, d


@settings(max_examples=60, deadline=None)
@given(case=windows_and_prefix(), fused=st.booleans())
def test_prepending_any_history_never_changes_a_window(case, fused: bool) -> None:  # noqa: ANN001
    body, prefix, d = case
    old = kernels.JIT_MOMENTS
    kernels.JIT_MOMENTS = fused
    try:
        x0, y0 = _col(body[:, 0]), _col(body[:, 1])
        px = _col(np.r_[prefix, body[:, 0]])
        py = _col(np.r_[prefix[::-1], body[:, 1]])
        k = len(prefix)
        for op, fn in SINGLE.items():
            if d < MIN_WINDOW[op]:
                continue
            a = fn(x0, d)[:, 0].numpy()
            b = fn(px, d)[k:, 0].numpy()
            np.testing.assert_allclose(b[d - 1:], a[d - 1:], rtol=2e-5, atol=2e-6,
                                       err_msg=f"{op} d={d}")
        for op, fn in PAIR.items():
            a = fn(x0, y0, d)[:, 0].numpy()
            b = fn(px, py, d)[k:, 0].numpy()
            np.testing.assert_allclose(b[d - 1:], a[d - 1:], rtol=2e-5, atol=2e-6,
                                       err_msg=f"{op} d={d}")
    finally:
        kernels.JIT_MOMENTS = old


def test_kurt_on_tick_data_matches_reference_and_stays_below_its_ceiling(backend: bool) -> None:
    """Sample excess kurtosis of n values is bounded; price-tick data used to break the bound."""
    rng = np.random.default_rng(3)
    T, S, d = 300, 8, 5
    x = 10 + np.cumsum(rng.integers(-1, 2, (T, S)), axis=0) * 0.01
    x[: rng.integers(1, 50)] = 0.5  # a low early level, as after a reverse split
    x = x.astype(np.float32).astype(np.float64)
    out = kernels.ts_kurt(torch.tensor(x, dtype=torch.float32), d).numpy()
    ceiling = _two_pass(np.r_[np.zeros(d - 1), 1.0], "Kurt")  # one outlier: the maximum
    fin = out[np.isfinite(out)]
    assert fin.size > 0 and fin.max() <= ceiling + 1e-4
    for s in range(S):
        _assert_windows(out[:, s], x[:, s], d, "Kurt")
