"""What every miner returns, and the one way a miner offers formulas to its pool.

A miner's alpha set is its pool (formulas and lasso weights, AlphaGen/AlphaFormer Algorithm 1);
"Num Factors" in the comparison tables is the number of candidate formulas it generated
(AlphaFormer's definition), not the pool size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alphaminer.checkpoint import CheckpointStore
from alphaminer.evaluation.alphaset import AlphaSet


@contextmanager
def locked_store(checkpoint_dir: str | Path | None, key: Any) -> Iterator[CheckpointStore | None]:
    """The miner's checkpoint store for ``key`` under ``checkpoint_dir`` with its live lock held
    for the ``with`` block (``None`` without a folder: no checkpoints). A second process on the
    same folder fails at once, naming the holder."""
    if checkpoint_dir is None:
        yield None
        return
    store = CheckpointStore.for_run(checkpoint_dir, key)
    with store.lock():
        yield store


def pool_ic(scorer: Any) -> float:
    """The train IC of the scorer's pool as it stands (0 for an empty pool: the RL reward of a
    formula that changes nothing)."""
    pool = scorer.pool
    return float(pool.pool_ic()) if pool is not None and len(pool) else 0.0


def scorer_fingerprint(scorer: Any) -> str:
    """What a miner's checkpoint folder is keyed by besides its config: the data it mines on
    (panel fingerprint, split days and the target's bytes)."""
    h = hashlib.sha256()
    h.update(str(scorer.evaluator.panel.fingerprint()).encode())
    h.update(repr(tuple(scorer.days)).encode())
    h.update(scorer.target.detach().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def offer_to_pool(scorer: Any, formulas: Iterable[str]) -> list[str]:
    """Offer ``formulas`` to the scorer's pool in order (``try_add``); returns them as offered.

    The returned list is what a checkpoint stores: offering it again to a fresh pool rebuilds
    the same pool bit for bit, because every ``try_add`` is deterministic.
    """
    offered = []
    for f in formulas:
        scorer.commit(f)
        offered.append(str(f))
    return offered


@dataclass
class MiningResult:
    """A miner's output: its pool as an alpha set, how many candidates it generated, its log."""

    method: str
    formulas: list[str]
    weights: list[float]
    n_candidates: int
    history: list[dict[str, float]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_scorer(cls, method: str, scorer: Any, n_candidates: int,
                    history: list[dict[str, float]] | None = None,
                    meta: dict[str, Any] | None = None) -> MiningResult:
        pool = scorer.pool
        return cls(method, list(pool.names), [float(w) for w in pool.weights], int(n_candidates),
                   list(history or []), {**(meta or {}), "pool_ic_train": pool_ic(scorer),
                                         "scorer": scorer.stats()})

    def alpha_set(self) -> AlphaSet:
        """The hand-off to combination: formulas with the pool's weights and the run's meta."""
        return AlphaSet(self.method, self.formulas, weights=self.weights,
                        meta={**self.meta, "n_candidates": self.n_candidates,
                              "history": self.history})
