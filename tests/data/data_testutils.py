"""Helpers for the data tests: a small valid raw market built with plain numpy (no alphaminer)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]


def make_raw(n_days: int = 40, n_inst: int = 5, seed: int = 0, split_day: int | None = 15,
             with_vwap: bool = True) -> pd.DataFrame:
    """Valid raw long frame (unadjusted) with one 2:1 split per instrument at ``split_day``."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2020-01-02", periods=n_days)
    rows = []
    for j in range(n_inst):
        ret = rng.normal(0, 0.02, n_days)
        adj_close = 10.0 * (j + 1) * np.exp(np.cumsum(ret))
        factor = np.ones(n_days)
        if split_day is not None:
            factor[split_day:] = 2.0  # raw price halves; adjusted = raw * factor is continuous
        close = adj_close / factor
        open_ = close * (1 + rng.normal(0, 0.005, n_days))
        high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, n_days))
        low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, n_days))
        vol = rng.uniform(1e5, 1e6, n_days) * factor  # raw shares double after the split
        vwap = low + (high - low) * rng.uniform(0.2, 0.8, n_days)
        df = pd.DataFrame({
            "datetime": dates, "instrument": f"S{j:03d}", "open": open_, "high": high,
            "low": low, "close": close, "volume": vol, "adj_factor": factor,
        })
        if with_vwap:
            df["vwap"] = vwap
            df["amount"] = vwap * vol
        rows.append(df)
    return pd.concat(rows, ignore_index=True).sort_values(["datetime", "instrument"],
                                                           ignore_index=True)


def shared_data_dir() -> Path | None:
    env = os.environ.get("ALPHAMINER_SHARED_DATA")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data",
                                               Path("/work/shared/data")]:
        if cand.is_dir():
            return cand
    return None
