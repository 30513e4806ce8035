"""Risk metrics of a daily return series, defined once, in two labelled conventions.

- ``standard`` (geometric, what a performance report usually means): compounded total return and
  CAGR, annualised volatility, Sharpe ratio with a zero risk-free rate, and the maximum drawdown
  of the compounded equity curve (starting from 1 *before* the first return, so a loss on day one
  counts as a drawdown).
- ``qlib`` (arithmetic, parity with ``qlib.contrib.evaluate.risk_analysis(mode="sum")`` at daily
  frequency, 238 trading days a year): ``annualized_return = mean·238``,
  ``information_ratio = mean/std·√238``, ``max_drawdown = min(cumsum(r) − cummax(cumsum(r)))``
  (the running maximum starts at the first cumulative value, exactly as qlib does).

Every key carries its convention as a suffix (``sharpe_standard``, ``information_ratio_qlib``) so
numbers from the two can never be confused in a report.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

#: Trading days per year used by qlib's ``risk_analysis`` for daily data.
QLIB_ANNUALISATION = 238
#: Default trading days per year for the standard convention.
STANDARD_ANNUALISATION = 252

CONVENTIONS = ("standard", "qlib")

ArrayLike = np.ndarray | pd.Series | Sequence[float]


def _clean(returns: ArrayLike) -> np.ndarray:
    r = np.asarray(returns, dtype=np.float64).reshape(-1)
    return r[np.isfinite(r)]


def max_drawdown(equity: ArrayLike) -> float:
    """``min_t equity_t / max_{s≤t} equity_s − 1`` of a positive equity curve (0: never falls)."""
    e = np.asarray(equity, dtype=np.float64).reshape(-1)
    e = e[np.isfinite(e)]
    if e.size == 0:
        return float("nan")
    if (e <= 0).any():
        raise ValueError("max_drawdown needs a positive equity curve (got a value <= 0)")
    return float(np.min(e / np.maximum.accumulate(e) - 1.0))


def risk_metrics(
    returns: ArrayLike,
    convention: str = "standard",
    annualisation: int | None = None,
    prefix: str = "",
) -> dict[str, float]:
    """Risk metrics of a daily simple-return series (NaNs are dropped).

    Args:
        returns: daily simple returns (``0.01`` = +1 %).
        convention: ``"standard"`` (geometric) or ``"qlib"`` (arithmetic, qlib parity).
        annualisation: periods per year; defaults to 252 (standard) or 238 (qlib).
        prefix: prepended to every key (e.g. ``"excess_"``).

    Returns:
        ``standard``: ``total_return_standard, cagr_standard, ann_vol_standard, sharpe_standard,
        max_drawdown_standard`` (Sharpe uses a zero risk-free rate; a daily return ≤ −100 %
        means ruin: total return, CAGR and drawdown are −1);
        ``qlib``: ``mean_qlib, std_qlib, annualized_return_qlib, information_ratio_qlib,
        max_drawdown_qlib``. Both also give ``n_days``. Undefined values (too few days, zero
        volatility) are NaN.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    r = _clean(returns)
    n = r.size
    nan = float("nan")
    mean = float(r.mean()) if n else nan
    std = float(r.std(ddof=1)) if n > 1 else nan
    ratio = mean / std if n > 1 and std > 0 else nan
    if convention == "standard":
        N = STANDARD_ANNUALISATION if annualisation is None else int(annualisation)
        wiped = bool(n) and bool((r <= -1).any())  # the compounded curve hits zero: ruin
        growth = float(np.prod(1.0 + r)) if n and not wiped else nan
        if wiped:
            total = cagr = mdd = -1.0
        elif n:
            total, cagr = growth - 1.0, growth ** (N / n) - 1.0
            mdd = max_drawdown(np.concatenate([[1.0], np.cumprod(1.0 + r)]))
        else:
            total = cagr = mdd = nan
        out = {
            "total_return_standard": total,
            "cagr_standard": cagr,
            "ann_vol_standard": std * np.sqrt(N) if n > 1 else nan,
            "sharpe_standard": ratio * np.sqrt(N),
            "max_drawdown_standard": mdd,
        }
    else:
        N = QLIB_ANNUALISATION if annualisation is None else int(annualisation)
        if n:
            cum = np.cumsum(r)
            mdd = float(np.min(cum - np.maximum.accumulate(cum)))
        else:
            mdd = nan
        out = {
            "mean_qlib": mean,
            "std_qlib": std,
            "annualized_return_qlib": mean * N,
            "information_ratio_qlib": ratio * np.sqrt(N),
            "max_drawdown_qlib": mdd,
        }
    out["n_days"] = float(n)
    return {prefix + k: float(v) for k, v in out.items()}


def all_risk_metrics(
    returns: ArrayLike, annualisation: int | None = None, prefix: str = ""
) -> dict[str, float]:
    """Both conventions in one dict (standard with ``annualisation``, qlib with 238 days)."""
    out = risk_metrics(returns, "standard", annualisation, prefix)
    out.update(risk_metrics(returns, "qlib", None, prefix))
    return out


def hit_rate(returns: ArrayLike, benchmark: ArrayLike) -> float:
    """Fraction of days (both finite) on which ``returns`` strictly beats ``benchmark``."""
    r = np.asarray(returns, dtype=np.float64).reshape(-1)
    b = np.asarray(benchmark, dtype=np.float64).reshape(-1)
    if r.shape != b.shape:
        raise ValueError(f"returns {r.shape} and benchmark {b.shape} must have the same length")
    ok = np.isfinite(r) & np.isfinite(b)
    if not ok.any():
        return float("nan")
    return float(np.mean(r[ok] > b[ok]))
