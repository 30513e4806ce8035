"""Is one method's test RankIC really higher than another's? (``docs/metrics.md``)

Both methods are scored on the same days, so the question is about the **paired** daily
difference ``d_t = a_t - b_t`` (e.g. two methods' daily RankIC series). Its mean is the reported
gap. Daily ICs against a 20-day forward return overlap by 19 days and are strongly
autocorrelated, so an i.i.d. bootstrap (or a plain t-interval) would be far too narrow: the
interval here comes from a **moving-block bootstrap** over days (blocks of ``block`` consecutive
days, default ``max(20, ⌈T^(1/3)⌉)``: at least the label horizon), percentile method. Days where
either series is NaN are dropped first (pairing is kept).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["PairedDifference", "gaps_to_best_baseline", "paired_block_bootstrap"]


@dataclass(frozen=True)
class PairedDifference:
    """Mean daily difference ``a - b`` with its bootstrap interval."""

    mean: float
    low: float
    high: float
    level: float
    n_days: int
    block: int
    n_boot: int

    @property
    def significant(self) -> bool:
        """The interval excludes 0."""
        return self.low > 0 or self.high < 0


def paired_block_bootstrap(a: np.ndarray, b: np.ndarray, *, block: int | None = None,
                           n_boot: int = 2000, level: float = 0.95, seed: int = 0
                           ) -> PairedDifference:
    """Mean of ``a_t - b_t`` over the days both are finite, and its ``level`` interval from a
    moving-block bootstrap of the paired differences (module docstring)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"a and b must be paired day by day, got {a.shape} and {b.shape}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if n_boot < 100:
        raise ValueError(f"n_boot must be >= 100 for a percentile interval, got {n_boot}")
    d = (a - b)[np.isfinite(a) & np.isfinite(b)]
    n = d.size
    if n < 2:
        raise ValueError(f"need at least 2 days where both series are finite, got {n}")
    L = max(20, math.ceil(n ** (1 / 3))) if block is None else int(block)
    if not 1 <= L <= n:
        raise ValueError(f"block must be in [1, {n}], got {L}")
    rng = np.random.default_rng(seed)
    k = math.ceil(n / L)  # blocks per resample; the resample is cut to n days
    starts = rng.integers(0, n - L + 1, size=(n_boot, k))
    idx = (starts[:, :, None] + np.arange(L)[None, None, :]).reshape(n_boot, k * L)[:, :n]
    means = d[idx].mean(axis=1)
    alpha = (1 - level) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return PairedDifference(float(d.mean()), float(low), float(high), level, n, L, n_boot)


def gaps_to_best_baseline(series: dict[str, pd.DataFrame], baselines: tuple[str, ...],
                          column: str = "rank_ic", **kwargs: object) -> pd.DataFrame:
    """Each method's daily ``column`` (e.g. test RankIC) against the best baseline's.

    ``series`` maps method → a frame with ``date`` and ``column`` (the backtest's IC series).
    The best baseline is the method of ``baselines`` with the highest mean ``column``; every
    other method gets one row: its mean, the baseline's, the paired difference with its interval
    (:func:`paired_block_bootstrap`, keyword arguments passed on) and whether it excludes 0.
    Days are aligned by date (inner join). Empty when no baseline is present.
    """
    means = {m: float(df[column].mean()) for m, df in series.items() if len(df)}
    present = [m for m in baselines if m in means]
    if not present:
        return pd.DataFrame()
    best = max(present, key=lambda m: means[m])
    ref = series[best].set_index("date")[column]
    rows = []
    for m, df in series.items():
        if m == best or not len(df):
            continue
        both = pd.concat([df.set_index("date")[column].rename("a"), ref.rename("b")],
                         axis=1, join="inner")
        res = paired_block_bootstrap(both["a"].to_numpy(), both["b"].to_numpy(), **kwargs)
        rows.append({"method": m, "baseline": best, f"{column}": means[m],
                     f"baseline {column}": means[best], "difference": res.mean,
                     "95% low": res.low, "95% high": res.high,
                     "significant": res.significant, "days": res.n_days, "block": res.block})
    return pd.DataFrame(rows)
