"""AlphaFormer inference: a frozen pre-trained model proposes formulas for a new market.

The model is conditioned on the target market's dataset embedding — the last ``window`` days
*strictly inside* the scorer's split (``[t1 − window, t1)``), so nothing after the split is read —
and on the current pool. ``n_candidates`` formulas are sampled in batches of ``batch_size`` under
the grammar mask (:func:`alphaminer.mining.ppo.collect`); after each batch every new formula the
scorer can score is offered, in order, to the scorer's pool of capacity ``M`` (Algorithm 1:
``try_add`` one after the other, as :func:`alphaminer.mining.base.offer_to_pool`), and the next
batch sees the updated pool. A formula already offered is not offered again (a repeat is a
duplicate of itself). No gradient step is ever taken. The result is a
:class:`~alphaminer.mining.base.MiningResult`: the pool (formulas, weights) and
``n_candidates`` (the comparison's *Num Factors*).

Speed, without changing the result (``tests/mining/test_alphaformer_infer_speed.py`` checks the
pool against the plain loop): decoding is incremental (:meth:`AlphaFormer.step`) and runs with
one torch thread; a batch is scored and offered a scorer batch (``scorer.batch_size``) at a
time, so the scorer's dry run of ``try_add`` is fresh for each chunk and a candidate it rejected
before anything in the chunk entered is not offered again (:meth:`AlphaFormerMiner._offer`).
``meta["phase_seconds"]`` splits the run into decode / score / pool.
"""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from typing import Any

import torch

from alphaminer.evaluation.metrics import serial_torch
from alphaminer.expr.grammar import RPNBuilder
from alphaminer.mining.alphaformer.model import AlphaFormer, market_features
from alphaminer.mining.base import MiningResult, pool_ic
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
        self._skipped = 0  # candidates whose rejection was their dry run's (see _offer)

    def _offer(self, scored: list[tuple[str, Any]]) -> list[str]:
        """Offer a chunk's ok candidates to the pool in order (Algorithm 1); returns them.

        Each score carries the scorer's dry run of ``try_add`` against the pool as it was when
        the chunk was scored. Until the first candidate of the chunk enters, the pool is that
        very pool, and ``try_add`` is deterministic: a candidate the dry run rejected would be
        rejected again, so it is not re-evaluated (no values, z-scores or refit). After a
        change every remaining candidate goes through :meth:`CandidateScorer.commit`, whose
        values are still in the evaluator's cache because the chunk was scored just before.
        """
        changed = False
        for f, s in scored:
            if not changed and s.pool_accepted is False:
                self._skipped += 1
                continue
            changed |= self.scorer.commit(f).accepted
        return [f for f, _ in scored]

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
        phases = {"decode": 0.0, "score": 0.0, "pool": 0.0}

        def clock(since: float, phase: str) -> float:
            now = time.perf_counter()
            phases[phase] += now - since
            return now

        t0 = time.perf_counter()
        batches = range(0, cfg.n_candidates, cfg.batch_size)
        if progress:
            from alphaminer.progress import progress as progress_bar

            batches = progress_bar(batches, desc="alphaformer candidates", unit="batch")
        for start in batches:
            bs = min(cfg.batch_size, cfg.n_candidates - start)
            ctx = self.model.make_context([self.features], [0] * bs,
                                          [list(self.scorer.pool.names)] * bs)
            c = time.perf_counter()
            # one intra-op thread: a step's ops are tiny ([B, 1, d]), and OpenMP regions that
            # spin-wait for a descheduled thread made decoding 10x slower on a loaded 2-core host
            with serial_torch() if self.model.device.type == "cpu" else nullcontext():
                ro = collect(policy, self._builder, bs, self.model.config.max_len + 1,
                             generator=self.generator, context=ctx)
            formulas = [str(b.finish()) for b in ro.builders]
            n += bs
            new = list(dict.fromkeys(f for f in formulas if f not in seen))
            seen.update(new)
            c = clock(c, "decode")
            n_ok = 0
            # scored and offered a chunk at a time (see _offer); the chunk is the scorer's own
            # batch, so scoring does the same batched work as one call on the whole batch
            chunk = max(1, int(getattr(self.scorer, "batch_size", len(new))))
            for i in range(0, len(new), chunk):
                part = new[i:i + chunk]
                scores = self.scorer.score(part)
                c = clock(c, "score")
                ok = [(f, s) for f, s in zip(part, scores) if s.ok]
                n_ok += len(ok)
                with serial_torch() if self.model.device.type == "cpu" else nullcontext():
                    self.offered.extend(self._offer(ok))
                c = clock(c, "pool")
            history.append({"batch": len(history), "candidates": float(n),
                            "new": float(len(new)), "valid_share": n_ok / max(len(new), 1),
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
                  "phase_seconds": phases, "pool_skipped": self._skipped,
                  "candidates_per_second": n / elapsed if elapsed > 0 else float("nan")})
