"""Optuna tuning of a combination model on the validation segment.

The objective is the signal's mean daily IC on the validation *fit rows* (days whose label ends
inside the validation segment). A TPE sampler seeded from the config makes the study — and,
since every model is deterministic for a fixed seed, the chosen model — reproducible.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import optuna

from alphaminer.combination.base import CombinationInputs, CombinationResult, objective_value
from alphaminer.progress import progress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MethodSpec:
    """How the registry runs one method.

    ``prepare`` builds state shared by all trials (per-day statistics, design matrices);
    ``fit`` runs one configuration; ``suggest`` maps an optuna trial to config overrides.
    """

    name: str
    config_cls: type
    prepare: Callable[[CombinationInputs, Any], Any]
    fit: Callable[[CombinationInputs, Any, Any], CombinationResult]
    suggest: Callable[[Any, Any, CombinationInputs], dict[str, Any]]


def run_method(spec: MethodSpec, inputs: CombinationInputs, config: Any) -> CombinationResult:
    """Fit ``spec`` with ``config``; tune first when ``config.n_trials > 0``."""
    state = spec.prepare(inputs, config)
    n_trials = int(getattr(config, "n_trials", 0))
    if n_trials <= 0:
        return spec.fit(inputs, config, state)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=int(config.seed))
    study = optuna.create_study(
        direction="maximize", sampler=sampler, study_name=f"combination.{spec.name}"
    )
    best: dict[int, CombinationResult] = {}

    def objective(trial: optuna.Trial) -> float:
        overrides = spec.suggest(trial, config, inputs)
        res = spec.fit(inputs, replace(config, **overrides), state)
        value = objective_value(res.metrics)
        for key in ("train_ic", "valid_ic", "valid_rank_ic"):
            v = float(res.metrics.get(key, math.nan))
            trial.set_user_attr(key, v if math.isfinite(v) else None)
        current = max((t.value for t in study.trials if t.value is not None), default=None)
        if current is None or value > current or not best:
            best.clear()
            best[trial.number] = res
        return value

    bar = progress(total=n_trials, desc=f"optuna {spec.name}", disable=not config.progress)

    def tick(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        bar.update(1)
        bar.set_postfix(best=f"{study.best_value:.4f}")

    try:
        study.optimize(objective, n_trials=n_trials, callbacks=[tick])
    finally:
        bar.close()
    bt = study.best_trial
    if bt.number in best:
        result = best[bt.number]
    else:  # a tie resolved differently by optuna: refit its parameters (deterministic)
        result = spec.fit(inputs, replace(config, **_overrides_of(spec, bt, config, inputs)), state)
    log.info("combination %s: best valid IC %.4f at trial %d of %d (params %s)",
             spec.name, bt.value, bt.number, n_trials, bt.params)
    result.study = study.trials_dataframe()
    result.model["tuning"] = {
        "n_trials": n_trials,
        "best_trial": int(bt.number),
        "best_value": float(bt.value),
        "best_params": dict(bt.params),
        "sampler": "TPESampler",
        "seed": int(config.seed),
    }
    return result


def _overrides_of(
    spec: MethodSpec, trial: optuna.trial.FrozenTrial, config: Any, inputs: CombinationInputs
) -> dict[str, Any]:
    """Replay ``spec.suggest`` against a frozen trial (which returns its recorded values)."""
    return spec.suggest(trial, config, inputs)
