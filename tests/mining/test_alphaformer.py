"""AlphaFormer on the mining kit: masked decoding, r − V advantages, the shared pool, resume,
no look-ahead in the dataset embedding, save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alphaminer.evaluation.pool import AlphaPool, PoolConfig
from alphaminer.evaluation.scorer import CandidateScorer
from alphaminer.expr.grammar import RPNBuilder, check_formula
from alphaminer.expr.parser import parse
from alphaminer.expr.vocab import Vocabulary
from alphaminer.mining.alphaformer import (
    AlphaFormer,
    AlphaFormerMiner,
    Pretrainer,
    load_model,
    market_features,
    prepare_markets,
    save_model,
)
from alphaminer.mining.ppo import PPOConfig, collect, gae

TINY = {"d_model": 16, "heads": 2, "ffn": 32, "value_hidden": 16, "window": 10,
        "max_stocks": 16, "max_len": 10, "dec_layers": 1}
RUN = {"updates": 3, "batch_size": 8, "slots": 2, "capacities": [1, 2], "horizon": 5,
       "min_stocks": 10, "ppo": {"epochs": 2, "minibatch_size": 4}}


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return Vocabulary.default()


@pytest.fixture(scope="module")
def markets(market, vocab):  # noqa: ANN001
    panel = market[0]
    from alphaminer.mining.alphaformer import AlphaFormerConfig

    parts = [panel.slice_dates(0, 120), panel.slice_dates(120, 260)]
    return prepare_markets(parts, vocab, AlphaFormerConfig.from_dict(TINY), horizon=5)


def _model(vocab: Vocabulary, seed: int, **kw) -> AlphaFormer:  # noqa: ANN003
    torch.manual_seed(seed)
    return AlphaFormer(vocab, {**TINY, **kw})


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_masked_decoding_only_yields_valid_formulas(vocab, markets, seed) -> None:  # noqa: ANN001
    """Random weights, empty and non-empty pools: every sample parses, is a valid formula of the
    vocabulary and fits max_len."""
    m = _model(vocab, seed)
    B = 64
    pools = [[] if i % 2 else ["Mean(close,20d)", "Corr(open,volume,10d)"] for i in range(B)]
    ctx = m.make_context([mk.features for mk in markets], [i % 2 for i in range(B)], pools)
    ro = collect(m, lambda: RPNBuilder(vocab, max_len=TINY["max_len"]), B,
                 TINY["max_len"] + 1, generator=torch.Generator().manual_seed(seed), context=ctx)
    for b in ro.builders:
        node = parse(str(b.finish()))
        assert check_formula(node, vocab, max_len=TINY["max_len"]) is None
        assert len(vocab.encode(node)) <= TINY["max_len"]
    # every sampled token was allowed by the mask recorded at its step
    st = ro.steps
    assert bool(ro.masks[st].gather(-1, ro.tokens[st].unsqueeze(-1)).all())


def test_advantage_is_r_minus_v_with_the_right_shapes(vocab, markets) -> None:  # noqa: ANN001
    m = _model(vocab, 0)
    B = 6
    ctx = m.make_context([markets[0].features], [0] * B, [[]] * 3 + [["Abs(close)"]] * 3)
    ro = collect(m, lambda: RPNBuilder(vocab, max_len=TINY["max_len"]), B,
                 TINY["max_len"] + 1, generator=torch.Generator().manual_seed(3), context=ctx)
    L = TINY["max_len"] + 1
    assert ro.values.shape == (B, L) and ro.tokens.shape == (B, L)
    logits, values = m.evaluate(ro.tokens, ctx)
    assert logits.shape == (B, L, len(vocab)) and values.shape == (B, L)
    # the value is the context's (one per sequence), recorded at every real step
    v0 = values[:, 0].detach()
    assert torch.allclose(ro.values[ro.steps], v0.unsqueeze(1).expand(B, L)[ro.steps], atol=1e-6)
    r = [0.05, -1.0, 0.02, 0.10, -1.0, 0.0]
    ro.set_rewards(r)
    cfg = PPOConfig(gamma=1.0, gae_lambda=1.0)
    adv, ret = gae(ro.rewards, ro.values, ro.steps, cfg.gamma, cfg.gae_lambda)
    assert adv.shape == (B, L) and ret.shape == (B, L)
    for i in range(B):
        n = int(ro.steps[i].sum())
        want = r[i] - float(ro.values[i, 0])  # hand: A = r − V on every step of the formula
        np.testing.assert_allclose(adv[i, :n].numpy(), np.full(n, want), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ret[i, :n].numpy(), np.full(n, r[i]), rtol=1e-5, atol=1e-6)
        assert float(adv[i, n:].abs().sum()) == 0.0


def _replay(scorer_like: CandidateScorer, cfg: PoolConfig, formulas: list[str]) -> AlphaPool:
    """An independent AlphaPool fed the same formulas' values with try_add."""
    pool = AlphaPool.from_config(cfg, scorer_like.target)
    for f in formulas:
        pool.try_add(str(parse(f)), scorer_like.values(f))
    return pool


def test_pretraining_uses_the_scorers_shared_pool(vocab, markets) -> None:  # noqa: ANN001
    pt = Pretrainer(markets, vocab, TINY, RUN)
    pt.run(progress=False)
    assert len(pt.ppo.history) == RUN["updates"]
    for s in pt.slots:
        assert isinstance(s.scorer.pool, AlphaPool)
        mk = pt.markets[s.market]
        indep = CandidateScorer(mk.panel, mk.target, min_stocks=10)  # no pool
        cfg = PoolConfig(capacity=s.capacity, min_stocks=10, compute_rank_ic=False)
        ref = _replay(indep, cfg, s.offered)
        assert s.scorer.pool.names == ref.names
        np.testing.assert_allclose(s.scorer.pool.weights, ref.weights, rtol=1e-6, atol=1e-9)
    h = pt.ppo.history[-1]
    for k in ("mean_reward", "entropy", "approx_kl", "value_loss", "valid_share"):
        assert np.isfinite(h[k])


def test_pretraining_resumes_to_identical_weights(vocab, markets, tmp_path,  # noqa: ANN001
                                                  crash_after_first_save) -> None:
    want = Pretrainer(markets, vocab, TINY, RUN).run(progress=False)
    with pytest.raises(RuntimeError, match="killed"):
        Pretrainer(markets, vocab, TINY, RUN).run(checkpoint_dir=tmp_path, progress=False)
    crash_after_first_save()
    got = Pretrainer(markets, vocab, TINY, RUN).run(checkpoint_dir=tmp_path, progress=False)
    sd_w, sd_g = want.model.state_dict(), got.model.state_dict()
    assert sd_w.keys() == sd_g.keys()
    for k in sd_w:
        assert torch.equal(sd_w[k], sd_g[k]), k
    assert [h["mean_reward"] for h in got.history] == [h["mean_reward"] for h in want.history]


def test_inference_pool_is_the_scorers_and_replays(make_scorer, market, vocab  # noqa: ANN001
                                                   ) -> None:
    scorer = make_scorer(capacity=3)
    m = _model(vocab, 1)
    miner = AlphaFormerMiner(scorer, m, {"n_candidates": 24, "batch_size": 12, "seed": 0})
    res = miner.run(progress=False)
    assert res.n_candidates == 24 and res.method == "alphaformer"
    assert res.formulas == scorer.pool.names and 0 < len(res.formulas) <= 3
    assert isinstance(scorer.pool, AlphaPool)
    panel, labels, splits = market
    indep = CandidateScorer.from_splits(panel, labels, splits, "train", min_stocks=10)  # no pool
    ref = _replay(indep, PoolConfig(capacity=3, min_stocks=10), miner.offered)
    assert ref.names == res.formulas
    np.testing.assert_allclose(ref.weights, res.weights, rtol=1e-6, atol=1e-9)
    a = res.alpha_set()
    assert a.meta["n_candidates"] == 24


def test_dataset_window_never_reads_the_future(market, vocab) -> None:  # noqa: ANN001
    panel = market[0]
    t_end = 150
    x = market_features(panel, t_end, 20, vocab.features, 32)
    fut = panel.values.clone()
    fut[t_end:] = fut[t_end:] * 3.0 + 1.0
    from dataclasses import replace

    other = replace(panel, values=fut)
    assert torch.equal(market_features(other, t_end, 20, vocab.features, 32), x)
    # and the past does matter
    past = panel.values.clone()
    past[t_end - 1] *= 1.5
    assert not torch.equal(market_features(replace(panel, values=past), t_end, 20,
                                           vocab.features, 32), x)


def test_inference_ignores_data_after_the_split(market, vocab) -> None:  # noqa: ANN001
    from dataclasses import replace

    panel, labels, splits = market
    t1 = splits.ranges["train"][1]

    def run(p):  # noqa: ANN001, ANN202
        sc = CandidateScorer.from_splits(p, labels, splits, "train",
                                         pool=PoolConfig(capacity=3, min_stocks=10))
        r = AlphaFormerMiner(sc, _model(vocab, 2), {"n_candidates": 16, "batch_size": 8}
                             ).run(progress=False)
        return r.formulas, r.weights

    fut = panel.values.clone()
    fut[t1:] = torch.flip(fut[t1:], dims=[1]) * 2.0
    assert run(panel) == run(replace(panel, values=fut))


def test_save_load_roundtrip(vocab, markets, tmp_path) -> None:  # noqa: ANN001
    m = _model(vocab, 4)
    save_model(m, tmp_path / "m", {"note": "x"})
    m2, meta = load_model(tmp_path / "m")
    assert meta == {"note": "x"}
    ctx = m.make_context([markets[0].features], [0, 0], [[], ["Abs(close)"]])
    tok = torch.zeros((2, 5), dtype=torch.long)
    a, va = m.evaluate(tok, ctx)
    b, vb = m2.evaluate(tok, ctx)
    assert torch.equal(a, b) and torch.equal(va, vb)


def test_warmup_fills_pools_without_learning(vocab, markets, tmp_path,  # noqa: ANN001
                                             crash_after_first_save) -> None:
    """``warmup_iterations``: iterations with the initial weights before update 0. They change
    no weight and log nothing, the pools they fill are the first update's, and a resumed run
    still ends on the same weights."""
    run = {**RUN, "capacities": [3], "warmup_iterations": 2}
    pt = Pretrainer(markets, vocab, TINY, run)
    before = {k: v.clone() for k, v in pt.model.state_dict().items()}
    pt.slots = [pt._new_slot() for _ in range(run["slots"])]
    for _ in range(run["warmup_iterations"]):
        pt.update(-1, learn=False)
    assert pt.ppo.history == []
    for k, v in pt.model.state_dict().items():
        assert torch.equal(v, before[k]), k
    per = run["batch_size"] // run["slots"]
    assert all(s.step == 2 and len(s.offered) <= 2 * per for s in pt.slots)
    assert sum(len(s.offered) for s in pt.slots) > 0  # the valid ones were offered
    want = Pretrainer(markets, vocab, TINY, run).run(progress=False)
    assert len(want.history) == run["updates"]
    cold = Pretrainer(markets, vocab, TINY, {**run, "warmup_iterations": 0}).run(progress=False)
    assert [h["mean_reward"] for h in want.history] != [h["mean_reward"] for h in cold.history]
    with pytest.raises(RuntimeError, match="killed"):
        Pretrainer(markets, vocab, TINY, run).run(checkpoint_dir=tmp_path, progress=False)
    crash_after_first_save()
    got = Pretrainer(markets, vocab, TINY, run).run(checkpoint_dir=tmp_path, progress=False)
    for k, v in want.model.state_dict().items():
        assert torch.equal(v, got.model.state_dict()[k]), k
    with pytest.raises(ValueError, match="warmup_iterations"):
        Pretrainer(markets, vocab, TINY, {**RUN, "warmup_iterations": -1})
