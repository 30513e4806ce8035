"""AlphaFormer inference: a frozen pre-trained model proposes formulas for a new market.

The model is conditioned on the target market's dataset embedding — the last ``window`` days
*strictly inside* the scorer's split (``[t1 − window, t1)``), so nothing after the split is read —
and on the current pool. ``n_candidates`` formulas are sampled in batches of ``batch_size`` under
the grammar mask (:func:`alphaminer.mining.ppo.collect`); after each batch every new formula the
scorer can score is offered, in order, to the scorer's pool of capacity ``M`` (Algorithm 1,
:func:`alphaminer.mining.base.offer_to_pool`), and the next batch sees the updated pool. A
formula already offered is not offered again (a repeat is a duplicate of itself). No gradient
step is ever taken. The result is a :class:`~alphaminer.mining.base.MiningResult`: the pool
(formulas, weights) and ``n_candidates`` (the comparison's *Num Factors*).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch

from alphaminer.expr.grammar import RPNBuilder
from alphaminer.mining.alphaformer.model import AlphaFormer, market_features
from alphaminer.mining.base import MiningResult, offer_to_pool, pool_ic
from alphaminer.mining.ppo import collect
from alphaminer.runtime import config_from

__all__ = ["AlphaFormerMiner", "InferConfig"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InferConfig:
    """Inference budget: ``n_candidates`` (N; 20,000 in the paper) sampled ``batch_size`` at a
    time at ``temperature``."""

    n_candidates: int = 1000
    batch_size: int = 100
    temperature: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_candidates < 1 or self.batch_size < 1:
            raise ValueError("n_candidates and batch_size must be >= 1")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")

    @classmethod
    def from_dict(cls, d: Any) -> InferConfig:
        return config_from(cls, d)


class _Tempered(torch.nn.Module):
    """The model with its logits divided by a temperature (generation only)."""

    def __init__(self, model: AlphaFormer, temperature: float) -> None:
        super().__init__()
        self.model, self.t = model, float(temperature)

    def initial_state(self, batch: int, context: Any) -> Any:
        return self.model.initial_state(batch, context)

    def step(self, prev: torch.Tensor, state: Any, context: Any = None) -> Any:
        logits, value, state = self.model.step(prev, state, context)
        return logits / self.t, value, state


class AlphaFormerMiner:
    """Frozen-weight formula generation into the scorer's pool (module docstring)."""

    def __init__(self, scorer: Any, model: AlphaFormer, config: InferConfig | dict | None = None
                 ) -> None:
        self.scorer = scorer
        self.model = model
        self.config = config if isinstance(config, InferConfig) \
            else InferConfig.from_dict(config)
        if scorer.pool is None:
            raise ValueError("the scorer needs a pool (pool=PoolConfig(capacity=M, ...))")
        mc = model.config
        t0, t1 = scorer.days
        if t1 - t0 < mc.window:
            raise ValueError(f"the split has {t1 - t0} days, the dataset window needs "
                             f"{mc.window}")
        # the scorer's evaluator panel ends at t1 (exclusive): the window is inside the split
        panel = scorer.evaluator.panel
        self.features = market_features(panel, panel.T, mc.window, model.vocab.features,
                                        mc.max_stocks)
        self.generator = torch.Generator().manual_seed(self.config.seed)
        #: the formulas offered to the pool, in order (replaying them rebuilds the pool)
        self.offered: list[str] = []

    def _builder(self) -> RPNBuilder:
        return RPNBuilder(self.model.vocab, max_len=self.model.config.max_len)

    @torch.no_grad()
    def run(self, progress: bool = True) -> MiningResult:
        cfg = self.config
        for p in self.model.parameters():
            p.requires_grad_(False)
        policy = _Tempered(self.model, cfg.temperature)
        seen: set[str] = set()
        history: list[dict[str, float]] = []
        n = 0
        t0 = time.perf_counter()
        batches = range(0, cfg.n_candidates, cfg.batch_size)
        if progress:
            from alphaminer.progress import progress as progress_bar

            batches = progress_bar(batches, desc="alphaformer candidates", unit="batch")
        for start in batches:
            bs = min(cfg.batch_size, cfg.n_candidates - start)
            ctx = self.model.make_context([self.features], [0] * bs,
                                          [list(self.scorer.pool.names)] * bs)
            ro = collect(policy, self._builder, bs, self.model.config.max_len + 1,
                         generator=self.generator, context=ctx)
            formulas = [str(b.finish()) for b in ro.builders]
            n += bs
            new = list(dict.fromkeys(f for f in formulas if f not in seen))
            seen.update(new)
            scores = self.scorer.score(new)
            ok = [f for f, s in zip(new, scores) if s.ok]
            self.offered.extend(offer_to_pool(self.scorer, ok))
            history.append({"batch": len(history), "candidates": float(n),
                            "new": float(len(new)), "valid_share": len(ok) / max(len(new), 1),
                            "pool_ic": pool_ic(self.scorer), "pool_size": len(self.scorer.pool),
                            "seconds": time.perf_counter() - t0})
            log.info("alphaformer: %d candidates, pool IC %.4f (%d members)", n,
                     history[-1]["pool_ic"], len(self.scorer.pool))
        elapsed = time.perf_counter() - t0
        return MiningResult.from_scorer(
            "alphaformer", self.scorer, n_candidates=n, history=history,
            meta={"infer": asdict(cfg), "model": asdict(self.model.config),
                  "dataset_window": [int(self.scorer.days[1]) - self.model.config.window,
                                     int(self.scorer.days[1])],
                  "unique_candidates": len(seen), "seconds": elapsed,
                  "candidates_per_second": n / elapsed if elapsed > 0 else float("nan")})
