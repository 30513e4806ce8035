"""Fused CPU kernels for the window operators that the torch kernels must materialise.

``Med`` (rolling median), ``Mad`` (mean absolute deviation) and the weighted means ``WMA`` /
``EMA`` copy every ``d``-day window (``unfold`` + sort, or a ``conv1d`` over NaN-zeroed copies) in
:mod:`alphaminer.expr.kernels`; at mining sizes (one formula = a few such nodes over 1,500 days ×
300 stocks) that copying dominated a candidate's evaluation. These kernels read the input once
per window position, write the output once, and keep only an ``O(d)`` (median) or ``O(columns)``
buffer. Semantics are exactly those of the torch kernels (which remain the implementation on
other devices and under autograd):

- ``med``: a window containing a NaN is NaN; ``±inf`` are ordinary values (as in the sort);
  even windows average the two middle values;
- ``mad``: a window containing a non-finite value is NaN; the window mean is a float64 sum / d
  rounded to the input dtype, the deviations are accumulated in float64;
- ``weighted``: a window containing a non-finite value is NaN; ``Σ w_j x_j`` in float64.

Work is split by column ranges over threads (the kernels release the GIL). Compiled by numba on
first use and cached on disk.
"""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(nogil=True, cache=True, error_model="numpy", inline="always")
def _lower_bound(buf: np.ndarray, m: int, v: float) -> int:
    """First index of ``buf[:m]`` (sorted) whose value is not below ``v``."""
    a, b = 0, m
    while a < b:
        mid = (a + b) // 2
        if buf[mid] < v:
            a = mid + 1
        else:
            b = mid
    return a


@numba.njit(nogil=True, cache=True, error_model="numpy")
def ts_med(x: np.ndarray, d: int, c0: int, c1: int, out: np.ndarray) -> None:
    """Rolling median of columns ``[c0, c1)`` of ``x [T, N]`` into ``out`` (NaN head).

    A sorted buffer of the window's non-NaN values is kept per column. Each day the value
    leaving the window is replaced by the one entering it and slid to its place: the entries
    between the two ranks move by one (``O(d)`` at worst, no sort).
    """
    T = x.shape[0]
    lo = (d - 1) // 2
    hi = d // 2
    buf = np.empty(d, dtype=x.dtype)
    for c in range(c0, c1):
        m = 0  # values in buf (the window's non-NaN values)
        for t in range(T):
            v = x[t, c]
            new_ok = not math.isnan(v)
            old_ok = False
            old = v
            if t >= d:
                old = x[t - d, c]
                old_ok = not math.isnan(old)
            if old_ok and new_ok:  # replace old by v, then slide v to its rank
                i = _lower_bound(buf, m, old)
                if v > old:
                    while i + 1 < m and buf[i + 1] < v:
                        buf[i] = buf[i + 1]
                        i += 1
                else:
                    while i > 0 and buf[i - 1] > v:
                        buf[i] = buf[i - 1]
                        i -= 1
                buf[i] = v
            else:
                if old_ok:  # remove old
                    for j in range(_lower_bound(buf, m, old), m - 1):
                        buf[j] = buf[j + 1]
                    m -= 1
                if new_ok:  # insert v
                    i = m
                    while i > 0 and buf[i - 1] > v:
                        buf[i] = buf[i - 1]
                        i -= 1
                    buf[i] = v
                    m += 1
            if t < d - 1 or m < d:
                out[t, c] = np.nan
            else:
                out[t, c] = (buf[lo] + buf[hi]) * 0.5


@numba.njit(nogil=True, cache=True, error_model="numpy", inline="always")
def _track_bad(row: np.ndarray, t: int, last_bad: np.ndarray) -> None:
    for k in range(row.shape[0]):
        if not math.isfinite(row[k]):
            last_bad[k] = t


@numba.njit(nogil=True, cache=True, error_model="numpy")
def ts_mad(x: np.ndarray, d: int, c0: int, c1: int, out: np.ndarray) -> None:
    """Rolling mean absolute deviation from the window mean, columns ``[c0, c1)``.

    Loops run over 1-D row views of the column range (contiguous, so they vectorise)."""
    T = x.shape[0]
    n = c1 - c0
    last_bad = np.full(n, -1, dtype=np.int64)
    s = np.empty(n, dtype=np.float64)
    mean = np.empty(n, dtype=x.dtype)
    for t in range(T):
        _track_bad(x[t, c0:c1], t, last_bad)
        o = out[t, c0:c1]
        if t < d - 1:
            o[:] = np.nan
            continue
        s[:] = 0.0
        for r in range(t - d + 1, t + 1):
            xr = x[r, c0:c1]
            for k in range(n):
                s[k] += xr[k]
        for k in range(n):
            mean[k] = s[k] / d
        s[:] = 0.0
        for r in range(t - d + 1, t + 1):
            xr = x[r, c0:c1]
            for k in range(n):
                s[k] += abs(xr[k] - mean[k])
        for k in range(n):
            o[k] = s[k] / d if last_bad[k] <= t - d else np.nan


@numba.njit(nogil=True, cache=True, error_model="numpy")
def ts_weighted(x: np.ndarray, w: np.ndarray, c0: int, c1: int, out: np.ndarray) -> None:
    """Rolling ``Σ_j w[j] · x[t-d+1+j]`` (``w[d-1]`` weighs today), columns ``[c0, c1)``."""
    T = x.shape[0]
    d = w.shape[0]
    n = c1 - c0
    last_bad = np.full(n, -1, dtype=np.int64)
    s = np.empty(n, dtype=np.float64)
    for t in range(T):
        _track_bad(x[t, c0:c1], t, last_bad)
        o = out[t, c0:c1]
        if t < d - 1:
            o[:] = np.nan
            continue
        s[:] = 0.0
        for j in range(d):
            wj = w[j]
            xr = x[t - d + 1 + j, c0:c1]
            for k in range(n):
                s[k] += wj * xr[k]
        for k in range(n):
            o[k] = s[k] if last_bad[k] <= t - d else np.nan


@numba.njit(nogil=True, cache=True)
def _any_inf32(bits: np.ndarray) -> bool:
    """``±inf`` test on float32 bits (``bits & 0x7FFFFFFF == 0x7F800000``), in blocks: the inner
    loop is a branch-free count that vectorises, with an early exit per block."""
    n = bits.shape[0]
    for b0 in range(0, n, 4096):
        blk = bits[b0:b0 + 4096]
        cnt = np.uint32(0)
        for i in range(blk.shape[0]):
            cnt += np.uint32((blk[i] & np.uint32(0x7FFFFFFF)) == np.uint32(0x7F800000))
        if cnt:
            return True
    return False


@numba.njit(nogil=True, cache=True)
def _any_inf64(bits: np.ndarray) -> bool:
    """:func:`_any_inf32` for float64 bits."""
    n = bits.shape[0]
    for b0 in range(0, n, 4096):
        blk = bits[b0:b0 + 4096]
        cnt = np.uint64(0)
        for i in range(blk.shape[0]):
            cnt += np.uint64((blk[i] & np.uint64(0x7FFFFFFFFFFFFFFF))
                             == np.uint64(0x7FF0000000000000))
        if cnt:
            return True
    return False


def any_inf(x: np.ndarray) -> bool:
    """Whether a flat contiguous float32/float64 array holds ``±inf`` (one read, no temporary)."""
    if x.dtype == np.float32:
        return bool(_any_inf32(x.view(np.uint32)))
    return bool(_any_inf64(x.view(np.uint64)))
