"""Fused CPU kernel: z-score factors on the pool's sample cells and take their per-day sums.

What :meth:`SampleCells.standardise` + :meth:`SampleCells.sums` compute with ~15 torch passes
(``cs_zscore`` works in float64 with several temporaries), in three passes over each row and
no temporary: per row, the float64 count and mean of the valid cells (in the sample mask and
finite), then the float64 sum of squared deviations (ddof = 1), then ``z = dev / std`` rounded
to float32 (0 off the valid cells, 0 for a row with < 2 valid cells or zero spread, as
``cs_zscore`` + NaN → 0), accumulating ``Σ z``, ``Σ z²``, ``Σ z·y`` of the float32 ``z`` in
float64. The arithmetic is ``cs_zscore``'s (float64 mean, deviation, std); only the summation
order differs, so ``z`` agrees to float32 rounding. Row blocks run on threads (nogil).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

#: LLVM may reassociate float sums (so the reductions vectorise) and fuse multiply-adds; NaN and
#: inf semantics are kept (no ``nnan``/``ninf``), so the validity tests below stay exact.
_FASTMATH = {"reassoc", "contract"}


@numba.njit(nogil=True, cache=True, error_model="numpy", fastmath=_FASTMATH)
def _zscore_rows(x: np.ndarray, cand: np.ndarray, mask: np.ndarray, y0: np.ndarray, r0: int,
                 r1: int, z: np.ndarray, s: np.ndarray, dd: np.ndarray, b: np.ndarray) -> None:
    T = mask.shape[0]
    S = x.shape[1]
    for r in range(r0, r1):
        t = r % T
        xr = x[cand[r // T] * T + t]
        mr = mask[t]
        yr = y0[t]
        zr = z[r]
        n = 0
        acc = 0.0
        for j in range(S):  # branch-free: a select per cell, so the loop vectorises
            v = xr[j]
            ok = mr[j] and (v - v == 0.0)  # in the sample and finite
            n += ok
            acc += np.float64(v) if ok else 0.0
        if n < 2:
            zr[:] = 0.0
            s[r] = 0.0
            dd[r] = 0.0
            b[r] = 0.0
            continue
        mean = acc / n
        ss = 0.0
        for j in range(S):
            v = xr[j]
            ok = mr[j] and (v - v == 0.0)
            d = np.float64(v) - mean
            ss += d * d if ok else 0.0
        std = math.sqrt(ss / (n - 1))
        if not std > 0.0 or not math.isfinite(std):
            zr[:] = 0.0
            s[r] = 0.0
            dd[r] = 0.0
            b[r] = 0.0
            continue
        s1 = 0.0
        s2 = 0.0
        sy = 0.0
        for j in range(S):
            v = xr[j]
            ok = mr[j] and (v - v == 0.0)
            q = np.float32((np.float64(v) - mean) / std) if ok else np.float32(0.0)
            zr[j] = q
            qd = np.float64(q)
            s1 += qd
            s2 += qd * qd
            sy += qd * np.float64(yr[j])
        s[r] = s1
        dd[r] = s2
        b[r] = sy


_POOL: list[ThreadPoolExecutor] = []  # created on first threaded call


def zscore_with_sums(x: np.ndarray, mask: np.ndarray, y0: np.ndarray, threads: int = 1,
                     rows: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``x [C*T, S]`` float32 rows (row ``r`` is day ``r % T``), ``mask``/``y0 [T, S]`` →
    ``(z float32 [C'*T, S], Σz, Σz², Σz·y0 float64 [C'*T])`` for the candidates ``rows`` of
    ``x`` (default all ``C``; a subset is read in place instead of copied out first)."""
    T = mask.shape[0]
    cand = np.arange(x.shape[0] // T, dtype=np.int64) if rows is None else \
        np.asarray(rows, dtype=np.int64)
    R, S = cand.shape[0] * T, x.shape[1]
    z = np.empty((R, S), dtype=np.float32)
    s = np.empty(R)
    dd = np.empty(R)
    b = np.empty(R)
    threads = max(1, min(int(threads), R // 64 or 1))
    if threads == 1:
        _zscore_rows(x, cand, mask, y0, 0, R, z, s, dd, b)
        return z, s, dd, b
    if not _POOL:
        _POOL.append(ThreadPoolExecutor(max_workers=8, thread_name_prefix="zscore"))
    edges = np.linspace(0, R, threads + 1).astype(np.int64)
    futs = [_POOL[0].submit(_zscore_rows, x, cand, mask, y0, int(a), int(e), z, s, dd, b)
            for a, e in zip(edges[:-1], edges[1:])]
    for f in futs:
        f.result()
    return z, s, dd, b
