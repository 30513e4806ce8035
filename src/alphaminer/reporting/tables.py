"""The cross-method comparison table (rows = methods, columns as in the papers' tables)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from alphaminer.reporting.results import MethodResults

MISSING = "–"


@dataclass(frozen=True)
class Column:
    """One comparison column: its label, the metric keys it accepts (first found wins) and format.

    Several keys are accepted because the brief's short names (``mdd_standard``) and the backtest's
    long names (``max_drawdown_standard``) both occur; the convention suffix is always kept.
    """

    label: str
    keys: tuple[str, ...]
    fmt: str
    optional: bool = False


#: Columns of :func:`comparison_table`. ``optional`` ones are dropped when no method has them.
COLUMNS: tuple[Column, ...] = (
    Column("IC", ("ic",), ".4f"),
    Column("RankIC", ("rank_ic",), ".4f"),
    Column("ICIR", ("icir",), ".3f"),
    Column("RankICIR", ("rank_icir",), ".3f"),
    # robust statistics: daily ICs of an h-day label overlap, so a Newey–West t (h − 1 lags)
    Column("IC t (NW)", ("ic_nw_t",), ".2f", optional=True),
    Column("RankIC t (NW)", ("rank_ic_nw_t",), ".2f", optional=True),
    Column("IC > 0 days", ("ic_positive_rate",), ".0%", optional=True),
    Column("RankIC > 0 days", ("rank_ic_positive_rate",), ".0%", optional=True),
    Column("Num Factors", ("num_factors",), "n"),
    Column("Sharpe", ("sharpe_standard",), ".2f"),
    Column("CAGR", ("cagr_standard",), ".2%"),
    Column("Vol", ("ann_vol_standard", "vol_standard"), ".2%", optional=True),
    Column("MDD", ("mdd_standard", "max_drawdown_standard"), ".2%"),
    Column("AnnRet (qlib)", ("annual_return_qlib", "annualized_return_qlib"), ".2%"),
    Column("IR (qlib)", ("sharpe_qlib", "information_ratio_qlib"), ".2f"),
    Column("MDD (qlib)", ("mdd_qlib", "max_drawdown_qlib"), ".2%"),
    Column("Excess AnnRet (qlib)",
           ("excess_annual_return_qlib", "excess_annualized_return_qlib"), ".2%", optional=True),
    Column("Excess IR (qlib)",
           ("excess_sharpe_qlib", "excess_information_ratio_qlib"), ".2f", optional=True),
    Column("Excess MDD (qlib)",
           ("excess_mdd_qlib", "excess_max_drawdown_qlib"), ".2%", optional=True),
    Column("Turnover", ("turnover", "turnover_mean"), ".1%"),
    Column("Hit rate", ("hit_rate",), ".1%"),
)


def _lookup(metrics: Mapping[str, float], keys: Sequence[str]) -> float:
    for k in keys:
        if k in metrics and metrics[k] is not None:
            try:
                return float(metrics[k])
            except (TypeError, ValueError) as err:
                raise ValueError(f"metric {k!r} must be a number, got {metrics[k]!r}") from err
    return float("nan")


def column_stats(m: MethodResults, col: Column) -> tuple[float, float, int]:
    """``(mean, std, n)`` of one column for one method.

    With ``seed_metrics``: mean and sample standard deviation (``ddof=1``) over the seeds whose
    value is finite (std is NaN for a single seed); a metric no seed reports falls back to
    ``metrics``. Without seeds: ``(metrics value, NaN, 1)``.
    """
    if m.seed_metrics:
        vals = np.array([_lookup(s, col.keys) for s in m.seed_metrics], dtype=np.float64)
        vals = vals[np.isfinite(vals)]
        if vals.size:
            std = float(np.std(vals, ddof=1)) if vals.size > 1 else float("nan")
            return float(np.mean(vals)), std, int(vals.size)
    v = _lookup(m.metrics, col.keys)
    return v, float("nan"), 1 if np.isfinite(v) else 0


def _fmt(v: float, fmt: str) -> str:
    if not np.isfinite(v):
        return MISSING
    if fmt == "n":
        return f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"
    return format(v, fmt)


def format_mean_std(mean: float, std: float, fmt: str) -> str:
    """``"0.0512 ± 0.0031"`` (or just the mean when std is NaN; ``–`` when the mean is NaN)."""
    if not np.isfinite(mean):
        return MISSING
    if not np.isfinite(std):
        return _fmt(mean, fmt)
    return f"{_fmt(mean, fmt)} ± {_fmt(std, fmt)}"


#: prefix of the backtest's benchmark metrics (``benchmark_sharpe_standard``, ...)
BENCHMARK_PREFIX = "benchmark_"
#: row label of the benchmark in :func:`comparison_table` (``benchmark=True``)
BENCHMARK_ROW = "benchmark (equal-weight universe)"


def benchmark_metrics(methods: Sequence[MethodResults]) -> dict[str, float]:
    """The benchmark's own risk metrics (prefix stripped: ``sharpe_standard``, ...), from the
    first method whose backtest reports them; every method is backtested on the same segment
    against the same benchmark. ``{}`` when none does."""
    for m in methods:
        bench = {k[len(BENCHMARK_PREFIX):]: v for k, v in m.metrics.items()
                 if k.startswith(BENCHMARK_PREFIX)}
        if bench:
            return bench
    return {}


def comparison_table(methods: Sequence[MethodResults], numeric: bool = False,
                     benchmark: bool = False) -> pd.DataFrame:
    """Rows = methods (index ``method``), columns = :data:`COLUMNS` (+ ``Seeds``).

    Args:
        methods: the methods to compare, in display order; names must be unique.
        numeric: ``False`` → display strings (``"mean ± std"`` where several seeds were run);
            ``True`` → floats: each column holds the mean and ``"<label> std"`` the sample std
            across seeds (NaN for one seed).
        benchmark: append a last row :data:`BENCHMARK_ROW` with the benchmark's own return,
            volatility, Sharpe and drawdowns over the same days (:func:`benchmark_metrics`;
            factor columns blank); no row when no method reports benchmark metrics.
    """
    if not methods:
        raise ValueError("comparison_table needs at least one MethodResults")
    names = [m.name for m in methods]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"method names must be unique; duplicated: {dup}")
    bench = benchmark_metrics(methods) if benchmark else {}
    cols = [c for c in COLUMNS if not c.optional or any(
        np.isfinite(column_stats(m, c)[0]) for m in methods)
        or np.isfinite(_lookup(bench, c.keys))]
    rows = []
    for m in methods:
        row: dict[str, object] = {}
        for c in cols:
            mean, std, _n = column_stats(m, c)
            if numeric:
                row[c.label] = mean
                row[f"{c.label} std"] = std
            else:
                row[c.label] = format_mean_std(mean, std, c.fmt)
        n_seeds = len(m.seed_metrics) if m.seed_metrics else 1
        row["Seeds"] = n_seeds if numeric else str(n_seeds)
        rows.append(row)
    if bench:
        row = {}
        for c in cols:
            v = _lookup(bench, c.keys) if not c.label.startswith("Excess") else float("nan")
            if numeric:
                row[c.label], row[f"{c.label} std"] = v, float("nan")
            else:
                row[c.label] = format_mean_std(v, float("nan"), c.fmt)
        row["Seeds"] = float("nan") if numeric else MISSING
        rows.append(row)
        names = [*names, BENCHMARK_ROW]
    out = pd.DataFrame(rows, index=pd.Index(names, name="method"))
    if not numeric:
        out = out.astype(object)
    return out
