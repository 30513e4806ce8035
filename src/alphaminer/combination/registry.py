"""The combination registry: ``combine(method, values, names, y, splits, horizon, config)``.

A Kedro node is then a one-line call::

    result = combine("lightgbm", values, names, y, splits, horizon, params["lightgbm"])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any

import torch

from alphaminer.combination.base import TARGETS, CombinationInputs, CombinationResult, config_from
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
from alphaminer.combination.rank_average import (
    RankAverageConfig,
    fit_rank_average,
    suggest_rank_average,
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
    "rank_average": MethodSpec(
        name="rank_average",
        config_cls=RankAverageConfig,
        prepare=lambda inputs, cfg: None,
        fit=fit_rank_average,
        suggest=suggest_rank_average,
    ),
}

def split_variant(name: str) -> tuple[str, str | None]:
    """``"lasso_pool@rank"`` → ``("lasso_pool", "rank")``; ``"xgboost"`` → ``("xgboost", None)``.

    A variant is the combiner fitted to a treated label (its config's ``target`` field, e.g.
    :data:`~alphaminer.combination.base.TARGETS`), so ``auto`` can choose the target
    treatment on validation like any other choice."""
    base, sep, variant = name.partition("@")
    return base, (variant if sep else None)


def candidate_config(name: str, config: Any) -> Any:
    """The config of ``auto`` candidate ``name``: its combiner's config (``config`` or the
    defaults), with ``target`` set to the variant when ``name`` has one."""
    base, variant = split_variant(name)
    spec = _spec(base)
    cfg = config_from(spec.config_cls, config)
    if variant is None:
        return cfg
    if not (is_dataclass(cfg) and "target" in {f.name for f in fields(cfg)}):
        raise ValueError(f"auto candidate {name!r}: {base} has no target treatment")
    return replace(cfg, target=variant)


def _is_candidate(name: str) -> bool:
    base, variant = split_variant(name)
    if base not in METHODS:
        return False
    if variant is None:
        return True
    return "target" in {f.name for f in fields(METHODS[base].config_cls)} and \
        variant in TARGETS


#: what ``auto`` may rank its candidates by (validation fit rows)
AUTO_CRITERIA: tuple[str, ...] = ("valid_rank_ic", "valid_ic", "valid_rank_icir", "valid_icir")


@dataclass
class AutoConfig:
    """``auto``: fit every candidate combiner, keep the best on the validation split.

    Attributes:
        candidates: registry names to try, in order (ties keep the earlier one); a name may
            carry a target treatment, ``lasso_pool@rank`` (:func:`split_variant`).
        criterion: the validation statistic compared (:data:`AUTO_CRITERIA`); RankIC by default,
            since the 20-day label's fat tails can make the Pearson IC disagree with it.
        configs: each candidate's config (mapping or dataclass; missing → its defaults), keyed
            by candidate name; a variant without its own entry uses its combiner's.
    """

    candidates: tuple[str, ...] = ("lasso_pool", "lightgbm", "rank_average")
    criterion: str = "valid_rank_ic"
    configs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.candidates = tuple(self.candidates)
        if not self.candidates:
            raise ValueError("auto needs at least one candidate combiner")
        bad = sorted(n for n in self.candidates if not _is_candidate(n))
        if bad:
            raise ValueError(f"unknown auto candidates {bad}; choose from {sorted(METHODS)}")
        if self.criterion not in AUTO_CRITERIA:
            raise ValueError(f"criterion must be one of {AUTO_CRITERIA}, got {self.criterion!r}")


def combine_auto(inputs: CombinationInputs, config: AutoConfig) -> CombinationResult:
    """The candidate with the best validation ``criterion``; its model records every
    candidate's metrics (train/valid/test) and why it was chosen. A candidate that fails is
    recorded with its error and skipped; all failing raises."""
    results: dict[str, CombinationResult] = {}
    table: dict[str, dict[str, Any]] = {}
    for name in config.candidates:
        spec = _spec(split_variant(name)[0])
        own = config.configs.get(name, config.configs.get(split_variant(name)[0]))
        try:
            res = run_method(spec, inputs, candidate_config(name, own))
        except (ValueError, RuntimeError) as err:
            table[name] = {"error": f"{type(err).__name__}: {err}"}
            continue
        results[name] = res
        table[name] = {k: (v if math.isfinite(v) else None) for k, v in res.metrics.items()}
    if not results:
        raise ValueError(f"every auto candidate failed: {table}")

    def score(name: str) -> float:
        v = results[name].metrics.get(config.criterion, float("nan"))
        return v if math.isfinite(v) else -math.inf

    best = max(results, key=lambda n: (score(n), -config.candidates.index(n)))
    out = results[best]
    out.model = {**out.model, "auto": {"chosen": best, "criterion": config.criterion,
                                       "candidates": table}}
    out.params = {**out.params, "auto_chosen": best}
    out.candidates = {n: r.signal for n, r in results.items()}
    return out


def method_config(method: str, config: Any = None) -> Any:
    """The typed config of ``method`` built from ``None`` / a mapping / an instance."""
    if method == "auto":
        return config_from(AutoConfig, config)
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
        method: ``lasso_pool`` | ``xgboost`` | ``lightgbm`` | ``dynamic_linear`` |
            ``rank_average``, or ``auto`` (the best of several on validation, :class:`AutoConfig`).
        values: ``[K, T, S]`` factor values (NaN where missing); names: their formulas.
        y: ``[T, S]`` label known ``horizon`` days after its day.
        splits: ``{"train": (i0, i1), "valid": ..., "test": ...}`` (half-open day indices), an
            ``alphaminer.data.splits.Splits`` or its ``to_dict()`` form.
        horizon: label horizon (days until the label is known).
        config: the method's config dataclass, a mapping of its fields, or ``None`` (defaults);
            ``n_trials > 0`` tunes on the validation IC with optuna first.
        min_stocks: fewest valid stocks for a day's IC.
    """
    inputs = CombinationInputs.build(values, names, y, splits, horizon, min_stocks=min_stocks)
    if method == "auto":
        result = combine_auto(inputs, config_from(AutoConfig, config))
    else:
        spec = _spec(method)
        result = run_method(spec, inputs, config_from(spec.config_cls, config))
    result.model.setdefault("splits", inputs.splits.ranges_dict())
    result.model.setdefault("horizon", inputs.horizon)
    return result


