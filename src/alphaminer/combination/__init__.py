"""Alpha set → trading signal: lasso pool, XGBoost, LightGBM, dynamic per-day linear.

One entry point, :func:`combine`, takes factor values ``[K, T, S]``, their names, the label
``[T, S]``, the train/valid/test splits and the label horizon, and returns a
:class:`CombinationResult` (signal, JSON model, metrics, params, optuna study). See
``docs/combination.md``.
"""

from alphaminer.combination.base import (
    CombinationInputs,
    CombinationResult,
    segment_metrics,
    segment_splits,
    transform_target,
)
from alphaminer.combination.dynamic import DynamicLinearConfig, fit_dynamic_linear, fit_windows
from alphaminer.combination.gbm import GBMConfig, fit_lightgbm, fit_xgboost
from alphaminer.combination.lasso import LassoPoolConfig, build_pool, fit_lasso_pool
from alphaminer.combination.registry import METHODS, combine, method_config

__all__ = [
    "METHODS",
    "CombinationInputs",
    "CombinationResult",
    "DynamicLinearConfig",
    "GBMConfig",
    "LassoPoolConfig",
    "build_pool",
    "combine",
    "fit_dynamic_linear",
    "fit_lasso_pool",
    "fit_lightgbm",
    "fit_windows",
    "fit_xgboost",
    "method_config",
    "segment_metrics",
    "segment_splits",
    "transform_target",
]
