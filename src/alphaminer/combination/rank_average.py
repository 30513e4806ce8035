"""Equal-weight rank average of the top-k factors: the strong, honest combination baseline.

Each selected factor is ranked across stocks per day (centred to (-0.5, 0.5]) and signed so that
its validation RankIC is positive; the signal is the mean of those ranks over the factors present
for that stock and day. Ranks, not values, so one fat-tailed factor or day cannot dominate;
equal weights, so nothing is fitted to a noisy label. Factors are picked (and signed) by their
|mean daily RankIC| on the fit rows of ``select_on``: ``valid`` (the default, "the top-k by
validation RankIC") makes this combiner's validation figures optimistic, so when ``auto`` compares
combiners on validation it should pick on ``train`` (conf/base does), keeping that comparison fair.

With ``k_grid`` the number of factors is itself chosen on validation: the factors stay ranked by
``select_on``, and the k of the grid whose average has the best validation RankIC is kept. A
grid that contains 1 lets the combiner fall back to the single best factor when no average of
several beats it on validation (on the US panel the best train factor is also the best
validation factor, and every average of more factors is worse there).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from alphaminer.combination.base import CombinationInputs, CombinationResult, jsonable
from alphaminer.expr.kernels import cs_rank


@dataclass
class RankAverageConfig:
    """Attributes:
        top_k: factors averaged (the k with the largest |RankIC| on ``select_on``).
        select_on: the segment whose RankIC picks and signs the factors (``train``/``valid``).
        k_grid: when not empty, ``top_k`` is ignored and k is the value of this grid whose
            average has the largest validation RankIC (ties: the smaller k); values above the
            number of usable factors are dropped.
        max_k: the largest k ``n_trials`` may try.
        n_trials: optuna trials over ``top_k`` in ``[1, max_k]`` on the validation IC (0 → use
            ``top_k``); seed: the sampler's seed; progress: a bar over trials.
    """

    top_k: int = 10
    select_on: str = "valid"
    k_grid: tuple[int, ...] = ()
    max_k: int = 50
    n_trials: int = 0
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.top_k < 1 or self.max_k < 1:
            raise ValueError(f"top_k and max_k must be >= 1, got {self.top_k}, {self.max_k}")
        if self.select_on not in ("train", "valid"):
            raise ValueError(f"select_on must be 'train' or 'valid', got {self.select_on!r}")
        self.k_grid = tuple(int(k) for k in self.k_grid)
        if any(k < 1 for k in self.k_grid):
            raise ValueError(f"k_grid values must be >= 1, got {self.k_grid}")
        if self.k_grid and self.n_trials > 0:
            raise ValueError("k_grid chooses k on validation already: set n_trials to 0")


def segment_rank_ic(inputs: CombinationInputs, segment: str = "valid") -> np.ndarray:
    """``[K]`` mean daily RankIC of every factor on ``segment``'s fit rows (NaN: no day)."""
    v0, v1 = inputs.fit_rows(segment)
    if v1 <= v0:
        raise ValueError(f"{segment} segment has no day whose {inputs.horizon}-day label ends "
                         "inside it")
    ric = inputs.factor_rank_ic[:, v0:v1].double()
    ok = torch.isfinite(ric)
    n = ok.sum(dim=1)
    mean = torch.where(ok, ric, torch.zeros_like(ric)).sum(dim=1) / n.clamp_min(1)
    return torch.where(n > 0, mean, torch.full_like(mean, float("nan"))).cpu().numpy()


def _signed_rank_mean(signed: torch.Tensor) -> torch.Tensor:
    """``[T, S]`` mean over the factor axis of ``signed`` ``[k, T, S]``, ignoring NaN (NaN where
    no factor is present)."""
    present = torch.isfinite(signed)
    total = torch.where(present, signed, torch.zeros_like(signed)).sum(dim=0)
    count = present.sum(dim=0)
    return torch.where(count > 0, total / count.clamp_min(1),
                       torch.full_like(total, float("nan")))


def fit_rank_average(inputs: CombinationInputs, config: RankAverageConfig, state: Any = None
                     ) -> CombinationResult:
    """Average the signed per-day ranks of the ``top_k`` factors (no label is fitted), or of the
    best k of ``k_grid`` on the validation RankIC."""
    score = segment_rank_ic(inputs, config.select_on)
    usable = np.flatnonzero(np.isfinite(score) & (score != 0))
    if not usable.size:
        raise ValueError(f"no factor has a finite, non-zero {config.select_on} RankIC")
    order = usable[np.lexsort((usable, -np.abs(score[usable])))]
    grid = sorted({k for k in config.k_grid if k <= usable.size}) or (
        [usable.size] if config.k_grid else [min(int(config.top_k), usable.size)])
    top = [int(i) for i in order[: max(grid)]]
    signs = torch.tensor([1.0 if score[i] > 0 else -1.0 for i in top], dtype=torch.float32)
    ranks = cs_rank(inputs.values[top]) - 0.5  # [k, T, S], NaN where the factor is missing
    signed = ranks * signs.to(ranks.device)[:, None, None]
    by_k: dict[int, tuple[torch.Tensor, dict[str, float]]] = {}
    for k in grid:
        sig = _signed_rank_mean(signed[:k])
        by_k[k] = (sig, inputs.metrics(sig))

    def valid_rank_ic(k: int) -> float:
        v = by_k[k][1].get("valid_rank_ic", float("nan"))
        return v if np.isfinite(v) else -np.inf

    best = max(grid, key=lambda k: (valid_rank_ic(k), -k))
    signal, metrics = by_k[best]
    chosen = top[:best]
    names = [inputs.names[i] for i in chosen]
    weights = {n: float(s) / len(chosen) for n, s in zip(names, signs[:best].tolist())}
    params = {"top_k": len(chosen)}
    model = {"method": "rank_average", "weights": weights,
             f"{config.select_on}_rank_ic": {n: float(score[i]) for n, i in zip(names, chosen)},
             "params": params, "config": jsonable(asdict(config))}
    if config.k_grid:
        model["k_grid_valid_rank_ic"] = {str(k): by_k[k][1].get("valid_rank_ic") for k in grid}
    return CombinationResult(method="rank_average", signal=signal, model=model,
                             metrics=metrics, params=params, selected=names)


def suggest_rank_average(trial: Any, config: RankAverageConfig, inputs: CombinationInputs
                         ) -> dict[str, Any]:
    """Optuna search space: ``top_k`` in ``[1, min(max_k, K)]``."""
    return {"top_k": trial.suggest_int("top_k", 1, max(1, min(config.max_k, inputs.K)))}
