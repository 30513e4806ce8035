"""The fused CPU moment kernels (numba) agree with the torch prefix-sum kernels they replace.

The operator semantics themselves are tested against pandas in ``test_expr_operators.py`` (which
runs the fused kernels, the CPU default); here the two implementations are compared on inputs
built to hit every branch: NaN and ±inf, constant stretches, all-NaN columns, windows of 1 to T+1,
float32 and float64, 3-D inputs, one or several threads.
"""

from __future__ import annotations

import multiprocessing
import os

import numpy as np
import pytest
import torch

from alphaminer.expr import kernels

SINGLE = {"Var": kernels.ts_var, "Std": kernels.ts_std, "TsZScore": kernels.ts_zscore,
          "Skew": kernels.ts_skew, "Kurt": kernels.ts_kurt}
PAIR = {"Cov": kernels.ts_cov, "Corr": kernels.ts_corr}


def _inputs(dtype: torch.dtype, T: int = 90, S: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(T, S)) * 5 + 100
    y = rng.lognormal(13, 1, size=(T, S))
    x[rng.random((T, S)) < 0.04] = np.nan
    y[rng.random((T, S)) < 0.04] = np.nan
    x[20:50, 1] = 7.25  # constant stretch
    y[30:70, 2] = 3.0
    x[:, 3] = np.nan  # never observed
    x[60:, 4] = np.inf
    y[40:45, 5] = -np.inf
    x[10:40, 6] = x[9, 6]  # constant, then moving again
    y[:, 7] = 0.0  # constant for ever
    return torch.tensor(x, dtype=dtype), torch.tensor(y, dtype=dtype)


def _both(fn, *args) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: ANN001
    old = kernels.JIT_MOMENTS
    try:
        kernels.JIT_MOMENTS = True
        fused = fn(*args)
        kernels.JIT_MOMENTS = False
        ref = fn(*args)
    finally:
        kernels.JIT_MOMENTS = old
    return fused, ref


def _assert_same(fused: torch.Tensor, ref: torch.Tensor, rtol: float) -> None:
    assert fused.dtype == ref.dtype and fused.shape == ref.shape
    assert torch.equal(torch.isnan(fused), torch.isnan(ref))
    assert not torch.isinf(fused).any()
    ok = ~torch.isnan(ref)
    np.testing.assert_allclose(fused[ok].numpy(), ref[ok].numpy(), rtol=rtol, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("d", [1, 2, 3, 4, 5, 20, 89, 90, 91])
def test_fused_moments_match_torch_kernels(dtype: torch.dtype, d: int) -> None:
    x, y = _inputs(dtype)
    rtol = 1e-6 if dtype == torch.float32 else 1e-7  # Kurt at d = 4 amplifies float64 rounding
    for fn in SINGLE.values():
        _assert_same(*_both(fn, x, d), rtol)
    for fn in PAIR.values():
        _assert_same(*_both(fn, x, y, d), rtol)


def test_fused_moments_on_3d_inputs_and_any_thread_count() -> None:
    x, y = _inputs(torch.float32, T=70, S=150)
    x3, y3 = x.reshape(70, 75, 2), y.reshape(70, 75, 2)
    before = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            results.append([kernels.ts_std(x3, 10), kernels.ts_corr(x3, y3, 10)])
    finally:
        torch.set_num_threads(before)
    for res in results[1:]:
        for a, b in zip(results[0], res, strict=True):
            assert torch.equal(a.nan_to_num(-9.0), b.nan_to_num(-9.0))
    _assert_same(*_both(kernels.ts_std, x3, 10), 1e-6)
    _assert_same(*_both(kernels.ts_corr, x3, y3, 10), 1e-6)


def test_fused_path_is_used_on_cpu_and_torch_path_under_autograd(monkeypatch) -> None:  # noqa: ANN001
    calls = []
    real = kernels._jit_moments

    def spy(xs, d, op):  # noqa: ANN001, ANN202
        out = real(xs, d, op)
        calls.append(out is not None)
        return out

    monkeypatch.setattr(kernels, "_jit_moments", spy)
    x, _ = _inputs(torch.float32)
    kernels.ts_std(x, 5)
    kernels.ts_std(x.clone().requires_grad_(True), 5)
    assert calls == [True, False]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_kernel_pool_works_in_a_forked_child() -> None:
    """A forked child (Kedro's ParallelRunner on Linux) must not reuse the parent's pool, whose
    threads it does not have: the fused kernels would wait for them for ever."""
    x, _ = _inputs(torch.float32, T=60, S=200)
    want = float(kernels.ts_std(x, 10).nan_to_num().numpy().sum())  # pool created here
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()

    def child(q) -> None:  # noqa: ANN001
        q.put(float(kernels.ts_std(x, 10).nan_to_num().numpy().sum()))

    proc = ctx.Process(target=child, args=(queue,))
    proc.start()
    proc.join(60)
    if proc.is_alive():
        proc.kill()
        pytest.fail("the kernel hung in a forked child")
    assert proc.exitcode == 0
    assert queue.get(timeout=5) == want
