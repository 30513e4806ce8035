"""The combination registry: ``combine(method, values, names, y, splits, horizon, config)``.

A Kedro node is then a one-line call::

    result = combine("lightgbm", values, names, y, splits, horizon, params["lightgbm"])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from alphaminer.combination.base import CombinationInputs, CombinationResult, config_from
from alphaminer.combination.dynamic import (
    DynamicLinearConfig,
    DynamicLinearState,
    fit_dynamic_linear,
    suggest_dynamic_linear,
)
from alphaminer.combination.gbm import GBMConfig, GBMData, fit_lightgbm, fit_xgboost, suggest_gbm
from alphaminer.combination.lasso import (
    LassoPoolConfig,
    fit_lasso_pool,
    suggest_lasso_pool,
)
from alphaminer.combination.tuning import MethodSpec, run_method


def _dynamic_suggest(trial: Any, config: DynamicLinearConfig, inputs: CombinationInputs
                     ) -> dict[str, Any]:
    out = suggest_dynamic_linear(trial, config, inputs.K)
    if config.min_periods is not None:
        out["min_periods"] = max(2, min(config.min_periods, out["window"]))
    return out


METHODS: dict[str, MethodSpec] = {
    "lasso_pool": MethodSpec(
        name="lasso_pool",
        config_cls=LassoPoolConfig,
        prepare=lambda inputs, cfg: None,
        fit=lambda inputs, cfg, state: fit_lasso_pool(inputs, cfg),
        suggest=lambda trial, cfg, inputs: suggest_lasso_pool(trial, cfg),
    ),
    "xgboost": MethodSpec(
        name="xgboost",
        config_cls=GBMConfig,
        prepare=lambda inputs, cfg: GBMData.build(inputs, cfg.top_k, cfg.target),
        fit=fit_xgboost,
        suggest=lambda trial, cfg, inputs: suggest_gbm(trial, cfg, "xgboost"),
    ),
    "lightgbm": MethodSpec(
        name="lightgbm",
        config_cls=GBMConfig,
        prepare=lambda inputs, cfg: GBMData.build(inputs, cfg.top_k, cfg.target),
        fit=fit_lightgbm,
        suggest=lambda trial, cfg, inputs: suggest_gbm(trial, cfg, "lightgbm"),
    ),
    "dynamic_linear": MethodSpec(
        name="dynamic_linear",
        config_cls=DynamicLinearConfig,
        prepare=lambda inputs, cfg: DynamicLinearState(inputs, cfg.target),
        fit=fit_dynamic_linear,
        suggest=_dynamic_suggest,
    ),
}


def method_config(method: str, config: Any = None) -> Any:
    """The typed config of ``method`` built from ``None`` / a mapping / an instance."""
    return config_from(_spec(method).config_cls, config)


def _spec(method: str) -> MethodSpec:
    if method not in METHODS:
        raise KeyError(f"unknown combination method {method!r}; choose from {sorted(METHODS)}")
    return METHODS[method]


def combine(  # noqa: PLR0917 - the documented positional signature
    method: str,
    values: torch.Tensor,
    names: Sequence[str],
    y: torch.Tensor,
    splits: Any,
    horizon: int,
    config: Any = None,
    *,
    min_stocks: int = 10,
) -> CombinationResult:
    """Combine an alpha set into one ``[T, S]`` signal with ``method`` (see :data:`METHODS`).

    Args:
        method: ``lasso_pool`` | ``xgboost`` | ``lightgbm`` | ``dynamic_linear``.
        values: ``[K, T, S]`` factor values (NaN where missing); names: their formulas.
        y: ``[T, S]`` label known ``horizon`` days after its day.
        splits: ``{"train": (i0, i1), "valid": ..., "test": ...}`` (half-open day indices), an
            ``alphaminer.data.splits.Splits`` or its ``to_dict()`` form.
        horizon: label horizon (days until the label is known).
        config: the method's config dataclass, a mapping of its fields, or ``None`` (defaults);
            ``n_trials > 0`` tunes on the validation IC with optuna first.
        min_stocks: fewest valid stocks for a day's IC.
    """
    spec = _spec(method)
    cfg = config_from(spec.config_cls, config)
    inputs = CombinationInputs.build(values, names, y, splits, horizon, min_stocks=min_stocks)
    result = run_method(spec, inputs, cfg)
    result.model.setdefault("splits", inputs.splits.ranges_dict())
    result.model.setdefault("horizon", inputs.horizon)
    return result


