"""Thin adapter: synthetic markets + ``params:alphaformer.pretraining`` → a pre-trained model
and its learning curve."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from alphaminer.expr.vocab import Vocabulary
from alphaminer.mining.alphaformer import (
    AlphaFormerConfig,
    PretrainConfig,
    Pretrainer,
    SavedModel,
    prepare_markets,
)
from alphaminer.runtime import config_from


@dataclass
class PretrainParams:
    """``alphaformer.pretraining``: vocabulary, architecture, Algorithm 3 run, checkpoints."""

    vocabulary: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)
    checkpoint_dir: str | None = None


def pretrain_alphaformer(markets: dict[str, Any], params: dict[str, Any], seed: int
                         ) -> tuple[SavedModel, pd.DataFrame]:
    p = config_from(PretrainParams, params)
    vocab = Vocabulary.from_config(p.vocabulary)
    mcfg = AlphaFormerConfig.from_dict(p.model)
    cfg = PretrainConfig.from_dict({"seed": seed, **p.run})
    res = Pretrainer(prepare_markets(markets, vocab, mcfg, cfg.horizon, cfg.label_kind), vocab,
                     mcfg, cfg).run(checkpoint_dir=p.checkpoint_dir)
    hist = pd.DataFrame(res.history) if res.history else pd.DataFrame({"iteration": []})
    return SavedModel(res.model, res.meta), hist
