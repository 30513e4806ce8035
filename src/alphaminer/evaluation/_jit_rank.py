"""Fused CPU pass of the daily RankIC (:func:`alphaminer.evaluation.metrics.daily_rank_ic`).

After the factor rows are sorted (numpy's int64 row sort of packed ``key | stock`` words, done by
the caller), one ``O(S)`` pass per factor-day does what the torch path does with gathers,
cumulative sums, masked copies and a matrix product:

1. walk the target's sorted order of the day and give every pair-valid stock its average rank
   among the pair-valid stocks (tie groups of equal targets share the mean of their positions);
2. walk the factor's sorted order (pair-valid entries first) and give each entry its average rank
   among them (equal keys share it), accumulating ``Σ r_f r_y``, ``Σ r_f²`` and ``Σ r_y²``;
3. Pearson of the two rank vectors, whose means are both ``(n + 1) / 2``.

Same definition, same float64 sums up to rounding order. Rows are independent; the caller splits
blocks over threads (the kernel releases the GIL).
"""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(nogil=True, cache=True, error_model="numpy")
def rank_ic_rows(keys: np.ndarray, stock: np.ndarray, valid: np.ndarray, day: np.ndarray,
                 y_order: np.ndarray, y_sorted: np.ndarray, y_valid: np.ndarray,
                 min_stocks: int, out: np.ndarray) -> None:
    """Spearman of each row of a sorted factor block.

    Args:
        keys: ``[R, S]`` int32 sort keys of the factor in sorted order (pair-invalid entries carry
            the largest key and come last; equal keys = tied values).
        stock: ``[R, S]`` int32 stock index of each sorted entry.
        valid: ``[R, S]`` bool pair-validity in stock order (factor and target finite).
        day: ``[R]`` int64 row of the target arrays for each factor row.
        y_order: ``[T, S]`` int64 the target's per-day sort (stock indices, missing last).
        y_sorted: ``[T, S]`` the target's sorted values (missing = +inf).
        y_valid: ``[T, S]`` bool the target is finite, in sorted order.
        min_stocks: fewest pair-valid stocks for a day to count.
        out: ``[R]`` float64 result (NaN where undefined).
    """
    R, S = keys.shape
    ry = np.zeros(S, dtype=np.float64)
    for r in range(R):
        vr = valid[r]
        t = day[r]
        yo = y_order[t]
        ysr = y_sorted[t]
        yvr = y_valid[t]
        # 1. target ranks within the pair-valid subset, ties averaged
        n = 0
        p = 0
        while p < S and yvr[p]:
            q = p
            cnt = 0
            while q < S and yvr[q] and ysr[q] == ysr[p]:
                if vr[yo[q]]:
                    cnt += 1
                q += 1
            if cnt > 0:
                avg = n + (cnt + 1) * 0.5
                for j in range(p, q):
                    if vr[yo[j]]:
                        ry[yo[j]] = avg
                n += cnt
            p = q
        if n < min_stocks:
            out[r] = np.nan
            continue
        # 2. factor ranks (the first n sorted entries are the pair-valid ones), ties averaged
        kr = keys[r]
        sr = stock[r]
        sxy = 0.0
        sxx = 0.0
        syy = 0.0
        p = 0
        while p < n:
            q = p + 1
            while q < n and kr[q] == kr[p]:
                q += 1
            rf = (p + q + 1) * 0.5  # mean of the 1-based positions p+1..q
            for j in range(p, q):
                y = ry[sr[j]]
                sxy += rf * y
                sxx += rf * rf
                syy += y * y
            p = q
        m = (n + 1) * 0.5
        nm2 = n * m * m
        vf = sxx - nm2
        vy = syy - nm2
        if not (vf > 0.0 and vy > 0.0):
            out[r] = np.nan
            continue
        c = (sxy - nm2) / math.sqrt(vf * vy)
        out[r] = min(1.0, max(-1.0, c))


@numba.njit(nogil=True, cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def pearson_rows(x: np.ndarray, day: np.ndarray, y: np.ndarray, min_stocks: int,
                 rel_eps: float, out: np.ndarray) -> None:
    """Daily Pearson IC of each row of ``x [R, S]`` with target row ``y[day[r]]`` over the pairs
    finite on both sides (the fused CPU form of ``daily_ic``).

    Two passes per row in float64: the pair count and means, then the centred cross and square
    sums (branch-free selects; sums may be reassociated so they vectorise, NaN tests stay exact).
    A side whose spread is below ``n·(rel_eps·mean)²`` counts as constant (float32 rounding of a
    constant day), as in the torch path. NaN below ``min_stocks`` pairs.
    """
    R, S = x.shape
    for r in range(R):
        xr = x[r]
        yr = y[day[r]]
        n = 0
        sx = 0.0
        sy = 0.0
        for j in range(S):
            a = np.float64(xr[j])
            b = np.float64(yr[j])
            ok = (a - a == 0.0) and (b - b == 0.0)
            n += ok
            sx += a if ok else 0.0
            sy += b if ok else 0.0
        if n < min_stocks:
            out[r] = np.nan
            continue
        mx = sx / n
        my = sy / n
        sxy = 0.0
        sxx = 0.0
        syy = 0.0
        for j in range(S):
            a = np.float64(xr[j])
            b = np.float64(yr[j])
            ok = (a - a == 0.0) and (b - b == 0.0)
            da = a - mx if ok else 0.0
            db = b - my if ok else 0.0
            sxy += da * db
            sxx += da * da
            syy += db * db
        if not (sxx > n * (rel_eps * mx) ** 2 and syy > n * (rel_eps * my) ** 2):
            out[r] = np.nan
            continue
        c = sxy / math.sqrt(sxx * syy)
        out[r] = min(1.0, max(-1.0, c))


@numba.njit(nogil=True, cache=True)
def any_finite32(bits: np.ndarray) -> bool:
    """Whether float32 data (as uint32 bits) holds a finite value (exponent bits not all set),
    in vectorised blocks with an early exit."""
    n = bits.shape[0]
    for b0 in range(0, n, 4096):
        blk = bits[b0:b0 + 4096]
        cnt = np.uint32(0)
        for i in range(blk.shape[0]):
            cnt += np.uint32((blk[i] & np.uint32(0x7F800000)) != np.uint32(0x7F800000))
        if cnt:
            return True
    return False
