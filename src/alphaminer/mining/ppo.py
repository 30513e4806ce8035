"""The project's one PPO: a masked categorical policy over token sequences with terminal rewards.

Every RL miner (AlphaGen-style RL, AlphaFormer's pre-training) generates formulas token by token
under the grammar's valid-token mask and is rewarded when the formula is finished. This module
owns everything between "a policy network" and "a reward per finished sequence":

- :func:`collect` samples a batch of sequences from a :class:`SequencePolicy` under masks from a
  grammar builder (``valid_mask()`` / ``push()`` / ``done``, e.g. ``alphaminer.expr.grammar``),
  recording tokens, masks, log-probabilities and values;
- :func:`gae` computes GAE(λ) advantages and returns with discount γ (terminal reward on the last
  step, optional per-step rewards); ``γ = λ = 1`` gives AlphaFormer's ``A = r − V``;
- :class:`PPO` runs the clipped-surrogate update over epochs and minibatches with a value
  coefficient, an entropy bonus and gradient-norm clipping, and keeps a learning-curve log
  (mean reward, entropy, approximate KL, clip fraction, value loss).

Masked logits: invalid tokens get ``-inf`` before the softmax, so they have probability 0, add
nothing to the entropy and can never be sampled.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from alphaminer.runtime import config_from

__all__ = [
    "PPO", "PPOConfig", "Rollout", "SequencePolicy", "collect", "gae", "masked_log_softmax",
    "ppo_losses",
]


@dataclass(frozen=True)
class PPOConfig:
    """PPO hyper-parameters (AlphaFormer Table 9 defaults: lr 3e-4, clip 0.2, value coefficient
    0.5, max grad norm 0.5, 10 epochs; AlphaGen uses lr 1e-3)."""

    lr: float = 3e-4
    clip: float = 0.2
    value_coef: float = 0.5
    entropy_coef: float = 0.01
    max_grad_norm: float = 0.5
    gamma: float = 1.0
    gae_lambda: float = 0.95
    epochs: int = 10
    minibatch_size: int = 64
    normalize_advantages: bool = True
    target_kl: float | None = None

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0 < self.clip < 1:
            raise ValueError(f"clip must be in (0, 1), got {self.clip}")
        if not (0 <= self.gamma <= 1 and 0 <= self.gae_lambda <= 1):
            raise ValueError(f"gamma and gae_lambda must be in [0, 1], got {self.gamma}, "
                             f"{self.gae_lambda}")
        if self.value_coef < 0 or self.entropy_coef < 0 or not self.max_grad_norm > 0:
            raise ValueError("value_coef/entropy_coef must be >= 0 and max_grad_norm > 0")
        if self.epochs < 1 or self.minibatch_size < 1:
            raise ValueError(f"epochs and minibatch_size must be >= 1, got {self.epochs}, "
                             f"{self.minibatch_size}")

    @classmethod
    def from_dict(cls, d: Any) -> PPOConfig:
        return config_from(cls, d)


class SequencePolicy(Protocol):
    """What PPO needs from a policy network (an ``nn.Module``).

    ``initial_state(B, context)`` and ``step(prev, state, context)`` generate: ``prev`` is the
    ``[B]`` previous token (``-1`` at the first step), the result ``(logits [B, V], value [B],
    new_state)`` is for the next token. ``evaluate(tokens, context)`` recomputes, for a padded
    ``[B, L]`` batch, the logits ``[B, L, V]`` and values ``[B, L]`` of every step at once (step
    ``t`` conditioned on ``tokens[:, :t]``), with gradients.
    """

    def initial_state(self, batch: int, context: Any) -> Any: ...

    def step(self, prev: torch.Tensor, state: Any, context: Any
             ) -> tuple[torch.Tensor, torch.Tensor, Any]: ...

    def evaluate(self, tokens: torch.Tensor, context: Any
                 ) -> tuple[torch.Tensor, torch.Tensor]: ...

    def parameters(self) -> Any: ...


def masked_log_softmax(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``log_softmax`` with invalid tokens at ``-inf`` (each row needs one valid token)."""
    return torch.log_softmax(logits.masked_fill(~mask, -math.inf), dim=-1)


def _entropy(logp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    p = logp.exp()
    return -(p * torch.where(mask, logp, torch.zeros_like(logp))).sum(-1)


@dataclass
class Rollout:
    """A batch of sampled sequences (``B`` sequences of at most ``L`` steps).

    ``tokens [B, L]`` (``pad`` after the end), ``masks [B, L, V]`` (the valid tokens at each step),
    ``logp [B, L]`` and ``values [B, L]`` at sampling time, ``steps [B, L]`` (True on real steps),
    ``builders`` (the finished grammar builders, for the reward), ``context`` (passed to the
    policy: tensors, and tensors inside a dict, are per-sequence with the batch dim first and are
    sliced for minibatches; anything else is shared). Rewards are set by the caller
    (:meth:`set_rewards`).
    """

    tokens: torch.Tensor
    masks: torch.Tensor
    logp: torch.Tensor
    values: torch.Tensor
    steps: torch.Tensor
    builders: list[Any]
    context: Any = None
    rewards: torch.Tensor | None = None

    @property
    def lengths(self) -> torch.Tensor:
        return self.steps.sum(dim=1)

    def set_rewards(self, terminal: Sequence[float] | torch.Tensor,
                    per_step: torch.Tensor | None = None) -> None:
        """Terminal reward per sequence (added on its last step) plus optional step rewards."""
        term = torch.as_tensor(terminal, dtype=torch.float32).reshape(-1)
        B, L = self.tokens.shape
        if term.numel() != B:
            raise ValueError(f"{term.numel()} terminal rewards for {B} sequences")
        r = torch.zeros(B, L) if per_step is None else per_step.to(torch.float32).clone()
        last = (self.lengths - 1).clamp(min=0)
        r[torch.arange(B), last] += term
        self.rewards = torch.where(self.steps, r, torch.zeros_like(r))


def collect(policy: SequencePolicy, new_builder: Callable[[], Any], batch: int,
            max_steps: int, generator: torch.Generator | None = None, context: Any = None,
            pad: int = 0) -> Rollout:
    """Sample ``batch`` sequences token by token under each builder's ``valid_mask()``.

    A sequence ends when its builder is ``done`` (e.g. after END); ``max_steps`` bounds the
    loop (a grammar whose mask always allows completion finishes well within it).
    """
    builders = [new_builder() for _ in range(batch)]
    V = len(builders[0].valid_mask())
    tokens = torch.full((batch, max_steps), pad, dtype=torch.long)
    masks = torch.zeros((batch, max_steps, V), dtype=torch.bool)
    logps = torch.zeros((batch, max_steps))
    values = torch.zeros((batch, max_steps))
    steps = torch.zeros((batch, max_steps), dtype=torch.bool)
    prev = torch.full((batch,), -1, dtype=torch.long)
    with torch.no_grad():
        state = policy.initial_state(batch, context)
        for t in range(max_steps):
            live = [i for i, b in enumerate(builders) if not b.done]
            if not live:
                break
            logits, value, state = policy.step(prev, state, context)
            m = torch.zeros((batch, V), dtype=torch.bool)
            m[live] = torch.from_numpy(np.stack([builders[i].valid_mask() for i in live]))
            if not bool(m[live].any(dim=1).all()):
                raise RuntimeError("a builder offers no valid token: its grammar cannot finish")
            m_all = m.clone()
            m_all[[i for i in range(batch) if builders[i].done], pad] = True  # finished: dummy
            logp_all = masked_log_softmax(logits.float(), m_all)
            a = torch.multinomial(logp_all.exp(), 1, generator=generator).squeeze(1)
            for i in live:
                builders[i].push(int(a[i]))
            idx = torch.tensor(live, dtype=torch.long)
            tokens[idx, t] = a[idx]
            masks[idx, t] = m[idx]
            logps[idx, t] = logp_all[idx, a[idx]]
            values[idx, t] = value.float()[idx]
            steps[idx, t] = True
            prev = torch.where(steps[:, t], a, torch.full_like(a, pad))
    if not all(b.done for b in builders):
        raise RuntimeError(f"{sum(not b.done for b in builders)} sequences did not finish within "
                           f"{max_steps} steps")
    return Rollout(tokens, masks, logps, values, steps, builders, context)


def gae(rewards: torch.Tensor, values: torch.Tensor, steps: torch.Tensor, gamma: float,
        lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE(λ) advantages and returns ``[B, L]`` for episodes ending on their last real step.

    ``δ_t = r_t + γ V_{t+1} − V_t`` (``V`` after the last step is 0), ``A_t = δ_t + γλ A_{t+1}``,
    returns ``= A + V``; zero on padding.
    """
    B, L = rewards.shape
    adv = torch.zeros(B, L, dtype=torch.float32)
    nxt_v = torch.zeros(B)
    nxt_a = torch.zeros(B)
    for t in range(L - 1, -1, -1):  # over token positions (≤ max length), vectorised over B
        live = steps[:, t]
        delta = rewards[:, t] + gamma * nxt_v - values[:, t]
        a = delta + gamma * lam * nxt_a
        adv[:, t] = torch.where(live, a, torch.zeros_like(a))
        nxt_v = torch.where(live, values[:, t], torch.zeros_like(nxt_v))
        nxt_a = torch.where(live, a, torch.zeros_like(nxt_a))
    ret = torch.where(steps, adv + values, torch.zeros_like(adv))
    return adv, ret


def ppo_losses(logp_new: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor,
               value: torch.Tensor, ret: torch.Tensor, entropy: torch.Tensor,
               clip: float) -> dict[str, torch.Tensor]:
    """The pieces of the PPO objective over a flat batch of steps (all 1-D, same length).

    ``policy = −mean(min(ρA, clip(ρ, 1−ε, 1+ε)A))`` with ``ρ = exp(logp_new − logp_old)``,
    ``value = mean((V − R)²) / 2``, ``entropy = mean(H)``, ``approx_kl = mean((ρ − 1) − log ρ)``,
    ``clip_frac = mean(|ρ − 1| > ε)``.
    """
    log_ratio = logp_new - logp_old
    ratio = log_ratio.exp()
    surr = torch.minimum(ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv)
    with torch.no_grad():
        approx_kl = ((ratio - 1) - log_ratio).mean()
        clip_frac = ((ratio - 1).abs() > clip).float().mean()
    return {
        "policy": -surr.mean(),
        "value": 0.5 * ((value - ret) ** 2).mean(),
        "entropy": entropy.mean(),
        "approx_kl": approx_kl,
        "clip_frac": clip_frac,
    }


@dataclass
class PPO:
    """Clipped-surrogate PPO for a :class:`SequencePolicy` with an Adam optimizer."""

    policy: Any
    config: PPOConfig = field(default_factory=PPOConfig)
    history: list[dict[str, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.config = PPOConfig.from_dict(self.config) if not isinstance(
            self.config, PPOConfig) else self.config
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=self.config.lr)

    def update(self, rollout: Rollout, generator: torch.Generator | None = None
               ) -> dict[str, float]:
        """One PPO update on a rollout whose rewards are set; returns (and logs) its stats."""
        if rollout.rewards is None:
            raise ValueError("set the rollout's rewards (Rollout.set_rewards) before updating")
        cfg = self.config
        adv, ret = gae(rollout.rewards, rollout.values, rollout.steps, cfg.gamma, cfg.gae_lambda)
        flat = rollout.steps
        if cfg.normalize_advantages and int(flat.sum()) > 1:
            a = adv[flat]
            adv = torch.where(flat, (adv - a.mean()) / (a.std() + 1e-8), adv)
        B = rollout.tokens.shape[0]
        sums: dict[str, float] = {}
        n_mb = 0
        stop = False
        for _ in range(cfg.epochs):
            perm = torch.randperm(B, generator=generator)
            for i in range(0, B, cfg.minibatch_size):
                idx = perm[i:i + cfg.minibatch_size]
                logits, values = self.policy.evaluate(rollout.tokens[idx], _select(
                    rollout.context, idx))
                st = rollout.steps[idx]
                mask = rollout.masks[idx]
                mask = torch.where(st.unsqueeze(-1), mask, torch.ones_like(mask))
                logp_all = masked_log_softmax(logits.float(), mask)
                logp = logp_all.gather(-1, rollout.tokens[idx].unsqueeze(-1)).squeeze(-1)
                parts = ppo_losses(logp[st], rollout.logp[idx][st], adv[idx][st],
                                   values.float()[st], ret[idx][st],
                                   _entropy(logp_all, mask)[st], cfg.clip)
                loss = parts["policy"] + cfg.value_coef * parts["value"] \
                    - cfg.entropy_coef * parts["entropy"]
                self.optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.policy.parameters(), cfg.max_grad_norm)
                self.optimizer.step()
                for k, v in parts.items():
                    sums[k] = sums.get(k, 0.0) + float(v.detach())
                n_mb += 1
                if cfg.target_kl is not None and float(parts["approx_kl"]) > 1.5 * cfg.target_kl:
                    stop = True
                    break
            if stop:
                break
        term = rollout.rewards.sum(dim=1)
        stats = {
            "mean_reward": float(term.mean()),
            "max_reward": float(term.max()),
            "mean_length": float(rollout.lengths.float().mean()),
            "policy_loss": sums["policy"] / n_mb,
            "value_loss": sums["value"] / n_mb,
            "entropy": sums["entropy"] / n_mb,
            "approx_kl": sums["approx_kl"] / n_mb,
            "clip_frac": sums["clip_frac"] / n_mb,
            "minibatches": float(n_mb),
        }
        self.history.append(stats)
        return stats

    def state_dict(self) -> dict[str, Any]:
        """Policy and optimizer state plus the learning-curve log (for the checkpoint module)."""
        return {"policy": self.policy.state_dict(), "optimizer": self.optimizer.state_dict(),
                "history": list(self.history), "config": asdict(self.config)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.history = list(state.get("history", []))


def _select(context: Any, idx: torch.Tensor) -> Any:
    """The minibatch's slice of a per-sequence context (tensors with a batch dim), else as is."""
    if isinstance(context, torch.Tensor) and context.ndim > 0:
        return context[idx]
    if isinstance(context, dict):
        return {k: _select(v, idx) for k, v in context.items()}
    return context
