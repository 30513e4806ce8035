"""Factor metrics, defined once for the whole project (formulas in ``docs/metrics.md``).

All metrics are cross-sectional and per day: the value for day ``t`` reads only row ``t`` of the
factor(s) and of the target (``turnover`` reads rows ``t`` and ``t - lag`` of the factor), so no
metric can look ahead. Factors are ``[T, S]`` or batched ``[K, T, S]``; the target is ``[T, S]``.
A cell counts when it is finite on BOTH sides (``±inf`` counts as missing); a day with fewer than
``min_stocks`` such pairs, or with no variation on either side, gives NaN.

Speed: one vectorised pass per block of factors (blocks bounded by :data:`CHUNK_ELEMS`), data
shifted by its daily mean before products so float32 elementwise work plus cascade sums stays
accurate (per-day moments are then combined in float64). Ranks come from
:func:`alphaminer.expr.kernels.cs_rank`; the target is sorted once per call and re-ranked within
each factor's valid subset by cumulative counts (no per-factor sort of the target).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from alphaminer.expr.kernels import cs_rank

#: Upper bound on the elements of one ``[k, T, S]`` block processed at once.
CHUNK_ELEMS = 1 << 24

_NAN = float("nan")
# A day whose sum of squared deviations is below ``n * (REL_EPS * |mean|)^2`` is treated as
# constant: float32 rounding of a constant day leaves deviations of ~1e-7 * |mean|.
_REL_EPS = 1e-6

__all__ = [
    "CHUNK_ELEMS",
    "ICSummary",
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


def _check(factors: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray,
           min_stocks: int) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Validate shapes; return ``([K,T,S] factors, [T,S] target on the same device, squeezed)``."""
    f = _as_tensor(factors, "factors")
    y = _as_tensor(target, "target")
    if y.ndim != 2:
        raise ValueError(f"target must be [T, S], got shape {tuple(y.shape)}")
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
    return f, y.to(f.device), squeeze


def _work_dtype(*xs: torch.Tensor) -> torch.dtype:
    return torch.float64 if any(x.dtype == torch.float64 for x in xs) else torch.float32


def _chunks(K: int, T: int, S: int, chunk_elems: int) -> range:
    step = max(1, chunk_elems // max(1, T * S))
    return range(0, K, step)


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
def daily_ic(factors: torch.Tensor, target: torch.Tensor, min_stocks: int = 10,
             chunk_elems: int = CHUNK_ELEMS) -> torch.Tensor:
    """Daily Pearson IC: ``[T]`` for ``[T, S]`` factors, ``[K, T]`` for ``[K, T, S]``.

    Per day, the correlation across the stocks finite in both the factor and the target; fewer
    than ``min_stocks`` pairs or a constant side → NaN. Returns float64 on the factors' device.
    """
    f, y, squeeze = _check(factors, target, min_stocks)
    K, T, S = f.shape
    dt = _work_dtype(f, y)
    y = y.to(dt)
    yv = torch.isfinite(y)
    out = []
    for i in _chunks(K, T, S, chunk_elems):
        fc = f[i:i + max(1, chunk_elems // max(1, T * S))].to(dt)
        valid = torch.isfinite(fc) & yv
        out.append(_masked_pearson(fc, y.expand_as(fc), valid, min_stocks))
    res = torch.cat(out, dim=0) if out else torch.empty(0, T, dtype=torch.float64)
    return res[0] if squeeze else res


def _target_order(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                            torch.Tensor]:
    """Sort the target once per day; return order, validity in sorted order, tie-group bounds.

    ``start[p]``/``end[p]`` are the first/last sorted positions of the tie group of position
    ``p``; with a validity subset ``m`` (in sorted order) and ``C = cumsum(m)``, the average rank of
    ``p`` within the subset is ``C[start-1] + (C[end] - C[start-1] + 1) / 2``.
    """
    T, S = y.shape
    yv = torch.isfinite(y)
    filled = torch.where(yv, y, torch.full_like(y, math.inf))
    ys, order = torch.sort(filled, dim=-1)
    v_sorted = torch.gather(yv, 1, order)
    pos = torch.arange(S, device=y.device, dtype=torch.int64).expand(T, S)
    differ = ys[:, 1:] != ys[:, :-1]
    true_col = torch.ones(T, 1, dtype=torch.bool, device=y.device)
    is_start = torch.cat([true_col, differ], dim=1)
    is_end = torch.cat([differ, true_col], dim=1)
    start = torch.cummax(torch.where(is_start, pos, torch.zeros_like(pos)), dim=1).values
    end = torch.cummin(
        torch.where(is_end, pos, torch.full_like(pos, S - 1)).flip(1), dim=1
    ).values.flip(1)
    return order, v_sorted, start, end


def daily_rank_ic(factors: torch.Tensor, target: torch.Tensor, min_stocks: int = 10,
                  chunk_elems: int = CHUNK_ELEMS) -> torch.Tensor:
    """Daily RankIC (Spearman): Pearson of average ranks among each day's pair-valid stocks.

    Both the factor and the target are ranked only among the stocks valid on both sides that day
    (what ``scipy.stats.spearmanr`` gives on the day's complete pairs). Factor ranks come from
    :func:`~alphaminer.expr.kernels.cs_rank`; the target is sorted once and re-ranked within each
    factor's subset by cumulative counts.
    """
    f, y, squeeze = _check(factors, target, min_stocks)
    K, T, S = f.shape
    dt = _work_dtype(f, y)
    order, v_sorted, start, end = _target_order(y.to(dt))
    prev = (start - 1).clamp(min=0)
    no_prev = start == 0
    out = []
    step = max(1, chunk_elems // max(1, T * S))
    for i in _chunks(K, T, S, chunk_elems):
        fc = f[i:i + step].to(dt)
        k = fc.shape[0]
        fp = torch.gather(fc, 2, order.expand(k, T, S))  # factor in the target's sorted order
        valid = torch.isfinite(fp) & v_sorted
        invalid = ~valid
        fr = cs_rank(fp.masked_fill_(invalid, _NAN))
        del fp
        c = valid.to(torch.int32).cumsum(dim=2)
        n = c[..., -1].to(dt)
        less = torch.gather(c, 2, prev.expand(k, T, S)).masked_fill_(no_prev, 0)
        upto = torch.gather(c, 2, end.expand(k, T, S))
        del c
        # target average rank within the subset: less + (upto - less + 1) / 2
        yr = less.add_(upto).add_(1).to(dt).mul_(0.5)
        del upto, less
        # average ranks have known means: (n + 1) / 2 for yr, (n + 1) / (2 n) for fr = rank / n
        my = (n + 1) * 0.5
        mx = my / n.clamp(min=1)
        xs = fr.sub_(mx.unsqueeze(-1)).masked_fill_(invalid, 0.0)
        ys = yr.sub_(my.unsqueeze(-1)).masked_fill_(invalid, 0.0)
        out.append(_centered_pearson(xs, ys, n, mx, my=my, min_stocks=min_stocks))
    res = torch.cat(out, dim=0) if out else torch.empty(0, T, dtype=torch.float64)
    return res[0] if squeeze else res


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
    has a usable day.
    """
    if isinstance(pool_values, torch.Tensor):
        pv = pool_values if pool_values.ndim == 3 else pool_values.unsqueeze(0)
        members = list(pv)
    else:
        members = list(pool_values)
    if not members:
        return 0.0
    z = _as_tensor(z, "z")
    if z.ndim != 2:
        raise ValueError(f"z must be [T, S], got shape {tuple(z.shape)}")
    corrs = []
    for m in members:
        mean, _, _, _ = ic_stats(daily_ic(z, m, min_stocks))
        corrs.append(float(mean))
    finite = [abs(c) for c in corrs if math.isfinite(c)]
    return max(finite) if finite else _NAN


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
