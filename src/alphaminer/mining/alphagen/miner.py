"""AlphaGen-style RL: an LSTM policy writes RPN formulas under the grammar mask, rewarded by the
pool's IC after the pool update (the seeds' RL baseline).

Each PPO iteration samples ``batch_size`` formulas with :func:`alphaminer.mining.ppo.collect`
from :class:`LSTMPolicy` under :class:`alphaminer.expr.grammar.RPNBuilder` masks (only formulas
that can be completed within ``max_len`` tokens are ever emitted). Each finished formula is
offered to the pool (capacity M, L1 λ) through the kit's scorer; its reward is the pool IC on
the train split after that update, and ``invalid_reward`` (−1) for a formula the scorer cannot
score (NaN, constant, ...). One checkpoint per iteration: policy, optimizer, learning curve, the
formulas offered to the pool in order (replayed on resume), RNG states.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from alphaminer.checkpoint import CheckpointStore, capture_rng, restore_rng
from alphaminer.expr.grammar import RPNBuilder, random_formulas
from alphaminer.expr.vocab import Vocabulary
from alphaminer.mining.alphagen.policy import LSTMPolicy
from alphaminer.mining.base import (
    MiningResult,
    locked_store,
    offer_to_pool,
    pool_ic,
    scorer_fingerprint,
)
from alphaminer.mining.ppo import PPO, PPOConfig, collect
from alphaminer.runtime import config_from

__all__ = ["AlphaGenConfig", "AlphaGenMiner", "random_formulas"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlphaGenConfig:
    """AlphaGen baseline settings (AlphaFormer Table 11: LSTM 2 × 128, heads 2 × 64, PPO clip
    0.2, lr 1e-3). ``iterations × batch_size`` is the candidate budget."""

    iterations: int = 25
    batch_size: int = 64
    max_len: int = 20
    dims: bool = False
    hidden: int = 128
    layers: int = 2
    head_hidden: int = 64
    head_layers: int = 2
    invalid_reward: float = -1.0
    ppo: dict[str, Any] = field(default_factory=lambda: {
        "lr": 1e-3, "clip": 0.2, "epochs": 4, "minibatch_size": 64, "entropy_coef": 0.01,
        "gamma": 1.0, "gae_lambda": 0.95})
    seed: int = 0

    def __post_init__(self) -> None:
        if self.iterations < 1 or self.batch_size < 1 or self.max_len < 1:
            raise ValueError("iterations, batch_size and max_len must be >= 1")
        PPOConfig.from_dict(self.ppo)  # validate early, naming bad keys

    @classmethod
    def from_dict(cls, d: Any) -> AlphaGenConfig:
        return config_from(cls, d)


class AlphaGenMiner:
    """PPO over an LSTM token policy, rewarded by the pool IC (see module docstring)."""

    def __init__(self, scorer: Any, vocab: Vocabulary | None = None,
                 config: AlphaGenConfig | dict | None = None) -> None:
        self.scorer = scorer
        self.vocab = vocab or Vocabulary.default()
        self.config = config if isinstance(config, AlphaGenConfig) \
            else AlphaGenConfig.from_dict(config)
        cfg = self.config
        torch.manual_seed(cfg.seed)
        self.policy = LSTMPolicy(len(self.vocab), cfg.hidden, cfg.layers, cfg.head_hidden,
                                 cfg.head_layers)
        self.ppo = PPO(self.policy, PPOConfig.from_dict(cfg.ppo))
        self.generator = torch.Generator().manual_seed(cfg.seed)

    def _builder(self) -> RPNBuilder:
        return RPNBuilder(self.vocab, max_len=self.config.max_len,
                          dims=True if self.config.dims else None)

    def _rewards(self, formulas: list[str], offered: list[str]) -> list[float]:
        rewards = []
        for f, score in zip(formulas, self.scorer.score(formulas)):  # one batched scoring call
            if not score.ok:
                rewards.append(self.config.invalid_reward)
                continue
            offered.extend(offer_to_pool(self.scorer, [f]))
            rewards.append(pool_ic(self.scorer))
        return rewards

    def run(self, checkpoint_dir: str | Path | None = None, progress: bool = True
            ) -> MiningResult:
        cfg = self.config
        with locked_store(checkpoint_dir, self._run_key()) as store:
            it0, offered, n_cand = self._resume(store)
            t0 = time.perf_counter()
            its = range(it0, cfg.iterations)
            if progress:
                from alphaminer.progress import progress as progress_bar

                its = progress_bar(its, desc="alphagen updates", initial=it0, total=cfg.iterations)
            for it in its:
                ro = collect(self.policy, self._builder, cfg.batch_size, cfg.max_len + 1,
                             generator=self.generator)
                formulas = [str(b.finish()) for b in ro.builders]
                n_cand += len(formulas)
                ro.set_rewards(self._rewards(formulas, offered))
                stats = self.ppo.update(ro, generator=self.generator)
                stats.update(iteration=it, pool_ic=pool_ic(self.scorer),
                             pool_size=len(self.scorer.pool), unique=len(set(formulas)))
                log.info("alphagen update %d: mean reward %.4f, entropy %.3f, pool IC %.4f", it,
                         stats["mean_reward"], stats["entropy"], stats["pool_ic"])
                if store is not None:
                    store.save(self._snapshot(it + 1, offered, n_cand), step=it + 1)
            elapsed = time.perf_counter() - t0
        done = cfg.iterations - it0
        return MiningResult.from_scorer(
            "alphagen", self.scorer, n_candidates=n_cand, history=list(self.ppo.history),
            meta={"config": asdict(cfg),
                  "updates_per_minute": done / elapsed * 60 if elapsed > 0 and done else
                  float("nan")})

    def _run_key(self) -> dict[str, Any]:
        return {"miner": "alphagen", "config": asdict(self.config),
                "vocab": self.vocab.to_dict(), "data": scorer_fingerprint(self.scorer)}

    def _snapshot(self, iteration: int, offered: list[str], n_cand: int) -> dict[str, Any]:
        return {"iteration": iteration, "offered": list(offered), "n_candidates": n_cand,
                "ppo": self.ppo.state_dict(),
                "rng": capture_rng(), "generator": self.generator.get_state()}

    def _resume(self, store: CheckpointStore | None) -> tuple[int, list[str], int]:
        ck = store.load_latest() if store is not None else None
        if ck is None:
            return 0, [], 0
        st = ck.state
        self.ppo.load_state_dict(st["ppo"])
        restore_rng(st["rng"])
        self.generator.set_state(st["generator"])
        offered = list(st["offered"])
        offer_to_pool(self.scorer, offered)
        log.info("alphagen: resumed at update %d from %s", st["iteration"], store.folder)
        return int(st["iteration"]), offered, int(st["n_candidates"])
