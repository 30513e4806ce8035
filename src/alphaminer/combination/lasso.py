"""The lasso pool combiner (AlphaFormer Eq. 2) — a thin layer over the shared ``AlphaPool``.

The pool is fitted on the train segment's fit rows: factors are offered to an
:class:`~alphaminer.evaluation.AlphaPool` in the given order (duplicates with |corr| above
``dup_threshold`` are rejected, over ``capacity`` the smallest |w| is dropped — Algorithm 1), and
the weights minimise ``mean((Σ w_k z_k − y_z)²) + λ‖w‖₁`` on per-day z-scores. The signal on every
day is the pool's own :meth:`~alphaminer.evaluation.AlphaPool.combined` — ``Σ w_k z_k`` with NaN → 0
per factor — and NaN where a stock has no finite member value that day (outside the universe).

``target`` chooses what the pool is fitted to. The 20-day label is fat-tailed, and a squared loss
on its z-scores lets a handful of extreme days and names set the weights: ``rank`` fits the
per-day cross-sectional rank of the label instead, ``winsor`` the label clipped per day at its
``winsor_quantile`` / ``1 − winsor_quantile`` quantiles. The signal is always judged on the raw
label (the project's IC). ``auto`` compares the treatments as separate candidates
(``lasso_pool@rank``, ``lasso_pool@winsor``) on validation.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch

from alphaminer.combination.base import (
    TARGETS,
    CombinationInputs,
    CombinationResult,
    jsonable,
    transform_target,
)
from alphaminer.evaluation import AlphaPool


@dataclass
class LassoPoolConfig:
    """Lasso pool combiner.

    Attributes:
        l1: λ of ``mean(residual²) + λ‖w‖₁`` (AlphaFormer: 0.005).
        capacity: pool capacity M (``None`` → all factors).
        dup_threshold: reject a factor whose |mean daily corr| with a member exceeds this.
        n_trials: optuna trials on the validation IC (0 → use ``l1``).
        seed: TPE sampler seed; l1_range: optuna search space (log-uniform).
        progress: show a tqdm bar over optuna trials.
        target: the fitting target's treatment, one of :data:`~alphaminer.combination.base.TARGETS`
            (module docstring; ``zscore`` equals ``raw`` here, the pool z-scores anyway).
        winsor_quantile: the per-day clipping quantile of ``target="winsor"``, in (0, 0.5).
    """

    l1: float = 0.005
    capacity: int | None = None
    dup_threshold: float = 0.99
    n_trials: int = 10
    seed: int = 0
    l1_range: tuple[float, float] = (1e-4, 0.05)
    progress: bool = True
    target: str = "raw"
    winsor_quantile: float = 0.01

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {self.target!r}")
        if not 0.0 < self.winsor_quantile < 0.5:
            raise ValueError(f"winsor_quantile must be in (0, 0.5), got {self.winsor_quantile}")
        if not self.l1 >= 0:
            raise ValueError(f"l1 must be >= 0, got {self.l1}")
        if self.capacity is not None and self.capacity < 1:
            raise ValueError(f"capacity must be >= 1 or None, got {self.capacity}")


def build_pool(inputs: CombinationInputs, config: LassoPoolConfig) -> AlphaPool:
    """Fit an :class:`AlphaPool` on the train fit rows (every factor offered, in order)."""
    t0, t1 = inputs.fit_rows("train")
    if t1 <= t0:
        raise ValueError(
            f"train segment {inputs.splits.train} has no day whose {inputs.horizon}-day label "
            "ends inside it"
        )
    capacity = inputs.K if config.capacity is None else int(config.capacity)
    pool = AlphaPool(
        capacity=capacity,
        l1=float(config.l1),
        dup_threshold=float(config.dup_threshold),
        min_stocks=inputs.min_stocks,
        target=transform_target(inputs.y[t0:t1], config.target, config.winsor_quantile),
        compute_rank_ic=False,
    )
    for name, v in zip(inputs.names, inputs.values):
        pool.try_add(name, v[t0:t1])
    return pool


def fit_lasso_pool(inputs: CombinationInputs, config: LassoPoolConfig) -> CombinationResult:
    """Fit the pool on train and score every day with its weighted sum of z-scores."""
    pool = build_pool(inputs, config)
    if len(pool) == 0:
        raise ValueError("no factor was accepted into the lasso pool (all degenerate?)")
    index = {n: i for i, n in enumerate(inputs.names)}
    member_idx = [index[n] for n in pool.names]
    vals = inputs.values[member_idx]
    signal = pool.combined(list(vals))
    has_x = torch.isfinite(vals).any(dim=0)
    signal = torch.where(has_x, signal, torch.full_like(signal, float("nan")))
    weights = {n: float(w) for n, w in zip(pool.names, pool.weights.tolist())}
    params = {
        "l1": float(config.l1),
        "capacity": inputs.K if config.capacity is None else int(config.capacity),
        "dup_threshold": float(config.dup_threshold),
        "target": config.target,
    }
    model = {
        "method": "lasso_pool",
        "pool": pool.to_dict(),
        "weights": weights,
        # IC against the fitting target (the treated label when ``target`` is not raw)
        "train_pool_ic": _finite_or_none(pool.pool_ic()),
        "params": params,
        "config": jsonable(asdict(config)),
    }
    return CombinationResult(
        method="lasso_pool",
        signal=signal,
        model=model,
        metrics=inputs.metrics(signal),
        params=params,
        selected=[n for n, w in weights.items() if w != 0.0],
    )


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def suggest_lasso_pool(trial: Any, config: LassoPoolConfig) -> dict[str, Any]:
    """Optuna search space: λ log-uniform in ``l1_range``."""
    return {"l1": trial.suggest_float("l1", *config.l1_range, log=True)}
