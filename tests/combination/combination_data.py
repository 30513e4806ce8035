"""Synthetic inputs for the combination tests, and plain-numpy reference metrics.

A uniquely named module (not ``conftest``) so imports never clash with other test folders.
"""

from __future__ import annotations

import numpy as np
import torch

HORIZON = 5
SPLITS = {"train": (0, 150), "valid": (155, 200), "test": (205, 260)}
BETA = np.array([0.6, -0.4, 0.3, 0.0, 0.0, 0.0])


def planted_linear(T: int = 260, S: int = 60, beta: np.ndarray = BETA, noise: float = 1.0,
                   nan_frac: float = 0.03, seed: int = 0):
    """``y = Σ β_k f_k + noise`` with i.i.d. N(0, 1) factors and a few NaN cells."""
    g = np.random.default_rng(seed)
    K = len(beta)
    f = g.standard_normal((K, T, S))
    y = np.tensordot(beta, f, axes=1) + noise * g.standard_normal((T, S))
    f[g.random(f.shape) < nan_frac] = np.nan
    y[g.random(y.shape) < nan_frac] = np.nan
    names = [f"Mul(close,{k})" for k in range(K)]
    return torch.tensor(f, dtype=torch.float32), names, torch.tensor(y, dtype=torch.float32)


def regime_overlap(T: int = 1500, S: int = 30, h: int = 10, seed: int = 1):
    """Overlapping h-day labels driven by a random daily loading on a fixed characteristic.

    Daily returns ``r[u, i] = α_u c_i + 0.5 ε``; label ``y[s] = Σ_{j=1..h} r[s+j]`` (NaN for the
    last ``h`` days). Factor 0 is ``c`` (constant over time), factors 1-2 are noise. The sign of
    ``Σ α`` over the next ``h`` days is unpredictable from data known at ``t``, so an honest model
    has IC ≈ 0; a model that fits on labels of days > t - h - 1 shares α's with ``y[t]`` and gets a
    clearly positive IC.
    """
    g = np.random.default_rng(seed)
    c = g.standard_normal(S)
    alpha = g.standard_normal(T + h + 1)
    r = alpha[:, None] * c[None, :] + 0.5 * g.standard_normal((T + h + 1, S))
    csum = np.concatenate([np.zeros((1, S)), np.cumsum(r, axis=0)], axis=0)
    y = np.full((T, S), np.nan)
    for s in range(T - h):  # test-data construction, not library code
        y[s] = csum[s + h + 1] - csum[s + 1]
    f = np.stack([np.broadcast_to(c, (T, S)), g.standard_normal((T, S)),
                  g.standard_normal((T, S))])
    return (torch.tensor(f, dtype=torch.float32), ["c", "n1", "n2"],
            torch.tensor(y, dtype=torch.float32))


def np_daily_ic(x: np.ndarray, y: np.ndarray, min_stocks: int = 10) -> np.ndarray:
    """Reference daily Pearson IC (numpy, float64), the textbook formula per row."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    m = np.isfinite(x) & np.isfinite(y)
    n = m.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        xm = np.where(m, x, 0).sum(-1, keepdims=True) / n[..., None]
        ym = np.where(m, y, 0).sum(-1, keepdims=True) / n[..., None]
        dx = np.where(m, x - xm, 0)
        dy = np.where(m, y - ym, 0)
        r = (dx * dy).sum(-1) / np.sqrt((dx * dx).sum(-1) * (dy * dy).sum(-1))
    ok = (n >= min_stocks) & ((dx * dx).sum(-1) > 1e-12) & ((dy * dy).sum(-1) > 1e-12)
    return np.where(ok, r, np.nan)


def np_mean_ic(x, y, rows: tuple[int, int] | None = None) -> float:
    x = x.numpy() if isinstance(x, torch.Tensor) else x
    y = y.numpy() if isinstance(y, torch.Tensor) else y
    if rows is not None:
        x, y = x[rows[0]:rows[1]], y[rows[0]:rows[1]]
    return float(np.nanmean(np_daily_ic(x, y)))
