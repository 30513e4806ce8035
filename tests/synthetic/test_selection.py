"""Algorithm 2: the argmax-likelihood candidate is kept, contexts come from the train split."""

from __future__ import annotations

import numpy as np
import torch

from alphaminer.synthetic import (
    MarketConfig,
    RealSequences,
    Scaler,
    assemble_market,
    select_best,
)
from alphaminer.synthetic.representation import RAW_FEATURES, decode


class ConstGen:
    """Emits the same standardised vector every day (a fake generator)."""

    def __init__(self, level: float) -> None:
        self.level = level

    def sample(self, context, horizon, generator=None):
        noise = torch.randn(context.shape[0], horizon, context.shape[2], generator=generator)
        return self.level + 0.01 * noise


class DistanceScorer:
    """Fake evaluator: the log-likelihood is minus the squared distance to a per-stock target,
    so each stock has a known favourite generator."""

    def __init__(self, target: torch.Tensor) -> None:
        self.target = target
        self.calls = 0

    def log_likelihood(self, context, candidate):
        self.calls += 1
        t = self.target[: candidate.shape[0], None, None]
        return -((candidate - t) ** 2).sum((1, 2))


def test_select_best_is_argmax_with_nan_losing() -> None:
    ll = torch.tensor([[1.0, float("nan"), -3.0], [0.5, -1.0, -2.0], [2.0, -5.0, -2.0]])
    assert select_best(ll).tolist() == [2, 1, 1]


def test_market_keeps_the_most_likely_candidate(train_panel) -> None:
    real = RealSequences.from_panel(train_panel)
    scaler = Scaler.fit(real.rep, real.valid)
    gens = {"a": ConstGen(-1.0), "b": ConstGen(0.0), "c": ConstGen(1.0)}
    target = torch.tensor([-1.0, 0.1, 0.9, 1.5, -0.7, 0.2, -3.0, 0.6] * 4)
    ev = DistanceScorer(target)
    cfg = MarketConfig(n_markets=1, stocks=(6, 10), days=(15, 20))
    m = assemble_market(0, real, scaler, gens, ev, 12, cfg, seed=7, keep_candidates=True)
    S = m.panel.S
    assert ev.calls == 3  # one batched call per generator, not per stock
    assert 6 <= S <= 10 and 15 <= m.panel.T <= 20
    # expected winner by hand: the generator level nearest each stock's target
    levels = np.array([-1.0, 0.0, 1.0])
    want = np.abs(levels[:, None] - target[:S].numpy()[None]).argmin(0)
    assert (m.winners == want).all()
    assert (m.winners == m.log_likelihood.argmax(0)).all()
    assert sum(m.wins.values()) == S and m.panel.meta["generator_wins"] == m.wins
    # the kept series is the winning candidate's, stock by stock
    for s in range(S):
        name = m.generator_names[m.winners[s]]
        assert torch.equal(m.panel.values[:, s], m.candidates[name].values[:, s])
    # the decoded panel continues from the real anchor of its context
    src = train_panel.instruments.get_indexer(m.panel.meta["source_instruments"])
    e = train_panel.dates.get_loc(np.datetime64(m.panel.meta["context_end"]))
    anchor = train_panel.feature("close")[e, src].double()
    rep0 = scaler.inverse(torch.from_numpy(levels[m.winners]).float()[:, None, None]
                          .expand(S, 1, 6))
    first = decode(rep0, anchor, train_panel.feature("volume")[e, src].double())
    np.testing.assert_allclose(m.panel.feature("close")[0].numpy(),
                               first[:, 0, RAW_FEATURES.index("close")].numpy(), rtol=0.05)


def test_markets_are_reproducible_and_independent(train_panel) -> None:
    real = RealSequences.from_panel(train_panel)
    scaler = Scaler.fit(real.rep, real.valid)
    gens = {"a": ConstGen(0.0), "b": ConstGen(0.5)}
    ev = DistanceScorer(torch.zeros(64))
    cfg = MarketConfig(n_markets=3, stocks=(4, 8), days=(10, 12))
    m1 = assemble_market(1, real, scaler, gens, ev, 10, cfg, seed=0)
    m1b = assemble_market(1, real, scaler, gens, ev, 10, cfg, seed=0)
    m2 = assemble_market(2, real, scaler, gens, ev, 10, cfg, seed=0)
    assert torch.equal(m1.panel.values, m1b.panel.values)
    assert m1.panel.meta == m1b.panel.meta
    assert m1.panel.meta["context_end"] != m2.panel.meta["context_end"] or \
        not torch.equal(m1.panel.values[:5], m2.panel.values[:5])


def test_contexts_come_only_from_the_train_split(sim_panel) -> None:
    """No look-ahead: markets built from the train split never see later days. Scrambling
    every day after the train split changes nothing, and context dates lie inside it."""
    panel, splits = sim_panel
    i0, i1 = splits.train
    cfg = MarketConfig(n_markets=4, stocks=(5, 8), days=(10, 12))
    gens = {"a": ConstGen(0.0), "b": ConstGen(0.3)}
    ev = DistanceScorer(torch.zeros(64))

    def build(p):
        tr = splits.slice(p, "train")
        real = RealSequences.from_panel(tr)
        sc = Scaler.fit(real.rep, real.valid)
        return [assemble_market(i, real, sc, gens, ev, 10, cfg, seed=3) for i in range(4)]

    changed = panel.to("cpu")
    changed.values = panel.values.clone()
    changed.values[i1:] *= 1.7
    a, b = build(panel), build(changed)
    end = panel.dates[i1 - 1]
    for x, y in zip(a, b):
        assert torch.equal(x.panel.values, y.panel.values)
        assert np.datetime64(x.panel.meta["context_end"]) <= np.datetime64(end.date())
        assert np.datetime64(x.panel.meta["context_start"]) >= np.datetime64(
            panel.dates[i0].date())
