"""``ml_baselines``: MLP, LSTM, XGBoost and LightGBM on 60 days of raw features → ``<m>.signal``."""

from .pipeline import MODELS, create_pipeline

__all__ = ["MODELS", "create_pipeline"]
