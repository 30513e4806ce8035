"""Robust statistics of a daily IC series: Newey–West t-statistic and share of positive days.

Why: a daily IC against an ``h``-day forward return shares ``h − 1`` days of its label with the
next day's, so daily ICs are autocorrelated (roughly MA(h−1)). The plain t-statistic
``mean / (std / √n)`` then overstates significance by about ``√h``. The Newey–West (1987)
heteroscedasticity-and-autocorrelation-consistent (HAC) standard error of the mean fixes that:

.. math::

    \\widehat{\\mathrm{Var}}(\\bar x) = \\frac{1}{n}\\Big(\\hat\\gamma_0
        + 2\\sum_{l=1}^{L} \\big(1 - \\tfrac{l}{L+1}\\big)\\hat\\gamma_l\\Big), \\qquad
    \\hat\\gamma_l = \\frac{1}{n}\\sum_{t=l+1}^{n} (x_t-\\bar x)(x_{t-l}-\\bar x)

(Bartlett kernel, no small-sample correction: the convention of statsmodels'
``OLS(x, 1).fit(cov_type="HAC", cov_kwds={"maxlags": L})``).

**Lag rule.** ``lags = horizon − 1`` when the label horizon is known (the overlap is exactly what
creates the autocorrelation); otherwise Newey–West (1994)'s automatic rule
``⌊4 (n/100)^{2/9}⌋``. Both are capped at ``n − 1``.

**Read short series with care.** On simulated zero-mean MA(19) series (overlapping 20-day
labels) a nominal 5 % two-sided test (``|t| > 1.96``) rejected 28.5 % of the time at n = 100
days, 16 % at n = 250 and 12.8 % at n = 750 (600 replications each; the plain i.i.d. t-statistic
rejects far more). Longer lags (30–40) helped little. So a Newey–West t of 2 on ~100 days of
20-day ICs is weaker evidence than it sounds.

Days where the IC is NaN (too few stocks, no label) are dropped before anything is computed; the
remaining days are treated as consecutive.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

__all__ = ["RobustIC", "default_lags", "newey_west_se", "newey_west_t", "positive_share",
           "robust_ic"]


def _finite(x: np.ndarray | torch.Tensor | list[float]) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()
    a = np.asarray(x, dtype=np.float64).ravel()
    return a[np.isfinite(a)]


def default_lags(n: int, horizon: int | None = None) -> int:
    """The lag rule of the module docstring: ``horizon − 1`` if known, else ⌊4 (n/100)^(2/9)⌋."""
    if horizon is not None:
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        lags = horizon - 1
    else:
        lags = int(math.floor(4 * (max(n, 0) / 100.0) ** (2.0 / 9.0)))
    return max(0, min(lags, n - 1))


def newey_west_se(x: np.ndarray | torch.Tensor, lags: int | None = None,
                  horizon: int | None = None) -> float:
    """Newey–West standard error of the mean of ``x`` (NaNs dropped); NaN for < 2 days."""
    a = _finite(x)
    n = a.size
    if n < 2:
        return float("nan")
    L = default_lags(n, horizon) if lags is None else int(lags)
    if L < 0:
        raise ValueError(f"lags must be >= 0, got {L}")
    L = min(L, n - 1)
    e = a - a.mean()
    s = float(e @ e)
    for lag in range(1, L + 1):
        s += 2.0 * (1.0 - lag / (L + 1.0)) * float(e[lag:] @ e[:-lag])
    var = s / (n * n)
    return math.sqrt(var) if var > 0 else float("nan")


def newey_west_t(x: np.ndarray | torch.Tensor, lags: int | None = None,
                 horizon: int | None = None) -> float:
    """``mean(x) / newey_west_se(x)``: the HAC t-statistic of the mean daily IC."""
    a = _finite(x)
    se = newey_west_se(a, lags, horizon)
    return float(a.mean() / se) if np.isfinite(se) else float("nan")


def positive_share(x: np.ndarray | torch.Tensor) -> float:
    """Share of days (NaNs dropped) with a strictly positive IC; NaN when there is no day."""
    a = _finite(x)
    return float((a > 0).mean()) if a.size else float("nan")


@dataclass(frozen=True)
class RobustIC:
    """Summary of one daily IC series (see the module docstring)."""

    mean: float
    nw_se: float
    nw_t: float
    lags: int
    positive_share: float
    n_days: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def robust_ic(x: np.ndarray | torch.Tensor, horizon: int | None = None,
              lags: int | None = None) -> RobustIC:
    """Mean, Newey–West standard error and t-statistic, lag used, positive share, day count."""
    a = _finite(x)
    n = a.size
    L = (default_lags(n, horizon) if lags is None else min(int(lags), max(n - 1, 0)))
    se = newey_west_se(a, L)
    mean = float(a.mean()) if n else float("nan")
    t = mean / se if np.isfinite(se) else float("nan")
    return RobustIC(mean=mean, nw_se=se, nw_t=float(t), lags=L,
                    positive_share=positive_share(a), n_days=n)
