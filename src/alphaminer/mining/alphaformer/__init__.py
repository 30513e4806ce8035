"""AlphaFormer: a formula generator pre-trained with PPO on synthetic markets, then used with
frozen weights on a new market (``docs/methods/alphaformer.md``).

- :mod:`.model`: the network (dataset embedder, factor embedder, encoder-decoder Transformer,
  value head) and its pickle-free save/load;
- :mod:`.pretrain`: Algorithm 3 (PPO over episodes on synthetic markets, resumable);
- :mod:`.infer`: frozen-weight generation of N candidates into a pool of capacity M.
"""

from alphaminer.mining.alphaformer.infer import AlphaFormerMiner, InferConfig
from alphaminer.mining.alphaformer.model import (
    AlphaFormer,
    AlphaFormerConfig,
    SavedModel,
    load_model,
    market_features,
    save_model,
)
from alphaminer.mining.alphaformer.pretrain import (
    Market,
    PretrainConfig,
    Pretrainer,
    PretrainResult,
    prepare_markets,
)

__all__ = ["AlphaFormer", "AlphaFormerConfig", "AlphaFormerMiner", "InferConfig", "Market",
           "PretrainConfig", "PretrainResult", "Pretrainer", "SavedModel", "load_model",
           "market_features", "prepare_markets", "save_model"]
