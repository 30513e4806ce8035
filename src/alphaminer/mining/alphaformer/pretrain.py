"""AlphaFormer pre-training with PPO on synthetic markets (the paper's Algorithm 3).

An *episode* is one market with a fresh, empty alpha pool of capacity ``M`` drawn from
``capacities`` ({1, 10, 20}); it lasts ``steps_per_capacity · M`` (2M) iterations. ``slots``
episodes run side by side ("batched over markets"): every PPO update, each slot samples
``batch_size / slots`` formulas conditioned on its market's dataset embedding and its pool as it
stands, offers them in order to its pool through the kit's scorer (Algorithm 1:
:func:`alphaminer.mining.base.offer_to_pool`), and each formula's reward is the pool IC on that
market after its update (``invalid_reward`` when the scorer cannot score it). With
``reward_holdout`` > 0 (our option; the paper's reward is in-sample) the pool is fitted on a
market's earlier days and the reward is the same pool's IC on its last days (see
:class:`PretrainConfig`). One PPO update
(:class:`alphaminer.mining.ppo.PPO`, γ = λ = 1 so ``A = r − V``) runs on the whole batch. A slot
whose episode is over starts a new one on a market and capacity drawn from the run's RNG.
``warmup_iterations`` (our option; 0 in the paper) first runs that many iterations with the
initial weights and no update, so that the pools enter update 0 at the mix of fill states they
keep later rather than all empty.

One checkpoint per update (the kit's :class:`~alphaminer.checkpoint.CheckpointStore`): PPO state
(policy, optimizer, learning curve), RNG states and per slot (market, M, iteration, the formulas
offered in order, replayed on resume to rebuild the pool bit for bit). A killed run resumes to
the same final weights as an uninterrupted one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from alphaminer.checkpoint import CheckpointStore, capture_rng, restore_rng
from alphaminer.data import make_labels
from alphaminer.evaluation.pool import PoolConfig
from alphaminer.evaluation.scorer import CandidateScorer
from alphaminer.expr.grammar import RPNBuilder
from alphaminer.expr.vocab import Vocabulary
from alphaminer.mining.alphaformer import distributed as ddp
from alphaminer.mining.alphaformer.model import AlphaFormer, AlphaFormerConfig, market_features
from alphaminer.mining.base import locked_store, offer_to_pool, pool_ic
from alphaminer.mining.ppo import PPO, PPOConfig, collect
from alphaminer.panel import Panel
from alphaminer.runtime import config_from, resolve_device

__all__ = ["Market", "PretrainConfig", "PretrainResult", "Pretrainer", "prepare_markets"]

log = logging.getLogger(__name__)

#: AlphaFormer Table 9 (γ = λ = 1: the advantage is r − V)
TABLE9_PPO: dict[str, Any] = {"lr": 3e-4, "clip": 0.2, "value_coef": 0.5, "max_grad_norm": 0.5,
                              "epochs": 10, "minibatch_size": 100, "entropy_coef": 0.01,
                              "gamma": 1.0, "gae_lambda": 1.0}


@dataclass(frozen=True)
class PretrainConfig:
    """Pre-training budget and Algorithm 3's settings (Table 9 in ``ppo``; L1 λ of the pool)."""

    updates: int = 60
    batch_size: int = 100
    slots: int = 10
    capacities: tuple[int, ...] = (1, 10, 20)
    steps_per_capacity: int = 2
    l1: float = 0.005
    #: reward of a formula the scorer cannot score: a number, or ``"unchanged"``: the pool IC
    #: as it stands, since the formula leaves the pool unchanged (the literal reading of "the
    #: pool IC after the update"). A fixed number below the pool's IC rewards mere validity:
    #: every valid formula, even one the pool rejects, earns the pool's IC
    #: (docs/methods/alphaformer.md, "The reward recipe").
    invalid_reward: float | str = -1.0
    horizon: int = 20
    label_kind: str = "close"
    min_stocks: int = 10
    #: share of each market's labelled days held out for the reward: 0 → the paper (the pool is
    #: fitted and rewarded on all labelled days); h > 0 → the pool is fitted on the days before
    #: the last ``h`` share (less a ``horizon`` gap, so no fitting label reads a held-out price)
    #: and each formula is rewarded with the pool's IC on the held-out days. That rewards
    #: formulas whose combination generalises instead of fitting a small market's noise.
    reward_holdout: float = 0.0
    #: iterations run before the first PPO update with the initial weights and no learning
    #: (not logged): the slots' pools then start at the mix of fill states they keep later,
    #: instead of all empty at once. Without it, the first updates' rewards come from young
    #: pools, and a policy that never changes shows a significant trend in its learning curve
    #: (docs/methods/alphaformer.md). 0 = the paper (pools start empty at update 0).
    warmup_iterations: int = 0
    ppo: dict[str, Any] = field(default_factory=lambda: dict(TABLE9_PPO))
    device: str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.updates < 1 or self.batch_size < 1 or self.slots < 1:
            raise ValueError("updates, batch_size and slots must be >= 1")
        if self.warmup_iterations < 0:
            raise ValueError(f"warmup_iterations must be >= 0, got {self.warmup_iterations}")
        if self.batch_size % self.slots:
            raise ValueError(f"batch_size ({self.batch_size}) must be a multiple of slots "
                             f"({self.slots})")
        if not self.capacities or min(self.capacities) < 1 or self.steps_per_capacity < 1:
            raise ValueError("capacities must be non-empty and >= 1, steps_per_capacity >= 1")
        object.__setattr__(self, "capacities", tuple(int(c) for c in self.capacities))
        if isinstance(self.invalid_reward, str):
            if self.invalid_reward != "unchanged":
                raise ValueError(f"invalid_reward must be a number or 'unchanged', got "
                                 f"{self.invalid_reward!r}")
        else:
            object.__setattr__(self, "invalid_reward", float(self.invalid_reward))
        if not 0.0 <= float(self.reward_holdout) < 1.0:
            raise ValueError(f"reward_holdout must be in [0, 1), got {self.reward_holdout!r}")
        ppo = {**TABLE9_PPO, **dict(self.ppo)}
        PPOConfig.from_dict(ppo)  # validate early, naming bad keys
        object.__setattr__(self, "ppo", ppo)

    @classmethod
    def from_dict(cls, d: Any) -> PretrainConfig:
        return config_from(cls, d)


@dataclass
class Market:
    """A pre-training market: panel, ``[T, S]`` label and its normalised dataset features."""

    name: str
    panel: Panel
    target: torch.Tensor
    features: torch.Tensor
    #: ``(0, t_fit)``: the days the pool is fitted on (None: all days)
    fit_days: tuple[int, int] | None = None
    #: ``(t_ho, t_end)``: the held-out days of the reward (None: the reward is in-sample)
    holdout_days: tuple[int, int] | None = None


def prepare_markets(markets: Mapping[str, Any] | Sequence[Panel], vocab: Vocabulary,
                    model_cfg: AlphaFormerConfig, horizon: int = 20, kind: str = "close",
                    holdout: float = 0.0) -> list[Market]:
    """Markets (a partitioned dataset's ``name → Panel | loader`` mapping, or panels) with labels
    ``make_labels(panel, horizon, kind)`` (as ingestion) and the dataset window ending on the
    last day with a label: the embedding sees no day the pool's IC cannot use.

    ``holdout`` (``PretrainConfig.reward_holdout``) > 0: the last ``holdout`` share of the
    labelled days ``[t_ho, t_end)`` is the reward's; the pool is fitted on ``[0, t_ho − horizon)``
    and the dataset window ends at ``t_ho``, as at inference (the window ends where the fitting
    split does, and the pool is judged on what follows)."""
    if not 0.0 <= float(holdout) < 1.0:
        raise ValueError(f"holdout must be in [0, 1), got {holdout!r}")
    items = sorted(markets.items()) if isinstance(markets, Mapping) else [
        (f"market_{i}", p) for i, p in enumerate(markets)]
    out = []
    for name, p in items:
        panel = p() if callable(p) else p
        if not isinstance(panel, Panel):
            raise TypeError(f"market {name!r} is a {type(panel).__name__}, not a Panel")
        y = make_labels(panel, horizon, kind)
        labelled = torch.nonzero(torch.isfinite(y).any(dim=1)).squeeze(1)
        t_end = int(labelled[-1]) + 1 if labelled.numel() else panel.T
        t_end = max(t_end, model_cfg.window)
        fit = ho = None
        t_window = t_end
        if holdout > 0:
            t_ho = t_end - int(round(holdout * t_end))
            t_fit = t_ho - int(horizon)
            if t_fit < max(2 * model_cfg.window, 1) or t_ho >= t_end:
                raise ValueError(
                    f"market {name!r}: {t_end} labelled days are too few for reward_holdout "
                    f"{holdout} (fit days [0, {t_fit}), held-out days [{t_ho}, {t_end}))")
            fit, ho, t_window = (0, t_fit), (t_ho, t_end), t_ho
        out.append(Market(str(name), panel, y, market_features(
            panel, t_window, model_cfg.window, vocab.features, model_cfg.max_stocks),
            fit_days=fit, holdout_days=ho))
    if not out:
        raise ValueError("no markets to pre-train on")
    return out


@dataclass
class _Slot:
    market: int
    capacity: int
    step: int
    offered: list[str]
    scorer: Any = None
    #: the reward of the pool as it stands (None: not computed since the slot was built)
    reward: float | None = None


@dataclass
class PretrainResult:
    model: AlphaFormer
    history: list[dict[str, float]]
    meta: dict[str, Any]


class Pretrainer:
    """PPO pre-training of an :class:`AlphaFormer` (module docstring)."""

    def __init__(self, markets: Sequence[Market], vocab: Vocabulary | None = None,
                 model_config: AlphaFormerConfig | dict | None = None,
                 config: PretrainConfig | dict | None = None,
                 scorer_factory: Callable[[Market, int], Any] | None = None) -> None:
        self.dist = ddp.context()  # under torchrun: this rank's markets, averaged gradients
        self.markets = ddp.shard(list(markets), self.dist)
        self.vocab = vocab or Vocabulary.default()
        self.model_config = model_config if isinstance(model_config, AlphaFormerConfig) \
            else AlphaFormerConfig.from_dict(model_config)
        self.config = config if isinstance(config, PretrainConfig) \
            else PretrainConfig.from_dict(config)
        cfg = self.config
        mismatch = [m.name for m in self.markets
                    if (m.holdout_days is not None) != (cfg.reward_holdout > 0)]
        if mismatch:
            raise ValueError(f"markets {mismatch} were prepared for another reward_holdout than "
                             f"the config's {cfg.reward_holdout}: pass "
                             f"prepare_markets(..., holdout=config.reward_holdout)")
        self.device = resolve_device(cfg.device)
        torch.manual_seed(cfg.seed)
        self.model = AlphaFormer(self.vocab, self.model_config).to(self.device)
        ddp.broadcast_parameters(self.model, self.dist)
        self._grad_hooks = ddp.average_gradients(self.model, self.dist)
        self.ppo = PPO(self.model, PPOConfig.from_dict(cfg.ppo))
        self.generator = torch.Generator().manual_seed(cfg.seed + self.dist.rank)
        self.rng = np.random.default_rng(cfg.seed + self.dist.rank)
        self.scorer_factory = scorer_factory or self._default_scorer
        self.slots: list[_Slot] = []
        self._data = [m.features for m in self.markets]
        self._holdout: dict[int, CandidateScorer] = {}  # market → scorer on its held-out days

    # ------------------------------------------------------------------ episodes
    def _default_scorer(self, market: Market, capacity: int) -> CandidateScorer:
        cfg = self.config
        return CandidateScorer(market.panel, market.target, days=market.fit_days,
                               pool=PoolConfig(capacity=capacity, l1=cfg.l1,
                                               min_stocks=cfg.min_stocks, compute_rank_ic=False),
                               min_stocks=cfg.min_stocks, compute_rank_ic=False)

    def _holdout_ic(self, slot: _Slot) -> float:
        """The slot's pool, with its fitted weights, scored on its market's held-out days (0 for
        an empty pool; a member that cannot be evaluated there contributes nothing)."""
        pool = slot.scorer.pool
        if pool is None or not len(pool):
            return 0.0
        market = self.markets[slot.market]
        ho = self._holdout.get(slot.market)
        if ho is None:
            ho = self._holdout[slot.market] = CandidateScorer(
                market.panel, market.target, days=market.holdout_days,
                min_stocks=self.config.min_stocks, compute_rank_ic=False)
        t0, t1 = market.holdout_days
        vals = []
        for name in pool.names:
            try:
                vals.append(ho.values(name))
            except ValueError:
                vals.append(torch.full((t1 - t0, market.panel.S), float("nan")))
        ic = pool.pool_ic(market.target[t0:t1], vals)
        return float(ic) if np.isfinite(ic) else 0.0

    def _reward(self, slot: _Slot) -> float:
        if self.markets[slot.market].holdout_days is None:
            return pool_ic(slot.scorer)
        return self._holdout_ic(slot)

    def _new_slot(self) -> _Slot:
        m = int(self.rng.integers(len(self.markets)))
        cap = int(self.config.capacities[int(self.rng.integers(len(self.config.capacities)))])
        return _Slot(m, cap, 0, [], self.scorer_factory(self.markets[m], cap))

    def _builder(self) -> RPNBuilder:
        return RPNBuilder(self.vocab, max_len=self.model_config.max_len)

    def _current_reward(self, slot: _Slot) -> float:
        if slot.reward is None:
            slot.reward = self._reward(slot)
        return slot.reward

    def _rewards(self, slot: _Slot, formulas: list[str]) -> tuple[list[float], int]:
        rewards, ok = [], 0
        unchanged = self.config.invalid_reward == "unchanged"
        for f, s in zip(formulas, slot.scorer.score(formulas)):
            if not s.ok:
                rewards.append(self._current_reward(slot) if unchanged
                               else float(self.config.invalid_reward))
                continue
            slot.offered.extend(offer_to_pool(slot.scorer, [f]))
            slot.reward = self._reward(slot)
            rewards.append(slot.reward)
            ok += 1
        return rewards, ok

    def update(self, it: int, learn: bool = True) -> dict[str, float]:
        """One iteration of every slot and one PPO update on the whole batch (none when
        ``learn`` is False: a warm-up iteration)."""
        cfg = self.config
        per = cfg.batch_size // cfg.slots
        market, pools = [], []
        for s in self.slots:
            market += [s.market] * per
            pools += [list(s.scorer.pool.names)] * per
        ctx = self.model.make_context(self._data, market, pools)
        ro = collect(self.model, self._builder, cfg.batch_size, self.model_config.max_len + 1,
                     generator=self.generator, context=ctx)
        formulas = [str(b.finish()) for b in ro.builders]
        rewards: list[float] = []
        n_ok = 0
        for k, s in enumerate(self.slots):
            r, ok = self._rewards(s, formulas[k * per:(k + 1) * per])
            rewards += r
            n_ok += ok
        ro.set_rewards(rewards)
        stats = self.ppo.update(ro, generator=self.generator) if learn else {}
        pics = [pool_ic(s.scorer) for s in self.slots]
        stats.update(iteration=it, valid_share=n_ok / len(formulas),
                     mean_pool_ic=float(np.mean(pics)), unique=len(set(formulas)))
        if any(self.markets[s.market].holdout_days is not None for s in self.slots):
            stats["mean_holdout_pool_ic"] = float(np.mean([self._current_reward(s)
                                                           for s in self.slots]))
        finished = 0
        for k, s in enumerate(self.slots):
            s.step += 1
            if s.step >= cfg.steps_per_capacity * s.capacity:
                self.slots[k] = self._new_slot()
                finished += 1
        stats["episodes_finished"] = finished
        return stats

    # ------------------------------------------------------------------ run
    def run(self, checkpoint_dir: str | Path | None = None, progress: bool = True
            ) -> PretrainResult:
        cfg = self.config
        main = self.dist.is_main  # only rank 0 writes checkpoints
        with locked_store(checkpoint_dir if main else None, self._run_key()) as store:
            it0 = ddp.broadcast_object(self._resume(store), self.dist)
            if it0 and self.dist.active:
                raise RuntimeError("resuming a multi-process pre-training is not supported "
                                   "(the checkpoint holds rank 0's episodes only); resume it "
                                   "in one process or start a new checkpoint folder")
            if not self.slots:
                self.slots = [self._new_slot() for _ in range(cfg.slots)]
                if cfg.warmup_iterations and it0 == 0:
                    log.info("alphaformer pre-training: %d warm-up iterations (no learning)",
                             cfg.warmup_iterations)
                for _ in range(cfg.warmup_iterations if it0 == 0 else 0):
                    self.update(-1, learn=False)
            t0 = time.perf_counter()
            its = range(it0, cfg.updates)
            if progress:
                from alphaminer.progress import progress as progress_bar

                its = progress_bar(its, desc="alphaformer pre-training", initial=it0,
                                   total=cfg.updates)
            for it in its:
                stats = self.update(it)
                log.info("alphaformer update %d: mean reward %.4f, entropy %.3f, KL %.4f, "
                         "value loss %.4f, valid %.2f", it, stats["mean_reward"],
                         stats["entropy"], stats["approx_kl"], stats["value_loss"],
                         stats["valid_share"])
                if store is not None:
                    store.save(self._snapshot(it + 1), step=it + 1)
            elapsed = time.perf_counter() - t0
        done = cfg.updates - it0
        meta = {"pretrain": asdict(cfg), "markets": [m.name for m in self.markets],
                "market_shapes": [[m.panel.T, m.panel.S] for m in self.markets],
                "updates": cfg.updates, "formulas_generated": cfg.updates * cfg.batch_size,
                "device": str(self.device), "seconds": elapsed,
                "world_size": self.dist.world_size,
                "updates_per_minute": done / elapsed * 60 if elapsed > 0 and done else
                float("nan")}
        return PretrainResult(self.model, list(self.ppo.history), meta)

    def _run_key(self) -> dict[str, Any]:
        h = [m.panel.fingerprint() for m in self.markets]
        return {"miner": "alphaformer_pretrain", "config": asdict(self.config),
                "model": asdict(self.model_config), "vocab": self.vocab.to_dict(),
                "markets": [str(x) for x in h]}

    def _snapshot(self, iteration: int) -> dict[str, Any]:
        return {"iteration": iteration, "ppo": self.ppo.state_dict(),
                "slots": [{"market": s.market, "capacity": s.capacity, "step": s.step,
                           "offered": list(s.offered)} for s in self.slots],
                "rng": capture_rng({"episodes": self.rng}),
                "generator": self.generator.get_state()}

    def _resume(self, store: CheckpointStore | None) -> int:
        ck = store.load_latest() if store is not None else None
        if ck is None:
            return 0
        st = ck.state
        self.ppo.load_state_dict(st["ppo"])
        restore_rng(st["rng"], {"episodes": self.rng})
        self.generator.set_state(st["generator"])
        self.slots = []
        for d in st["slots"]:
            s = _Slot(int(d["market"]), int(d["capacity"]), int(d["step"]), [],
                      self.scorer_factory(self.markets[int(d["market"])], int(d["capacity"])))
            s.offered = offer_to_pool(s.scorer, list(d["offered"]))
            self.slots.append(s)
        log.info("alphaformer pre-training: resumed at update %d from %s", st["iteration"],
                 store.folder)
        return int(st["iteration"])
