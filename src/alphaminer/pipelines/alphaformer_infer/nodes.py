"""Thin adapter: a (pre-trained or shipped) AlphaFormer model + panel, labels, splits → a
train-split scorer with a pool of capacity M → frozen-weight generation → the alpha set."""

from __future__ import annotations

from typing import Any

import pandas as pd

from alphaminer.evaluation.distributed import open_scorer
from alphaminer.mining.alphaformer import AlphaFormerMiner, SavedModel
from alphaminer.panel import Panel
from alphaminer.parameters import AlphaFormerInferParams
from alphaminer.pipelines._common import labels_tensor, split_ranges
from alphaminer.runtime import resolve_device


def infer_alphaformer(model: SavedModel, panel: Panel, labels: pd.DataFrame,
                      splits: dict[str, Any], params: AlphaFormerInferParams, min_stocks: int,
                      seed: int) -> tuple[dict[str, Any], pd.DataFrame]:
    p = AlphaFormerInferParams.coerce(params)
    ranges = split_ranges(splits)
    if p.split not in ranges:
        raise ValueError(f"split {p.split!r} not in the splits {sorted(ranges)}")
    pool = p.pool.to_config({"min_stocks": min_stocks, "compute_rank_ic": False})
    net = model.model.to(resolve_device(p.device))
    cfg = p.to_config(seed=seed)
    with open_scorer(p.scoring, panel, labels_tensor(panel, labels), days=ranges[p.split],
                     pool=pool, min_stocks=min_stocks, compute_rank_ic=False) as scorer:
        res = AlphaFormerMiner(scorer, net, cfg).run()
    res.meta["model_source"] = model.source
    res.meta["model_meta"] = {k: v for k, v in model.meta.items() if k != "history"}
    hist = pd.DataFrame(res.history) if res.history else pd.DataFrame({"batch": []})
    return res.alpha_set().to_dict(), hist
