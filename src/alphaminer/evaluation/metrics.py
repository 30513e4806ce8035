"""Factor metrics, defined once for the whole project (formulas in ``docs/metrics.md``).

All metrics are cross-sectional and per day: the value for day ``t`` reads only row ``t`` of the
factor(s) and of the target (``turnover`` reads rows ``t`` and ``t - lag`` of the factor), so no
metric can look ahead. Factors are ``[T, S]`` or batched ``[K, T, S]``; the target is ``[T, S]``.
A cell counts when it is finite on BOTH sides (``±inf`` counts as missing); a day with fewer than
``min_stocks`` such pairs, or with no variation on either side, gives NaN.

Speed: one vectorised pass per cache-sized block of factor-days (:data:`CHUNK_ELEMS`), blocks
spread over torch's CPU threads. Pearson shifts the data by its daily mean before products, so
float32 elementwise work plus cascade sums stays accurate (per-day moments are combined in
float64). RankIC sorts the target once per call; each factor-day is re-ranked against it within
the pair-valid subset by a running count, and the factor is sorted once carrying those target
ranks (:func:`daily_rank_ic`). On CPU float32 both go through fused numba passes
(:mod:`alphaminer.evaluation._jit_rank`: the RankIC sorts int32 words of a coarse key and the
stock index, then ranks exactly: every rank sum is an exact float64), equal to the torch path
to 1e-12. A caller that parallelises on its own can run
torch single-threaded with :func:`serial_torch` (no OpenMP spin-waits on a loaded host).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from alphaminer.expr.kernels import finite_f32, sort_rows_with_payload, tie_groups

#: Elements of one ``[factors, days, S]`` block of :func:`daily_ic` / :func:`daily_rank_ic`:
#: small enough that the block's temporaries (int64 sort keys included) stay in cache.
CHUNK_ELEMS = 1 << 19

_NAN = float("nan")
# A day whose sum of squared deviations is below ``n * (REL_EPS * |mean|)^2`` is treated as
# constant: float32 rounding of a constant day leaves deviations of ~1e-7 * |mean|.
_REL_EPS = 1e-6

__all__ = [
    "CHUNK_ELEMS",
    "ICSummary",
    "PreparedTarget",
    "correlation_matrix",
    "daily_ic",
    "daily_rank_ic",
    "ic_stats",
    "ic_summary",
    "ic_summary_table",
    "max_correlation",
    "mutual_correlation",
    "rank_autocorrelation",
    "turnover",
]


# ----------------------------------------------------------------------------- input handling
def _as_tensor(x: torch.Tensor | np.ndarray, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        t = x
    else:
        try:
            t = torch.as_tensor(np.asarray(x))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must be a tensor or array, got {type(x).__name__}") from exc
    if not t.is_floating_point():
        t = t.to(torch.float32)
    return t


class PreparedTarget:
    """A ``[T, S]`` target with what :func:`daily_ic` / :func:`daily_rank_ic` derive from it.

    Pass it in place of the target when scoring many factor batches against one target (the
    candidate scorer does): the finite mask, the per-dtype copy and the per-day sort that RankIC
    needs are computed once instead of once per call. Results are identical to passing the tensor.
    """

    def __init__(self, target: torch.Tensor | np.ndarray) -> None:
        y = _as_tensor(target, "target")
        if y.ndim != 2:
            raise ValueError(f"target must be [T, S], got shape {tuple(y.shape)}")
        self.target = y
        self._by_dtype: dict[tuple[torch.dtype, torch.device], tuple[torch.Tensor,
                                                                     torch.Tensor]] = {}
        self._ranks: dict[torch.device, _TargetRanks] = {}

    @property
    def shape(self) -> torch.Size:
        return self.target.shape

    def values(self, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor,
                                                                       torch.Tensor]:
        """``(target as dtype on device, its finite mask)``, cached."""
        key = (dtype, device)
        hit = self._by_dtype.get(key)
        if hit is None:
            y = self.target.to(device=device, dtype=dtype)
            hit = (y, torch.isfinite(y))
            self._by_dtype[key] = hit
        return hit

    def ranks(self, device: torch.device) -> _TargetRanks:
        """The per-day sort of the target (the order of a float32 target is the same after an
        exact cast to float64, so one sort serves both work dtypes)."""
        hit = self._ranks.get(device)
        if hit is None:
            hit = _TargetRanks(self.target.to(device))
            self._ranks[device] = hit
        return hit


def _check(factors: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray | PreparedTarget,
           min_stocks: int) -> tuple[torch.Tensor, PreparedTarget, bool]:
    """Validate shapes; return ``([K,T,S] factors, prepared [T,S] target, squeezed)``."""
    f = _as_tensor(factors, "factors")
    y = target if isinstance(target, PreparedTarget) else PreparedTarget(target)
    if f.ndim == 2:
        squeeze = True
        f = f.unsqueeze(0)
    elif f.ndim == 3:
        squeeze = False
    else:
        raise ValueError(f"factors must be [T, S] or [K, T, S], got shape {tuple(f.shape)}")
    if tuple(f.shape[1:]) != tuple(y.shape):
        raise ValueError(
            f"factors [.., T, S] = {tuple(f.shape[1:])} do not match target [T, S] = "
            f"{tuple(y.shape)}"
        )
    if not isinstance(min_stocks, int) or min_stocks < 2:
        raise ValueError(f"min_stocks must be an int >= 2, got {min_stocks!r}")
    return f, y, squeeze


#: Use the fused CPU passes (:mod:`alphaminer.evaluation._jit_rank`) for float32 daily IC and
#: RankIC on CPU; tests switch it off to compare with the torch path.
JIT_RANK = True


def _work_dtype(*xs: torch.Tensor) -> torch.dtype:
    return torch.float64 if any(x.dtype == torch.float64 for x in xs) else torch.float32


# ----------------------------------------------------------------------------- core kernel
def _masked_pearson(x: torch.Tensor, y: torch.Tensor, valid: torch.Tensor,
                    min_stocks: int) -> torch.Tensor:
    """Per-row Pearson correlation over ``valid`` cells along the last dim → float64 ``[...]``.

    ``x``/``y`` may hold anything (NaN included) outside ``valid``. Both sides are shifted by their
    daily mean before the products, so float32 elementwise work loses nothing that matters; the
    per-day moments are combined in float64.
    """
    invalid = ~valid
    n = valid.sum(dim=-1, keepdim=True).to(x.dtype)
    n_safe = n.clamp(min=1)
    x0 = x.masked_fill(invalid, 0.0)
    y0 = y.masked_fill(invalid, 0.0)
    mx = x0.sum(dim=-1, keepdim=True) / n_safe
    my = y0.sum(dim=-1, keepdim=True) / n_safe
    xs = x0.sub_(mx).masked_fill_(invalid, 0.0)
    ys = y0.sub_(my).masked_fill_(invalid, 0.0)
    del x0, y0
    return _centered_pearson(xs, ys, n.squeeze(-1), mx.squeeze(-1), my=my.squeeze(-1),
                             min_stocks=min_stocks)


def _centered_pearson(xs: torch.Tensor, ys: torch.Tensor, n: torch.Tensor, mx: torch.Tensor, *,
                      my: torch.Tensor, min_stocks: int) -> torch.Tensor:
    """Pearson from (approximately) centred data, 0 outside the valid cells.

    ``mx``/``my`` are the shifts that were removed (used only to detect constant days: float32
    rounding of a constant day leaves deviations of ~1e-7·|mean|).
    """
    sx = xs.sum(dim=-1).double()
    sy = ys.sum(dim=-1).double()
    sxy = (xs * ys).sum(dim=-1).double()
    sxx = (xs * xs).sum(dim=-1).double()
    syy = (ys * ys).sum(dim=-1).double()
    nd = n.double()
    nsafe = nd.clamp(min=1)
    cov = sxy - sx * sy / nsafe
    vx = sxx - sx * sx / nsafe
    vy = syy - sy * sy / nsafe
    eps = _REL_EPS if xs.dtype == torch.float32 else 1e-12
    tiny_x = nd * (eps * mx.double()) ** 2
    tiny_y = nd * (eps * my.double()) ** 2
    ok = (nd >= min_stocks) & (vx > tiny_x) & (vy > tiny_y)
    r = cov / torch.sqrt(torch.where(ok, vx * vy, torch.ones_like(vx)))
    r = r.clamp(-1.0, 1.0)
    return torch.where(ok, r, torch.full_like(r, _NAN))


# ----------------------------------------------------------------------------- daily IC
def daily_ic(factors: torch.Tensor, target: torch.Tensor | PreparedTarget, min_stocks: int = 10,
             chunk_elems: int = CHUNK_ELEMS) -> torch.Tensor:
    """Daily Pearson IC: ``[T]`` for ``[T, S]`` factors, ``[K, T]`` for ``[K, T, S]``.

    Per day, the correlation across the stocks finite in both the factor and the target; fewer
    than ``min_stocks`` pairs or a constant side → NaN. Returns float64 on the factors' device.
    Blocks of ``[factors, days, S]`` below ``chunk_elems`` elements run on torch's CPU threads.
    """
    f, prep, squeeze = _check(factors, target, min_stocks)
    K, T, S = f.shape
    dt = _work_dtype(f, prep.target)
    y, yv = prep.values(dt, f.device)
    out = torch.full((K, T), _NAN, dtype=torch.float64, device=f.device)
    blocks = _blocks(K, T, S, chunk_elems)

    fused = JIT_RANK and dt == torch.float32 and f.device.type == "cpu" and not f.requires_grad

    def run(b: tuple[int, int, int, int]) -> None:
        k0, k1, t0, t1 = b
        fc = f[k0:k1, t0:t1].to(dt)
        if fused:  # one numba pass pair per row instead of ~10 masked torch passes
            from alphaminer.evaluation._jit_rank import pearson_rows

            k, tb = fc.shape[0], fc.shape[1]
            res = np.empty(k * tb, dtype=np.float64)
            day = np.tile(np.arange(t0, t1, dtype=np.int64), k)
            pearson_rows(fc.detach().contiguous().reshape(-1, S).numpy(), day, y.numpy(),
                         min_stocks, _REL_EPS, res)
            out[k0:k1, t0:t1] = torch.from_numpy(res).view(k, tb)
            return
        valid = torch.isfinite(fc) & yv[t0:t1]
        out[k0:k1, t0:t1] = _masked_pearson(fc, y[t0:t1].expand_as(fc), valid, min_stocks)

    _run_blocks(run, blocks, f.device)
    return out[0] if squeeze else out


def _blocks(K: int, T: int, S: int, chunk_elems: int) -> list[tuple[int, int, int, int]]:
    """``(k0, k1, t0, t1)`` blocks of ``[factors, days, S]`` with at most ``chunk_elems`` elements
    (whole factors when one fits, else day ranges of one factor)."""
    if K == 0 or T == 0 or S == 0:
        return []
    per_factor = T * S
    if chunk_elems >= per_factor:
        k_step, t_step = max(1, chunk_elems // per_factor), T
    else:
        k_step, t_step = 1, max(1, chunk_elems // S)
    return [(k0, min(K, k0 + k_step), t0, min(T, t0 + t_step))
            for k0 in range(0, K, k_step) for t0 in range(0, T, t_step)]


class _TargetRanks:
    """The target sorted once per day, with what re-ranking it inside a subset needs.

    ``order`` sorts each day (missing last), ``valid`` flags finite targets in that order. Where a
    day has tied targets, ``prev``/``end`` give, for each sorted position, the position before
    its tie group and the last position of the group: with a validity subset ``m`` (in sorted
    order) and ``C = cumsum(m)``, twice the average rank within the subset is
    ``C[prev] + C[end] + 1`` (``C[prev] = 0`` for a group starting at 0).
    """

    def __init__(self, y: torch.Tensor) -> None:
        yv = torch.isfinite(y)
        ys, self.order = torch.sort(torch.where(yv, y, torch.full_like(y, math.inf)), dim=-1)
        self.valid = torch.gather(yv, 1, self.order)
        self.stock_valid = yv
        self._np = None
        self._fused = None
        if y.device.type == "cpu":  # for the fused CPU pass (numpy views, no copies)
            self._np = (self.order.numpy(), ys.numpy(), self.valid.numpy())
            self.stock_valid_np = yv.numpy()
        tied = (ys[:, 1:] == ys[:, :-1]) & self.valid[:, 1:]
        self.day_has_ties = tied.any(dim=1)
        self.prev = self.end = self.no_prev = None
        if bool(self.day_has_ties.any()):
            start, end = tie_groups(ys)
            self.end = end.long()
            self.no_prev = start == 0
            self.prev = (start - 1).clamp(min=0).long()

    def fused(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The target's per-day average ranks, Σ rank², finite count and tie flags (numpy, for
        the fused CPU pass; computed on first use)."""
        if self._fused is None:
            from alphaminer.evaluation._jit_rank import target_ranks

            self._fused = target_ranks(*self._np)
        return self._fused

    def doubled_ranks(self, valid: torch.Tensor, t0: int, t1: int
                      ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Twice the average rank of the target within ``valid`` (in sorted order; 0 off it).

        ``valid``: ``[k, t1 - t0, S]`` subset flags in the target's sorted order of days t0..t1.
        Ranks are the running count of ``valid``, except on days with tied targets, where a tie
        group shares its average rank (a half-integer, hence the doubling). Returns the int32
        doubled ranks and the indices (within the block) of the days with ties, or None.
        """
        c = torch.cumsum(valid, dim=-1, dtype=torch.int32)
        tied = None
        if self.prev is not None:
            tied = self.day_has_ties[t0:t1].nonzero().squeeze(1)
            if tied.numel() == 0:
                tied = None
        if tied is not None:
            ct = c.index_select(1, tied)
            shape = ct.shape
            less = torch.gather(ct, -1, self.prev[t0:t1].index_select(0, tied).expand(shape))
            less.masked_fill_(self.no_prev[t0:t1].index_select(0, tied).expand(shape), 0)
            upto = torch.gather(ct, -1, self.end[t0:t1].index_select(0, tied).expand(shape))
            r_tied = less.add_(upto).add_(1).mul_(valid.index_select(1, tied))
        ry2 = c.mul_(valid).mul_(2)
        if tied is not None:
            ry2.index_copy_(1, tied, r_tied)
        return ry2, tied


def _rank_ic_block(f: torch.Tensor, tr: _TargetRanks, t0: int, t1: int, min_stocks: int,
                   threads: int | None = None) -> torch.Tensor:
    """Spearman of each factor-day of one block ``f`` = ``[k, t1 - t0, S]`` (days t0..t1).

    The factor is put in the target's sorted order, the target re-ranked within the pair-valid
    subset (:meth:`_TargetRanks.doubled_ranks`), and the factor sorted carrying that rank as
    payload, so the numerator is one matrix-vector product ``Σ_p (p + 1) · ry_p`` over sorted
    positions; rows whose factor has ties among valid entries use average positions instead.
    """
    S = f.shape[-1]
    if JIT_RANK and tr._np is not None and f.dtype == torch.float32 and \
            f.device.type == "cpu" and not f.requires_grad and S <= _FUSED_MAX_STOCKS:
        return _rank_ic_block_fused(f, tr, t0, t1, min_stocks, threads)
    fq = torch.gather(f, 2, tr.order[t0:t1].expand(f.shape))
    fin = finite_f32(fq) if fq.dtype == torch.float32 else torch.isfinite(fq)
    valid = fin.logical_and_(tr.valid[t0:t1])
    ry2, y_tied_days = tr.doubled_ranks(valid, t0, t1)
    n = valid.sum(dim=-1)
    keys, pay, invalid_key = sort_rows_with_payload(fq, ~valid, ry2, threads)
    pay = pay.double()
    pos1 = torch.arange(1, S + 1, device=f.device, dtype=torch.float64)
    num = (pay @ pos1) * 0.5  # Σ rank_f · rank_y (invalid entries carry 0 and sort last)
    # adjacent equal keys beyond the pairs of invalid entries at the end = ties in the factor
    n_eq = (keys[..., 1:] == keys[..., :-1]).sum(dim=-1)
    f_tied = n_eq > (S - 1 - n).clamp(min=0)
    n = n.double()
    sum_rf2 = n * (n + 1) * (2 * n + 1) / 6  # Σ p² for p = 1..n (no ties)
    if bool(f_tied.any()):
        rows = f_tied.view(-1).nonzero().squeeze(1)
        k = keys.reshape(-1, S).index_select(0, rows)
        p = pay.view(-1, S).index_select(0, rows)
        start, end = tie_groups(k)  # average 1-based position of each tie group
        avg = (start + end).double() * 0.5 + 1.0
        avg = avg.masked_fill_(k == invalid_key, 0.0)
        num.view(-1).index_copy_(0, rows, (avg * p).sum(dim=-1) * 0.5)
        sum_rf2.view(-1).index_copy_(0, rows, (avg * avg).sum(dim=-1))
    m = (n + 1) * 0.5
    nm2 = n * m * m
    vf = sum_rf2 - nm2
    vy = n * (n * n - 1) / 12  # Σ (rank - m)² for ranks 1..n
    if y_tied_days is not None:  # days with tied targets: from the average ranks themselves
        r2 = ry2.index_select(1, y_tied_days).double()
        vy.index_copy_(1, y_tied_days,
                       (r2 * r2).sum(dim=-1) * 0.25 - nm2.index_select(1, y_tied_days))
    ok = (n >= min_stocks) & (vf > 0) & (vy > 0)
    r = (num - nm2) / torch.sqrt(torch.where(ok, vf * vy, torch.ones_like(vf)))
    return torch.where(ok, r.clamp(-1.0, 1.0), _NAN)




#: Widest cross-section of the fused RankIC pass (its packed words keep >= 11 bits of coarse key).
_FUSED_MAX_STOCKS = 1 << 20
#: Rows per step of the fused RankIC pass: its int32 word buffer (reused per thread) stays in L2.
_RANK_STEP_ELEMS = 1 << 17
_RANK_TLS = threading.local()


def _rank_buffer(rows: int, S: int) -> np.ndarray:
    """This thread's reusable ``[rows, S]`` int32 buffer (a fresh multi-MB array per block
    costs page faults comparable to the sort itself)."""
    buf = getattr(_RANK_TLS, "buf", None)
    if buf is None or buf.size < rows * S:
        buf = np.empty(max(rows * S, _RANK_STEP_ELEMS), dtype=np.int32)
        _RANK_TLS.buf = buf
    return buf[:rows * S].reshape(rows, S)


def _rank_ic_block_fused(f: torch.Tensor, tr: _TargetRanks, t0: int, t1: int, min_stocks: int,
                         threads: int | None) -> torch.Tensor:
    """:func:`_rank_ic_block` through the fused CPU pass (:mod:`._jit_rank`): pack coarse keys
    and stock indices into int32 words, numpy's row sort, then the rank pass, in L2-sized steps.
    ``threads`` is unused: blocks already run side by side."""
    from alphaminer.evaluation import _jit_rank as jr

    k, tb, S = f.shape
    bits = f.detach().contiguous().reshape(-1, S).numpy().view(np.int32)
    R = bits.shape[0]
    out = np.empty(R, dtype=np.float64)
    count = np.empty(R, dtype=np.int64)
    day = np.tile(np.arange(t0, t1, dtype=np.int64), k)
    ranks, sq, ycount, ties = tr.fused()
    order, ys, _ = tr._np
    nbits = jr.index_bits(S)
    step = max(1, _RANK_STEP_ELEMS // S)
    buf = _rank_buffer(min(step, R), S)
    for r0 in range(0, R, step):
        r1 = min(R, r0 + step)
        w = buf[:r1 - r0]
        jr.pack_rank_keys(bits, day, tr.stock_valid_np, nbits, r0, r1, min_stocks, w, count)
        w.sort(axis=-1)
        jr.rank_ic_sorted_rows(w, bits, count, day, nbits, r0, r1, order, ys, ranks, sq, ycount,
                               ties, min_stocks, out)
    return torch.from_numpy(out).view(k, tb)


def _block_threads(device: torch.device, n_blocks: int) -> int:
    """Worker threads for independent blocks: on CPU one per :func:`cpu_workers` (many small
    torch ops parallelise better across blocks than inside each op)."""
    if device.type != "cpu" or n_blocks < 2:
        return 1
    return max(1, min(cpu_workers(), n_blocks))


_THREADS_LOCK = threading.Lock()
_THREADS_STATE = {"active": 0, "saved": 1}
_OWNER = threading.local()  # .workers: the thread count saved by serial_torch() in this thread


def cpu_workers() -> int:
    """Threads for CPU work the caller splits itself: torch's thread count, or, in a thread
    inside :func:`serial_torch`, the count saved on entry (worker threads see 1)."""
    n = getattr(_OWNER, "workers", None)
    return torch.get_num_threads() if n is None else n


@contextmanager
def serial_torch() -> Iterator[None]:
    """Run torch with one intra-op thread; :func:`cpu_workers` still gives the saved count.

    For a caller that parallelises on its own (worker threads, each running single-threaded
    ops): no OpenMP region is entered, so none spin-waits for a thread that another process has
    pushed off its core (measured on a loaded 2-core host: 3x the CPU time per candidate).
    The first concurrent caller saves the count and the last one restores it, so calls from
    several threads at once leave it intact.
    """
    with _THREADS_LOCK:
        if _THREADS_STATE["active"] == 0:
            _THREADS_STATE["saved"] = torch.get_num_threads()
            torch.set_num_threads(1)
        _THREADS_STATE["active"] += 1
        saved = _THREADS_STATE["saved"]
    prev = getattr(_OWNER, "workers", None)
    _OWNER.workers = saved if prev is None else prev
    try:
        yield
    finally:
        _OWNER.workers = prev
        with _THREADS_LOCK:
            _THREADS_STATE["active"] -= 1
            if _THREADS_STATE["active"] == 0:
                torch.set_num_threads(_THREADS_STATE["saved"])


def _run_blocks(fn, blocks: list, device: torch.device) -> None:  # noqa: ANN001
    """Call ``fn(block)`` for every block; on CPU spread over :func:`cpu_workers` threads.

    While workers run, torch's intra-op thread count is 1 (:func:`serial_torch`) so that the
    workers, each running single-threaded ops, do not oversubscribe the cores.
    """
    n = _block_threads(device, len(blocks))
    if n == 1:
        for b in blocks:
            fn(b)
        return
    with serial_torch(), ThreadPoolExecutor(max_workers=n, thread_name_prefix="metrics") as pool:
        for _ in pool.map(fn, blocks):
            pass


def daily_rank_ic(factors: torch.Tensor, target: torch.Tensor | PreparedTarget,
                  min_stocks: int = 10,
                  chunk_elems: int = CHUNK_ELEMS) -> torch.Tensor:
    """Daily RankIC (Spearman): Pearson of average ranks among each day's pair-valid stocks.

    Both the factor and the target are ranked only among the stocks valid on both sides that day
    (what ``scipy.stats.spearmanr`` gives on the day's complete pairs). The target is sorted once;
    per factor-day it is re-ranked within the pair-valid subset by a running count in that order,
    and the factor is sorted once carrying those ranks, so no scatter back to stock order is
    needed. Blocks of ``[factors, days, S]`` stay below ``chunk_elems`` elements (cache-sized) and
    run on all of torch's CPU threads. Returns float64 ``[T]`` / ``[K, T]``.
    """
    f, prep, squeeze = _check(factors, target, min_stocks)
    K, T, S = f.shape
    dt = _work_dtype(f, prep.target)
    tr = prep.ranks(f.device)
    out = torch.full((K, T), _NAN, dtype=torch.float64, device=f.device)
    blocks = _blocks(K, T, S, chunk_elems)
    threads = 1 if _block_threads(f.device, len(blocks)) > 1 else None

    def run(b: tuple[int, int, int, int]) -> None:
        k0, k1, t0, t1 = b
        out[k0:k1, t0:t1] = _rank_ic_block(f[k0:k1, t0:t1].to(dt), tr, t0, t1, min_stocks,
                                           threads)

    _run_blocks(run, blocks, f.device)
    return out[0] if squeeze else out


# ----------------------------------------------------------------------------- summaries
def ic_stats(daily: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                           torch.Tensor]:
    """Mean, std (ddof=1), IR = mean/std and day count of a daily series ``[..., T]``, NaN days
    skipped. IR is NaN when fewer than two days or a zero std."""
    d = daily.double()
    ok = torch.isfinite(d)
    n = ok.sum(dim=-1).double()
    d0 = torch.where(ok, d, torch.zeros_like(d))
    mean = d0.sum(dim=-1) / n.clamp(min=1)
    dev = torch.where(ok, d - mean.unsqueeze(-1), torch.zeros_like(d))
    var = (dev * dev).sum(dim=-1) / (n - 1).clamp(min=1)
    std = torch.sqrt(var)
    nan = torch.full_like(mean, _NAN)
    mean = torch.where(n > 0, mean, nan)
    std = torch.where(n > 1, std, nan)
    ir = torch.where((n > 1) & (std > 0), mean / std, nan)
    return mean, std, ir, n


@dataclass(frozen=True)
class ICSummary:
    """Headline IC figures of one factor against one target (see ``docs/metrics.md``)."""

    ic: float
    ic_std: float
    icir: float
    rank_ic: float
    rank_ic_std: float
    rank_icir: float
    n_days: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _summaries(ic: torch.Tensor, ric: torch.Tensor) -> list[ICSummary]:
    m, s, ir, n = ic_stats(ic)
    rm, rs, rir, _ = ic_stats(ric)
    return [
        ICSummary(float(m[k]), float(s[k]), float(ir[k]), float(rm[k]), float(rs[k]),
                  float(rir[k]), int(n[k]))
        for k in range(ic.shape[0])
    ]


def ic_summary(factor: torch.Tensor, target: torch.Tensor, min_stocks: int = 10) -> ICSummary:
    """IC, RankIC, their std and IR for a single ``[T, S]`` factor (``n_days``: days with IC)."""
    f = _as_tensor(factor, "factor")
    if f.ndim != 2:
        raise ValueError(
            f"ic_summary takes one [T, S] factor, got shape {tuple(f.shape)}; "
            "use ic_summary_table for a [K, T, S] batch"
        )
    ic = daily_ic(f, target, min_stocks).unsqueeze(0)
    ric = daily_rank_ic(f, target, min_stocks).unsqueeze(0)
    return _summaries(ic, ric)[0]


def ic_summary_table(factors: torch.Tensor, target: torch.Tensor,
                     names: Sequence[str] | None = None, min_stocks: int = 10) -> pd.DataFrame:
    """:class:`ICSummary` of each of ``K`` factors ``[K, T, S]`` as a DataFrame indexed by name."""
    f = _as_tensor(factors, "factors")
    if f.ndim != 3:
        raise ValueError(f"factors must be [K, T, S], got shape {tuple(f.shape)}")
    K = f.shape[0]
    if names is None:
        names = [f"factor_{k}" for k in range(K)]
    names = [str(n) for n in names]
    if len(names) != K:
        raise ValueError(f"names has {len(names)} entries but factors has K={K}")
    rows = _summaries(daily_ic(f, target, min_stocks), daily_rank_ic(f, target, min_stocks))
    df = pd.DataFrame([r.to_dict() for r in rows], index=pd.Index(names, name="factor"))
    return df


# ----------------------------------------------------------------------------- diversity
def mutual_correlation(a: torch.Tensor, b: torch.Tensor,
                       min_stocks: int = 10) -> float | torch.Tensor:
    """Mean over days of the daily cross-sectional Pearson correlation of ``a`` and ``b``.

    ``a`` is ``[T, S]`` (→ float) or ``[K, T, S]`` (→ float64 ``[K]``), ``b`` is ``[T, S]``. Signed;
    NaN when no day has ``min_stocks`` pairs with variation.
    """
    m, _, _, _ = ic_stats(daily_ic(a, b, min_stocks))
    return float(m) if m.ndim == 0 else m


def correlation_matrix(factors: torch.Tensor, min_stocks: int = 10,
                       progress: bool = False) -> torch.Tensor:
    """Symmetric ``[K, K]`` matrix of :func:`mutual_correlation` (diag 1; NaN for a factor with no
    usable day). Costs ``K(K-1)/2`` pairwise passes (each pair has its own valid cells)."""
    f = _as_tensor(factors, "factors")
    if f.ndim != 3:
        raise ValueError(f"factors must be [K, T, S], got shape {tuple(f.shape)}")
    K = f.shape[0]
    out = torch.full((K, K), _NAN, dtype=torch.float64)
    for i in tqdm(range(K), desc="correlation matrix", disable=not progress):
        if i + 1 < K:
            m, _, _, _ = ic_stats(daily_ic(f[i + 1:], f[i], min_stocks))
            out[i, i + 1:] = m.cpu()
            out[i + 1:, i] = m.cpu()
        self_m, _, _, _ = ic_stats(daily_ic(f[i], f[i], min_stocks))
        out[i, i] = 1.0 if math.isfinite(float(self_m)) else _NAN
    return out


def max_correlation(z: torch.Tensor, pool_values: torch.Tensor | Sequence[torch.Tensor],
                    min_stocks: int = 10) -> float:
    """``max_k |mutual_correlation(z, pool_k)|`` — the MaxCorr of Alpha2's Perf.

    The ABSOLUTE value is taken (a factor and its negation are the same alpha to a linear
    combiner). An empty pool gives 0.0; members with no usable day are ignored; NaN if no member
    has a usable day. One batched :func:`daily_ic` over the stacked members (Pearson is
    symmetric, so ``daily_ic(members, z)`` is each member's ``mutual_correlation`` with ``z``).
    """
    if isinstance(pool_values, torch.Tensor):
        members = pool_values if pool_values.ndim == 3 else pool_values.unsqueeze(0)
    else:
        vals = [_as_tensor(m, "pool member") for m in pool_values]
        if not vals:
            return 0.0
        dt = _work_dtype(*vals)
        members = torch.stack([m.to(dt) for m in vals])
    if members.shape[0] == 0:
        return 0.0
    z = _as_tensor(z, "z")
    if z.ndim != 2:
        raise ValueError(f"z must be [T, S], got shape {tuple(z.shape)}")
    dt = _work_dtype(z, members)
    mean, _, _, _ = ic_stats(daily_ic(members.to(dt), z.to(dt), min_stocks))
    finite = mean[torch.isfinite(mean)]
    return float(finite.abs().max()) if finite.numel() else _NAN


# ----------------------------------------------------------------------------- turnover
def rank_autocorrelation(factor: torch.Tensor, lag: int = 1,
                         min_stocks: int = 10) -> torch.Tensor:
    """Daily Spearman correlation between the cross-sections of day ``t`` and ``t - lag``.

    ``[T, S]`` → float64 ``[T]``; ``[K, T, S]`` → ``[K, T]``; the first ``lag`` days are NaN.
    Stocks must be valid on both days.
    """
    f = _as_tensor(factor, "factor")
    if f.ndim not in (2, 3):
        raise ValueError(f"factor must be [T, S] or [K, T, S], got shape {tuple(f.shape)}")
    if not isinstance(lag, int) or lag < 1:
        raise ValueError(f"lag must be a positive int, got {lag!r}")
    squeeze = f.ndim == 2
    fb = f.unsqueeze(0) if squeeze else f
    K, T, _ = fb.shape
    out = torch.full((K, T), _NAN, dtype=torch.float64, device=f.device)
    if lag < T:
        for k in range(K):
            out[k, lag:] = daily_rank_ic(fb[k, lag:], fb[k, :-lag], min_stocks)
    return out[0] if squeeze else out


def turnover(factor: torch.Tensor, lag: int = 1, min_stocks: int = 10) -> float | torch.Tensor:
    """Factor turnover = ``1 - mean_t rank_autocorrelation(factor, lag)_t`` (NaN days skipped).

    0 for a cross-sectional ordering that never changes, ~1 for an unrelated one each day, up to
    2 for one that flips. ``[T, S]`` → float; ``[K, T, S]`` → float64 ``[K]``.
    """
    m, _, _, _ = ic_stats(rank_autocorrelation(factor, lag, min_stocks))
    res = 1.0 - m
    return float(res) if res.ndim == 0 else res
