"""Fused CPU pass of the daily RankIC (:func:`alphaminer.evaluation.metrics.daily_rank_ic`).

Per block of factor rows (float32, one row = one factor-day), three steps with no temporary
beyond one reused ``int32`` buffer:

1. :func:`pack_rank_keys` (numba): per row, the pair-valid count ``n`` (factor and target
   finite) and one int32 word per stock: a *coarse key* in the high bits and the stock index in
   the low ``b = bits(S - 1)`` bits. The coarse key is the float's order-preserving integer key
   minus the row's smallest, shifted right just enough to fit ``31 - b`` bits; missing entries
   get the largest code, so they sort last. Shifting is monotone, so the coarse order never
   contradicts the value order; it can only merge close values into one code.
2. numpy sorts the int32 rows in place (its SIMD sort of 32-bit words is ~4x faster here than
   the int64 ``key | stock`` sort it replaces, and it releases the GIL).
3. :func:`rank_ic_sorted_rows` (numba): Spearman of each row as Pearson of average ranks among
   the pair-valid stocks. The target's ranks come from :func:`target_ranks` (once per target):
   used as they are when the factor is finite wherever the target is; otherwise re-ranked
   within the pair-valid subset by a running count in the target's sorted order (tie groups of
   equal targets share their mean position). The factor's rank is the sorted position, except
   in runs of equal coarse codes: there the exact keys decide (equal keys are a tie group and
   share the mean position; distinct keys merged by the shift are re-sorted exactly).

Ranks are half-integers and ``n`` is far below ``2**20``, so every sum of rank products is an
exact float64 whatever the order of summation: the result does not depend on how ties are
walked, and equals the torch path's definition exactly up to its final division.
"""

from __future__ import annotations

import math

import numba
import numpy as np

_EXP = 0x7F800000  # float32 exponent bits: all set = inf or NaN
_NEG_ZERO = -2147483648  # the int32 bits of -0.0


@numba.njit(inline="always")
def _order_key(bits: np.int64) -> np.int64:
    """The order-preserving integer key of a float32 from its int32 bits (``-0.0`` → ``+0.0``):
    non-negative floats keep their bits; a negative one with magnitude bits ``m`` → ``-1 - m``."""
    if bits >= 0:
        return bits
    if bits == _NEG_ZERO:
        return np.int64(0)
    return np.int64(-2147483649) - bits


@numba.njit(inline="always")
def _finite(bits: np.int64) -> bool:
    return (bits & _EXP) != _EXP


def index_bits(S: int) -> int:
    """Low bits of a packed word that hold the stock index (``S - 1`` fits)."""
    return max(1, int(S - 1).bit_length())


@numba.njit(nogil=True, cache=True)
def target_ranks(order: np.ndarray, ys: np.ndarray, yvalid: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Average ranks of the target among its finite values, per day (computed once per target).

    Args:
        order: ``[T, S]`` int64 per-day sort of the target (stock indices, missing last).
        ys: ``[T, S]`` the sorted values (missing = +inf).
        yvalid: ``[T, S]`` bool finite, in sorted order.

    Returns ``(ranks [T, S] float64 in stock order (0 where missing), Σ rank² [T], finite count
    [T] int64, day has tied targets [T] bool)``.
    """
    T, S = order.shape
    ranks = np.zeros((T, S))
    sq = np.zeros(T)
    count = np.zeros(T, dtype=np.int64)
    ties = np.zeros(T, dtype=np.bool_)
    for t in range(T):
        yo = order[t]
        yr = ys[t]
        n = 0
        while n < S and yvalid[t, n]:
            n += 1
        count[t] = n
        p = 0
        acc = 0.0
        while p < n:
            q = p + 1
            while q < n and yr[q] == yr[p]:
                q += 1
            if q > p + 1:
                ties[t] = True
            r = (p + q + 1) * 0.5  # mean of the 1-based positions p+1..q
            for j in range(p, q):
                ranks[t, yo[j]] = r
            acc += (q - p) * r * r
            p = q
        sq[t] = acc
    return ranks, sq, count, ties


@numba.njit(nogil=True, cache=True)
def pack_rank_keys(bits: np.ndarray, day: np.ndarray, y_finite: np.ndarray, nbits: int,
                   r0: int, r1: int, min_stocks: int, packed: np.ndarray,
                   count: np.ndarray) -> None:
    """Step 1 (module docstring) for rows ``r0..r1`` of ``bits [R, S]`` (float32 viewed as
    int32): ``packed[r - r0]`` gets the coarse-key words, ``count[r]`` the pair-valid count
    (rows below ``min_stocks`` are counted but not packed)."""
    S = bits.shape[1]
    top = (1 << (31 - nbits)) - 1  # code of a missing entry; valid codes stay below it
    for r in range(r0, r1):
        xr = bits[r]
        yf = y_finite[day[r]]
        n = 0
        lo = np.int64(1) << 40
        hi = -lo
        for j in range(S):
            b = np.int64(xr[j])
            ok = yf[j] and _finite(b)
            k = _order_key(b)
            n += ok
            lo = min(lo, k) if ok else lo
            hi = max(hi, k) if ok else hi
        count[r] = n
        if n < min_stocks:
            continue
        span = hi - lo
        sh = 0
        while (span >> sh) >= top:
            sh += 1
        pr = packed[r - r0]
        for j in range(S):
            b = np.int64(xr[j])
            ok = yf[j] and _finite(b)
            code = ((_order_key(b) - lo) >> sh) if ok else np.int64(top)
            pr[j] = np.int32((code << nbits) | j)


@numba.njit(nogil=True, cache=True, error_model="numpy")
def rank_ic_sorted_rows(packed: np.ndarray, bits: np.ndarray, count: np.ndarray, day: np.ndarray,
                        nbits: int, r0: int, r1: int, y_order: np.ndarray, ys: np.ndarray,
                        y_ranks: np.ndarray, y_sq: np.ndarray, y_count: np.ndarray,
                        y_ties: np.ndarray, min_stocks: int, out: np.ndarray) -> None:
    """Step 3 (module docstring) for rows ``r0..r1``: ``packed[r - r0]`` sorted, ``bits``,
    ``count`` and ``day`` as in :func:`pack_rank_keys`; the target's sort (``y_order``, ``ys``)
    and :func:`target_ranks`; ``out[r]`` the RankIC (NaN below ``min_stocks`` or constant)."""
    S = bits.shape[1]
    mask = (1 << nbits) - 1
    ry_sub = np.zeros(S)
    tmp = np.empty(S, dtype=np.int64)
    for r in range(r0, r1):
        n = count[r]
        if n < min_stocks:
            out[r] = np.nan
            continue
        t = day[r]
        xr = bits[r]
        # target ranks among the pair-valid stocks
        if n == y_count[t]:  # the factor is finite wherever the target is
            ry = y_ranks[t]
            syy = y_sq[t]
        else:
            ry = ry_sub
            yo = y_order[t]
            ny = y_count[t]
            if not y_ties[t]:  # a running count of the pair-valid stocks in the target's order
                c = 0
                for q in range(ny):
                    s = yo[q]
                    c += _finite(np.int64(xr[s]))
                    ry[s] = c
                syy = n * (n + 1.0) * (2.0 * n + 1.0) / 6.0
            else:
                yr = ys[t]
                syy = 0.0
                m = 0
                p = 0
                while p < ny:
                    q = p
                    cnt = 0
                    while q < ny and yr[q] == yr[p]:
                        cnt += _finite(np.int64(xr[yo[q]]))
                        q += 1
                    if cnt > 0:
                        avg = m + (cnt + 1) * 0.5
                        for j in range(p, q):
                            ry[yo[j]] = avg
                        syy += cnt * avg * avg
                        m += cnt
                    p = q
        # factor ranks: sorted positions, fixed up in runs of equal coarse codes
        w = packed[r - r0]
        sxy = 0.0
        runs = 0
        prev = -1
        for p in range(n):
            v = w[p]
            code = v >> nbits
            runs += code == prev
            prev = code
            sxy += (p + 1.0) * ry[v & mask]
        if runs == 0:
            sxx = n * (n + 1.0) * (2.0 * n + 1.0) / 6.0
        else:
            sxy = 0.0
            sxx = 0.0
            p = 0
            while p < n:
                code = w[p] >> nbits
                q = p + 1
                while q < n and (w[q] >> nbits) == code:
                    q += 1
                if q == p + 1:
                    rf = p + 1.0
                    sxy += rf * ry[w[p] & mask]
                    sxx += rf * rf
                    p = q
                    continue
                k0 = _order_key(np.int64(xr[w[p] & mask]))
                same = True
                for j in range(p + 1, q):
                    if _order_key(np.int64(xr[w[j] & mask])) != k0:
                        same = False
                        break
                if same:  # one tie group
                    rf = (p + q + 1) * 0.5
                    sy = 0.0
                    for j in range(p, q):
                        sy += ry[w[j] & mask]
                    sxy += rf * sy
                    sxx += (q - p) * rf * rf
                    p = q
                    continue
                # distinct values merged by the shift: sort the run by exact key
                g = q - p
                for j in range(g):
                    s = w[p + j] & mask
                    tmp[j] = (_order_key(np.int64(xr[s])) << 32) | s
                tmp[:g].sort()
                i = 0
                while i < g:
                    k = i + 1
                    while k < g and (tmp[k] >> 32) == (tmp[i] >> 32):
                        k += 1
                    rf = p + (i + k + 1) * 0.5
                    sy = 0.0
                    for j in range(i, k):
                        sy += ry[tmp[j] & 0xFFFFFFFF]
                    sxy += rf * sy
                    sxx += (k - i) * rf * rf
                    i = k
                p = q
        mid = (n + 1) * 0.5
        nm2 = n * mid * mid
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
