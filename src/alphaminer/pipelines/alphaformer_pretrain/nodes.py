"""Thin adapter: synthetic markets + ``params:alphaformer.pretraining`` → a pre-trained model
and its learning curve."""

from __future__ import annotations

from typing import Any

import pandas as pd

from alphaminer.expr.vocab import Vocabulary
from alphaminer.mining.alphaformer import (
    Pretrainer,
    SavedModel,
    prepare_markets,
)
from alphaminer.mining.alphaformer.signal import learning_signals
from alphaminer.parameters import AlphaFormerPretrainParams


def pretrain_alphaformer(markets: dict[str, Any], params: AlphaFormerPretrainParams, seed: int
                         ) -> tuple[SavedModel, pd.DataFrame]:
    p = AlphaFormerPretrainParams.coerce(params)
    vocab = Vocabulary.from_config(p.vocabulary)
    mcfg = p.model.to_config()
    cfg = p.run.to_config({"seed": seed})
    prepared = prepare_markets(markets, vocab, mcfg, cfg.horizon, cfg.label_kind,
                               cfg.reward_holdout)
    res = Pretrainer(prepared, vocab, mcfg, cfg).run(checkpoint_dir=p.checkpoint_dir)
    hist = pd.DataFrame(res.history) if res.history else pd.DataFrame({"iteration": []})
    # the report reads the signal and the curve from the model folder, whichever model it is
    meta = {**res.meta, "learning_signal": learning_signals(hist)}
    return SavedModel(res.model, meta, history=hist), hist
