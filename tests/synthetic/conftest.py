"""Shared fixtures: a small simulated train segment and tiny model settings (conf/test-like)."""

from __future__ import annotations

import pytest
import torch

from alphaminer.data import CleanConfig, SourceConfig, SplitConfig, clean, load_source, make_splits
from alphaminer.panel import Panel


@pytest.fixture(scope="session")
def sim_panel() -> tuple[Panel, object]:
    raw = load_source(SourceConfig.from_dict(
        {"kind": "simulator", "simulator": {"n_stocks": 30, "n_days": 260, "seed": 3,
                                            "alpha_horizon": 5}}))
    panel = clean(raw, CleanConfig()).to_panel()
    splits = make_splits(panel.dates, SplitConfig.from_dict({"fractions": [0.5, 0.25, 0.25],
                                                             "horizon": 5}))
    return panel, splits


@pytest.fixture(scope="session")
def train_panel(sim_panel) -> Panel:
    panel, splits = sim_panel
    return splits.slice(panel, "train")


@pytest.fixture(autouse=True)
def _threads():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
