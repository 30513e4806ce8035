"""Numeric kernels of the expression language (docs/operators.md).

Two families:

- cross-sectional kernels (``cs_*``) work along the LAST dim (stocks) of any ``[..., S]`` tensor,
  so a batch ``[K, T, S]`` of factors is handled in one call;
- rolling (time-series) kernels (``ts_*``) work along dim 0 (time) of ``[T, ...]`` tensors. The
  window ends today and includes it; a full window is required (else NaN); a window containing a
  NaN gives NaN.

All kernels are autograd-friendly (no in-place writes on their inputs) and return NaN where the
result would be ``±inf``.

Speed notes: sums/means/extremes reduce over no-copy ``unfold`` views; second and higher moments
use float64 block prefix + suffix sums (O(T·S) whatever the window) of the values minus a local
anchor that lies inside every window using it (:class:`_Block`), so no long-history sums are
differenced and a window's value never depends on where the panel starts, with windows holding a
NaN and constant windows detected exactly from counts; ranks and medians are
computed in time-chunks whose ``[chunk, S, w]`` copies stay below :data:`CHUNK_ELEMS` elements.
On CPU without autograd the moments run through fused numba kernels
(:mod:`alphaminer.expr._jit_moments`) doing the same float64 block-sum arithmetic in one pass
(identical float32 results, tested); the torch kernels here serve every other device and autograd.
"""

from __future__ import annotations

import functools
import math
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

#: Upper bound on the number of elements of any temporary ``[chunk, ..., w]`` copy (window
#: kernels additionally keep each chunk at most their input's size).
CHUNK_ELEMS = 1 << 22

_NAN = float("nan")


# ----------------------------------------------------------------------------- helpers
def finite_or_nan(x: torch.Tensor) -> torch.Tensor:
    """Replace ``±inf`` by NaN (every operator output goes through this).

    A CPU tensor without ``±inf`` and without autograd comes back as is (no copy: one read of the
    data instead of a mask and a new tensor, which was a quarter of a mined formula's evaluation);
    otherwise a new tensor. Callers must not write into the result in place.
    """
    if not x.is_floating_point():
        return x
    if x.device.type == "cpu" and not x.requires_grad and JIT_WINDOWS and \
            x.dtype in (torch.float32, torch.float64):
        jw = _jit_windows_module()
        if jw is not None:
            flat = x.detach().reshape(-1)
            if flat.is_contiguous() and not jw.any_inf(flat.numpy()):
                return x
    return torch.where(torch.isinf(x), _NAN, x)


def _finite_fresh(out: torch.Tensor) -> torch.Tensor:
    """:func:`finite_or_nan` for a buffer this module just allocated (in place when no grad)."""
    if out.requires_grad:
        return finite_or_nan(out)
    return out.masked_fill_(torch.isinf(out), _NAN)


def _nan_like(x: torch.Tensor) -> torch.Tensor:
    return torch.full_like(x, _NAN)


@functools.cache
def _cpu_pool() -> ThreadPoolExecutor:
    """Worker threads for kernels that split work by rows or columns (they release the GIL)."""
    return ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2),
                              thread_name_prefix="alphaminer_kernels")


# A forked child (e.g. Kedro's ParallelRunner) inherits the pool object but not its threads; work
# submitted there would never run. The child starts a fresh pool instead.
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_cpu_pool.cache_clear)


# ----------------------------------------------------------------------------- cross-section
def _sort_rows_inplace(a: np.ndarray, threads: int | None = None) -> None:
    """Sort each row of a C-contiguous int64 array in place, split over (at most two) threads.

    numpy's row sort of int64 is about 2.5x faster than ``torch.sort`` of float32 on this CPU
    (numpy runs it at scalar speed here; where numpy dispatches its SIMD sort it is faster still),
    and it releases the GIL, so two halves sort concurrently.
    """
    n = a.shape[0]
    threads = max(1, min(2, torch.get_num_threads() if threads is None else threads))
    if n < 64 or threads == 1:
        a.sort(axis=-1)
        return
    h = n // 2
    list(_cpu_pool().map(lambda sl: a[sl].sort(axis=-1), (slice(0, h), slice(h, n))))


#: Sort key of a missing entry: larger than every float32 key, so missing entries sort last.
INVALID_KEY = 0x7FFFFFFF
_INVALID_KEY_T = torch.tensor(INVALID_KEY, dtype=torch.int32)


def _order_key_f32(x: torch.Tensor) -> torch.Tensor:
    """int32 keys with the order of the float32 values (``-0.0`` folded onto ``+0.0``).

    Non-negative floats keep their bits, negative ones flip their 31 value bits
    (``bits ^ ((bits >> 31) & 0x7FFFFFFF)``), which preserves the order; NaN maps above ``+inf``.
    """
    bits = (x + 0.0).view(torch.int32)  # a copy; folds -0.0 onto +0.0
    return bits ^ ((bits >> 31) & 0x7FFFFFFF)


def finite_f32(x: torch.Tensor) -> torch.Tensor:
    """``torch.isfinite`` of a float32 tensor from its exponent bits (2 passes instead of 4)."""
    return (x.view(torch.int32) & 0x7F800000) != 0x7F800000


def sort_rows_with_payload(x: torch.Tensor, invalid: torch.Tensor, payload: torch.Tensor,
                           threads: int | None = None
                           ) -> tuple[torch.Tensor, torch.Tensor, float | int]:
    """Sort every row (last dim) of ``x`` ascending, ``invalid`` entries last, carrying ``payload``.

    ``payload`` holds non-negative integers below ``2**31``; ``invalid`` must cover NaN. Returns
    ``(keys, payload, invalid_key)``: keys in sorted order (comparable for equality and order
    only), the payload in the same order, and the key of invalid entries. On CPU float32 the int32
    key and the payload are written as the high and low words of one int64 and sorted by numpy
    (one sort instead of an argsort plus a gather), split over ``threads``
    threads (default: torch's thread count, at most 2); the results are int32 views of the
    sorted words. Elsewhere ``torch.sort`` and a gather.
    """
    if x.device.type == "cpu" and x.dtype == torch.float32:
        key = _order_key_f32(x.detach())
        if sys.byteorder == "little":
            packed = torch.empty(x.shape, dtype=torch.int64)
            words = packed.view(torch.int32)
            hi, lo = words[..., 1::2], words[..., 0::2]
            torch.where(invalid, _INVALID_KEY_T, key, out=hi)
            lo.copy_(payload)
        else:  # pragma: no cover - big-endian hosts
            key.masked_fill_(invalid, INVALID_KEY)
            packed = (key.to(torch.int64) << 32) | payload.to(torch.int64)
        _sort_rows_inplace(packed.view(-1, packed.shape[-1]).numpy(), threads)
        if sys.byteorder == "little":
            return hi, lo, INVALID_KEY
        return packed >> 32, packed & 0xFFFFFFFF, INVALID_KEY  # pragma: no cover
    vals, idx = torch.sort(x.detach().masked_fill(invalid, math.inf), dim=-1)
    return vals, torch.gather(payload, -1, idx), math.inf


def _sorted_keys_cpu(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Row-sort a float32 ``[R, S]`` block: sorted keys, column indices, NaN flags (sorted)."""
    idx = torch.arange(x.shape[1], dtype=torch.int32).expand(x.shape)
    keys, idx, _ = sort_rows_with_payload(x, torch.isnan(x), idx)
    return keys, idx.to(torch.int64), keys == INVALID_KEY


def tie_groups(keys: torch.Tensor, differ: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """First and last position of each entry's tie group in row-sorted ``keys`` ``[R, S]``.

    A position starts a group when its key differs from the previous one; the bounds come from
    a cumulative max/min of group boundaries (int32, vectorised). The average 1-based rank of a
    position is ``(start + end) / 2 + 1``. ``differ`` (``keys[:, 1:] != keys[:, :-1]``) may be
    passed when already computed.
    """
    R, S = keys.shape
    if differ is None:
        differ = keys[:, 1:] != keys[:, :-1]
    pos = torch.arange(S, device=keys.device, dtype=torch.int32).expand(R, S)
    true_col = torch.ones(R, 1, dtype=torch.bool, device=keys.device)
    is_start = torch.cat([true_col, differ], dim=1)
    is_end = torch.cat([differ, true_col], dim=1)
    zero = torch.zeros((), dtype=torch.int32, device=keys.device)
    last = torch.full((), S - 1, dtype=torch.int32, device=keys.device)
    start = torch.cummax(torch.where(is_start, pos, zero), dim=1).values
    end = torch.cummin(torch.where(is_end, pos, last).flip(1), dim=1).values.flip(1)
    return start, end


def _cs_rank_rows(x: torch.Tensor) -> torch.Tensor:
    """Average ranks / valid count for a 2-D ``[R, S]`` block (see :func:`cs_rank`)."""
    R, S = x.shape
    if x.device.type == "cpu" and x.dtype == torch.float32:
        keys, idx, nan_sorted = _sorted_keys_cpu(x)
    else:
        keys, idx = torch.sort(x + 0.0, dim=-1)  # NaN sorts last; -0.0 folded onto +0.0
        nan_sorted = torch.isnan(keys)
    dt = x.dtype
    n_valid = (~nan_sorted).sum(dim=-1, keepdim=True).to(dt)
    differ = keys[:, 1:] != keys[:, :-1]
    if bool(differ.all()):
        rank = torch.arange(1, S + 1, device=x.device, dtype=dt).expand(R, S)
    else:
        start, end = tie_groups(keys, differ)
        rank = (start + end).to(dt) * 0.5 + 1.0
    pct = torch.where(nan_sorted, _NAN, rank / n_valid)
    return torch.empty_like(pct).scatter(1, idx, pct)


def cs_rank(x: torch.Tensor, chunk_elems: int = CHUNK_ELEMS) -> torch.Tensor:
    """Average rank (ties → mean rank) along the last dim, divided by the valid count.

    Values lie in ``(0, 1]``; NaN stays NaN. Equivalent to pandas
    ``rank(method="average", pct=True)`` per row. One sort per row, ties resolved with
    vectorised cumulative max/min of tie-group boundaries, rows processed in chunks.
    """
    if x.ndim == 0:
        raise ValueError("cs_rank needs at least one dimension (the cross-section)")
    shape = x.shape
    S = shape[-1]
    if S == 0 or x.numel() == 0:
        return x.clone()
    rows = x.detach().reshape(-1, S)
    if not rows.is_floating_point():
        rows = rows.to(torch.float32)
    out_dtype = rows.dtype
    # a chunk is at most an eighth of the input: its ~40 bytes/element of temporaries stay
    # ~1.5x the input
    step = max(1, min(chunk_elems, max(S, rows.numel() // 8)) // S)
    if rows.shape[0] <= step:
        return _cs_rank_rows(rows).reshape(shape)
    out = torch.empty(rows.shape, dtype=out_dtype, device=x.device)
    for i in range(0, rows.shape[0], step):
        out[i:i + step] = _cs_rank_rows(rows[i:i + step])
    return out.reshape(shape)


def _cs_zscore_rows(x: torch.Tensor) -> torch.Tensor:
    x64 = x.to(torch.float64)  # float32 sums lose ~1e-5 on z-scores of price-level data
    valid = ~torch.isnan(x64)
    n = valid.sum(dim=-1, keepdim=True).to(torch.float64)
    zero = torch.zeros_like(x64)
    mean = torch.where(valid, x64, zero).sum(dim=-1, keepdim=True) / n
    dev = torch.where(valid, x64 - mean, zero)
    std = torch.sqrt((dev * dev).sum(dim=-1, keepdim=True) / (n - 1))
    bad = (n < 2) | ~(std > 0)
    z = dev / torch.where(bad, torch.ones_like(std), std)
    return finite_or_nan(torch.where(bad | ~valid, _NAN, z).to(x.dtype))


def cs_zscore(x: torch.Tensor, chunk_elems: int = CHUNK_ELEMS) -> torch.Tensor:
    """``(x - mean) / std`` along the last dim over non-NaN entries, ``std`` with ddof=1.

    Fewer than two valid entries or a zero standard deviation give NaN. Accumulates in float64
    over row chunks (bounded memory); differentiable.
    """
    if x.ndim == 0:
        raise ValueError("cs_zscore needs at least one dimension (the cross-section)")
    if not x.is_floating_point():
        x = x.to(torch.float32)
    S = x.shape[-1]
    rows = x.reshape(-1, S)
    # eighth-size row chunks: each chunk makes several float64 temporaries
    step = max(1, min(chunk_elems, max(S, rows.numel() // 8)) // max(1, S))
    if rows.shape[0] <= step:
        return _cs_zscore_rows(rows).reshape(x.shape)
    if x.requires_grad:  # keep the autograd graph simple: concatenate the chunk results
        parts = [_cs_zscore_rows(rows[i:i + step]) for i in range(0, rows.shape[0], step)]
        return torch.cat(parts, dim=0).reshape(x.shape)
    out = torch.empty_like(rows)
    for i in range(0, rows.shape[0], step):
        out[i:i + step] = _cs_zscore_rows(rows[i:i + step])
    return out.reshape(x.shape)


# ----------------------------------------------------------------------------- elementwise
def safe_div(a: torch.Tensor | float, b: torch.Tensor | float) -> torch.Tensor:
    """``a / b`` with NaN where ``b == 0`` or the result is not finite."""
    if not _needs_grad(a, b):
        # without autograd the plain quotient is already right once ±inf → NaN: x/0 is ±inf or
        # NaN (0/0), x/NaN is NaN (the masked form below only keeps NaN gradients away)
        if isinstance(b, torch.Tensor):
            if not isinstance(a, torch.Tensor):  # scalar / tensor is a reciprocal times the
                a = torch.full_like(b, float(a))  # scalar (two roundings): divide for real
            return finite_or_nan(a / b)
        if float(b) == 0.0:
            return _all_nan(a)
        return finite_or_nan(a / float(b))
    a_t, b_t = _as_tensors(a, b)
    bad = (b_t == 0) | torch.isnan(b_t)
    # divide by a safe denominator so masked entries carry no NaN gradient
    out = a_t / torch.where(bad, torch.ones_like(b_t), b_t)
    return finite_or_nan(torch.where(bad, _NAN, out))


def safe_log(x: torch.Tensor) -> torch.Tensor:
    """Natural log with NaN for ``x <= 0``."""
    if not x.requires_grad:  # log(0) = -inf, log(<0) = NaN, log(inf) = inf: all → NaN below
        if x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64):
            # numpy's vectorised log is ~6x faster than this torch CPU build's
            with np.errstate(all="ignore"):
                return finite_or_nan(torch.from_numpy(np.log(x.numpy())))
        return finite_or_nan(torch.log(x))
    ok = x > 0
    out = torch.log(torch.where(ok, x, torch.ones_like(x)))
    return finite_or_nan(torch.where(ok, out, _NAN))


def _needs_grad(a: torch.Tensor | float, b: torch.Tensor | float) -> bool:
    return any(isinstance(v, torch.Tensor) and v.requires_grad for v in (a, b))


def scalar_or_tensors(a: torch.Tensor | float, b: torch.Tensor | float
                      ) -> tuple[torch.Tensor | float, torch.Tensor | float]:
    """Operands for a broadcasting torch op: a python scalar stays a scalar (no ``full_like``
    copy), a tensor stays a tensor (at least one must be a tensor)."""
    if not isinstance(a, torch.Tensor) and not isinstance(b, torch.Tensor):
        raise TypeError("at least one operand must be a tensor")
    return (a if isinstance(a, torch.Tensor) else float(a),
            b if isinstance(b, torch.Tensor) else float(b))


def _as_tensors(a: torch.Tensor | float, b: torch.Tensor | float
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Promote python scalars against the tensor operand (at least one must be a tensor)."""
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a, b
    if isinstance(a, torch.Tensor):
        return a, torch.full_like(a, float(b))
    if isinstance(b, torch.Tensor):
        return torch.full_like(b, float(a)), b
    raise TypeError("at least one operand must be a tensor")


def sign(x: torch.Tensor) -> torch.Tensor:
    """-1, 0 or 1; NaN stays NaN (``torch.sign`` maps NaN to 0)."""
    return torch.where(torch.isnan(x), x, torch.sign(x))


def greater(a: torch.Tensor | float, b: torch.Tensor | float) -> torch.Tensor:
    """Elementwise maximum (NaN propagates)."""
    if isinstance(a, torch.Tensor) != isinstance(b, torch.Tensor):  # clamp propagates NaN too
        t, c = (a, b) if isinstance(a, torch.Tensor) else (b, a)
        return torch.clamp(t, min=float(c))
    a_t, b_t = _as_tensors(a, b)
    return torch.maximum(a_t, b_t)


def less(a: torch.Tensor | float, b: torch.Tensor | float) -> torch.Tensor:
    """Elementwise minimum (NaN propagates)."""
    if isinstance(a, torch.Tensor) != isinstance(b, torch.Tensor):
        t, c = (a, b) if isinstance(a, torch.Tensor) else (b, a)
        return torch.clamp(t, max=float(c))
    a_t, b_t = _as_tensors(a, b)
    return torch.minimum(a_t, b_t)


# ----------------------------------------------------------------------------- time-series helpers
def _check_window(d: int, minimum: int = 1) -> int:
    if int(d) != d or d < minimum:
        raise ValueError(f"window must be an integer >= {minimum}, got {d!r}")
    return int(d)


def _pad_front(y: torch.Tensor, T: int) -> torch.Tensor:
    """Prepend NaN rows so ``y`` (the outputs for days ``T-len(y) .. T-1``) has length ``T``."""
    missing = T - y.shape[0]
    if missing <= 0:
        return y
    pad = torch.full((missing, *y.shape[1:]), _NAN, dtype=y.dtype, device=y.device)
    return torch.cat([pad, y], dim=0)


def _all_nan(x: torch.Tensor) -> torch.Tensor:
    return torch.full_like(x, _NAN)


def _window_has_nan(x: torch.Tensor, d: int) -> torch.Tensor:
    """``[T, ...]`` bool: the window ending at each day contains a NaN (or is incomplete)."""
    T = x.shape[0]
    bad = (~torch.isfinite(x)).to(torch.int32).cumsum(0)
    if d > T:
        return torch.ones_like(bad, dtype=torch.bool)
    cnt = bad[d - 1:] - torch.cat([torch.zeros_like(bad[:1]), bad[:-d]], dim=0)
    head = torch.ones((d - 1, *x.shape[1:]), dtype=torch.bool, device=x.device)
    return torch.cat([head, cnt > 0], dim=0)


def _windows(x: torch.Tensor, d: int) -> torch.Tensor:
    """No-copy ``[T-d+1, ..., d]`` view of the trailing windows (index d-1 is today)."""
    return x.unfold(0, d, 1)


def _chunked_windows(x: torch.Tensor, d: int, fn, out_dtype: torch.dtype | None = None
                     ) -> torch.Tensor:
    """Apply ``fn(window_chunk) -> [c, ...]`` over time-chunks of the window view.

    Each chunk's copies are at most a quarter of the input's size (and :data:`CHUNK_ELEMS`),
    which bounds memory for kernels that must materialise windows (median, rank, argmax, mad):
    a kernel making a few temporaries per chunk stays within a small multiple of its input;
    results are written straight into the (NaN-headed) output.
    """
    T = x.shape[0]
    out = torch.full(x.shape, _NAN, dtype=out_dtype or x.dtype, device=x.device)
    if d > T:
        return out
    u = _windows(x, d)
    per_day = max(1, u[0].numel())
    budget = min(CHUNK_ELEMS, max(x.numel() // 4, per_day))
    step = max(1, budget // per_day)
    for i in range(0, u.shape[0], step):
        out[d - 1 + i:d - 1 + i + step] = fn(u[i:i + step])
    return out


# ----------------------------------------------------------------------------- time-series kernels
def ts_ref(x: torch.Tensor, d: int) -> torch.Tensor:
    """Value ``d`` days ago (``d < 0`` looks ahead: labels only). NaN where out of range."""
    d = int(d)
    T = x.shape[0]
    if d == 0:
        return x
    if abs(d) >= T:
        return _all_nan(x)
    pad = torch.full((abs(d), *x.shape[1:]), _NAN, dtype=x.dtype, device=x.device)
    if d > 0:
        return torch.cat([pad, x[:-d]], dim=0)
    return torch.cat([x[-d:], pad], dim=0)


def ts_delta(x: torch.Tensor, d: int) -> torch.Tensor:
    """``x - Ref(x, d)``."""
    return finite_or_nan(x - ts_ref(x, _check_window(d)))


def ts_return(x: torch.Tensor, d: int) -> torch.Tensor:
    """``x / Ref(x, d) - 1`` (NaN where the reference is 0)."""
    d = _check_window(d)
    if x.requires_grad or not x.is_floating_point():
        return finite_or_nan(safe_div(x, ts_ref(x, d)) - 1.0)
    # in place into the result: a zero reference gives ±inf or NaN, both masked to NaN
    out = torch.full_like(x, _NAN)
    if d < x.shape[0]:
        body = out[d:]
        torch.div(x[d:], x[:-d], out=body)
        body.sub_(1.0)
        body.masked_fill_(~torch.isfinite(body), _NAN)
    return out


def _view_reduce(x: torch.Tensor, d: int, reduce: str, scale: float | None = None
                 ) -> torch.Tensor:
    """Reduce the no-copy window view straight into a NaN-headed output.

    Without autograd the reduction writes into the output buffer (``out=``), so the only
    allocation is the result itself.
    """
    d = _check_window(d)
    T = x.shape[0]
    out = torch.full(x.shape, _NAN, dtype=x.dtype, device=x.device)
    if d > T:
        return out
    u = _windows(x, d)
    fn = {"sum": torch.sum, "amax": torch.amax, "amin": torch.amin}[reduce]
    if torch.is_grad_enabled() and x.requires_grad:
        y = fn(u, -1)
        if scale is not None:
            y = y * scale
        out[d - 1:] = y
        return _finite_fresh(out)
    body = out[d - 1:]
    fn(u, -1, out=body)
    if scale is not None:
        body.mul_(scale)
    if reduce == "sum":  # overflow is the only way to get ±inf from finite inputs
        body.masked_fill_(torch.isinf(body), _NAN)
    return out


def ts_sum(x: torch.Tensor, d: int) -> torch.Tensor:
    """Rolling sum over a no-copy window view (NaN in the window → NaN)."""
    return _view_reduce(x, d, "sum")


def ts_mean(x: torch.Tensor, d: int) -> torch.Tensor:
    """Rolling mean."""
    return _view_reduce(x, d, "sum", 1.0 / _check_window(d))


def ts_max(x: torch.Tensor, d: int) -> torch.Tensor:
    """Rolling maximum (NaN in the window → NaN)."""
    return _view_reduce(x, d, "amax")


def ts_min(x: torch.Tensor, d: int) -> torch.Tensor:
    """Rolling minimum (NaN in the window → NaN)."""
    return _view_reduce(x, d, "amin")


#: Elements of one float64 ``[T, block]`` temporary in the prefix-sum kernels (1 MiB): small
#: enough to stay in cache-friendly sizes and to bound peak memory to a few times the input.
MOMENT_BLOCK_ELEMS = 1 << 17


def _col_blocks(n_cols: int, T: int, block_elems: int = MOMENT_BLOCK_ELEMS) -> list[slice]:
    """Column blocks so the float64 ``[T, block]`` temporaries stay a few MiB each."""
    width = max(1, min(n_cols, block_elems // max(1, T)))
    return [slice(i, i + width) for i in range(0, n_cols, width)]


def _window_diff(cs: torch.Tensor, d: int) -> torch.Tensor:
    """Window sums from prefix sums ``cs`` of a series padded with one leading zero row."""
    return cs[d:] - cs[:-d]


class _Block:
    """Window power sums of one column block of a moment kernel, without catastrophic cancellation.

    Time is cut into blocks of ``d`` days. Every window ending in block ``k`` contains the block's
    first day, so its value ``a_k`` (0 when not finite: those windows are NaN anyway) is a *local*
    anchor inside the window. A window's sums of powers of ``x - a_k`` are a prefix sum over block
    ``k`` plus a suffix sum over block ``k - 1`` (both relative to ``a_k``): no long-history prefix
    sums are differenced, so a window's moments depend only on the values inside it (up to
    rounding of ``(range / spread)^order``, bounded by the window length), never on where the panel
    starts or on earlier levels. Non-finite entries contribute 0; one int32 prefix sum of
    ``2**16 * is_nan + changed_since_yesterday`` (exact integers) yields both the windows that
    contain a NaN (:attr:`bad`) and the windows whose values are all identical (:meth:`constant`).
    All results cover the days ``d - 1 .. T - 1``.
    """

    def __init__(self, cols: list[torch.Tensor], d: int) -> None:
        self.d = d
        T = cols[0].shape[0]
        self.T = T
        nb = -(-T // d)
        pad = nb * d - T
        self.z: list[torch.Tensor] = []      # [nb, d, n]: x - a_k within block k
        self.zprev: list[torch.Tensor] = []  # [nb, d, n]: block k-1's x - a_k (block 0: zeros)
        self._codes: list[torch.Tensor] = []
        bad = None
        for c in cols:
            x = torch.nn.functional.pad(c.to(torch.float64), (0, 0, 0, pad), value=_NAN)
            xb = x.reshape(nb, d, -1)
            anchor = torch.nan_to_num(xb[:, :1].detach(), nan=0.0, posinf=0.0, neginf=0.0)
            fin = torch.isfinite(xb)
            zero = torch.zeros((), dtype=torch.float64, device=c.device)
            self.z.append(torch.where(fin, xb - anchor, zero))
            prev = torch.cat([torch.zeros_like(xb[:1]), xb[:-1]], dim=0)
            self.zprev.append(torch.where(torch.isfinite(prev), prev - anchor, zero))
            cpad = torch.nn.functional.pad(c, (0, 0, 1, 0), value=_NAN)
            cd = cpad.detach()
            code = (~torch.isfinite(cd)).to(torch.int32) * 65536
            code[1:] += (cd[1:] != cd[:-1]).to(torch.int32)
            codes = code.cumsum(0)
            self._codes.append(codes)
            nb_ = _window_diff(codes, d) >= 65536
            bad = nb_ if bad is None else bad | nb_
        self.bad = bad

    def _days(self, blocked: torch.Tensor) -> torch.Tensor:
        """``[nb, d, n]`` → the rows of days ``d - 1 .. T - 1``."""
        return blocked.reshape(-1, blocked.shape[-1])[self.d - 1:self.T]

    def sums(self, *products: tuple[int, ...]) -> list[torch.Tensor]:
        """Window sums of products of anchored columns, e.g. ``(0, 0)`` = Σz², ``(0, 1)`` = Σzw."""
        out = []
        for prod in products:
            cur = self.z[prod[0]]
            prev = self.zprev[prod[0]]
            for j in prod[1:]:
                cur = cur * self.z[j]
                prev = prev * self.zprev[j]
            head = cur.cumsum(1)  # days s_k .. t of block k
            tail = prev.flip(1).cumsum(1).flip(1)  # days m .. end of block k-1
            # the window ending at position i of block k takes block k-1 from position i+1 on
            tail = torch.cat([tail[:, 1:], torch.zeros_like(tail[:, :1])], dim=1)
            out.append(self._days(head + tail))
        return out

    def today(self, i: int = 0) -> torch.Tensor:
        return self._days(self.z[i])

    def constant(self, i: int) -> torch.Tensor:
        """Windows with no day-to-day change (only meaningful where not :attr:`bad`)."""
        codes = self._codes[i]
        if self.d == 1:
            return torch.ones_like(codes[1:], dtype=torch.bool)
        # changes on days t-d+2..t (the first day of the window has nothing to compare to)
        return (_window_diff(codes, self.d - 1)[1:] & 0xFFFF) == 0


#: Use the fused numba kernels (:mod:`alphaminer.expr._jit_moments`) for rolling moments of CPU
#: tensors that need no gradient. Tests switch it off to check them against the torch kernels.
JIT_MOMENTS = True


def _run_by_columns(kernel, arrs: list[np.ndarray], extra: tuple, out: np.ndarray) -> None:  # noqa: ANN001
    """``kernel(*arrs, *extra, c0, c1, out)`` over column ranges, one per torch thread."""
    N = arrs[0].shape[1]
    parts = max(1, min(torch.get_num_threads(), N // 64 or 1))
    bounds = [N * i // parts for i in range(parts + 1)]

    def run(i: int) -> None:
        kernel(*arrs, *extra, bounds[i], bounds[i + 1], out)

    if parts == 1:
        run(0)
    else:
        list(_cpu_pool().map(run, range(parts)))


@functools.cache
def _jit(name: str):  # noqa: ANN202
    """The compiled-kernel module ``alphaminer.expr.<name>``, or None without numba."""
    import importlib

    try:
        return importlib.import_module(f"alphaminer.expr.{name}")
    except ImportError:  # pragma: no cover - numba is a pinned dependency
        return None


def _jit_module():  # noqa: ANN202
    return _jit("_jit_moments")


def _jit_moments(xs: tuple[torch.Tensor, ...], d: int, op: str) -> torch.Tensor | None:
    """Run a rolling moment through the fused CPU kernel; None when it does not apply."""
    if not JIT_MOMENTS or any(x.device.type != "cpu" or x.requires_grad for x in xs):
        return None
    if xs[0].dtype not in (torch.float32, torch.float64) or \
            any(x.dtype != xs[0].dtype for x in xs):
        return None
    jm = _jit_module()
    if jm is None:
        return None
    kernel = getattr(jm, f"ts_{op}")
    T = xs[0].shape[0]
    arrs = [x.detach().reshape(T, -1).contiguous().numpy() for x in xs]
    out = np.empty((T, arrs[0].shape[1]), dtype=arrs[0].dtype)
    _run_by_columns(kernel, arrs, (d,), out)
    return torch.from_numpy(out).reshape(xs[0].shape)


#: Use the fused numba kernels (:mod:`alphaminer.expr._jit_windows`) for ``Med Mad WMA EMA`` and
#: the no-copy ``finite_or_nan`` on CPU tensors without autograd (tests switch it off to compare).
JIT_WINDOWS = True


def _jit_windows_module():  # noqa: ANN202
    return _jit("_jit_windows")


def _jit_window(x: torch.Tensor, op: str, *extra: object) -> torch.Tensor | None:
    """Run ``Med``/``Mad``/weighted means through the fused CPU kernel; None when it does not
    apply (another device, autograd, an integer dtype, or the switch is off)."""
    if not JIT_WINDOWS or x.device.type != "cpu" or x.requires_grad or \
            x.dtype not in (torch.float32, torch.float64):
        return None
    jw = _jit_windows_module()
    if jw is None:
        return None
    T = x.shape[0]
    a = x.detach().reshape(T, -1).contiguous().numpy()
    out = np.empty_like(a)
    extra = tuple(np.ascontiguousarray(e, dtype=np.float64) if isinstance(e, torch.Tensor)
                  else e for e in extra)
    _run_by_columns(getattr(jw, f"ts_{op}"), [a], extra, out)
    return torch.from_numpy(out).reshape(x.shape)


def _moment_kernel(xs: tuple[torch.Tensor, ...], d: int, min_window: int, finish,
                   block_elems: int = MOMENT_BLOCK_ELEMS, op: str | None = None) -> torch.Tensor:
    """Shared driver: flatten to ``[T, N]``, run ``finish(_Block)`` per column block, mask, pad.

    ``op`` names the fused CPU kernel computing the same thing (used when it applies).
    """
    d = _check_window(d)
    x0 = xs[0]
    T = x0.shape[0]
    if d > T or d < min_window:
        return _all_nan(x0)
    if op is not None:
        fused = _jit_moments(xs, d, op)
        if fused is not None:
            return fused
    shape = x0.shape
    flat = [x.reshape(T, -1) for x in xs]
    N = flat[0].shape[1]
    out = torch.full((T, N), _NAN, dtype=x0.dtype, device=x0.device)
    for sl in _col_blocks(N, T, block_elems):
        blk = _Block([f[:, sl] for f in flat], d)
        y = finish(blk)
        out[d - 1:, sl] = torch.where(blk.bad, _NAN, y)
    return _finite_fresh(out).reshape(shape)


def ts_var(x: torch.Tensor, d: int) -> torch.Tensor:
    """Rolling variance, ddof=1 (exactly 0 on constant windows)."""

    def finish(b: _Block) -> torch.Tensor:
        s1, s2 = b.sums((0,), (0, 0))
        var = ((s2 - s1 * s1 / b.d) / (b.d - 1)).clamp_min(0.0)
        return torch.where(b.constant(0), torch.zeros_like(var), var)

    return _moment_kernel((x,), d, 2, finish, op="var")


def ts_std(x: torch.Tensor, d: int) -> torch.Tensor:
    """Rolling standard deviation, ddof=1."""

    def finish(b: _Block) -> torch.Tensor:
        s1, s2 = b.sums((0,), (0, 0))
        var = (s2 - s1 * s1 / b.d) / (b.d - 1)
        pos = (var > 0) & ~b.constant(0)
        # sqrt of a safe value so constant windows carry no infinite gradient
        std = torch.sqrt(torch.where(pos, var, torch.ones_like(var)))
        return torch.where(pos, std, torch.zeros_like(std))

    return _moment_kernel((x,), d, 2, finish, op="std")


def ts_cov(x: torch.Tensor, y: torch.Tensor, d: int) -> torch.Tensor:
    """Rolling covariance, ddof=1."""

    def finish(b: _Block) -> torch.Tensor:
        sx, sy, sxy = b.sums((0,), (1,), (0, 1))
        cov = (sxy - sx * sy / b.d) / (b.d - 1)
        return torch.where(b.constant(0) | b.constant(1), torch.zeros_like(cov), cov)

    return _moment_kernel((x, y), d, 2, finish, op="cov")


def ts_corr(x: torch.Tensor, y: torch.Tensor, d: int) -> torch.Tensor:
    """Rolling Pearson correlation; NaN where either side is constant over the window."""

    def finish(b: _Block) -> torch.Tensor:
        sx, sy, sxx, syy, sxy = b.sums((0,), (1,), (0, 0), (1, 1), (0, 1))
        vx = sxx - sx * sx / b.d
        vy = syy - sy * sy / b.d
        cxy = sxy - sx * sy / b.d
        ok = (vx > 0) & (vy > 0) & ~(b.constant(0) | b.constant(1))
        den = torch.sqrt(torch.where(ok, vx * vy, torch.ones_like(vx)))
        r = (cxy / den).clamp(-1.0, 1.0)
        return torch.where(ok, r, _NAN)

    return _moment_kernel((x, y), d, 2, finish, op="corr")


def _central_moments(b: _Block, order: int) -> tuple[torch.Tensor, ...]:
    sums = b.sums(*[(0,) * k for k in range(1, order + 1)])
    inv_n = 1.0 / b.d  # multiply, not divide: the fused CPU kernels do the same arithmetic
    raw = [s * inv_n for s in sums]
    mean = raw[0]
    m2 = raw[1] - mean * mean
    m3 = raw[2] - 3 * mean * raw[1] + 2 * (mean * mean * mean)
    if order == 3:
        return m2, m3
    mean2 = mean * mean
    m4 = raw[3] - 4 * mean * raw[2] + 6 * mean2 * raw[1] - 3 * (mean2 * mean2)
    return m2, m3, m4


def ts_skew(x: torch.Tensor, d: int) -> torch.Tensor:
    """Rolling bias-corrected sample skewness (as pandas ``rolling.skew``); needs d >= 3."""

    def finish(b: _Block) -> torch.Tensor:
        m2, m3 = _central_moments(b, 3)
        ok = (m2 > 0) & ~b.constant(0)
        m2s = torch.where(ok, m2, torch.ones_like(m2))
        n = float(b.d)
        g = math.sqrt(n * (n - 1.0)) / (n - 2.0) * m3 / (m2s * torch.sqrt(m2s))
        return torch.where(ok, g, _NAN)

    return _moment_kernel((x,), d, 3, finish, MOMENT_BLOCK_ELEMS // 2, op="skew")


def ts_kurt(x: torch.Tensor, d: int) -> torch.Tensor:
    """Rolling bias-corrected excess kurtosis (as pandas ``rolling.kurt``); needs d >= 4."""

    def finish(b: _Block) -> torch.Tensor:
        m2, _, m4 = _central_moments(b, 4)
        ok = (m2 > 0) & ~b.constant(0)
        m2s = torch.where(ok, m2, torch.ones_like(m2))
        n = float(b.d)
        k = ((n * n - 1.0) * m4 / (m2s * m2s) - 3.0 * (n - 1.0) ** 2) * (
            1.0 / ((n - 2.0) * (n - 3.0)))
        return torch.where(ok, k, _NAN)

    return _moment_kernel((x,), d, 4, finish, MOMENT_BLOCK_ELEMS // 2, op="kurt")  # 4 power sums


def ts_zscore(x: torch.Tensor, d: int) -> torch.Tensor:
    """``(x - Mean(x, d)) / Std(x, d)``; NaN where the window is constant."""

    def finish(b: _Block) -> torch.Tensor:
        s1, s2 = b.sums((0,), (0, 0))
        var = (s2 - s1 * s1 / b.d) / (b.d - 1)
        ok = (var > 0) & ~b.constant(0)
        std = torch.sqrt(torch.where(ok, var, torch.ones_like(var)))
        z = (b.today() - s1 / b.d) / std
        return torch.where(ok, z, _NAN)

    return _moment_kernel((x,), d, 2, finish, op="zscore")


def _weighted(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Rolling weighted sum; ``weights[j]`` applies to window position j (d-1 = today).

    ``conv1d`` over time (a direct O(T·S·d) filter, faster than window copies) in column
    blocks (bounded memory); NaNs are zeroed for the convolution and the windows that
    contained one are set to NaN.
    """
    d = weights.numel()
    T = x.shape[0]
    if d > T:
        return _all_nan(x)
    fused = _jit_window(x, "weighted", weights.to(torch.float64).numpy())
    if fused is not None:
        return _finite_fresh(fused)
    flat = x.reshape(T, -1)
    w = weights.to(dtype=x.dtype, device=x.device).view(1, 1, d)
    out = torch.full(flat.shape, _NAN, dtype=x.dtype, device=x.device)
    for sl in _col_blocks(flat.shape[1], T):
        blk = flat[:, sl]
        bad = _window_has_nan(blk, d)[d - 1:]
        clean = torch.nan_to_num(blk, nan=0.0, posinf=0.0, neginf=0.0)
        y = torch.nn.functional.conv1d(clean.t().unsqueeze(1), w).squeeze(1).t()
        out[d - 1:, sl] = torch.where(bad, _NAN, y)
    return _finite_fresh(out).reshape(x.shape)


def ts_wma(x: torch.Tensor, d: int) -> torch.Tensor:
    """Linearly weighted mean, weights 1..d (today has weight d), normalised."""
    d = _check_window(d)
    w = torch.arange(1, d + 1, dtype=torch.float64)
    return _weighted(x, w / w.sum())


def ts_ema(x: torch.Tensor, d: int) -> torch.Tensor:
    """Finite-window exponential mean: alpha = 2/(d+1), weight (1-alpha)^k for age k, normalised."""
    d = _check_window(d)
    alpha = 2.0 / (d + 1.0)
    age = torch.arange(d - 1, -1, -1, dtype=torch.float64)
    w = (1.0 - alpha) ** age
    return _weighted(x, w / w.sum())


def ts_mad(x: torch.Tensor, d: int) -> torch.Tensor:
    """Mean absolute deviation from the window mean."""
    d = _check_window(d)
    if d <= x.shape[0]:
        fused = _jit_window(x, "mad", d)
        if fused is not None:
            return _finite_fresh(fused)

    def fn(u: torch.Tensor) -> torch.Tensor:
        # the mean is accumulated in float64: a float32 sum of large values is off by a few
        # ulps of the sum, which shows up in the (much smaller) deviations
        m = (u.sum(-1, keepdim=True, dtype=torch.float64) / d).to(u.dtype)
        return (u - m).abs().mean(-1)

    return finite_or_nan(_chunked_windows(x, d, fn))


def ts_med(x: torch.Tensor, d: int) -> torch.Tensor:
    """True rolling median (mean of the two middle values for even windows)."""
    d = _check_window(d)
    lo, hi = (d - 1) // 2, d // 2
    if d <= x.shape[0]:
        fused = _jit_window(x, "med", d)
        if fused is not None:
            return fused

    use_numpy = x.device.type == "cpu" and not x.requires_grad and x.dtype in (
        torch.float32, torch.float64)

    def fn(u: torch.Tensor) -> torch.Tensor:
        # NaN sorts last in both sorts → the max slot is NaN iff the window has a NaN.
        # numpy's SIMD sort of short rows is ~10x faster than torch.sort on CPU.
        if use_numpy:
            v = torch.from_numpy(np.sort(u.contiguous().numpy(), axis=-1))
        else:
            v = torch.sort(u, dim=-1).values
        med = (v[..., lo] + v[..., hi]) * 0.5
        return torch.where(torch.isnan(v[..., -1]), _NAN, med)

    return _chunked_windows(x, d, fn)


def ts_rank(x: torch.Tensor, d: int) -> torch.Tensor:
    """Today's average rank within its window, divided by d (in ``(0, 1]``)."""
    d = _check_window(d)

    def fn(u: torch.Tensor) -> torch.Tensor:
        today = u[..., -1:]
        less_n = (u < today).sum(-1)
        eq_n = (u == today).sum(-1)
        r = (less_n.to(x.dtype) + (eq_n.to(x.dtype) + 1.0) * 0.5) / d
        return torch.where(torch.isnan(u).any(-1), _NAN, r)

    return _chunked_windows(x.detach(), d, fn)


def _arg_extreme(x: torch.Tensor, d: int, largest: bool) -> torch.Tensor:
    d = _check_window(d)
    pos = torch.arange(d, device=x.device, dtype=torch.int32)
    neg = torch.tensor(-1, dtype=torch.int32, device=x.device)

    def fn(u: torch.Tensor) -> torch.Tensor:
        ext = u.amax(-1, keepdim=True) if largest else u.amin(-1, keepdim=True)  # NaN-propagating
        last = torch.where(u == ext, pos, neg).amax(-1)  # most recent occurrence
        return torch.where(torch.isnan(ext[..., 0]), _NAN, (d - 1 - last).to(x.dtype))

    return _chunked_windows(x.detach(), d, fn)


def ts_argmax(x: torch.Tensor, d: int) -> torch.Tensor:
    """Days since the window maximum (0 = today; ties → most recent)."""
    return _arg_extreme(x, d, largest=True)


def ts_argmin(x: torch.Tensor, d: int) -> torch.Tensor:
    """Days since the window minimum (0 = today; ties → most recent)."""
    return _arg_extreme(x, d, largest=False)
