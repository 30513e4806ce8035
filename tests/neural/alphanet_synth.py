"""Small synthetic panels and independent (pandas/numpy) references for the AlphaNet tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from alphaminer.panel import Panel

FEATURES = ("open", "high", "low", "close", "volume", "vwap", "amount")


def make_panel(T: int = 80, S: int = 12, seed: int = 0, planted: float = 0.0) -> Panel:
    """Random OHLCV panel; with ``planted > 0`` tomorrow's return loads on today's volume shock.

    The return of day t+1 is ``planted · sigma · z_t + sigma · eps`` where ``z_t`` is the
    cross-sectionally standardised log-volume shock of day t, so the 5-day forward return at t
    depends on the last column of the image's volume row.
    """
    rng = np.random.default_rng(seed)
    sigma = 0.02
    logv_shock = rng.standard_normal((T, S))
    z = (logv_shock - logv_shock.mean(1, keepdims=True)) / logv_shock.std(1, keepdims=True)
    ret = sigma * rng.standard_normal((T, S))
    ret[1:] += planted * sigma * z[:-1]
    close = rng.uniform(5, 50, S) * np.exp(np.cumsum(ret, axis=0))
    prev = np.vstack([close[:1], close[:-1]])
    open_ = prev * np.exp(0.005 * rng.standard_normal((T, S)))
    high = np.maximum(open_, close) * np.exp(np.abs(0.01 * rng.standard_normal((T, S))))
    low = np.minimum(open_, close) * np.exp(-np.abs(0.01 * rng.standard_normal((T, S))))
    vwap = (high + low + close) / 3
    volume = rng.uniform(1e5, 1e6, S) * np.exp(0.5 * logv_shock)
    amount = vwap * volume
    vals = np.stack([open_, high, low, close, volume, vwap, amount], axis=-1).astype(np.float32)
    dates = pd.bdate_range("2020-01-01", periods=T)
    ones = torch.ones(T, S, dtype=torch.bool)
    return Panel(values=torch.from_numpy(vals), dates=dates,
                 instruments=[f"S{i:03d}" for i in range(S)], features=FEATURES,
                 observed=ones.clone(), universe=ones.clone(), tradable=ones.clone())


def pandas_labels(panel: Panel, h: int = 5) -> torch.Tensor:
    """Independent reference label: ``close.shift(-h) / close - 1`` with pandas."""
    c = pd.DataFrame(panel.feature("close").numpy().astype(np.float64))
    return torch.tensor((c.shift(-h) / c - 1).to_numpy(), dtype=torch.float32)
