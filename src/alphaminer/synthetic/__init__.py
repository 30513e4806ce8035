"""Synthetic stock markets for pre-training (AlphaFormer §3.1, App. C, Algorithm 2).

- :mod:`.representation`: per-stock daily representation of OHLCV + vwap with an exact,
  always-valid inverse; the scaler; a panel segment as sequences.
- generators conditioned on ``c`` real context days: :mod:`.recurrent` (GRU, Gaussian-mixture
  head), :mod:`.transformer` (causal Transformer, same head), :mod:`.csdi` (CSDI-style
  conditional score-based diffusion); :mod:`.recurrent` also holds the LSTM evaluator.
- :mod:`.training`: training on the train split with checkpoint/resume.
- :mod:`.selection`: market assembly by evaluator selection, batched across stocks.
- :mod:`.facts` / :mod:`.quality`: stylised facts, discriminator AUC, the quality report.
"""

from .csdi import CSDIConfig, CSDIGenerator
from .facts import (
    autocorrelation,
    cross_sectional_correlation,
    discriminator_auc,
    discriminator_scores,
    panel_facts,
    rep_windows,
    returns_and_volume,
    stylised_facts,
    window_features,
)
from .mixture import MixtureHead
from .models import GENERATORS, SyntheticModels, build_model, resolve_generators
from .quality import (
    FACT_COLUMNS,
    QualityConfig,
    paired_difference,
    quality_figure,
    quality_report,
)
from .recurrent import RecurrentConfig, RecurrentDensity
from .representation import (
    RAW_FEATURES,
    REP_FEATURES,
    RealSequences,
    Scaler,
    decode,
    encode,
    panel_from_bars,
)
from .selection import (
    Market,
    MarketConfig,
    assemble_market,
    draw_contexts,
    lazy_markets,
    select_best,
)
from .training import FitConfig, SyntheticTrainConfig, fit_model, train_synthetic_models
from .transformer import CausalTransformer, TransformerConfig

__all__ = [
    "FACT_COLUMNS", "GENERATORS", "RAW_FEATURES", "REP_FEATURES", "CSDIConfig", "CSDIGenerator",
    "CausalTransformer", "FitConfig", "Market", "MarketConfig", "MixtureHead", "QualityConfig",
    "RealSequences", "RecurrentConfig", "RecurrentDensity", "Scaler", "SyntheticModels",
    "SyntheticTrainConfig", "TransformerConfig", "assemble_market", "autocorrelation",
    "build_model", "cross_sectional_correlation", "decode", "discriminator_auc",
    "discriminator_scores",
    "draw_contexts", "encode", "fit_model", "lazy_markets", "paired_difference", "panel_facts",
    "panel_from_bars",
    "quality_figure", "quality_report", "rep_windows", "resolve_generators",
    "returns_and_volume", "select_best", "stylised_facts", "train_synthetic_models",
    "window_features",
]
