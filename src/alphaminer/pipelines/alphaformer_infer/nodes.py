"""Thin adapter: a (pre-trained or shipped) AlphaFormer model + panel, labels, splits → a
train-split scorer with a pool of capacity M → frozen-weight generation → the alpha set."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from alphaminer.evaluation.pool import PoolConfig
from alphaminer.evaluation.scorer import CandidateScorer
from alphaminer.mining.alphaformer import AlphaFormerMiner, InferConfig, SavedModel
from alphaminer.panel import Panel
from alphaminer.pipelines._common import labels_tensor, split_ranges
from alphaminer.runtime import config_from, resolve_device


@dataclass
class InferParams:
    """``alphaformer.inference``: N (``n_candidates``), batch, temperature, the pool (capacity
    M, L1 λ), the split the pool is fitted on, the device."""

    n_candidates: int = 1000
    batch_size: int = 100
    temperature: float = 1.0
    pool: dict[str, Any] = field(default_factory=dict)
    split: str = "train"
    device: str = "auto"


def infer_alphaformer(model: SavedModel, panel: Panel, labels: pd.DataFrame,
                      splits: dict[str, Any], params: dict[str, Any], min_stocks: int,
                      seed: int) -> tuple[dict[str, Any], pd.DataFrame]:
    p = config_from(InferParams, params)
    ranges = split_ranges(splits)
    if p.split not in ranges:
        raise ValueError(f"split {p.split!r} not in the splits {sorted(ranges)}")
    pool = config_from(PoolConfig, {"min_stocks": min_stocks, "compute_rank_ic": False,
                                    **p.pool})
    scorer = CandidateScorer(panel, labels_tensor(panel, labels), days=ranges[p.split],
                             pool=pool, min_stocks=min_stocks, compute_rank_ic=False)
    net = model.model.to(resolve_device(p.device))
    cfg = InferConfig(n_candidates=p.n_candidates, batch_size=p.batch_size,
                      temperature=p.temperature, seed=seed)
    res = AlphaFormerMiner(scorer, net, cfg).run()
    res.meta["model_source"] = model.source
    res.meta["model_meta"] = {k: v for k, v in model.meta.items() if k != "history"}
    hist = pd.DataFrame(res.history) if res.history else pd.DataFrame({"batch": []})
    return res.alpha_set().to_dict(), hist
