"""Stylised facts of (real or synthetic) markets and a real-vs-synthetic discriminator AUC.

All statistics work on ``[T, S]`` arrays of daily close-to-close log returns and volumes
(NaN where a day or its predecessor is missing) and are averaged over stocks, so a market of
many short series and one of few long series are comparable:

- return distribution: standard deviation, bias-corrected skewness and excess kurtosis (as
  pandas; per stock, then the mean), quantiles of per-stock standardised returns (fat tails
  show in the 1 % / 99 %);
- autocorrelation of returns (≈ 0 in real markets) and of |returns| (slowly decaying
  positive: volatility clustering), lags ``1 … max_lag``;
- correlation of log volume with |return| (per stock, the volume–volatility link);
- cross-sectional correlation: the mean pairwise correlation of stocks' returns (common
  factors); per-stock generators conditioned on a shared context reproduce it only partly;
- discriminator AUC: a classifier (gradient boosting or logistic regression) separating real
  from synthetic ``window``-day windows by summary features, cross-validated; 0.5 means
  indistinguishable, 1.0 trivially separable (lower is better).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from alphaminer.panel import Panel

from .representation import REP_FEATURES, RealSequences

QUANTILES: tuple[float, ...] = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def returns_and_volume(panel: Panel) -> tuple[np.ndarray, np.ndarray]:
    """``[T, S]`` log returns (NaN on day 0 / invalid days) and volumes of a panel."""
    real = RealSequences.from_panel(panel)
    r = np.where(real.valid.numpy(), real.rep[..., 0].numpy(), np.nan)
    v = np.where(real.valid.numpy(), real.volume.numpy(), np.nan)
    return r, v


def _standardise(x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():  # all-NaN stocks give NaN, which is what we want
        warnings.simplefilter("ignore", RuntimeWarning)
        mu = np.nanmean(x, 0, keepdims=True)
        sd = np.nanstd(x, 0, ddof=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (x - mu) / np.where(sd > 0, sd, np.nan)


def _moments(r: np.ndarray) -> dict[str, float]:
    n = np.sum(np.isfinite(r), 0).astype(float)
    ok = n >= 4
    z = _standardise(r)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        g1 = np.nanmean(z ** 3, 0) * (n / (n - 1)) ** 1.5       # m3 / m2^1.5
        g2 = np.nanmean(z ** 4, 0) * (n / (n - 1)) ** 2 - 3.0   # m4 / m2^2 - 3
        skew = g1 * np.sqrt(n * (n - 1)) / (n - 2)               # bias-corrected, as pandas
        kurt = ((n + 1) * g2 + 6) * (n - 1) / ((n - 2) * (n - 3))
    if not ok.any():
        return {"ret_std": np.nan, "ret_skew": np.nan, "ret_excess_kurtosis": np.nan}
    return {"ret_std": float(np.nanmean(np.nanstd(r[:, ok], 0, ddof=1))),
            "ret_skew": float(np.nanmean(skew[ok])),
            "ret_excess_kurtosis": float(np.nanmean(kurt[ok]))}


def autocorrelation(x: np.ndarray, max_lag: int) -> np.ndarray:
    """Mean over stocks of each stock's lag-``k`` autocorrelation, ``k = 1 … max_lag``.

    Per stock: Pearson correlation of ``x_t`` with ``x_{t-k}`` over days where both exist.
    """
    out = np.full(max_lag, np.nan)
    for k in range(1, max_lag + 1):
        if k >= x.shape[0]:
            break
        out[k - 1] = float(np.nanmean(_pairwise_corr(x[k:], x[:-k])))
    return out


def _pairwise_corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Column-wise Pearson correlation over rows where both are finite (``[S]``)."""
    ok = np.isfinite(a) & np.isfinite(b)
    n = ok.sum(0).astype(float)
    a0, b0 = np.where(ok, a, 0.0), np.where(ok, b, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ma, mb = a0.sum(0) / n, b0.sum(0) / n
        da, db = np.where(ok, a0 - ma, 0.0), np.where(ok, b0 - mb, 0.0)
        c = (da * db).sum(0) / np.sqrt((da ** 2).sum(0) * (db ** 2).sum(0))
    return np.where(n >= 3, c, np.nan)


def cross_sectional_correlation(r: np.ndarray) -> float:
    """Mean off-diagonal correlation of stocks' returns (pairwise over common days)."""
    S = r.shape[1]
    if S < 2:
        return float("nan")
    ok = np.isfinite(r).astype(float)
    x = np.nan_to_num(r)
    n = ok.T @ ok
    sx, sxx = x.T @ ok, (x ** 2).T @ ok          # sums of i over days common with j
    sxy = x.T @ x
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = sxy - sx * sx.T / n
        var_i = sxx - sx ** 2 / n
        c = cov / np.sqrt(var_i * var_i.T)
    c[n < 3] = np.nan
    off = ~np.eye(S, dtype=bool)
    return float(np.nanmean(c[off]))


def stylised_facts(returns: np.ndarray, volume: np.ndarray, max_lag: int = 10
                   ) -> dict[str, Any]:
    """Every scalar fact plus the two autocorrelation curves (see the module docstring)."""
    z = _standardise(returns)
    zq = np.nanquantile(z, QUANTILES) if np.isfinite(z).any() else np.full(len(QUANTILES),
                                                                            np.nan)
    acf_r = autocorrelation(returns, max_lag)
    acf_a = autocorrelation(np.abs(returns), max_lag)
    with np.errstate(divide="ignore", invalid="ignore"):
        logv = np.log(np.where(volume > 0, volume, np.nan))
    return {**_moments(returns),
            **{f"z_q{int(q * 100):02d}": float(v) for q, v in zip(QUANTILES, zq)},
            "acf_ret_1": float(acf_r[0]),
            "acf_abs_ret_1": float(acf_a[0]),
            "acf_abs_ret_mean": float(np.nanmean(acf_a)),
            "vol_absret_corr": float(np.nanmean(_pairwise_corr(logv, np.abs(returns)))),
            "cross_corr": cross_sectional_correlation(returns),
            "acf_ret": acf_r.tolist(), "acf_abs_ret": acf_a.tolist()}


def panel_facts(panels: Sequence[Panel], max_lag: int = 10) -> dict[str, Any]:
    """:func:`stylised_facts` pooled over several panels (markets): scalar facts are averaged
    weighting each market by its number of stocks; curves likewise."""
    rows = []
    weights = []
    for p in panels:
        r, v = returns_and_volume(p)
        rows.append(stylised_facts(r, v, max_lag))
        weights.append(p.S)
    w = np.asarray(weights, float)
    out: dict[str, Any] = {}
    for k in rows[0]:
        vals = np.asarray([row[k] for row in rows], float)
        if vals.ndim == 1:
            ok = np.isfinite(vals)
            out[k] = float(np.average(vals[ok], weights=w[ok])) if ok.any() else float("nan")
        else:
            out[k] = np.nansum(vals * w[:, None], 0) / np.maximum(
                (np.isfinite(vals) * w[:, None]).sum(0), 1e-12)
            out[k] = out[k].tolist()
    return out


# --------------------------------------------------------------------------- discriminator
def rep_windows(panel: Panel, window: int) -> np.ndarray:
    """Non-overlapping fully valid ``window``-day representation windows ``[N, window, F]``."""
    real = RealSequences.from_panel(panel)
    ends = real.window_ends(window).numpy()
    T = ends.shape[0]
    grid = np.arange(window, T, window)  # ends aligned on a grid → non-overlapping per stock
    d, s = np.nonzero(ends[grid])
    d = grid[d]
    days = d[:, None] - np.arange(window - 1, -1, -1)
    return real.rep.numpy()[days, s[:, None]]


def window_features(w: np.ndarray) -> np.ndarray:
    """Summary features ``[N, n_features]`` of windows ``[N, L, F]`` for the discriminator:
    mean and std of every coordinate, skewness / kurtosis / max |.| of returns, lag-1
    autocorrelation of returns and |returns|, and corr(|return|, volume change)."""
    r = w[..., 0]
    mean = w.mean(1)
    std = w.std(1)
    rz = (r - r.mean(1, keepdims=True)) / np.maximum(r.std(1, keepdims=True), 1e-12)
    a = np.abs(r)

    def lag1(x: np.ndarray) -> np.ndarray:
        x0 = x - x.mean(1, keepdims=True)
        den = np.maximum((x0 ** 2).sum(1), 1e-24)
        return (x0[:, 1:] * x0[:, :-1]).sum(1) / den

    def corr(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        x0, y0 = x - x.mean(1, keepdims=True), y - y.mean(1, keepdims=True)
        return (x0 * y0).sum(1) / np.maximum(np.sqrt((x0 ** 2).sum(1) * (y0 ** 2).sum(1)),
                                             1e-24)

    extra = np.stack([(rz ** 3).mean(1), (rz ** 4).mean(1), a.max(1), lag1(r), lag1(a),
                      corr(a, w[..., REP_FEATURES.index("dvol")])], 1)
    return np.concatenate([mean, std, extra], 1)


def discriminator_scores(real: np.ndarray, synthetic: np.ndarray, *, classifier: str = "gbm",
                         folds: int = 5, max_windows: int = 2000, seed: int = 0,
                         repeats: int = 1) -> np.ndarray:
    """Per-fold ROC AUCs (``[repeats * folds]``) of a classifier telling real windows from
    synthetic ones, by (repeated) stratified K-fold cross-validation.

    Classes are balanced by subsampling both to ``min(len(real), len(synthetic), max_windows)``
    windows. With the same ``seed`` and the same number of windows, two calls draw the same
    real windows and the same fold assignment, so per-fold scores of two synthetic sources are
    paired (their difference has far less noise than either score). ``classifier``: ``gbm``
    (histogram gradient boosting) or ``logistic``. Empty when there are fewer windows than
    folds.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import RepeatedStratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    n = min(len(real), len(synthetic), max_windows)
    if n < folds:
        return np.empty(0)
    ir = rng.choice(len(real), n, replace=False)
    is_ = rng.choice(len(synthetic), n, replace=False)
    xr, xs = window_features(real[ir]), window_features(synthetic[is_])
    X = np.nan_to_num(np.concatenate([xr, xs]), nan=0.0, posinf=0.0, neginf=0.0)
    y = np.r_[np.ones(n), np.zeros(n)]
    if classifier == "gbm":
        clf = HistGradientBoostingClassifier(max_iter=100, random_state=seed)
    elif classifier == "logistic":
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    else:
        raise ValueError(f"classifier must be 'gbm' or 'logistic', got {classifier!r}")
    cv = RepeatedStratifiedKFold(n_splits=folds, n_repeats=max(int(repeats), 1),
                                 random_state=seed)
    return cross_val_score(clf, X, y, cv=cv, scoring="roc_auc")


def discriminator_auc(real: np.ndarray, synthetic: np.ndarray, *, classifier: str = "gbm",
                      folds: int = 5, max_windows: int = 2000, seed: int = 0,
                      repeats: int = 1) -> float:
    """Mean cross-validated ROC AUC of :func:`discriminator_scores` (NaN if too few windows):
    0.5 means indistinguishable from real, 1.0 trivially separable."""
    s = discriminator_scores(real, synthetic, classifier=classifier, folds=folds,
                             max_windows=max_windows, seed=seed, repeats=repeats)
    return float(np.mean(s)) if len(s) else float("nan")


__all__ = ["QUANTILES", "autocorrelation", "cross_sectional_correlation", "discriminator_auc",
           "discriminator_scores", "panel_facts", "rep_windows", "returns_and_volume",
           "stylised_facts", "window_features"]
