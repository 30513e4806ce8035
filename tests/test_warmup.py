"""The post-install warm-up reaches every numba-backed rolling kernel (alphaminer.warmup)."""

from __future__ import annotations

from alphaminer.warmup import _rolling_kernels

#: the rolling operators with a fused numba kernel (expr/_jit_moments.py, expr/_jit_windows.py)
NUMBA_BACKED = {"ts_std", "ts_var", "ts_zscore", "ts_skew", "ts_kurt", "ts_cov", "ts_corr",
                "ts_med", "ts_mad", "ts_wma", "ts_ema"}


def test_warmup_calls_every_numba_backed_rolling_kernel() -> None:
    found = {name: arity for name, _, arity in _rolling_kernels()}
    assert set(found) >= NUMBA_BACKED
    assert found["ts_corr"] == found["ts_cov"] == 2 and found["ts_std"] == 1
