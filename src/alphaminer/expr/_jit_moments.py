"""Fused CPU kernels for the rolling moments (``Var Std Cov Corr Skew Kurt TsZScore``).

Same arithmetic as the torch kernels in :mod:`alphaminer.expr.kernels` (which remain the
implementation on other devices and under autograd), fused so that nothing but the input, the
output and one small per-block buffer touches memory:

- time is cut into blocks of ``d`` days; every window ending in block ``k`` contains the block's
  first day, whose value ``a_k`` is the anchor (non-finite entries count 0);
- a window's float64 power sums of ``x - a_k`` are a running prefix sum over block ``k`` plus a
  suffix sum over block ``k - 1`` (computed backwards, relative to ``a_k``, into the buffer), in the
  same order of additions as the torch kernels' ``cumsum`` — so float32 results are identical, and
  no long-history prefix sums are ever differenced (no catastrophic cancellation, and a window's
  value does not depend on where the panel starts);
- a window containing a non-finite value is NaN (index of the last non-finite entry), and a window
  with no day-to-day change is constant (index of the last change), both exact.

Work is split by column ranges over threads (the kernels release the GIL). Compiled by numba on
first use and cached on disk. ``error_model="numpy"``: a float division by zero gives inf/NaN
instead of raising, as in torch, and without the per-element check the loops vectorise.
"""

from __future__ import annotations

import math

import numba
import numpy as np

VAR, STD, ZSCORE, SKEW, KURT, COV, CORR = range(7)


@numba.njit(nogil=True, cache=True, error_model="numpy", inline="always")
def _finish_single(mode: int, d: int, s1: float, s2: float, s3: float, s4: float,
                   today: float, const: bool) -> float:
    """Operator value from window power sums of one series (formulas of the torch kernels)."""
    if mode == VAR:
        var = (s2 - s1 * s1 / d) / (d - 1)
        return 0.0 if const or not var > 0.0 else var
    if mode == STD:
        var = (s2 - s1 * s1 / d) / (d - 1)
        ok = var > 0.0 and not const
        return math.sqrt(var if ok else 1.0) if ok else 0.0
    if mode == ZSCORE:
        var = (s2 - s1 * s1 / d) / (d - 1)
        ok = var > 0.0 and not const
        return (today - s1 / d) / math.sqrt(var if ok else 1.0) if ok else np.nan
    n = float(d)
    inv_n = 1.0 / n
    mean = s1 * inv_n
    r2 = s2 * inv_n
    r3 = s3 * inv_n
    m2 = r2 - mean * mean
    ok = m2 > 0.0 and not const
    m2s = m2 if ok else 1.0
    if mode == SKEW:
        m3 = r3 - 3 * mean * r2 + 2 * (mean * mean * mean)
        g = math.sqrt(n * (n - 1.0)) / (n - 2.0) * m3 / (m2s * math.sqrt(m2s))
        return g if ok else np.nan
    r4 = s4 * inv_n
    mean2 = mean * mean
    m4 = r4 - 4 * mean * r3 + 6 * mean2 * r2 - 3 * (mean2 * mean2)
    k = ((n * n - 1.0) * m4 / (m2s * m2s) - 3.0 * (n - 1.0) ** 2) * (
        1.0 / ((n - 2.0) * (n - 3.0)))
    return k if ok else np.nan


@numba.njit(nogil=True, cache=True, error_model="numpy", inline="always")
def _shifted(v: float, off: float) -> float:
    return v - off if math.isfinite(v) else 0.0


@numba.njit(nogil=True, cache=True, error_model="numpy", inline="always")
def _anchor(x: np.ndarray, s: int, c0: int, c1: int, out: np.ndarray) -> None:
    """``out[j]`` = ``x[s, c0 + j]`` where finite, else 0 (the block's anchor)."""
    xs = x[s, c0:c1]
    for j in range(c1 - c0):
        v = xs[j]
        out[j] = v if math.isfinite(v) else 0.0


@numba.njit(nogil=True, cache=True, error_model="numpy", inline="always")
def _single(x: np.ndarray, d: int, mode: int, order: int, c0: int, c1: int,
            out: np.ndarray) -> None:
    """Rolling ``mode`` of columns ``c0:c1`` of ``x`` ``[T, N]`` into ``out`` (same shape).

    Inlined into one kernel per operator, so ``mode`` and ``order`` are compile-time constants
    and the per-element branches on them vanish. Per block: one backward loop fills the suffix
    sums ``r*[m]`` of the previous block (relative to this block's anchor, ``r*[d] = 0``), then one
    fused loop per day updates the prefix sums and finishes the value. State lives in 1-D arrays
    and rows are 1-D views, which keeps the loops vectorisable (2-D state or ``c0 + j`` indexing
    stopped LLVM vectorising, 2-3x slower).
    """
    T = x.shape[0]
    n = c1 - c0
    anchor = np.zeros(n)
    p1, p2, p3, p4 = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    depth3 = d + 1 if order > 2 else 1
    depth4 = d + 1 if order > 3 else 1
    r1, r2 = np.zeros((d + 1, n)), np.zeros((d + 1, n))
    r3, r4 = np.zeros((depth3, n)), np.zeros((depth4, n))
    last_bad = np.full(n, -1, dtype=np.int32)
    last_change = np.full(n, -1, dtype=np.int32)
    for s in range(0, T, d):
        _anchor(x, s, c0, c1, anchor)
        if s > 0:  # suffix sums of block k-1 relative to a_k (block 0 has no predecessor: zeros)
            for m in range(d - 1, -1, -1):
                xm = x[s - d + m, c0:c1]
                n1, o1, n2, o2 = r1[m], r1[m + 1], r2[m], r2[m + 1]
                m3 = m if order > 2 else 0
                m4 = m if order > 3 else 0
                n3, o3 = r3[m3], r3[m3 + 1 if order > 2 else 0]
                n4, o4 = r4[m4], r4[m4 + 1 if order > 3 else 0]
                for j in range(n):
                    w = _shifted(xm[j], anchor[j])
                    w2 = w * w
                    n1[j] = o1[j] + w
                    n2[j] = o2[j] + w2
                    if order > 2:
                        w3 = w2 * w
                        n3[j] = o3[j] + w3
                        if order > 3:
                            n4[j] = o4[j] + w3 * w
        p1[:] = 0.0
        p2[:] = 0.0
        p3[:] = 0.0
        p4[:] = 0.0
        for t in range(s, min(s + d, T)):
            i = t - s
            xt = x[t, c0:c1]
            xp = x[max(t - 1, 0), c0:c1]  # day 0 compares with itself: never matters
            ot = out[t, c0:c1]
            q1, q2 = r1[i + 1], r2[i + 1]
            q3 = r3[i + 1] if order > 2 else r3[0]
            q4 = r4[i + 1] if order > 3 else r4[0]
            full = t >= d - 1
            for j in range(n):
                v = xt[j]
                fin = math.isfinite(v)
                lb = last_bad[j] if fin else t
                last_bad[j] = lb
                lc = t if v != xp[j] else last_change[j]
                last_change[j] = lc
                z = v - anchor[j] if fin else 0.0
                z2 = z * z
                a1 = p1[j] + z
                a2 = p2[j] + z2
                p1[j], p2[j] = a1, a2
                s3 = 0.0
                s4 = 0.0
                if order > 2:
                    z3 = z2 * z
                    a3 = p3[j] + z3
                    p3[j] = a3
                    s3 = a3 + q3[j]
                    if order > 3:
                        a4 = p4[j] + z3 * z
                        p4[j] = a4
                        s4 = a4 + q4[j]
                const = d == 1 or lc <= t - d + 1
                r = _finish_single(mode, d, a1 + q1[j], a2 + q2[j], s3, s4, z, const)
                ok = full and lb <= t - d and math.isfinite(r)
                ot[j] = r if ok else np.nan


@numba.njit(nogil=True, cache=True, error_model="numpy")
def ts_var(x, d, c0, c1, out):  # noqa: ANN001, ANN201, D103
    _single(x, d, VAR, 2, c0, c1, out)


@numba.njit(nogil=True, cache=True, error_model="numpy")
def ts_std(x, d, c0, c1, out):  # noqa: ANN001, ANN201, D103
    _single(x, d, STD, 2, c0, c1, out)


@numba.njit(nogil=True, cache=True, error_model="numpy")
def ts_zscore(x, d, c0, c1, out):  # noqa: ANN001, ANN201, D103
    _single(x, d, ZSCORE, 2, c0, c1, out)


@numba.njit(nogil=True, cache=True, error_model="numpy")
def ts_skew(x, d, c0, c1, out):  # noqa: ANN001, ANN201, D103
    _single(x, d, SKEW, 3, c0, c1, out)


@numba.njit(nogil=True, cache=True, error_model="numpy")
def ts_kurt(x, d, c0, c1, out):  # noqa: ANN001, ANN201, D103
    _single(x, d, KURT, 4, c0, c1, out)


@numba.njit(nogil=True, cache=True, error_model="numpy", inline="always")
def _pair(x: np.ndarray, y: np.ndarray, d: int, mode: int, c0: int, c1: int,
          out: np.ndarray) -> None:
    """Rolling ``Cov``/``Corr`` of columns ``c0:c1`` of ``x`` and ``y`` into ``out``."""
    T = x.shape[0]
    n = c1 - c0
    ax, ay = np.zeros(n), np.zeros(n)
    # prefix sums of zx, zy, zx², zy², zx·zy within the block; suffix sums of the previous block
    px, py, pxx, pyy, pxy = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    rx, ry = np.zeros((d + 1, n)), np.zeros((d + 1, n))
    rxx, ryy, rxy = np.zeros((d + 1, n)), np.zeros((d + 1, n)), np.zeros((d + 1, n))
    last_bad = np.full(n, -1, dtype=np.int32)
    chg_x = np.full(n, -1, dtype=np.int32)
    chg_y = np.full(n, -1, dtype=np.int32)
    for s in range(0, T, d):
        _anchor(x, s, c0, c1, ax)
        _anchor(y, s, c0, c1, ay)
        if s > 0:
            for m in range(d - 1, -1, -1):
                xm, ym = x[s - d + m, c0:c1], y[s - d + m, c0:c1]
                for j in range(n):
                    wx = _shifted(xm[j], ax[j])
                    wy = _shifted(ym[j], ay[j])
                    rx[m, j] = rx[m + 1, j] + wx
                    ry[m, j] = ry[m + 1, j] + wy
                    rxx[m, j] = rxx[m + 1, j] + wx * wx
                    ryy[m, j] = ryy[m + 1, j] + wy * wy
                    rxy[m, j] = rxy[m + 1, j] + wx * wy
        px[:] = 0.0
        py[:] = 0.0
        pxx[:] = 0.0
        pyy[:] = 0.0
        pxy[:] = 0.0
        for t in range(s, min(s + d, T)):
            i = t - s
            xt, yt = x[t, c0:c1], y[t, c0:c1]
            tp = max(t - 1, 0)
            xp, yp = x[tp, c0:c1], y[tp, c0:c1]
            for j in range(n):
                a = xt[j]
                b = yt[j]
                fa = math.isfinite(a)
                fb = math.isfinite(b)
                last_bad[j] = last_bad[j] if (fa and fb) else t
                chg_x[j] = t if a != xp[j] else chg_x[j]
                chg_y[j] = t if b != yp[j] else chg_y[j]
                zx = a - ax[j] if fa else 0.0
                zy = b - ay[j] if fb else 0.0
                px[j] += zx
                py[j] += zy
                pxx[j] += zx * zx
                pyy[j] += zy * zy
                pxy[j] += zx * zy
            ot = out[t, c0:c1]
            if t < d - 1:
                ot[:] = np.nan
                continue
            qx, qy, qxx, qyy, qxy = rx[i + 1], ry[i + 1], rxx[i + 1], ryy[i + 1], rxy[i + 1]
            for j in range(n):
                sx = px[j] + qx[j]
                sy = py[j] + qy[j]
                sxy = pxy[j] + qxy[j]
                const = d == 1 or chg_x[j] <= t - d + 1 or chg_y[j] <= t - d + 1
                if mode == COV:
                    r = 0.0 if const else (sxy - sx * sy / d) / (d - 1)
                else:
                    vx = (pxx[j] + qxx[j]) - sx * sx / d
                    vy = (pyy[j] + qyy[j]) - sy * sy / d
                    ok = vx > 0.0 and vy > 0.0 and not const
                    r = (sxy - sx * sy / d) / math.sqrt(vx * vy if ok else 1.0)
                    r = min(1.0, max(-1.0, r)) if ok else np.nan
                ok = last_bad[j] <= t - d and math.isfinite(r)
                ot[j] = r if ok else np.nan


@numba.njit(nogil=True, cache=True, error_model="numpy")
def ts_cov(x, y, d, c0, c1, out):  # noqa: ANN001, ANN201, D103
    _pair(x, y, d, COV, c0, c1, out)


@numba.njit(nogil=True, cache=True, error_model="numpy")
def ts_corr(x, y, d, c0, c1, out):  # noqa: ANN001, ANN201, D103
    _pair(x, y, d, CORR, c0, c1, out)
