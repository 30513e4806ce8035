"""Thin adapters: panel, labels and splits → a candidate scorer on the train split → a miner →
its alpha set (the pool) and its mining log."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd

from alphaminer.evaluation.distributed import open_scorer
from alphaminer.evaluation.scorer import CandidateScorer
from alphaminer.expr.vocab import Vocabulary
from alphaminer.mining.alphagen.miner import AlphaGenMiner
from alphaminer.mining.gp.miner import GPMiner
from alphaminer.panel import Panel
from alphaminer.parameters import AlphaGenMiningParams, GPMiningParams
from alphaminer.pipelines._common import labels_tensor, split_ranges

log = logging.getLogger(__name__)


@contextmanager
def _scorer(panel: Panel, labels: pd.DataFrame, splits: dict[str, Any],
            p: GPMiningParams | AlphaGenMiningParams, min_stocks: int
            ) -> Iterator[CandidateScorer]:
    """The train-split scorer, in-process or on Dask workers (``p.scoring``) until the block
    ends."""
    ranges = split_ranges(splits)
    if p.split not in ranges:
        raise ValueError(f"split {p.split!r} not in the splits {sorted(ranges)}")
    pool = p.pool.to_config({"min_stocks": min_stocks})
    with open_scorer(p.scoring, panel, labels_tensor(panel, labels), days=ranges[p.split],
                     pool=pool, min_stocks=min_stocks) as scorer:
        yield scorer


def _log_frame(history: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(history) if history else pd.DataFrame({"step": []})


def mine_gp(panel: Panel, labels: pd.DataFrame, splits: dict[str, Any], params: GPMiningParams,
            min_stocks: int, seed: int) -> tuple[dict[str, Any], pd.DataFrame]:
    p = GPMiningParams.coerce(params)
    cfg = p.miner.to_config({"seed": seed})
    with _scorer(panel, labels, splits, p, min_stocks) as scorer:
        miner = GPMiner(scorer, Vocabulary.from_config(p.vocabulary), cfg)
        res = miner.run(checkpoint_dir=p.checkpoint_dir)
    return res.alpha_set().to_dict(), _log_frame(res.history)


def mine_alphagen(panel: Panel, labels: pd.DataFrame, splits: dict[str, Any],
                  params: AlphaGenMiningParams, min_stocks: int, seed: int
                  ) -> tuple[dict[str, Any], pd.DataFrame]:
    p = AlphaGenMiningParams.coerce(params)
    cfg = p.miner.to_config({"seed": seed})
    with _scorer(panel, labels, splits, p, min_stocks) as scorer:
        miner = AlphaGenMiner(scorer, Vocabulary.from_config(p.vocabulary), cfg)
        res = miner.run(checkpoint_dir=p.checkpoint_dir)
    return res.alpha_set().to_dict(), _log_frame(res.history)
