"""Thin adapters: panel, labels and splits → a candidate scorer on the train split → a miner →
its alpha set (the pool) and its mining log."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from alphaminer.evaluation.pool import PoolConfig
from alphaminer.evaluation.scorer import CandidateScorer
from alphaminer.expr.vocab import Vocabulary
from alphaminer.mining.alphagen.miner import AlphaGenConfig, AlphaGenMiner
from alphaminer.mining.gp.miner import GPConfig, GPMiner
from alphaminer.panel import Panel
from alphaminer.pipelines._common import labels_tensor, split_ranges
from alphaminer.runtime import config_from

log = logging.getLogger(__name__)


@dataclass
class MinerParams:
    """``<miner>`` parameters: vocabulary, pool, the miner's own settings, checkpoint folder."""

    vocabulary: dict[str, Any] = field(default_factory=dict)
    pool: dict[str, Any] = field(default_factory=dict)
    miner: dict[str, Any] = field(default_factory=dict)
    checkpoint_dir: str | None = None
    split: str = "train"


def _scorer(panel: Panel, labels: pd.DataFrame, splits: dict[str, Any], p: MinerParams,
            min_stocks: int) -> CandidateScorer:
    ranges = split_ranges(splits)
    if p.split not in ranges:
        raise ValueError(f"split {p.split!r} not in the splits {sorted(ranges)}")
    pool = config_from(PoolConfig, {"min_stocks": min_stocks, **p.pool})
    return CandidateScorer(panel, labels_tensor(panel, labels), days=ranges[p.split], pool=pool,
                           min_stocks=min_stocks)


def _log_frame(history: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(history) if history else pd.DataFrame({"step": []})


def mine_gp(panel: Panel, labels: pd.DataFrame, splits: dict[str, Any], params: dict[str, Any],
            min_stocks: int, seed: int) -> tuple[dict[str, Any], pd.DataFrame]:
    p = config_from(MinerParams, params)
    cfg = GPConfig.from_dict({"seed": seed, **p.miner})
    miner = GPMiner(_scorer(panel, labels, splits, p, min_stocks),
                    Vocabulary.from_config(p.vocabulary), cfg)
    res = miner.run(checkpoint_dir=p.checkpoint_dir)
    return res.alpha_set().to_dict(), _log_frame(res.history)


def mine_alphagen(panel: Panel, labels: pd.DataFrame, splits: dict[str, Any],
                  params: dict[str, Any], min_stocks: int, seed: int
                  ) -> tuple[dict[str, Any], pd.DataFrame]:
    p = config_from(MinerParams, params)
    cfg = AlphaGenConfig.from_dict({"seed": seed, **p.miner})
    miner = AlphaGenMiner(_scorer(panel, labels, splits, p, min_stocks),
                          Vocabulary.from_config(p.vocabulary), cfg)
    res = miner.run(checkpoint_dir=p.checkpoint_dir)
    return res.alpha_set().to_dict(), _log_frame(res.history)
