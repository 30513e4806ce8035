"""Shared helpers for the expression-language tests: small random panels with NaNs and
constant stretches (so edge cases are always exercised)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from alphaminer.panel import BASE_FEATURES, Panel


def make_panel(T: int = 70, S: int = 6, seed: int = 0, nan_frac: float = 0.04,
               universe_frac: float = 0.9) -> Panel:
    rng = np.random.default_rng(seed)
    close = 10 * np.exp(np.cumsum(rng.normal(0, 0.02, (T, S)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.01, (T, S)))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.02, (T, S)))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.02, (T, S)))
    volume = rng.lognormal(10, 0.5, (T, S))
    vwap = (high + low + close) / 3
    amount = vwap * volume
    vals = np.stack([open_, high, low, close, volume, vwap, amount], axis=-1)
    # constant stretches (suspensions: price and volume frozen)
    vals[20:34, 1, :] = vals[20, 1, :]
    vals[40:52, 3, 3] = vals[40, 3, 3]
    # integer-valued volume ties in one stock
    vals[:, 4, 4] = np.round(vals[:, 4, 4] / 1e4)
    vals[rng.random((T, S)) < nan_frac] = np.nan
    vals[:5, 5, :] = np.nan  # late listing
    vals = vals.astype(np.float32)
    universe = rng.random((T, S)) < universe_frac
    return Panel(
        values=torch.from_numpy(vals),
        dates=pd.bdate_range("2020-01-01", periods=T),
        instruments=[f"S{i:02d}" for i in range(S)],
        features=BASE_FEATURES,
        observed=torch.ones(T, S, dtype=torch.bool),
        universe=torch.from_numpy(universe),
        tradable=torch.from_numpy(universe),
    )


def frame(panel: Panel, name: str) -> pd.DataFrame:
    """A feature as a float64 dates × stocks frame (the reference side)."""
    return pd.DataFrame(panel.feature(name).numpy().astype(np.float64))


def assert_close(got: torch.Tensor | np.ndarray, ref: pd.DataFrame | np.ndarray,
                 rtol: float = 1e-5, atol: float = 1e-6, what: str = "") -> None:
    """Same NaN pattern and values within rtol (relative) / atol."""
    g = got.detach().cpu().numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
    r = np.asarray(ref, dtype=np.float64)
    g = g.astype(np.float64)
    assert g.shape == r.shape, (what, g.shape, r.shape)
    gn, rn = np.isnan(g), np.isnan(r)
    if not np.array_equal(gn, rn):
        idx = np.argwhere(gn != rn)[:5]
        raise AssertionError(f"{what}: NaN pattern differs at {idx.tolist()}: "
                             f"got {[g[tuple(i)] for i in idx]}, ref {[r[tuple(i)] for i in idx]}")
    np.testing.assert_allclose(g[~rn], r[~rn], rtol=rtol, atol=atol, err_msg=what)
