"""The fused CPU window kernels (``Med Mad WMA EMA``, no-copy ``finite_or_nan``) agree with the
torch kernels they replace, and the scalar fast paths of the elementwise operators agree with
the tensor paths.

The operator semantics themselves are tested against pandas in ``test_expr_operators.py`` (which
runs the fused kernels, the CPU default); here the two implementations are compared on inputs
built to hit every branch: NaN and ±inf, ties, constant stretches, all-NaN columns, windows of 1
to T+1, float32 and float64, 3-D inputs, one or several threads.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from alphaminer.expr import kernels
from alphaminer.expr.operators import get_operator

WINDOW = {"Med": kernels.ts_med, "Mad": kernels.ts_mad, "WMA": kernels.ts_wma,
          "EMA": kernels.ts_ema}


def _input(dtype: torch.dtype, T: int = 80, S: int = 11, inf: bool = True) -> torch.Tensor:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(T, S)) * 4 + 50
    x[rng.random((T, S)) < 0.05] = np.nan
    x[:, 1] = np.round(x[:, 1])  # many ties
    x[10:40, 2] = 7.25  # constant stretch
    x[:, 3] = np.nan  # never observed
    if inf:
        x[50:53, 4] = np.inf
        x[20, 5] = -np.inf
    x[:, 6] = 0.0
    x[30:, 7] = -0.0
    return torch.tensor(x, dtype=dtype)


def _both(fn, *args) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: ANN001
    old = kernels.JIT_WINDOWS
    try:
        kernels.JIT_WINDOWS = True
        fused = fn(*args)
        kernels.JIT_WINDOWS = False
        ref = fn(*args)
    finally:
        kernels.JIT_WINDOWS = old
    return fused, ref


def _assert_same(fused: torch.Tensor, ref: torch.Tensor, rtol: float) -> None:
    assert fused.dtype == ref.dtype and fused.shape == ref.shape
    assert torch.equal(torch.isnan(fused), torch.isnan(ref))
    ok = ~torch.isnan(ref)
    np.testing.assert_allclose(fused[ok].numpy(), ref[ok].numpy(), rtol=rtol, atol=1e-12)


@pytest.mark.parametrize("op", sorted(WINDOW))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("d", [1, 2, 5, 10, 80, 81])
def test_fused_window_kernels_match_torch(op: str, dtype: torch.dtype, d: int) -> None:
    x = _input(dtype)
    fused, ref = _both(WINDOW[op], x, d)
    _assert_same(fused, ref, rtol=2e-6 if dtype == torch.float32 else 1e-12)
    if d <= 80:
        assert torch.isnan(fused[: d - 1]).all()


def test_fused_median_is_exact_and_keeps_infinities() -> None:
    """The median is a selection: bit-equal to the sort; a window with +inf has an inf median
    when inf is a middle value (the torch kernel's semantics; the evaluator maps it to NaN)."""
    x = torch.tensor([[1.0], [np.inf], [np.inf], [2.0], [np.nan], [3.0], [4.0], [5.0]])
    fused, ref = _both(kernels.ts_med, x, 3)
    assert torch.equal(torch.isnan(fused), torch.isnan(ref))
    ok = ~torch.isnan(ref)
    assert torch.equal(fused[ok], ref[ok])
    assert fused[2, 0] == np.inf and fused[3, 0] == np.inf  # [1, inf, inf], [inf, inf, 2]
    assert torch.isnan(fused[4:7, 0]).all() and fused[7, 0] == 4.0
    x32 = _input(torch.float32, inf=False)
    for d in (3, 4, 20):
        f, r = _both(kernels.ts_med, x32, d)
        ok = ~torch.isnan(r)
        assert torch.equal(f[ok], r[ok])
        pd_ref = pd.DataFrame(x32.numpy().astype(np.float64)).rolling(d).median().to_numpy()
        np.testing.assert_allclose(f.numpy(), pd_ref, rtol=1e-6, equal_nan=True)


def test_fused_kernels_3d_and_threads() -> None:
    x = _input(torch.float32, T=60, S=300).reshape(60, 30, 10)
    old = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for op, fn in WINDOW.items():
                fused, ref = _both(fn, x, 7)
                assert fused.shape == (60, 30, 10), op
                _assert_same(fused, ref, rtol=2e-6)
    finally:
        torch.set_num_threads(old)


def test_window_kernels_future_cannot_change_past() -> None:
    x = _input(torch.float32)
    y = x.clone()
    y[60:] = torch.randn(20, x.shape[1]) * 1e6
    for op, fn in WINDOW.items():
        a, b = fn(x, 10)[:60], fn(y, 10)[:60]
        assert torch.equal(torch.isnan(a), torch.isnan(b)), op
        assert torch.equal(a[~torch.isnan(a)], b[~torch.isnan(b)]), op


def test_finite_or_nan_no_copy_only_when_clean() -> None:
    clean = torch.tensor([1.0, np.nan, -2.0])
    assert kernels.finite_or_nan(clean) is clean  # nothing to replace: no copy
    dirty = torch.tensor([1.0, np.inf, -np.inf, np.nan])
    out = kernels.finite_or_nan(dirty)
    assert out is not dirty and torch.isinf(dirty).sum() == 2  # input untouched
    assert torch.isnan(out[1:]).all() and out[0] == 1.0
    strided = torch.tensor([[1.0, np.inf], [2.0, 3.0]]).t()  # non-contiguous
    assert torch.isnan(kernels.finite_or_nan(strided)).sum() == 1
    leaf = torch.tensor([1.0, np.inf], requires_grad=True)
    g = kernels.finite_or_nan(leaf)
    assert g is not leaf and torch.isnan(g[1])


@pytest.mark.parametrize("name", ["Add", "Sub", "Mul", "Div", "Greater", "Less"])
def test_scalar_operand_paths_match_tensor_paths(name: str) -> None:
    """A python-scalar operand (the fast path) gives what a broadcast constant tensor gives."""
    k = get_operator(name).kernel
    x = _input(torch.float32, inf=True)
    for c in (-30.0, -0.5, 0.0, 0.01, 2.0):
        full = torch.full_like(x, c)
        for a, b, fa, fb in ((x, c, x, full), (c, x, full, x)):
            got, want = k(a, b), k(fa, fb)
            assert got.dtype == want.dtype == torch.float32
            assert torch.equal(torch.isnan(got), torch.isnan(want)), (name, c)
            ok = ~torch.isnan(want)
            assert torch.equal(got[ok], want[ok]), (name, c)


def test_div_and_log_fast_paths_match_masked_forms() -> None:
    """Without autograd, Div and Log take the plain op + inf→NaN; with autograd, the masked
    forms. Both give the same values, and the masked forms keep NaN out of gradients."""
    a = _input(torch.float64)
    b = _input(torch.float64).roll(3, dims=0)
    b[5:9] = 0.0
    b[9, :] = -0.0
    fast = kernels.safe_div(a, b)
    ag, bg = a.clone().requires_grad_(), b.clone().requires_grad_()
    masked = kernels.safe_div(ag, bg)
    assert torch.equal(torch.isnan(fast), torch.isnan(masked.detach()))
    ok = ~torch.isnan(fast)
    assert torch.equal(fast[ok], masked.detach()[ok])
    assert torch.isnan(fast[5:10]).all()
    lf = kernels.safe_log(b)  # numpy's log on CPU: within an ulp of torch's
    lg = kernels.safe_log(bg)
    assert torch.equal(torch.isnan(lf), torch.isnan(lg.detach()))
    np.testing.assert_allclose(lf[~torch.isnan(lf)], lg.detach()[~torch.isnan(lf)], rtol=1e-15)
    pos = b[(b > 0) & torch.isfinite(b)]
    np.testing.assert_allclose(kernels.safe_log(pos), np.log(pos.numpy()), rtol=1e-15)
    assert torch.isnan(kernels.safe_log(torch.tensor([0.0, -0.0, -1.0, np.inf, np.nan]))).all()
    torch.nan_to_num(lg, nan=0.0).sum().backward()
    assert torch.isfinite(bg.grad).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pos", [0, 4095, 4096, 9999])
def test_any_inf_finds_every_position(dtype: type, pos: int) -> None:
    from alphaminer.expr import _jit_windows

    x = np.full(10_000, np.nan, dtype=dtype)
    x[::3] = 1.5
    assert not _jit_windows.any_inf(x)
    for v in (np.inf, -np.inf):
        y = x.copy()
        y[pos] = v
        assert _jit_windows.any_inf(y)
