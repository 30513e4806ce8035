"""Kernels with qlib 0.9.7 semantics, and the partial-window (``min_periods``) mode.

Two groups, both along dim 0 (time) of ``[T, ...]`` tensors, NaN for ``±inf`` at every output:

- kernels of the operators that carry qlib's names and meaning: ``IdxMax/IdxMin`` (1-based
  position from the oldest day, ties → the oldest), ``Slope/Rsquare/Resi`` (least squares of
  x on the day index), ``Quantile`` (linear interpolation), ``EWM`` (pandas' whole-history
  ``ewm(span=d, adjust=True, ignore_na=False)``), ``QlibWMA`` (``nanmean(w·x)``), elementwise
  ``Power``, comparisons, ``If`` and ``FillNaN``;
- NaN-skipping partial-window versions of the existing rolling operators (pandas
  ``rolling(d, min_periods=m)``): ``Evaluator(panel, min_periods=m)`` routes through them. They
  are a compatibility mode, not the hot path: they reduce chunked copies of window views (memory
  bounded like :func:`alphaminer.expr.kernels._chunked_windows`), O(T·S·d), in float64.

Every rolling kernel here takes ``min_periods``: ``None`` means the language's default, a full
window of valid values (so a window holding a NaN, or reaching before the first day, gives NaN);
``m`` means "at least ``m`` valid values in the window", the rest skipped as pandas does. With
``min_periods=d`` both agree. Window moments are computed two-pass (mean first, then deviations)
inside each window, never from long-history prefix sums, so nothing cancels catastrophically.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from alphaminer.expr.kernels import CHUNK_ELEMS, _as_tensors, _check_window, finite_or_nan

_NAN = float("nan")

#: qlib's ``Corr`` (either side) and ``Rsquare`` set NaN where the rolling std of x is
#: ``np.isclose(std, 0, atol=2e-5)``.
QLIB_CORR_STD_ATOL = 2e-5


# ----------------------------------------------------------------------------- helpers
def _min_count(d: int, min_periods: int | None) -> int:
    if min_periods is None:
        return d
    m = int(min_periods)
    if m != min_periods or m < 1:
        raise ValueError(f"min_periods must be an integer >= 1, got {min_periods!r}")
    return min(m, d)


def _padded_windows(xs: tuple[torch.Tensor, ...], d: int,
                    fn: Callable[..., torch.Tensor]) -> torch.Tensor:
    """``fn(present, *windows) -> [c, ...]`` over time-chunks of front-padded window views.

    Each input gets ``d - 1`` leading NaN rows, so every day ``t`` has a length-``d`` window
    (index ``d - 1`` is today); ``present`` (``[c, 1.., d]`` bool) marks the positions that are
    real days rather than padding. Chunks keep their copies at most a quarter of the input (and
    :data:`CHUNK_ELEMS`), as the full-window chunked kernels do.
    """
    x0 = xs[0]
    T = x0.shape[0]
    out = torch.full(x0.shape, _NAN, dtype=x0.dtype, device=x0.device)
    if T == 0:
        return out
    views = []
    for x in xs:
        pad = torch.full((d - 1, *x.shape[1:]), _NAN, dtype=x.dtype, device=x.device)
        views.append(torch.cat([pad, x.detach()], dim=0).unfold(0, d, 1))
    per_day = max(1, views[0][0].numel())
    budget = min(CHUNK_ELEMS, max(x0.numel() // 4, per_day))
    step = max(1, budget // per_day)
    pos = torch.arange(d, device=x0.device)
    extra = (1,) * (x0.ndim - 1)
    for i in range(0, T, step):
        days = torch.arange(i, min(T, i + step), device=x0.device)
        present = (days[:, None] + pos[None, :] >= d - 1).view(len(days), *extra, d)
        out[i:i + step] = fn(present, *(v[i:i + step] for v in views)).to(out.dtype)
    return finite_or_nan(out)


def _moments(u: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Count, mean and deviations from the mean (0 where invalid) of float64 windows."""
    n = valid.sum(-1)
    y = torch.where(valid, u, 0.0)
    mean = y.sum(-1) / n
    dev = torch.where(valid, u - mean.unsqueeze(-1), 0.0)
    return n, mean, dev


def _constant(u: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Windows whose valid values are all equal (exact, unlike a two-pass variance)."""
    hi = torch.where(valid, u, -math.inf).amax(-1)
    lo = torch.where(valid, u, math.inf).amin(-1)
    return hi == lo


# ----------------------------------------------------------------------------- qlib operators
def _idx_extreme(x: torch.Tensor, d: int, min_periods: int | None, largest: bool
                 ) -> torch.Tensor:
    d = _check_window(d)
    m = _min_count(d, min_periods)
    pos = torch.arange(d, device=x.device)

    def fn(present: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        valid = ~torch.isnan(u)
        n = valid.sum(-1)
        filled = torch.where(valid, u, -math.inf if largest else math.inf)
        ext = filled.amax(-1, keepdim=True) if largest else filled.amin(-1, keepdim=True)
        first_ext = torch.where(valid & (filled == ext), pos, d).amin(-1)
        # numpy's argmax/argmin (which qlib applies to the raw window) stop at the first NaN
        first_nan = torch.where(present & ~valid, pos, d).amin(-1)
        idx = torch.where(first_nan < d, first_nan, first_ext)
        n_pad = (~present).sum(-1)
        res = (idx - n_pad + 1).to(torch.float64)
        return torch.where(n >= m, res, _NAN)

    return _padded_windows((x,), d, fn)


def ts_idxmax(x: torch.Tensor, d: int, min_periods: int | None = None) -> torch.Tensor:
    """qlib ``IdxMax``: 1-based position of the window maximum counted from the oldest day.

    Ties → the oldest. In partial-window mode the window is the available days (warm-up) and,
    as numpy's ``argmax`` on the raw window, a window holding a NaN gives the NaN's position.
    """
    return _idx_extreme(x, d, min_periods, largest=True)


def ts_idxmin(x: torch.Tensor, d: int, min_periods: int | None = None) -> torch.Tensor:
    """qlib ``IdxMin``: 1-based position of the window minimum from the oldest, ties → oldest."""
    return _idx_extreme(x, d, min_periods, largest=False)


def _regression(x: torch.Tensor, d: int, min_periods: int | None, what: str) -> torch.Tensor:
    """Least squares of the valid window values on their day index 1..d (today = d)."""
    d = _check_window(d)
    m = max(2, _min_count(d, min_periods))
    t = torch.arange(1, d + 1, dtype=torch.float64, device=x.device)

    def fn(present: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        u = u.to(torch.float64)
        valid = ~torch.isnan(u)
        n, ybar, dy = _moments(u, valid)
        tbar = torch.where(valid, t, 0.0).sum(-1) / n
        dt = torch.where(valid, t - tbar.unsqueeze(-1), 0.0)
        stt = (dt * dt).sum(-1)
        sty = (dt * dy).sum(-1)
        const = _constant(u, valid)
        slope = torch.where(const, 0.0, sty / stt)
        if what == "slope":
            res = slope
        elif what == "rsquare":
            syy = (dy * dy).sum(-1)
            # qlib sets NaN where the rolling std of x is np.isclose(std, 0, atol=2e-5)
            flat = const | ((syy / (n - 1.0)).sqrt() <= QLIB_CORR_STD_ATOL)
            res = torch.where(flat, _NAN, sty * sty / (stt * torch.where(flat, 1.0, syy)))
        else:  # today's residual (NaN when today is missing)
            fit = ybar + slope * (d - tbar)
            res = torch.where(const, u[..., -1] - u[..., -1], u[..., -1] - fit)
        return torch.where(n >= m, res, _NAN)

    return _padded_windows((x,), d, fn)


def ts_slope(x: torch.Tensor, d: int, min_periods: int | None = None) -> torch.Tensor:
    """qlib ``Slope``: regression slope of x on the day index (unit of x per day)."""
    return _regression(x, d, min_periods, "slope")


def ts_rsquare(x: torch.Tensor, d: int, min_periods: int | None = None) -> torch.Tensor:
    """qlib ``Rsquare``: R² of that regression; NaN where x's window std is <= 2e-5 (as qlib)."""
    return _regression(x, d, min_periods, "rsquare")


def ts_resi(x: torch.Tensor, d: int, min_periods: int | None = None) -> torch.Tensor:
    """qlib ``Resi``: today's value minus the regression line at today (0 on constant windows)."""
    return _regression(x, d, min_periods, "resi")


def _sorted_quantile(u: torch.Tensor, valid: torch.Tensor, q: float) -> torch.Tensor:
    """pandas' linear-interpolation quantile of the valid values of each window."""
    v = torch.sort(torch.where(valid, u, math.inf), dim=-1).values
    n = valid.sum(-1, keepdim=True)
    h = q * (n - 1).clamp_min(0).to(torch.float64)
    lo = h.floor()
    frac = h - lo
    lo_i = lo.to(torch.int64)
    hi_i = torch.minimum(lo_i + 1, (n - 1).clamp_min(0))
    vlo = torch.gather(v, -1, lo_i)
    vhi = torch.gather(v, -1, hi_i)
    return (vlo + (vhi - vlo) * frac).squeeze(-1)


def ts_quantile(x: torch.Tensor, d: int, q: float, min_periods: int | None = None
                ) -> torch.Tensor:
    """qlib ``Quantile``: rolling ``q``-quantile, linear interpolation (pandas ``quantile``)."""
    d = _check_window(d)
    q = float(q)
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile level must lie in [0, 1], got {q}")
    m = _min_count(d, min_periods)

    def fn(present: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        u = u.to(torch.float64)
        valid = ~torch.isnan(u)
        return torch.where(valid.sum(-1) >= m, _sorted_quantile(u, valid, q), _NAN)

    return _padded_windows((x,), d, fn)


def ts_qlib_wma(x: torch.Tensor, d: int, min_periods: int | None = None) -> torch.Tensor:
    """qlib ``WMA``: ``nanmean(w * x)`` with ``w = (1..n) / sum(1..n)`` over the window's n days.

    On full windows this is our ``WMA`` divided by d (qlib averages the weighted terms instead of
    summing them).
    """
    d = _check_window(d)
    m = _min_count(d, min_periods)
    pos = torch.arange(d, dtype=torch.float64, device=x.device)

    def fn(present: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        u = u.to(torch.float64)
        valid = ~torch.isnan(u)
        n_pad = (~present).sum(-1, keepdim=True).to(torch.float64)
        avail = d - n_pad  # days in the window (fewer during warm-up)
        w = (pos - n_pad + 1.0) / (avail * (avail + 1.0) / 2.0)
        n = valid.sum(-1)
        s = torch.where(valid, w * u, 0.0).sum(-1)
        return torch.where(n >= m, s / n, _NAN)

    return _padded_windows((x,), d, fn)


def _decay_scan(v: torch.Tensor, beta: float) -> torch.Tensor:
    """``s_t = beta * s_{t-1} + v_t`` along dim 0, vectorised over blocks of days.

    Inside a block of L days ``s = beta^r * cumsum(v_r * beta^-r)``; L keeps ``beta^-L`` below
    1e150 so nothing overflows; one carry per block (a loop over T/L blocks, not over days).
    """
    T = v.shape[0]
    if beta == 0.0 or T == 0:
        return v.clone()
    L = max(1, min(T, int(150 * math.log(10) / -math.log(beta))))
    r = torch.arange(L, dtype=torch.float64, device=v.device)
    up = torch.pow(beta, -r).view(L, *([1] * (v.ndim - 1)))
    down = torch.pow(beta, r).view_as(up)
    carry_w = torch.pow(beta, r + 1).view_as(up)
    out = torch.empty_like(v)
    prev = None
    for s in range(0, T, L):
        blk = v[s:s + L]
        k = blk.shape[0]
        loc = torch.cumsum(blk * up[:k], dim=0) * down[:k]
        if prev is not None:
            loc = loc + carry_w[:k] * prev
        out[s:s + k] = loc
        prev = loc[-1]
    return out


def ts_ewm(x: torch.Tensor, d: int, min_periods: int | None = None) -> torch.Tensor:
    """pandas ``ewm(span=d, adjust=True, ignore_na=False).mean()`` over the whole history.

    alpha = 2/(d+1); the value is ``sum_i (1-alpha)^(t-i) x_i / sum_i (1-alpha)^(t-i)`` over
    the valid days i <= t (a NaN day still ages the weights), and a NaN day repeats the last
    value, as pandas does. Values start once ``min_periods`` valid days have been seen
    (default d: the language's full-window rule; qlib's ``EMA`` uses 1).
    """
    d = _check_window(d)
    m = _min_count(d, min_periods)
    T = x.shape[0]
    beta = 1.0 - 2.0 / (d + 1.0)
    flat = x.detach().reshape(T, -1).to(torch.float64)
    valid = torch.isfinite(flat)
    num = _decay_scan(torch.where(valid, flat, 0.0), beta)
    den = _decay_scan(valid.to(torch.float64), beta)
    y = num / torch.where(valid, den, 1.0)
    days = torch.arange(T, device=x.device).view(T, 1)
    last = torch.where(valid, days, -1).cummax(0).values
    y = torch.gather(y, 0, last.clamp_min(0))
    ok = (last >= 0) & (valid.cumsum(0) >= m)
    out = torch.where(ok, y, _NAN).to(x.dtype).reshape(x.shape)
    return finite_or_nan(out)


# ----------------------------------------------------------------------------- elementwise
def power(a: torch.Tensor | float, b: torch.Tensor | float) -> torch.Tensor:
    """``a ** b`` (NaN for a negative base with a fractional exponent and for ``0 ** -c``)."""
    a_t, b_t = _as_tensors(a, b)
    return finite_or_nan(torch.pow(a_t, b_t))


def _compare(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
             ) -> Callable[..., torch.Tensor]:
    def kernel(a: torch.Tensor | float, b: torch.Tensor | float) -> torch.Tensor:
        a_t, b_t = _as_tensors(a, b)
        out = fn(a_t, b_t).to(a_t.dtype if a_t.is_floating_point() else torch.float32)
        return torch.where(torch.isnan(a_t) | torch.isnan(b_t), _NAN, out)

    kernel.__doc__ = f"1.0 where ``{fn.__name__}(a, b)`` else 0.0; NaN if either side is NaN."
    return kernel


gt = _compare(torch.gt)
ge = _compare(torch.ge)
lt = _compare(torch.lt)
le = _compare(torch.le)
eq = _compare(torch.eq)
ne = _compare(torch.ne)


def if_then_else(cond: torch.Tensor | float, a: torch.Tensor | float,
                 b: torch.Tensor | float) -> torch.Tensor:
    """``a`` where ``cond != 0``, ``b`` where ``cond == 0``, NaN where ``cond`` is NaN."""
    ref = next(v for v in (cond, a, b) if isinstance(v, torch.Tensor))
    c_t, a_t, b_t = (v if isinstance(v, torch.Tensor) else torch.full_like(ref, float(v))
                     for v in (cond, a, b))
    out = torch.where(c_t != 0, a_t, b_t)
    return finite_or_nan(torch.where(torch.isnan(c_t), _NAN, out))


def fill_nan(x: torch.Tensor, c: float) -> torch.Tensor:
    """``x`` with NaN replaced by the constant ``c``."""
    return torch.where(torch.isnan(x), float(c), x)


# ----------------------------------------------------------------------------- partial windows
def _partial_reduce(x: torch.Tensor, d: int, min_periods: int | None, how: str) -> torch.Tensor:
    """NaN-skipping rolling statistic (pandas ``rolling(d, min_periods)`` semantics)."""
    d = _check_window(d)
    m = _min_count(d, min_periods)
    need = {"std": 2, "var": 2, "skew": 3, "kurt": 4}.get(how, 1)

    def fn(present: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        u = u.to(torch.float64)
        valid = ~torch.isnan(u)
        n = valid.sum(-1)
        nf = n.to(torch.float64)
        if how == "sum":
            res = torch.where(valid, u, 0.0).sum(-1)
        elif how == "max":
            res = torch.where(valid, u, -math.inf).amax(-1)
        elif how == "min":
            res = torch.where(valid, u, math.inf).amin(-1)
        elif how == "med":
            res = _sorted_quantile(u, valid, 0.5)
        elif how == "rank":  # pandas rolling rank(pct=True): today among the valid values
            today = u[..., -1:]
            less = (u < today).sum(-1).to(torch.float64)
            same = (u == today).sum(-1).to(torch.float64)
            res = torch.where(torch.isnan(today[..., 0]), _NAN,
                              (less + (same + 1.0) * 0.5) / nf)
        else:
            _, mean, dev = _moments(u, valid)
            const = _constant(u, valid)
            if how == "mean":
                res = mean
            elif how == "mad":
                res = dev.abs().sum(-1) / nf
            else:
                m2 = (dev * dev).sum(-1)
                if how in ("var", "std"):
                    var = torch.where(const, 0.0, m2 / (nf - 1.0))
                    res = var if how == "var" else var.sqrt()
                else:
                    b2 = torch.where(const, 1.0, m2 / nf)
                    if how == "skew":
                        m3 = (dev ** 3).sum(-1) / nf
                        res = (nf * (nf - 1.0)).sqrt() / (nf - 2.0) * m3 / b2 ** 1.5
                    else:
                        m4 = (dev ** 4).sum(-1) / nf
                        res = ((nf * nf - 1.0) * m4 / (b2 * b2) - 3.0 * (nf - 1.0) ** 2) / (
                            (nf - 2.0) * (nf - 3.0))
                    res = torch.where(const, _NAN, res)
        return torch.where(n >= max(m, need), res, _NAN)

    return _padded_windows((x,), d, fn)


def _partial(how: str) -> Callable[..., torch.Tensor]:
    def kernel(x: torch.Tensor, d: int, min_periods: int | None = None) -> torch.Tensor:
        return _partial_reduce(x, d, min_periods, how)

    kernel.__name__ = f"partial_{how}"
    kernel.__doc__ = f"Rolling {how} over the valid values of each window (pandas min_periods)."
    return kernel


partial_sum = _partial("sum")
partial_mean = _partial("mean")
partial_std = _partial("std")
partial_var = _partial("var")
partial_skew = _partial("skew")
partial_kurt = _partial("kurt")
partial_max = _partial("max")
partial_min = _partial("min")
partial_med = _partial("med")
partial_mad = _partial("mad")
partial_rank = _partial("rank")


def _partial_pair(x: torch.Tensor, y: torch.Tensor, d: int, min_periods: int | None,
                  corr: bool) -> torch.Tensor:
    d = _check_window(d)
    m = max(2, _min_count(d, min_periods))
    partial = min_periods is not None

    def fn(present: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        u, v = u.to(torch.float64), v.to(torch.float64)
        valid = ~torch.isnan(u) & ~torch.isnan(v)  # pairwise-complete days, as pandas
        n, _, du = _moments(u, valid)
        _, _, dv = _moments(v, valid)
        nf = n.to(torch.float64)
        cuv = (du * dv).sum(-1)
        cu, cv = _constant(u, valid), _constant(v, valid)
        if corr:
            den = ((du * du).sum(-1) * (dv * dv).sum(-1)).sqrt()
            res = torch.where(cu | cv, _NAN, (cuv / den).clamp(-1.0, 1.0))
            if partial:  # qlib masks sides whose own rolling std is close to 0
                for w in (u, v):
                    own = ~torch.isnan(w)
                    cnt, _, dw = _moments(w, own)
                    sd = ((dw * dw).sum(-1) / (cnt - 1.0)).sqrt()
                    sd = torch.where(_constant(w, own), 0.0, sd)
                    res = torch.where(sd.abs() <= QLIB_CORR_STD_ATOL, _NAN, res)
        else:
            res = torch.where(cu | cv, 0.0, cuv / (nf - 1.0))
        return torch.where(n >= m, res, _NAN)

    return _padded_windows((x, y), d, fn)


def partial_cov(x: torch.Tensor, y: torch.Tensor, d: int, min_periods: int | None = None
                ) -> torch.Tensor:
    """Rolling covariance (ddof=1) over the window's pairwise-valid days."""
    return _partial_pair(x, y, d, min_periods, corr=False)


def partial_corr(x: torch.Tensor, y: torch.Tensor, d: int, min_periods: int | None = None
                 ) -> torch.Tensor:
    """Rolling correlation over pairwise-valid days; with ``min_periods`` also qlib's mask.

    qlib's ``Corr`` is NaN where either side's own rolling std is within 2e-5 of 0.
    """
    return _partial_pair(x, y, d, min_periods, corr=True)
