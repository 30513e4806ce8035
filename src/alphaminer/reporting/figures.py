"""Per-method figures of the research report.

Figures are built as bare :class:`matplotlib.figure.Figure` objects with an Agg canvas attached
(no pyplot state, no global backend switch, safe in a notebook with another backend); Kedro can
save them with ``matplotlib.MatplotlibWriter`` and the HTML report embeds them as PNG.
"""

from __future__ import annotations

import base64
import io
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from alphaminer.reporting.results import MethodResults
from alphaminer.reporting.tearsheet import (
    excess_with_without_cost,
    ic_decay,
    monthly_ic,
    quantile_cumulative,
    quantile_spread,
    rank_autocorr_summary,
)

#: Keys of :func:`method_figures`, in report order.
FIGURE_KEYS = ("cumret_vs_benchmark", "drawdown", "ic_series", "quintiles", "turnover")
#: Keys of :func:`tearsheet_figures` (the factor tear sheet), in report order.
TEARSHEET_KEYS = ("ic_distribution", "monthly_ic", "ic_decay", "quantile_cumulative",
                  "quantile_spread", "rank_autocorr", "excess_cost")

_QCOL = re.compile(r"^q(\d+)$", re.IGNORECASE)
_COLORS = {"strategy": "#1f4e9c", "benchmark": "#8a8a8a", "excess": "#d9480f",
           "ic": "#1f4e9c", "rank_ic": "#2b8a3e", "neg": "#c92a2a", "pos": "#2b8a3e"}


@dataclass(frozen=True)
class FigureConfig:
    """Display choices for the figures.

    Attributes:
        rolling_window: days of the rolling mean drawn over IC and turnover series.
        annualisation: trading days per year used to annualise the quantile group returns
            (``mean · annualisation / h`` with ``h`` = ``MethodResults.quantile_horizon``).
        width, height: inches of a single-panel figure.
        dpi: resolution of the embedded PNGs.
    """

    rolling_window: int = 20
    annualisation: int = 252
    width: float = 9.0
    height: float = 3.4
    dpi: int = 100

    def __post_init__(self) -> None:
        for name in ("rolling_window", "annualisation", "dpi"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"FigureConfig.{name} must be >= 1, got {getattr(self, name)}")


def _new_figure(cfg: FigureConfig, ncols: int = 1) -> Figure:
    # fixed margins: constrained layout would double the drawing time of every figure
    fig = Figure(figsize=(cfg.width, cfg.height), dpi=cfg.dpi)
    FigureCanvasAgg(fig)
    fig.subplots(1, ncols)
    fig.subplots_adjust(left=0.08, right=0.985, top=0.9, bottom=0.12, wspace=0.22)
    return fig


def _sorted_by_date(frame: pd.DataFrame, what: str) -> pd.DataFrame:
    if "date" not in frame.columns:
        raise ValueError(f"{what} needs a 'date' column; has {list(frame.columns)}")
    out = frame.copy()
    out["date"] = pd.to_datetime(out["date"])
    return out.sort_values("date").reset_index(drop=True)


def _num(frame: pd.DataFrame, col: str) -> np.ndarray:
    return pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=np.float64)


def _growth(returns: np.ndarray) -> np.ndarray:
    """Compounded wealth of 1 invested before the first day (NaN returns count as 0)."""
    return np.cumprod(1.0 + np.nan_to_num(returns, nan=0.0))


def _no_data(ax, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes,
            color="#666666", fontsize=11)
    ax.set_xticks([])
    ax.set_yticks([])


def _date_axis(ax) -> None:
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.grid(True, alpha=0.3)


def _pct_axis(ax) -> None:
    ax.yaxis.set_major_formatter(lambda v, _pos: f"{v:.0%}" if abs(v) >= 0.1 or v == 0
                                 else f"{v:.1%}")


def cumret_figure(daily: pd.DataFrame, title: str = "", cfg: FigureConfig | None = None) -> Figure:
    """Compounded cumulative return of the strategy vs the benchmark (+ arithmetic excess)."""
    cfg = cfg or FigureConfig()
    fig = _new_figure(cfg)
    ax = fig.axes[0]
    ax.set_title(f"{title} — cumulative return vs benchmark".strip(" —"))
    if len(daily) == 0 or "return" not in daily.columns:
        _no_data(ax, "no backtest days")
        return fig
    d = _sorted_by_date(daily, "daily")
    ax.plot(d["date"], _growth(_num(d, "return")) - 1.0, color=_COLORS["strategy"], lw=1.6,
            label="strategy (compounded)")
    if "benchmark_return" in d.columns:
        ax.plot(d["date"], _growth(_num(d, "benchmark_return")) - 1.0,
                color=_COLORS["benchmark"], lw=1.3, label="benchmark (compounded)")
    if "excess_return" in d.columns:
        ax.plot(d["date"], np.nancumsum(_num(d, "excess_return")), color=_COLORS["excess"],
                lw=1.1, ls="--", label="excess (cumulative sum)")
    ax.axhline(0.0, color="black", lw=0.6)
    _date_axis(ax)
    _pct_axis(ax)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    return fig


def drawdown_figure(daily: pd.DataFrame, title: str = "",
                    cfg: FigureConfig | None = None) -> Figure:
    """Drawdown of the compounded equity curve (wealth starts at 1 before day one)."""
    cfg = cfg or FigureConfig()
    fig = _new_figure(cfg)
    ax = fig.axes[0]
    ax.set_title(f"{title} — drawdown".strip(" —"))
    if len(daily) == 0 or "return" not in daily.columns:
        _no_data(ax, "no backtest days")
        return fig
    d = _sorted_by_date(daily, "daily")

    def dd(r: np.ndarray) -> np.ndarray:
        w = np.concatenate([[1.0], _growth(r)])
        return (w / np.maximum.accumulate(w) - 1.0)[1:]

    s = dd(_num(d, "return"))
    ax.fill_between(d["date"], s, 0.0, color=_COLORS["neg"], alpha=0.35, lw=0,
                    label=f"strategy (max {s.min():.1%})")
    ax.plot(d["date"], s, color=_COLORS["neg"], lw=0.9)
    if "benchmark_return" in d.columns:
        b = dd(_num(d, "benchmark_return"))
        ax.plot(d["date"], b, color=_COLORS["benchmark"], lw=1.0,
                label=f"benchmark (max {b.min():.1%})")
    _date_axis(ax)
    _pct_axis(ax)
    ax.legend(loc="lower left", fontsize=8, frameon=False)
    return fig


def ic_figure(ic_series: pd.DataFrame, title: str = "", cfg: FigureConfig | None = None,
              label_horizon: int | None = None) -> Figure:
    """Daily IC (thin) with its rolling mean (bold), the RankIC rolling mean and the mean IC."""
    cfg = cfg or FigureConfig()
    fig = _new_figure(cfg)
    ax = fig.axes[0]
    w = cfg.rolling_window
    if len(ic_series) == 0:
        ax.set_title(f"{title} — IC series".strip(" —"))
        _no_data(ax, "no IC series")
        return fig
    d = _sorted_by_date(ic_series, "ic_series")
    ic = pd.Series(_num(d, "ic"))
    mean = float(np.nanmean(ic)) if ic.notna().any() else float("nan")
    std = float(ic.std(ddof=1))
    icir = mean / std if std > 0 else float("nan")
    vs = f" vs the {horizon_text(label_horizon)}" if label_horizon else ""
    ax.set_title(f"{title} — daily IC{vs} (mean {mean:.4f}, ICIR {icir:.3f})".strip(" —"))
    ax.plot(d["date"], ic, color=_COLORS["ic"], lw=0.5, alpha=0.35, label="daily IC")
    minp = max(1, w // 2)
    ax.plot(d["date"], ic.rolling(w, min_periods=minp).mean(), color=_COLORS["ic"], lw=1.8,
            label=f"IC, {w}-day rolling mean")
    if "rank_ic" in d.columns:
        ric = pd.Series(_num(d, "rank_ic"))
        ax.plot(d["date"], ric.rolling(w, min_periods=minp).mean(), color=_COLORS["rank_ic"],
                lw=1.4, label=f"RankIC, {w}-day rolling mean")
    ax.axhline(0.0, color="black", lw=0.6)
    if np.isfinite(mean):
        ax.axhline(mean, color=_COLORS["excess"], lw=0.9, ls=":", label="mean IC")
    _date_axis(ax)
    ax.legend(loc="upper left", fontsize=8, frameon=False, ncols=2)
    return fig


def quantile_columns(quantiles: pd.DataFrame) -> list[str]:
    """``q1..qN`` columns of a quantile frame, ordered by group number."""
    cols = [c for c in quantiles.columns if isinstance(c, str) and _QCOL.match(c)]
    return sorted(cols, key=lambda c: int(_QCOL.match(c).group(1)))


def quintile_figure(quantiles: pd.DataFrame, title: str = "",
                    cfg: FigureConfig | None = None, horizon: int = 1) -> Figure:
    """Left: annualised mean return per signal group; right: cumulative long–short (qN − q1).

    ``horizon`` is that of the forward returns: overlapping ``h``-day returns are annualised
    as ``mean · N / h`` and summed as ``cumsum / h`` (each day re-invests ``1/h`` of the book).
    """
    cfg = cfg or FigureConfig()
    fig = Figure(figsize=(cfg.width, cfg.height), dpi=cfg.dpi)
    FigureCanvasAgg(fig)
    ax_bar, ax_ls = fig.subplots(1, 2, width_ratios=[1, 1.6])
    fig.subplots_adjust(left=0.08, right=0.985, top=0.84, bottom=0.16, wspace=0.22)
    fig.suptitle(f"{title} — signal quantiles ({horizon_text(horizon, 'returns')})"
                 .strip(" —"))
    qcols = quantile_columns(quantiles)
    if len(quantiles) == 0 or not qcols:
        _no_data(ax_bar, "no quantile returns")
        _no_data(ax_ls, "no long–short series")
        return fig
    d = _sorted_by_date(quantiles, "quantiles")
    h = int(horizon)
    q = np.column_stack([_num(d, c) for c in qcols])
    ann = np.nanmean(q, axis=0) * cfg.annualisation / h
    colors = [_COLORS["pos"] if v >= 0 else _COLORS["neg"] for v in ann]
    ax_bar.bar(range(len(qcols)), ann, color=colors, alpha=0.8)
    if "universe" in d.columns:
        uni = np.nanmean(_num(d, "universe")) * cfg.annualisation / h
        ax_bar.axhline(uni, color=_COLORS["benchmark"], lw=1.2, ls="--",
                       label=f"universe ({uni:.1%})")
        ax_bar.legend(loc="best", fontsize=8, frameon=False)
    ax_bar.set_xticks(range(len(qcols)), [c.upper() for c in qcols])
    ax_bar.set_xlabel(f"group (Q{len(qcols)} = highest signal)")
    ax_bar.set_title("annualised mean return", fontsize=10)
    ax_bar.axhline(0.0, color="black", lw=0.6)
    ax_bar.grid(True, axis="y", alpha=0.3)
    _pct_axis(ax_bar)
    ls = _num(d, "long_short") if "long_short" in d.columns else q[:, -1] - q[:, 0]
    ax_ls.plot(d["date"], np.nancumsum(ls) / h, color=_COLORS["strategy"], lw=1.5)
    ax_ls.axhline(0.0, color="black", lw=0.6)
    ax_ls.set_title(f"cumulative long–short (sum{'' if h == 1 else f' / {h}'})", fontsize=10)
    _date_axis(ax_ls)
    _pct_axis(ax_ls)
    return fig


def turnover_figure(daily: pd.DataFrame, title: str = "",
                    cfg: FigureConfig | None = None) -> Figure:
    """Daily turnover with its rolling mean."""
    cfg = cfg or FigureConfig()
    fig = _new_figure(cfg)
    ax = fig.axes[0]
    if len(daily) == 0 or "turnover" not in daily.columns:
        ax.set_title(f"{title} — turnover".strip(" —"))
        _no_data(ax, "no turnover recorded")
        return fig
    d = _sorted_by_date(daily, "daily")
    t = pd.Series(_num(d, "turnover"))
    ax.set_title(f"{title} — daily turnover (mean {np.nanmean(t):.1%})".strip(" —"))
    ax.plot(d["date"], t, color=_COLORS["benchmark"], lw=0.6, alpha=0.7, label="daily")
    w = cfg.rolling_window
    ax.plot(d["date"], t.rolling(w, min_periods=max(1, w // 2)).mean(),
            color=_COLORS["strategy"], lw=1.6, label=f"{w}-day rolling mean")
    ax.set_ylim(bottom=0.0)
    _date_axis(ax)
    _pct_axis(ax)
    ax.legend(loc="upper right", fontsize=8, frameon=False)
    return fig


def method_figures(m: MethodResults, cfg: FigureConfig | None = None) -> dict[str, Figure]:
    """All figures of one method keyed by :data:`FIGURE_KEYS` (ready for ``MatplotlibWriter``)."""
    cfg = cfg or FigureConfig()
    return {
        "cumret_vs_benchmark": cumret_figure(m.daily, m.name, cfg),
        "drawdown": drawdown_figure(m.daily, m.name, cfg),
        "ic_series": ic_figure(m.ic_series, m.name, cfg, m.label_horizon),
        "quintiles": quintile_figure(m.quantiles, m.name, cfg, m.quantile_horizon),
        "turnover": turnover_figure(m.daily, m.name, cfg),
    }


def horizon_text(h: int | None, what: str = "label") -> str:
    """``"20-day label"`` (or ``"label"`` when the horizon is unknown): captions name horizons."""
    return f"{int(h)}-day {what}" if h is not None else what


def ic_distribution_figure(ic_series: pd.DataFrame, title: str = "",
                           cfg: FigureConfig | None = None,
                           label_horizon: int | None = None) -> Figure:
    """Histogram of the daily IC with the fitted normal density, and its QQ plot vs the normal
    (fat tails bend the points away from the line at both ends)."""
    from scipy import stats

    cfg = cfg or FigureConfig()
    fig = _new_figure(cfg, ncols=2)
    ax_h, ax_q = fig.axes
    fig.subplots_adjust(top=0.84, bottom=0.15)
    fig.suptitle(f"{title} — daily IC vs the {horizon_text(label_horizon)}".strip(" —"))
    ic = _num(ic_series, "ic") if len(ic_series) and "ic" in ic_series else np.array([])
    ic = ic[np.isfinite(ic)]
    if ic.size < 3:
        _no_data(ax_h, "fewer than 3 IC days")
        _no_data(ax_q, "fewer than 3 IC days")
        return fig
    mean, std = float(ic.mean()), float(ic.std(ddof=1))
    ax_h.hist(ic, bins=min(40, max(10, ic.size // 8)), density=True, color=_COLORS["ic"],
              alpha=0.55)
    if std > 0:
        x = np.linspace(ic.min(), ic.max(), 200)
        ax_h.plot(x, stats.norm.pdf(x, mean, std), color=_COLORS["excess"], lw=1.4,
                  label="normal fit")
        ax_h.legend(loc="upper left", fontsize=8, frameon=False)
    ax_h.axvline(mean, color="black", lw=0.8, ls=":")
    ax_h.set_title(f"histogram (mean {mean:.4f}, std {std:.4f}, skew "
                   f"{stats.skew(ic):.2f}, kurt {stats.kurtosis(ic):.2f})", fontsize=9)
    ax_h.grid(True, alpha=0.3)
    (osm, osr), (slope, intercept, _r) = stats.probplot(ic, dist="norm")
    ax_q.scatter(osm, osr, s=6, color=_COLORS["ic"], alpha=0.6)
    ax_q.plot(osm, slope * osm + intercept, color=_COLORS["excess"], lw=1.2)
    ax_q.set_xlabel("normal quantile", fontsize=8)
    ax_q.set_ylabel("daily IC quantile", fontsize=8)
    ax_q.set_title("QQ plot vs normal", fontsize=9)
    ax_q.grid(True, alpha=0.3)
    return fig


def monthly_ic_figure(ic_series: pd.DataFrame, title: str = "",
                      cfg: FigureConfig | None = None,
                      label_horizon: int | None = None) -> Figure:
    """Heatmap of the mean daily IC per year (rows) and month (columns), values printed."""
    cfg = cfg or FigureConfig()
    table = monthly_ic(ic_series) if len(ic_series) and "ic" in ic_series else pd.DataFrame()
    n_years = max(1, len(table))
    fig = Figure(figsize=(cfg.width, max(1.6, 0.9 + 0.42 * n_years)), dpi=cfg.dpi)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    fig.subplots_adjust(left=0.08, right=0.94, top=1 - 0.45 / fig.get_figheight(),
                        bottom=0.35 / fig.get_figheight())
    ax.set_title(f"{title} — monthly mean daily IC ({horizon_text(label_horizon)})"
                 .strip(" —"), fontsize=10)
    if table.empty or not np.isfinite(table.to_numpy(dtype=np.float64)).any():
        _no_data(ax, "no IC days")
        return fig
    v = table.to_numpy(dtype=np.float64)
    lim = float(np.nanmax(np.abs(v))) or 1.0
    im = ax.imshow(np.ma.masked_invalid(v), cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
    for (r, c), val in np.ndenumerate(v):
        if np.isfinite(val):
            ax.text(c, r, f"{val:.4f}", ha="center", va="center", fontsize=7,
                    color="white" if abs(val) > 0.6 * lim else "black")
    ax.set_xticks(range(12), ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
                              "Oct", "Nov", "Dec"], fontsize=8)
    ax.set_yticks(range(len(table)), [str(y) for y in table.index], fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.025, pad=0.01)
    return fig


def ic_decay_figure(tearsheets: dict[str, pd.DataFrame], title: str = "",
                    cfg: FigureConfig | None = None,
                    label_horizon: int | None = None) -> Figure:
    """Mean daily IC (solid) and RankIC (dashed) against the ``h``-day forward return for each
    horizon ``h``: one line pair per method (``tearsheets`` maps method → tear-sheet frame);
    with more than three methods, the IC line alone per method, the legend beside the axes."""
    cfg = cfg or FigureConfig()
    fig = _new_figure(cfg)
    ax = fig.axes[0]
    lab = f"; the label is the {horizon_text(label_horizon)}" if label_horizon else ""
    ax.set_title(f"{title} — IC decay over forward-return horizons{lab}".strip(" —"),
                 fontsize=10)
    decays = {k: ic_decay(t) for k, t in tearsheets.items() if t is not None and len(t)}
    decays = {k: d for k, d in decays.items() if len(d)}
    if not decays:
        _no_data(ax, "no tear sheet")
        return fig
    palette = [_COLORS["ic"], _COLORS["rank_ic"], _COLORS["excess"], "#7048e8", "#0c8599",
               "#e64980", "#5c940d", "#862e9c", "#a61e4d", "#364fc7", "#495057"]
    many = len(decays) > 3  # many methods: IC only, legend beside the axes
    if many:
        fig.subplots_adjust(right=0.8)
    for i, (name, d) in enumerate(decays.items()):
        col = palette[i % len(palette)]
        h = d.index.to_numpy()
        ax.plot(h, d["ic"], marker="o", color=col, lw=1.5, label=name if many else f"{name} IC")
        if "rank_ic" in d and not many:
            ax.plot(h, d["rank_ic"], marker="s", color=col, lw=1.0, ls="--",
                    label=f"{name} RankIC")
        if len(decays) == 1:
            for x, y in zip(h, d["ic"]):
                ax.annotate(f"{y:.4f}", (x, y), textcoords="offset points", xytext=(0, 6),
                            ha="center", fontsize=8)
    hs = sorted({int(x) for d in decays.values() for x in d.index})
    ax.set_xticks(hs, [f"{x}d" for x in hs])
    if label_horizon in hs:
        ax.axvline(label_horizon, color=_COLORS["benchmark"], lw=0.8, ls=":")
    ax.margins(y=0.18)  # room for the value labels
    ax.set_xlabel("forward-return horizon (days)", fontsize=8)
    ax.axhline(0.0, color="black", lw=0.6)
    ax.grid(True, alpha=0.3)
    if many:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    else:
        ax.legend(loc="best", fontsize=7, frameon=False)
    return fig


def quantile_cumulative_figure(quantiles: pd.DataFrame, title: str = "",
                               cfg: FigureConfig | None = None, horizon: int = 1) -> Figure:
    """Cumulative return of every signal group (``cumsum / h``, Q1 red … QN green)."""
    cfg = cfg or FigureConfig()
    fig = _new_figure(cfg)
    ax = fig.axes[0]
    ax.set_title(f"{title} — cumulative return per quantile ({horizon_text(horizon, 'returns')})"
                 .strip(" —"), fontsize=10)
    qcols = quantile_columns(quantiles)
    if len(quantiles) == 0 or not qcols:
        _no_data(ax, "no quantile returns")
        return fig
    cum = quantile_cumulative(quantiles, qcols, horizon)
    from matplotlib import colormaps

    cmap = colormaps["plasma"]  # dark (Q1) to orange (QN): every line visible on white
    for i, c in enumerate(qcols):
        ax.plot(cum["date"], cum[c], lw=1.3, color=cmap(0.85 * i / max(1, len(qcols) - 1)),
                label=f"{c.upper()} ({cum[c].iloc[-1]:.2%})")
    if "universe" in quantiles.columns:
        u = quantile_cumulative(quantiles, ["universe"], horizon)
        ax.plot(u["date"], u["universe"], lw=1.0, ls="--", color=_COLORS["benchmark"],
                label=f"universe ({u['universe'].iloc[-1]:.2%})")
    ax.axhline(0.0, color="black", lw=0.6)
    _date_axis(ax)
    _pct_axis(ax)
    ax.legend(loc="upper left", fontsize=8, frameon=False, ncols=2)
    return fig


def quantile_spread_figure(quantiles: pd.DataFrame, title: str = "",
                           cfg: FigureConfig | None = None, horizon: int = 1) -> Figure:
    """Daily top-minus-bottom group spread, its rolling mean and a ± 1 rolling-std band."""
    cfg = cfg or FigureConfig()
    fig = _new_figure(cfg)
    ax = fig.axes[0]
    qcols = quantile_columns(quantiles)
    if len(quantiles) == 0 or len(qcols) < 2:
        ax.set_title(f"{title} — quantile spread".strip(" —"))
        _no_data(ax, "no quantile returns")
        return fig
    w = cfg.rolling_window
    top, bottom = qcols[-1], qcols[0]
    sp = quantile_spread(quantiles, top, bottom, w)
    s = sp["spread"]
    ax.set_title(f"{title} — {top.upper()} − {bottom.upper()} spread of "
                 f"{horizon_text(horizon, 'returns')} (mean {s.mean():.2%}, std {s.std():.2%})"
                 .strip(" —"), fontsize=10)
    ax.plot(sp["date"], s, color=_COLORS["benchmark"], lw=0.5, alpha=0.6, label="daily spread")
    ax.plot(sp["date"], sp["rolling_mean"], color=_COLORS["strategy"], lw=1.6,
            label=f"{w}-day rolling mean")
    ax.fill_between(sp["date"], sp["rolling_mean"] - sp["rolling_std"],
                    sp["rolling_mean"] + sp["rolling_std"], color=_COLORS["strategy"],
                    alpha=0.18, lw=0, label=f"± 1 std ({w}-day rolling)")
    ax.axhline(0.0, color="black", lw=0.6)
    _date_axis(ax)
    _pct_axis(ax)
    ax.legend(loc="upper left", fontsize=8, frameon=False, ncols=3)
    return fig


def rank_autocorr_figure(tearsheet: pd.DataFrame | None, title: str = "",
                         cfg: FigureConfig | None = None) -> Figure:
    """Daily rank autocorrelation of the signal for each lag, with the per-lag means."""
    cfg = cfg or FigureConfig()
    fig = _new_figure(cfg)
    ax = fig.axes[0]
    has = tearsheet is not None and len(tearsheet) > 0
    summ = rank_autocorr_summary(tearsheet) if has else pd.Series(dtype=np.float64)
    if summ.empty:
        ax.set_title(f"{title} — factor rank autocorrelation".strip(" —"))
        _no_data(ax, "no tear sheet")
        return fig
    means = ", ".join(f"{lag}d {v:.4f}" for lag, v in summ.items())
    ax.set_title(f"{title} — factor rank autocorrelation (mean: {means})".strip(" —"),
                 fontsize=10)
    d = _sorted_by_date(tearsheet, "tearsheet")
    palette = [_COLORS["strategy"], _COLORS["rank_ic"], _COLORS["excess"], "#7048e8"]
    for i, lag in enumerate(summ.index):
        ax.plot(d["date"], _num(d, f"rank_autocorr_{lag}d"), lw=1.1,
                color=palette[i % len(palette)], label=f"lag {lag} day{'s' if lag > 1 else ''}")
    ax.axhline(0.0, color="black", lw=0.6)
    _date_axis(ax)
    ax.legend(loc="lower left", fontsize=8, frameon=False, ncols=len(summ))
    return fig


def excess_cost_figure(daily: pd.DataFrame, title: str = "",
                       cfg: FigureConfig | None = None) -> Figure:
    """Cumulative excess return over the benchmark before and after trading costs."""
    cfg = cfg or FigureConfig()
    fig = _new_figure(cfg)
    ax = fig.axes[0]
    if len(daily) == 0 or "return" not in daily.columns or not (
            {"excess_return", "benchmark_return"} & set(daily.columns)):
        ax.set_title(f"{title} — excess return with and without cost".strip(" —"))
        _no_data(ax, "no excess return")
        return fig
    ex = excess_with_without_cost(daily)
    net = np.nancumsum(ex["excess_net"].to_numpy(dtype=np.float64))
    ax.plot(ex["date"], net, color=_COLORS["excess"], lw=1.6,
            label=f"after cost ({net[-1]:.2%})")
    if "excess_gross" in ex:
        gross = np.nancumsum(ex["excess_gross"].to_numpy(dtype=np.float64))
        ax.plot(ex["date"], gross, color=_COLORS["strategy"], lw=1.3, ls="--",
                label=f"before cost ({gross[-1]:.2%})")
        ax.fill_between(ex["date"], net, gross, color=_COLORS["neg"], alpha=0.15, lw=0,
                        label=f"cost drag ({gross[-1] - net[-1]:.2%})")
    ax.set_title(f"{title} — cumulative excess return over the benchmark (sum of daily)"
                 .strip(" —"), fontsize=10)
    ax.axhline(0.0, color="black", lw=0.6)
    _date_axis(ax)
    _pct_axis(ax)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    return fig


def tearsheet_figures(m: MethodResults, cfg: FigureConfig | None = None) -> dict[str, Figure]:
    """The factor tear sheet of one method keyed by :data:`TEARSHEET_KEYS`."""
    cfg = cfg or FigureConfig()
    ts = {m.name: m.tearsheet} if m.tearsheet is not None else {}
    return {
        "ic_distribution": ic_distribution_figure(m.ic_series, m.name, cfg, m.label_horizon),
        "monthly_ic": monthly_ic_figure(m.ic_series, m.name, cfg, m.label_horizon),
        "ic_decay": ic_decay_figure(ts, m.name, cfg, m.label_horizon),
        "quantile_cumulative": quantile_cumulative_figure(m.quantiles, m.name, cfg,
                                                          m.quantile_horizon),
        "quantile_spread": quantile_spread_figure(m.quantiles, m.name, cfg, m.quantile_horizon),
        "rank_autocorr": rank_autocorr_figure(m.tearsheet, m.name, cfg),
        "excess_cost": excess_cost_figure(m.daily, m.name, cfg),
    }


def file_stem(name: str) -> str:
    """A file-name-safe form of a method name (``"a<b c"`` → ``"a_b_c"``)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return stem or "method"


def all_method_figures(methods: Sequence[MethodResults], cfg: FigureConfig | None = None,
                       suffix: str = ".png") -> dict[str, Figure]:
    """Figures of every method keyed ``"<method>__<figure><suffix>"``.

    Flat file names, ready for a ``matplotlib.MatplotlibWriter`` dataset (a dict is saved as one
    file per key inside the dataset's folder, and kedro-viz previews them).
    """
    out: dict[str, Figure] = {}
    for m in methods:
        for key, fig in method_figures(m, cfg).items():
            add_figure_file(out, m.name, key, fig, suffix)
    return out


def add_figure_file(files: dict[str, Any], method: str, key: str, value: Any,
                    suffix: str = ".png") -> None:
    """Put ``value`` (a Figure or its PNG bytes) under ``"<method>__<key><suffix>"`` in
    ``files``, refusing two methods whose names map to the same file."""
    name = f"{file_stem(method)}__{key}{suffix}"
    if name in files:
        raise ValueError(f"two methods map to the same figure file {name!r}; "
                         "rename one of them")
    files[name] = value


def figure_png(fig: Figure, close: bool = True) -> bytes:
    """``fig`` rendered as PNG bytes (white background, at its own dpi); closes it by default."""
    buf = io.BytesIO()
    if fig.canvas is None or not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    fig.savefig(buf, format="png", dpi=fig.dpi, facecolor="white")
    if close:
        _close(fig)
    return buf.getvalue()


def figure_to_base64_png(fig: Figure, close: bool = True) -> str:
    """PNG bytes of ``fig`` as base64 text (for a ``data:image/png`` URI); closes it by default."""
    return base64.b64encode(figure_png(fig, close)).decode("ascii")


def _close(fig: Figure) -> None:
    """Release a figure: drop it from pyplot's registry if it is there, and clear it."""
    plt = sys.modules.get("matplotlib.pyplot")  # only figures made by pyplot are registered there
    if plt is not None:
        plt.close(fig)
    fig.clear()
