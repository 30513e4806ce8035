"""The factor tear sheet: what a signal does beyond its headline IC, day by day.

Two kinds of functions live here:

- :func:`factor_tearsheet` needs the signal and the panel: the daily IC / RankIC of the signal
  against the forward return of each horizon (the IC decay) and the daily rank autocorrelation
  of the signal. It is the one place of :mod:`alphaminer.reporting` that reads a
  :class:`~alphaminer.panel.Panel`; it uses the project's single definitions
  (:func:`alphaminer.data.labels.make_labels` over
  :func:`~alphaminer.data.labels.forward_returns`, and
  :func:`alphaminer.evaluation.metrics.daily_ic` / ``daily_rank_ic`` /
  ``rank_autocorrelation``), imported lazily so the rest of the package stays plain data.
- The summaries (:func:`ic_decay`, :func:`monthly_ic`, :func:`rank_autocorr_summary`,
  :func:`quantile_cumulative`, :func:`quantile_spread`, :func:`excess_with_without_cost`) take
  the plain frames of :class:`~alphaminer.reporting.results.MethodResults`.

No look-ahead: the row of day ``t`` reads the signal on ``t`` (and ``t - lag`` for the
autocorrelation) and the forward return that starts at ``t`` (``h`` days ahead, as the label
defines it); nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

#: IC-decay horizons (days) of the tear sheet; the label's own horizon is always added.
DEFAULT_HORIZONS: tuple[int, ...] = (1, 5, 10, 20)
#: lags (days) of the signal's rank autocorrelation.
DEFAULT_LAGS: tuple[int, ...] = (1, 5, 20)

_IC_COL = re.compile(r"^(rank_ic|ic)_(\d+)d$")
_AC_COL = re.compile(r"^rank_autocorr_(\d+)d$")


def factor_tearsheet(signal: Any, panel: Any, segment: tuple[int, int],
                     horizons: Sequence[int] = DEFAULT_HORIZONS,
                     lags: Sequence[int] = DEFAULT_LAGS, kind: str = "close",
                     min_stocks: int = 10) -> pd.DataFrame:
    """Daily tear-sheet series of ``signal`` on the day range ``segment = (i0, i1)``.

    Args:
        signal: ``[T, S]`` tensor/array aligned with ``panel``.
        panel: the :class:`~alphaminer.panel.Panel` the signal was computed on.
        segment: half-open day-index range (e.g. the test split).
        horizons: forward-return horizons ``h``: column ``ic_<h>d`` / ``rank_ic_<h>d`` is the
            daily IC / RankIC of the signal with the ``h``-day label of ``kind``
            (``make_labels(panel, h, kind)``, so ``h`` = the label horizon reproduces the label IC).
        lags: column ``rank_autocorr_<lag>d`` is the Spearman correlation of the signal's
            cross-sections on ``t`` and ``t - lag`` (days before the panel starts are NaN).
        kind: the label kind (``close`` or ``vwap_lag``), as ``ingestion.labels.kind``.
        min_stocks: fewer valid pairs on a day → NaN.

    Both sides are restricted to the point-in-time universe (as ``ic_analysis`` does).
    Returns a frame with a ``date`` column and one float64 column per series.
    """
    import torch

    from alphaminer.data.labels import make_labels
    from alphaminer.evaluation.metrics import daily_ic, daily_rank_ic, rank_autocorrelation

    i0, i1 = (int(v) for v in segment)
    if not 0 <= i0 < i1 <= panel.T:
        raise ValueError(f"segment {segment!r} is not a day range inside [0, {panel.T})")
    hs = sorted({int(h) for h in horizons})
    ls = sorted({int(v) for v in lags})
    if not hs or min(hs) < 1 or (ls and min(ls) < 1):
        raise ValueError(f"horizons and lags must be positive integers, got {horizons}, {lags}")
    sig = torch.as_tensor(np.asarray(signal.detach().cpu() if hasattr(signal, "detach")
                                     else signal, dtype=np.float32))
    if tuple(sig.shape) != (panel.T, panel.S):
        raise ValueError(f"signal shape {tuple(sig.shape)} != panel [T, S] = "
                         f"{(panel.T, panel.S)}")
    sig = panel.mask_universe(sig.to(panel.universe.device)).cpu()
    out: dict[str, np.ndarray] = {}
    seg = sig[i0:i1]
    for h in hs:
        if h >= panel.T:
            raise ValueError(f"horizon {h} >= number of dates {panel.T}")
        # the segment's labels read at most h + 1 days past it (vwap_lag): label only those
        sub = panel.slice_dates(i0, min(panel.T, i1 + h + 1))
        if h < sub.T:
            lab = make_labels(sub, h, kind).cpu()[: i1 - i0]
        else:  # every forward return of the segment lies beyond the data
            lab = torch.full_like(seg, float("nan"))
        out[f"ic_{h}d"] = daily_ic(seg, lab, min_stocks).numpy()
        out[f"rank_ic_{h}d"] = daily_rank_ic(seg, lab, min_stocks).numpy()
    for lag in ls:
        s0 = max(0, i0 - lag)  # the days before the segment the first autocorrelations read
        ac = rank_autocorrelation(sig[s0:i1], lag, min_stocks).numpy()
        out[f"rank_autocorr_{lag}d"] = ac[i0 - s0:]
    frame = pd.DataFrame(out)
    frame.insert(0, "date", pd.DatetimeIndex(panel.dates[i0:i1]))
    return frame


def _dated(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["date"] = pd.to_datetime(out["date"])
    return out.sort_values("date").reset_index(drop=True)


def ic_decay(tearsheet: pd.DataFrame) -> pd.DataFrame:
    """Mean daily IC and RankIC per horizon (index ``horizon``; ``n_days`` with a finite IC)."""
    rows: dict[int, dict[str, float]] = {}
    for col in tearsheet.columns:
        m = _IC_COL.match(str(col))
        if not m:
            continue
        v = pd.to_numeric(tearsheet[col], errors="coerce")
        row = rows.setdefault(int(m.group(2)), {})
        row[m.group(1)] = float(v.mean())
        if m.group(1) == "ic":
            row["n_days"] = float(v.notna().sum())
    out = pd.DataFrame.from_dict(rows, orient="index").sort_index()
    out.index.name = "horizon"
    return out.reindex(columns=[c for c in ("ic", "rank_ic", "n_days") if c in out.columns])


def rank_autocorr_summary(tearsheet: pd.DataFrame) -> pd.Series:
    """Mean daily rank autocorrelation per lag (index ``lag``)."""
    vals = {int(m.group(1)): float(pd.to_numeric(tearsheet[c], errors="coerce").mean())
            for c in tearsheet.columns if (m := _AC_COL.match(str(c)))}
    return pd.Series(dict(sorted(vals.items())), name="rank_autocorr", dtype=np.float64
                     ).rename_axis("lag")


def monthly_ic(ic_series: pd.DataFrame, column: str = "ic") -> pd.DataFrame:
    """Mean daily ``column`` per calendar month: rows = year, columns = month 1..12 (NaN: none)."""
    d = _dated(ic_series)
    v = pd.to_numeric(d[column], errors="coerce")
    g = v.groupby([d["date"].dt.year.rename("year"), d["date"].dt.month.rename("month")]).mean()
    return g.unstack("month").reindex(columns=range(1, 13))


def quantile_cumulative(quantiles: pd.DataFrame, columns: Sequence[str],
                        horizon: int = 1) -> pd.DataFrame:
    """Cumulative return of each quantile group: ``cumsum(r) / horizon`` (NaN days count 0),
    as ``alphaminer.backtest.quantile_analysis`` defines it (a book re-investing ``1/h`` a day)."""
    d = _dated(quantiles)
    vals = d[list(columns)].apply(pd.to_numeric, errors="coerce")
    out = vals.fillna(0.0).cumsum() / int(horizon)
    out.insert(0, "date", d["date"])
    return out


def quantile_spread(quantiles: pd.DataFrame, top: str, bottom: str,
                    window: int = 20) -> pd.DataFrame:
    """Daily top-minus-bottom spread with its trailing ``window``-day mean and std (at least
    half the window present): the band drawn is ``mean ± std``."""
    d = _dated(quantiles)
    s = pd.to_numeric(d[top], errors="coerce") - pd.to_numeric(d[bottom], errors="coerce")
    minp = max(2, window // 2)
    return pd.DataFrame({"date": d["date"], "spread": s,
                         "rolling_mean": s.rolling(window, min_periods=minp).mean(),
                         "rolling_std": s.rolling(window, min_periods=minp).std(ddof=1)})


def excess_with_without_cost(daily: pd.DataFrame) -> pd.DataFrame:
    """Daily excess return over the benchmark after costs (the backtest's ``excess_return``)
    and before them (adding back ``cost / previous equity``, the day's cost as a return).

    The previous day's equity is ``equity / (1 + return)``, exact for the backtest's frame.
    Columns ``date, excess_net`` and, when the frame has ``cost`` and ``equity``,
    ``excess_gross`` and ``cost_return``.
    """
    d = _dated(daily)
    ret = pd.to_numeric(d["return"], errors="coerce")
    if "excess_return" in d.columns:
        net = pd.to_numeric(d["excess_return"], errors="coerce")
    else:
        net = ret - pd.to_numeric(d["benchmark_return"], errors="coerce")
    out = pd.DataFrame({"date": d["date"], "excess_net": net})
    if {"cost", "equity"} <= set(d.columns):
        prev = pd.to_numeric(d["equity"], errors="coerce") / (1.0 + ret)
        cost_ret = pd.to_numeric(d["cost"], errors="coerce") / prev
        out["cost_return"] = cost_ret
        out["excess_gross"] = net + cost_ret
    return out
