"""A small simulated market with a train-split scorer factory for the miner tests."""

from __future__ import annotations

import pytest

from alphaminer.data import clean, load_source, make_labels, make_splits
from alphaminer.evaluation.pool import PoolConfig
from alphaminer.evaluation.scorer import CandidateScorer


@pytest.fixture(scope="session")
def market():
    raw = load_source({"kind": "simulator",
                       "simulator": {"n_stocks": 40, "n_days": 300, "seed": 0,
                                     "alpha_horizon": 5}})
    panel = clean(raw).to_panel()
    labels = make_labels(panel, 5)
    splits = make_splits(panel.dates, {"fractions": [0.5, 0.25, 0.25], "horizon": 5})
    return panel, labels, splits


@pytest.fixture
def make_scorer(market):
    panel, labels, splits = market

    def make(capacity: int = 4) -> CandidateScorer:
        return CandidateScorer.from_splits(panel, labels, splits, "train",
                                           pool=PoolConfig(capacity=capacity, min_stocks=10))

    return make


@pytest.fixture
def crash_after_first_save(monkeypatch):
    """Make the first checkpoint save raise after writing (a kill right after a checkpoint);
    returns a function that restores normal saving."""
    from alphaminer.checkpoint import CheckpointStore

    real_save = CheckpointStore.save
    calls = {"n": 0}

    def save(self, state, step=None):  # noqa: ANN001, ANN202
        out = real_save(self, state, step)
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("killed")
        return out

    monkeypatch.setattr(CheckpointStore, "save", save)
    return lambda: monkeypatch.setattr(CheckpointStore, "save", real_save)
