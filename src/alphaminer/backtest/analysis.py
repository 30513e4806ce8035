"""Signal analysis that does not need a portfolio: quantile (group) returns and IC series.

Forward returns here use the same execution convention as :func:`~alphaminer.backtest.run_backtest`:
the signal on day ``t`` is traded at day ``t+1``'s deal price and held ``horizon`` days, i.e. the
return of name ``s`` for signal day ``t`` is ``P[t+1+h, s] / P[t+1, s] − 1`` with ``P`` the deal
price. A name enters a day's groups only if its signal is finite, it is in the universe on ``t``,
it is tradable on ``t+1`` and both prices exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from alphaminer.backtest.metrics import STANDARD_ANNUALISATION
from alphaminer.backtest.portfolio import DEAL_PRICES, signal_to_numpy
from alphaminer.data.labels import forward_returns as _forward_returns
from alphaminer.evaluation import daily_ic, daily_rank_ic, ic_stats
from alphaminer.evaluation.robust import robust_ic
from alphaminer.expr.kernels import cs_rank
from alphaminer.panel import Panel


@dataclass
class QuantileResult:
    """Output of :func:`quantile_analysis`.

    Attributes:
        returns: index = signal day; columns ``Q1 … Qn`` (Q1 = lowest signal, Qn = highest),
            ``long_short`` (= Qn − Q1) and ``universe`` (equal-weight mean of all valid names).
            Each value is the mean forward ``horizon``-day return of the group (NaN on days with
            fewer valid names than groups).
        cumulative: ``cumsum(returns) / horizon`` (NaN days count as 0): the arithmetic
            cumulative return of a book that re-invests ``1/horizon`` of itself every day
            (no compounding, so horizons > 1 with overlapping returns stay comparable).
        summary: per column: ``mean``, ``std``, ``ann_return`` (mean · N/horizon),
            ``ir`` (mean/std · √(N/horizon)), ``hit_rate`` (share of days > 0), ``n_days``.
        counts: number of names per group per day.
        monotonicity: Spearman correlation between group number and mean group return
            (+1 = perfectly increasing from Q1 to Qn).
    """

    returns: pd.DataFrame
    cumulative: pd.DataFrame
    summary: pd.DataFrame
    counts: pd.DataFrame
    monotonicity: float
    horizon: int
    deal_price: str


def forward_returns(panel: Panel, horizon: int = 1, deal_price: str = "open") -> np.ndarray:
    """``[T, S]`` float64: ``P[t+1+h]/P[t+1] − 1`` (NaN where not executable or unknown).

    Requires the name to be tradable on ``t+1`` (the entry day). The last ``horizon + 1`` rows
    are NaN.
    """
    if int(horizon) != horizon or horizon < 1:
        raise ValueError(f"horizon must be a positive integer, got {horizon!r}")
    if deal_price not in DEAL_PRICES:
        raise ValueError(f"deal_price must be one of {DEAL_PRICES}, got {deal_price!r}")
    if not panel.has_feature(deal_price):
        raise KeyError(f"feature {deal_price!r} not in panel; available {panel.features}")
    p = panel.feature(deal_price).detach().to("cpu", torch.float64)
    ok = panel.observed.cpu() & torch.isfinite(p) & (p > 0)
    # the project's one forward-return definition, entered at t+1 (when the signal of day t
    # can first be traded) and only if the name is tradable then
    return _forward_returns(p, horizon, lag=1, valid=ok,
                           entry_valid=panel.tradable.cpu()).numpy()


def quantile_analysis(
    signal: torch.Tensor | np.ndarray | pd.DataFrame,
    panel: Panel,
    n_groups: int = 5,
    horizon: int = 1,
    *,
    deal_price: str = "open",
    annualisation: int = STANDARD_ANNUALISATION,
) -> QuantileResult:
    """Split each day's valid names into ``n_groups`` by signal and average forward returns.

    Groups come from average ranks (ties share a group): a name with average rank ``r`` among
    ``n`` valid names goes to group ``ceil(r·G/n)`` (1-based), so groups are equal-sized up to
    rounding and Q``G`` holds the highest signals.
    """
    if int(n_groups) != n_groups or n_groups < 2:
        raise ValueError(f"n_groups must be an integer >= 2, got {n_groups!r}")
    G = int(n_groups)
    sig = signal_to_numpy(signal, panel)
    fwd = forward_returns(panel, horizon, deal_price)
    universe = panel.universe.cpu().numpy()
    valid = np.isfinite(sig) & np.isfinite(fwd) & universe
    T, S = sig.shape
    x = torch.from_numpy(np.where(valid, sig, np.nan))
    pct = cs_rank(x).numpy()                                   # average rank / n, in (0, 1]
    n = valid.sum(1)
    twice_rank = np.rint(np.nan_to_num(pct) * n[:, None] * 2).astype(np.int64)  # 2r, exact
    grp = -(-(twice_rank * G) // np.maximum(2 * n[:, None], 1)) - 1       # ceil(rG/n) - 1
    day_ok = n >= G
    use = valid & day_ok[:, None]
    flat = (np.arange(T)[:, None] * G + grp)[use]
    sums = np.bincount(flat, weights=fwd[use], minlength=T * G).reshape(T, G)
    cnts = np.bincount(flat, minlength=T * G).reshape(T, G)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(cnts > 0, sums / np.maximum(cnts, 1), np.nan)
        uni = np.where(day_ok, np.where(use, fwd, 0.0).sum(1) / np.maximum(n, 1), np.nan)
    cols = [f"Q{i + 1}" for i in range(G)]
    rets = pd.DataFrame(means, index=panel.dates, columns=cols)
    rets.index.name = "date"
    rets["long_short"] = rets[cols[-1]] - rets[cols[0]]
    rets["universe"] = uni
    rets = rets.loc[day_ok]
    cum = rets.fillna(0.0).cumsum() / horizon
    scale = annualisation / horizon
    mean, std = rets.mean(), rets.std(ddof=1)
    summary = pd.DataFrame({
        "mean": mean,
        "std": std,
        "ann_return": mean * scale,
        "ir": mean / std.where(std > 0) * np.sqrt(scale),
        "hit_rate": (rets > 0).sum() / rets.notna().sum(),
        "n_days": rets.notna().sum().astype(float),
    })
    group_means = mean[cols].to_numpy()
    if np.isfinite(group_means).sum() >= 2 and np.nanstd(group_means) > 0:
        gm = pd.Series(group_means)
        mono = float(gm.rank().corr(pd.Series(np.arange(G, dtype=float))))
    else:
        mono = float("nan")
    counts = pd.DataFrame(cnts, index=panel.dates, columns=cols).loc[day_ok]
    return QuantileResult(returns=rets, cumulative=cum, summary=summary, counts=counts,
                          monotonicity=mono, horizon=int(horizon), deal_price=deal_price)


def quantile_metrics(q: QuantileResult) -> dict[str, Any]:
    """Flat dict for reports: mean return per group, long–short mean/IR, monotonicity."""
    out: dict[str, Any] = {f"{c}_mean": float(q.summary.loc[c, "mean"])
                           for c in q.summary.index}
    out["long_short_ir"] = float(q.summary.loc["long_short", "ir"])
    out["long_short_hit_rate"] = float(q.summary.loc["long_short", "hit_rate"])
    out["monotonicity"] = q.monotonicity
    return out


@dataclass
class ICResult:
    """Output of :func:`ic_analysis`.

    Attributes:
        daily: index = date (or position without a panel); columns ``ic``, ``rank_ic``.
        summary: ``ic, ic_std, icir, rank_ic, rank_ic_std, rank_icir, n_days`` (IR = mean/std,
            not annualised) plus ``ic_positive_rate`` / ``rank_ic_positive_rate`` (share of days
            with a positive value).
    """

    daily: pd.DataFrame
    summary: dict[str, float]


def ic_analysis(
    signal: torch.Tensor | np.ndarray | pd.DataFrame,
    label: torch.Tensor | np.ndarray | pd.DataFrame,
    panel: Panel | None = None,
    min_stocks: int = 10,
    horizon: int | None = None,
) -> ICResult:
    """Daily IC / RankIC of ``signal`` against ``label`` (both ``[T, S]``, aligned).

    The summary also has each series' share of positive days and its Newey–West t-statistic
    (:func:`alphaminer.evaluation.robust.robust_ic`, ``horizon − 1`` lags when ``horizon`` is
    given: daily ICs of an ``h``-day label overlap, so the plain t overstates significance).

    Correlations come from :func:`alphaminer.evaluation.metrics.daily_ic` /
    :func:`~alphaminer.evaluation.metrics.daily_rank_ic` (the project's single definition). With
    a ``panel``, long-frame inputs are aligned to it, both sides are restricted to the
    point-in-time universe and the result is indexed by date.
    """
    if panel is not None:
        sig = signal_to_numpy(signal, panel)
        lab = signal_to_numpy(label, panel)
        uni = panel.universe.cpu().numpy()
        sig = np.where(uni, sig, np.nan)
        lab = np.where(uni, lab, np.nan)
        index: pd.Index = pd.DatetimeIndex(panel.dates, name="date")
    else:
        if isinstance(signal, pd.DataFrame) or isinstance(label, pd.DataFrame):
            raise ValueError("ic_analysis needs a panel to align long-frame inputs")
        sig = np.asarray(signal.detach().cpu() if isinstance(signal, torch.Tensor) else signal,
                         dtype=np.float64)
        lab = np.asarray(label.detach().cpu() if isinstance(label, torch.Tensor) else label,
                         dtype=np.float64)
        if sig.ndim != 2 or sig.shape != lab.shape:
            raise ValueError(f"signal {sig.shape} and label {lab.shape} must both be [T, S]")
        index = pd.RangeIndex(sig.shape[0], name="day")
    f = torch.from_numpy(np.ascontiguousarray(sig))
    y = torch.from_numpy(np.ascontiguousarray(lab))
    ic = daily_ic(f, y, min_stocks=min_stocks)
    ric = daily_rank_ic(f, y, min_stocks=min_stocks)
    daily = pd.DataFrame({"ic": ic.cpu().numpy(), "rank_ic": ric.cpu().numpy()}, index=index)
    summary: dict[str, float] = {}
    for name, series in (("ic", ic), ("rank_ic", ric)):
        m, s, ir, n = ic_stats(series)
        summary[name] = float(m)
        summary[f"{name}_std"] = float(s)
        summary[f"{name}ir"] = float(ir)  # icir / rank_icir
        summary["n_days"] = float(n)
        d = series.cpu().numpy()
        ok = np.isfinite(d)
        summary[f"{name}_positive_rate"] = float(np.mean(d[ok] > 0)) if ok.any() else float("nan")
        rob = robust_ic(d, horizon=horizon)
        summary[f"{name}_nw_t"] = float(rob.nw_t)
        summary[f"{name}_nw_lags"] = float(rob.lags)
    return ICResult(daily=daily, summary=summary)
