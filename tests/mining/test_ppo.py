"""The one PPO: loss pieces and GAE against hand computations, masked sampling, and learning."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from alphaminer.mining.ppo import PPO, PPOConfig, collect, gae, masked_log_softmax, ppo_losses


def test_ppo_loss_pieces_match_a_hand_computed_example() -> None:
    logp_old = torch.log(torch.tensor([0.5, 0.2, 0.4]))
    logp_new = torch.log(torch.tensor([0.55, 0.3, 0.2]))  # ratios 1.1, 1.5, 0.5
    adv = torch.tensor([1.0, -2.0, 3.0])
    value = torch.tensor([0.5, 0.0, 1.0])
    ret = torch.tensor([1.0, -1.0, 1.0])
    ent = torch.tensor([0.7, 0.1, 0.4])
    out = ppo_losses(logp_new, logp_old, adv, value, ret, ent, clip=0.2)
    # step 1: min(1.1*1, 1.1*1) = 1.1; step 2: min(1.5*-2, 1.2*-2) = -3.0;
    # step 3: min(0.5*3, 0.8*3) = 1.5  → policy loss = -(1.1 - 3.0 + 1.5)/3 = 0.4/3
    assert float(out["policy"]) == pytest.approx(0.4 / 3, abs=1e-6)
    assert float(out["value"]) == pytest.approx(0.5 * (0.25 + 1.0 + 0.0) / 3, abs=1e-6)
    assert float(out["entropy"]) == pytest.approx(0.4, abs=1e-6)
    kl = np.mean([(r - 1) - math.log(r) for r in (1.1, 1.5, 0.5)])
    assert float(out["approx_kl"]) == pytest.approx(kl, abs=1e-6)
    assert float(out["clip_frac"]) == pytest.approx(2 / 3)


def _gae_reference(r: list[float], v: list[float], gamma: float, lam: float) -> list[float]:
    adv = [0.0] * len(r)
    nxt_a, nxt_v = 0.0, 0.0
    for t in reversed(range(len(r))):
        delta = r[t] + gamma * nxt_v - v[t]
        nxt_a = delta + gamma * lam * nxt_a
        adv[t] = nxt_a
        nxt_v = v[t]
    return adv


@pytest.mark.parametrize(("gamma", "lam"), [(1.0, 1.0), (0.9, 0.95), (0.5, 0.0)])
def test_gae_matches_the_recursive_definition(gamma: float, lam: float) -> None:
    rng = np.random.default_rng(0)
    lengths = [3, 5, 1]
    L = 5
    r = torch.zeros(3, L)
    v = torch.tensor(rng.normal(size=(3, L)), dtype=torch.float32)
    steps = torch.zeros(3, L, dtype=torch.bool)
    for b, n in enumerate(lengths):
        steps[b, :n] = True
        r[b, :n] = torch.tensor(rng.normal(size=n), dtype=torch.float32)
    adv, ret = gae(r, v, steps, gamma, lam)
    for b, n in enumerate(lengths):
        want = _gae_reference(r[b, :n].tolist(), v[b, :n].tolist(), gamma, lam)
        np.testing.assert_allclose(adv[b, :n].numpy(), want, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ret[b, :n].numpy(), np.array(want) + v[b, :n].numpy(),
                                   rtol=1e-5, atol=1e-6)
        assert torch.all(adv[b, n:] == 0) and torch.all(ret[b, n:] == 0)
    # gamma = lambda = 1 with a terminal reward only: A_t = R - V_t (AlphaFormer's advantage)
    term = torch.zeros(1, 4)
    term[0, 3] = 2.0
    a1, _ = gae(term, torch.tensor([[0.1, 0.2, 0.3, 0.4]]), torch.ones(1, 4, dtype=torch.bool),
                1.0, 1.0)
    np.testing.assert_allclose(a1[0].numpy(), [1.9, 1.8, 1.7, 1.6], rtol=1e-6)


class _ToyBuilder:
    """Grammar stand-in: 4 tokens; token 3 is never valid at step 0; 3 tokens then done."""

    def __init__(self) -> None:
        self.tokens: list[int] = []

    @property
    def done(self) -> bool:
        return len(self.tokens) == 3

    def valid_mask(self) -> np.ndarray:
        m = np.ones(4, dtype=bool)
        if not self.tokens:
            m[3] = False
        return m

    def push(self, t: int) -> None:
        assert self.valid_mask()[t], "sampled a masked token"
        self.tokens.append(t)


class _TablePolicy(torch.nn.Module):
    """Position-wise logits table and value per position (enough to test the PPO mechanics)."""

    def __init__(self, L: int = 3, V: int = 4) -> None:
        super().__init__()
        self.logits = torch.nn.Parameter(torch.zeros(L, V))
        self.v = torch.nn.Parameter(torch.zeros(L))

    def initial_state(self, batch: int, context: object) -> int:
        return 0

    def step(self, prev: torch.Tensor, state: int, context: object):  # noqa: ANN201
        B = prev.shape[0]
        return self.logits[state].expand(B, -1), self.v[state].expand(B), state + 1

    def evaluate(self, tokens: torch.Tensor, context: object):  # noqa: ANN201
        B, L = tokens.shape
        return self.logits[:L].expand(B, L, -1), self.v[:L].expand(B, L)


def test_masked_sampling_never_picks_an_invalid_token_and_masked_logp_is_minus_inf() -> None:
    pol = _TablePolicy()
    with torch.no_grad():
        pol.logits[0, 3] = 50.0  # the policy prefers the masked token
    g = torch.Generator().manual_seed(0)
    ro = collect(pol, _ToyBuilder, batch=200, max_steps=5, generator=g)
    assert (ro.tokens[:, 0] != 3).all() and ro.steps.sum() == 600
    lp = masked_log_softmax(torch.zeros(2, 4), torch.tensor([[True, False, True, True]] * 2))
    assert torch.isinf(lp[:, 1]).all() and torch.allclose(lp[:, 0], torch.tensor(math.log(1 / 3)))


def test_ppo_learns_a_terminal_reward() -> None:
    """Reward 1 when the sequence is (2, 0, 1): the mean reward must rise well above chance."""
    torch.manual_seed(0)
    pol = _TablePolicy()
    ppo = PPO(pol, PPOConfig(lr=0.05, epochs=4, minibatch_size=64, entropy_coef=0.0))
    g = torch.Generator().manual_seed(1)
    first = last = None
    for it in range(40):
        ro = collect(pol, _ToyBuilder, batch=128, max_steps=3, generator=g)
        r = [float(b.tokens == [2, 0, 1]) for b in ro.builders]
        ro.set_rewards(r)
        stats = ppo.update(ro, generator=g)
        first = stats["mean_reward"] if it == 0 else first
        last = stats["mean_reward"]
    assert first < 0.1 and last > 0.8
    assert {"entropy", "approx_kl", "clip_frac", "value_loss"} <= set(ppo.history[-1])
    assert len(ppo.history) == 40
