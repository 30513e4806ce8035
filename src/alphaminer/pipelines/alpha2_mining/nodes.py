"""Thin adapters: panel, labels and splits → a candidate scorer on the train split → the Alpha2
miner → its alpha set (with per-split metrics), learning log and search statistics; and, behind
``alpha2.ablations.enabled``, the ablation table (``alphaminer.mining.alpha2.ablations``)."""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from alphaminer.evaluation.alphaset import AlphaSet
from alphaminer.evaluation.distributed import ScoringBackend, open_scorer
from alphaminer.evaluation.scorer import CandidateScorer
from alphaminer.expr.vocab import Vocabulary
from alphaminer.mining.alpha2.ablations import DEFAULT_VARIANTS, run_ablations
from alphaminer.mining.alpha2.miner import (
    ALPHA2_VOCABULARY,
    Alpha2Miner,
    describe_alphas,
)
from alphaminer.panel import Panel
from alphaminer.parameters import Alpha2AblationParams, Alpha2MiningParams
from alphaminer.pipelines._common import labels_tensor, split_ranges

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


def mine_alpha2(panel: Panel, labels: pd.DataFrame, splits: dict[str, Any],
                params: Alpha2MiningParams, min_stocks: int, seed: int
                ) -> tuple[dict[str, Any], pd.DataFrame, dict[str, Any]]:
    p = Alpha2MiningParams.coerce(params)
    ranges = split_ranges(splits)
    if p.split not in ranges:
        raise ValueError(f"split {p.split!r} not in the splits {sorted(ranges)}")
    target = labels_tensor(panel, labels)
    vocab = Vocabulary.from_config({**ALPHA2_VOCABULARY, **p.vocabulary})
    with open_scorer(p.scoring, panel, target, days=ranges[p.split], min_stocks=min_stocks,
                     compute_rank_ic=False) as scorer:
        miner = Alpha2Miner(scorer, vocab, p.miner.to_config({"seed": seed}))
        res = miner.run(checkpoint_dir=p.checkpoint_dir)
    aset = describe_alphas(res.formulas, panel, target, ranges, res.programs, min_stocks,
                           corr_split=p.split)
    aset.meta.update(res.alpha_set().meta)
    log = pd.DataFrame(res.history) if res.history else pd.DataFrame({"iteration": []})
    return aset.to_dict(), log, res.search_stats


def alpha2_ablations(panel: Panel, labels: pd.DataFrame, splits: dict[str, Any],
                     planted_alphas: pd.DataFrame, mining: Alpha2MiningParams,
                     params: Alpha2AblationParams, min_stocks: int) -> dict[str, Any]:
    """The ablation table (one row per variant and seed, and a per-variant summary), or
    ``{"enabled": false}`` when switched off so the report can tell "not run" from "empty"."""
    a = Alpha2AblationParams.coerce(params)
    if not a.enabled:
        return {"enabled": False, "rows": [], "summary": []}
    p = Alpha2MiningParams.coerce(mining)
    ranges = split_ranges(splits)
    target = labels_tensor(panel, labels)
    planted = None
    if planted_alphas is not None and len(planted_alphas):
        planted = AlphaSet("planted", [str(f) for f in planted_alphas["formula"]],
                           [str(n) for n in planted_alphas["name"]])
    vocab = Vocabulary.from_config({**ALPHA2_VOCABULARY, **p.vocabulary})
    base = {**p.miner.as_written(), **a.miner}

    with ScoringBackend(p.scoring) as backend:  # one cluster and data copy for every run

        def make_scorer() -> CandidateScorer:
            return backend.scorer(panel, target, days=ranges[p.split], min_stocks=min_stocks,
                                  compute_rank_ic=False)

        out = run_ablations(make_scorer, panel, target, ranges, planted, base,
                            a.variants if a.variants is not None else DEFAULT_VARIANTS,
                            a.seeds, vocab, a.top_k, min_stocks)
    return {"enabled": True, **out}
