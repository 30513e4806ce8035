"""AlphaFormer inference speed-ups compute what the plain loop computes: the incremental decoder
step equals the full causal decode, and the miner's pool (skipping ``try_add`` for candidates
whose dry run against the unchanged pool rejected them) equals a plain loop that decodes the
whole prefix every step and offers every valid candidate to an independent pool."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from alphaminer.evaluation.pool import AlphaPool, PoolConfig
from alphaminer.evaluation.scorer import CandidateScorer
from alphaminer.expr.grammar import RPNBuilder
from alphaminer.expr.parser import parse
from alphaminer.expr.vocab import Vocabulary
from alphaminer.mining.alphaformer import AlphaFormer, AlphaFormerMiner, market_features
from alphaminer.mining.ppo import collect

TINY = {"d_model": 16, "heads": 2, "ffn": 32, "value_hidden": 16, "window": 10,
        "max_stocks": 16, "max_len": 10, "dec_layers": 2}


class _FullDecode(torch.nn.Module):
    """The reference policy: every step runs the whole prefix through ``decode`` (causal mask)
    and keeps its last position."""

    def __init__(self, model: AlphaFormer) -> None:
        super().__init__()
        self.model = model

    def initial_state(self, batch: int, context: Any) -> Any:
        return self.model.initial_state(batch, context)

    def step(self, prev: torch.Tensor, state: Any, context: Any = None) -> Any:
        prefix = state["prefix"]
        if not bool((prev < 0).all()):
            prefix = torch.cat([prefix, prev.clamp(min=0).unsqueeze(1)], dim=1)
        logits = self.model.decode(prefix, state["mem"], state["mem_pad"])[:, -1]
        return logits, state["value"], {**state, "prefix": prefix}


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return Vocabulary.default()


def _model(vocab: Vocabulary, seed: int, **kw: Any) -> AlphaFormer:
    torch.manual_seed(seed)
    return AlphaFormer(vocab, {**TINY, **kw})


@pytest.mark.parametrize("norm_first", [False, True])
def test_incremental_step_equals_full_causal_decode(vocab, market, norm_first  # noqa: ANN001
                                                    ) -> None:
    m = _model(vocab, 3)
    for layer in m.decoder.layers:
        layer.norm_first = norm_first
    panel = market[0]
    feats = market_features(panel, 120, TINY["window"], vocab.features, TINY["max_stocks"])
    B = 6
    ctx = m.make_context([feats], [0] * B, [[]] * 3 + [["Mean(close,20d)", "Abs(open)"]] * 3)
    state = m.initial_state(B, ctx)
    prev = torch.full((B,), -1, dtype=torch.long)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _ in range(TINY["max_len"]):
            logits, value, state = m.step(prev, state, ctx)
            # the reference: nn.TransformerDecoder over the whole prefix, causal mask
            full = m.decode(state["prefix"], state["mem"], state["mem_pad"])[:, -1]
            np.testing.assert_allclose(logits.numpy(), full.numpy(), rtol=1e-5, atol=1e-5)
            prev = torch.randint(0, len(vocab), (B,), generator=g)
    assert state["prefix"].shape == (B, TINY["max_len"])  # begin token + 9 tokens


def _plain_loop(model: AlphaFormer, market: Any, capacity: int, n: int, bs: int, seed: int
                ) -> tuple[list[str], list[float], list[str]]:
    """Inference without any shortcut: full-prefix decoding, and every valid candidate is
    offered with try_add (values from a pool-free scorer) to an independent pool."""
    panel, labels, splits = market
    indep = CandidateScorer.from_splits(panel, labels, splits, "train", min_stocks=10)
    pool = AlphaPool.from_config(PoolConfig(capacity=capacity, min_stocks=10), indep.target)
    feats = market_features(indep.evaluator.panel, indep.evaluator.panel.T,
                            model.config.window, list(model.vocab.features),
                            model.config.max_stocks)
    gen = torch.Generator().manual_seed(seed)
    seen: set[str] = set()
    offered: list[str] = []
    with torch.no_grad():
        for start in range(0, n, bs):
            k = min(bs, n - start)
            ctx = model.make_context([feats], [0] * k, [list(pool.names)] * k)
            ro = collect(_FullDecode(model),
                         lambda: RPNBuilder(model.vocab, max_len=model.config.max_len), k,
                         model.config.max_len + 1, generator=gen, context=ctx)
            for f in (str(b.finish()) for b in ro.builders):
                if f in seen:
                    continue
                seen.add(f)
                if indep.score_one(f).ok:
                    offered.append(f)
                    pool.try_add(str(parse(f)), indep.values(f))
    return pool.names, [float(w) for w in pool.weights], offered


@pytest.mark.parametrize(("seed", "chunk"), [(0, 32), (1, 5)])
def test_miner_pool_equals_the_plain_loop(vocab, market, seed, chunk  # noqa: ANN001
                                          ) -> None:
    """Chunk 32 > batch 12: one chunk per batch; chunk 5: several chunks, each re-priced."""
    m = _model(vocab, 10 + seed)
    panel, labels, splits = market
    scorer = CandidateScorer.from_splits(panel, labels, splits, "train", batch_size=chunk,
                                         pool=PoolConfig(capacity=3, min_stocks=10))
    miner = AlphaFormerMiner(scorer, m, {"n_candidates": 120, "batch_size": 12, "seed": seed})
    res = miner.run(progress=False)
    names, weights, offered = _plain_loop(m, market, 3, 120, 12, seed)
    assert miner.offered == offered
    assert res.formulas == names and len(names) > 0
    np.testing.assert_allclose(res.weights, weights, rtol=1e-6, atol=1e-9)
    # the shortcut was taken (else this test would not cover it), and the phases were timed
    assert res.meta["pool_skipped"] > 0
    assert set(res.meta["phase_seconds"]) == {"decode", "score", "pool"}
    assert sum(res.meta["phase_seconds"].values()) <= res.meta["seconds"] + 1e-6


def test_commit_does_not_reprice_a_cached_entry(make_scorer) -> None:
    """commit() needs only the pool-independent verdict: after a pool change it adds exactly
    what an independent pool adds, and score() still re-prices stale entries afterwards."""
    sc = make_scorer(capacity=2)
    fs = ["Mean(close,20d)", "Std(volume,10d)", "Corr(open,volume,10d)"]
    first = sc.score(fs)
    ref = AlphaPool.from_config(PoolConfig(capacity=2, min_stocks=10), sc.target)
    for f in fs:
        got = sc.commit(f)
        want = ref.try_add(str(parse(f)), sc.values(f))
        assert got.accepted == want.accepted and got.reason == want.reason
    assert sc.pool.names == ref.names
    again = sc.score(fs)
    assert [s.ic for s in again] == [s.ic for s in first]
    for f, s in zip(fs, again):
        r = ref.evaluate(str(parse(f)), sc.values(f))
        assert s.pool_ic == pytest.approx(r.pool_ic, abs=1e-7)
    with pytest.raises(ValueError, match="unknown feature"):
        sc.commit("Mean(foo,20d)")
