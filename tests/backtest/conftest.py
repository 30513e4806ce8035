"""Fixtures for the backtest tests: small synthetic panels whose prices we control."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import torch

from alphaminer.panel import Panel


def build_panel(open_: np.ndarray, close: np.ndarray, observed: np.ndarray | None = None,
                tradable: np.ndarray | None = None, universe: np.ndarray | None = None,
                names: list[str] | None = None) -> Panel:
    T, S = close.shape
    obs = np.ones((T, S), bool) if observed is None else observed
    trad = obs.copy() if tradable is None else tradable & obs
    uni = obs.copy() if universe is None else universe & obs
    vals = np.stack([np.where(obs, open_, np.nan), np.where(obs, close, np.nan)], -1)
    return Panel(
        values=torch.from_numpy(vals.astype(np.float32)),
        dates=pd.bdate_range("2020-01-01", periods=T),
        instruments=names or [f"S{i:03d}" for i in range(S)],
        features=("open", "close"),
        observed=torch.from_numpy(obs),
        universe=torch.from_numpy(uni),
        tradable=torch.from_numpy(trad),
    )


def random_panel(T: int, S: int, seed: int, suspend: float = 0.05, delist: int = 0,
                 vol: float = 0.02, limit: float | None = None) -> Panel:
    """Random-walk prices with random suspensions (no row), and ``delist`` names that stop."""
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0, vol, (T, S))
    if limit is not None:
        r = np.clip(r * 3, -limit, limit)  # many days exactly at the limit
    close = 10.0 * np.cumprod(1.0 + r, axis=0)
    gap = rng.normal(0.0, vol / 3, (T, S))
    prev = np.vstack([close[:1], close[:-1]])
    open_ = prev * (1.0 + gap)
    if limit is not None:
        open_ = np.where(rng.random((T, S)) < 0.1, prev * (1 + limit), open_)
        open_ = np.where(rng.random((T, S)) < 0.1, prev * (1 - limit), open_)
    observed = rng.random((T, S)) > suspend
    observed[0] = True
    for s in rng.choice(S, size=delist, replace=False):
        observed[rng.integers(T // 4, T - 2):, s] = False
    tradable = observed & (rng.random((T, S)) > suspend)
    return build_panel(open_, close, observed, tradable)


@pytest.fixture
def make_random_panel() -> Callable[..., Panel]:
    return random_panel


@pytest.fixture
def make_panel() -> Callable[..., Panel]:
    return build_panel
