"""Fused CPU kernels for the rolling moments (``Var Std Cov Corr Skew Kurt TsZScore``).

Same arithmetic as the torch prefix-sum kernels in :mod:`alphaminer.expr.kernels` (which remain
the implementation on other devices and under autograd), fused into one pass over the data so
that nothing but the input and the output touches memory:

- each column is shifted by its first finite value (a causal offset), non-finite entries count 0;
- float64 prefix sums ``P_t`` of the shifted values and their products are kept per column, and a
  second accumulator replays the same additions ``d`` days behind, so a window sum is
  ``P_t - P_{t-d}`` with both terms bit-identical to the torch kernels' prefix sums (and no
  ``[d, N]`` history is stored);
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


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _first_finite(x: np.ndarray, c0: int, c1: int) -> np.ndarray:
    """Per column of ``x[:, c0:c1]``: its first finite value (0 if none), as float64."""
    T = x.shape[0]
    n = c1 - c0
    off = np.zeros(n)
    found = np.zeros(n, dtype=np.bool_)
    left = n
    for t in range(T):
        if left == 0:
            break
        for j in range(n):
            v = x[t, c0 + j]
            if not found[j] and math.isfinite(v):
                off[j] = v
                found[j] = True
                left -= 1
    return off


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
def _single(x: np.ndarray, d: int, mode: int, order: int, c0: int, c1: int,
            out: np.ndarray) -> None:
    """Rolling ``mode`` of columns ``c0:c1`` of ``x`` ``[T, N]`` into ``out`` (same shape).

    Inlined into one kernel per operator, so ``mode`` and ``order`` are compile-time constants
    and the per-element branches on them vanish. After the warm-up days, one fused loop per day
    updates both accumulators and finishes the value; it vectorises because the state lives in
    1-D arrays and rows are 1-D views (2-D state or ``c0 + j`` indexing stopped LLVM vectorising,
    2-3x slower). The pair kernel below keeps three loops per day, which measured faster there.
    """
    T = x.shape[0]
    n = c1 - c0
    off = _first_finite(x, c0, c1)
    # prefix sums of z, z², z³, z⁴ up to day t (p*) and up to day t - d (q*); separate 1-D
    # arrays and row views keep the loops vectorisable
    p1, p2, p3, p4 = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    q1, q2, q3, q4 = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    last_bad = np.full(n, -1, dtype=np.int32)
    last_change = np.full(n, -1, dtype=np.int32)
    for t in range(min(d - 1, T)):  # warm-up days: accumulate only
        xt = x[t, c0:c1]
        xp = x[max(t - 1, 0), c0:c1]  # day 0 compares with itself: a change there never matters
        for j in range(n):
            v = xt[j]
            fin = math.isfinite(v)
            last_bad[j] = last_bad[j] if fin else t
            last_change[j] = t if v != xp[j] else last_change[j]
            z = v - off[j] if fin else 0.0
            z2 = z * z
            p1[j] += z
            p2[j] += z2
            if order > 2:
                z3 = z2 * z
                p3[j] += z3
                if order > 3:
                    p4[j] += z3 * z
        out[t, c0:c1] = np.nan
    for t in range(d - 1, T):  # one fused, branch-free loop per day: accumulate, lag, finish
        xt = x[t, c0:c1]
        xp = x[max(t - 1, 0), c0:c1]
        xl = x[max(t - d, 0), c0:c1]
        lag = 1.0 if t >= d else 0.0  # day d-1: P_{-1} = 0, nothing leaves the window yet
        ot = out[t, c0:c1]
        for j in range(n):
            v = xt[j]
            fin = math.isfinite(v)
            lb = last_bad[j] if fin else t
            last_bad[j] = lb
            lc = t if v != xp[j] else last_change[j]
            last_change[j] = lc
            z = v - off[j] if fin else 0.0
            w = _shifted(xl[j], off[j]) * lag
            z2 = z * z
            w2 = w * w
            a1 = p1[j] + z
            a2 = p2[j] + z2
            b1 = q1[j] + w
            b2 = q2[j] + w2
            p1[j], p2[j], q1[j], q2[j] = a1, a2, b1, b2
            s3 = 0.0
            s4 = 0.0
            if order > 2:
                z3 = z2 * z
                w3 = w2 * w
                a3 = p3[j] + z3
                b3 = q3[j] + w3
                p3[j], q3[j] = a3, b3
                s3 = a3 - b3
                if order > 3:
                    a4 = p4[j] + z3 * z
                    b4 = q4[j] + w3 * w
                    p4[j], q4[j] = a4, b4
                    s4 = a4 - b4
            const = d == 1 or lc <= t - d + 1
            r = _finish_single(mode, d, a1 - b1, a2 - b2, s3, s4, z, const)
            ok = lb <= t - d and math.isfinite(r)
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
    offx = _first_finite(x, c0, c1)
    offy = _first_finite(y, c0, c1)
    # prefix sums of zx, zy, zx², zy², zx·zy up to day t (p*) and up to day t - d (q*)
    px, py, pxx, pyy, pxy = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    qx, qy, qxx, qyy, qxy = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    last_bad = np.full(n, -1, dtype=np.int32)
    chg_x = np.full(n, -1, dtype=np.int32)
    chg_y = np.full(n, -1, dtype=np.int32)
    for t in range(T):
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
            zx = a - offx[j] if fa else 0.0
            zy = b - offy[j] if fb else 0.0
            px[j] += zx
            py[j] += zy
            pxx[j] += zx * zx
            pyy[j] += zy * zy
            pxy[j] += zx * zy
        if t >= d:
            xl, yl = x[t - d, c0:c1], y[t - d, c0:c1]
            for j in range(n):
                wx = _shifted(xl[j], offx[j])
                wy = _shifted(yl[j], offy[j])
                qx[j] += wx
                qy[j] += wy
                qxx[j] += wx * wx
                qyy[j] += wy * wy
                qxy[j] += wx * wy
        ot = out[t, c0:c1]
        if t < d - 1:
            ot[:] = np.nan
            continue
        for j in range(n):
            sx = px[j] - qx[j]
            sy = py[j] - qy[j]
            sxy = pxy[j] - qxy[j]
            const = d == 1 or chg_x[j] <= t - d + 1 or chg_y[j] <= t - d + 1
            if mode == COV:
                r = 0.0 if const else (sxy - sx * sy / d) / (d - 1)
            else:
                vx = (pxx[j] - qxx[j]) - sx * sx / d
                vy = (pyy[j] - qyy[j]) - sy * sy / d
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
