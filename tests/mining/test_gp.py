"""Typed GP on DEAP: primitive set from the vocabulary, determinism, resume after a crash."""

from __future__ import annotations

import numpy as np
import pytest

from alphaminer.expr.trees import TreeGenerator
from alphaminer.expr.vocab import Vocabulary
from alphaminer.mining.gp.miner import GPConfig, GPMiner
from alphaminer.mining.gp.primitives import build_primitive_set, from_node, to_node

SMALL = {"population": 16, "generations": 3, "tournament_size": 4, "hall_of_fame": 4,
         "pool_every": 1, "init_depth": (1, 3), "max_depth": 4}


def test_primitive_set_covers_the_vocabulary_and_round_trips_trees() -> None:
    vocab = Vocabulary.default()
    ps = build_primitive_set(vocab)
    assert set(ps.op_of.values()) == set(vocab.operators)
    # Add takes series or constants: three typed variants, never constant + constant
    assert {n for n, op in ps.op_of.items() if op == "Add"} == {"Add", "Add__sc", "Add__cs"}
    gen = TreeGenerator(vocab, max_depth=5)
    rng = np.random.default_rng(3)
    for tree in gen.ramped_half_and_half(rng, 100, 1, 5):
        assert to_node(from_node(tree, ps), ps) == tree


def test_gp_is_deterministic_and_fills_the_pool(make_scorer) -> None:  # noqa: ANN001
    a = GPMiner(make_scorer(), config=SMALL).run(progress=False)
    b = GPMiner(make_scorer(), config=SMALL).run(progress=False)
    assert a.formulas == b.formulas and a.weights == b.weights
    assert 0 < len(a.formulas) <= 4
    assert a.n_candidates == 16 * 3
    assert [h["generation"] for h in a.history] == [0, 1, 2]
    c = GPMiner(make_scorer(), config={**SMALL, "seed": 1}).run(progress=False)
    assert c.formulas != a.formulas


def test_gp_resumes_after_a_crash_with_identical_results(make_scorer, tmp_path,  # noqa: ANN001
                                                         crash_after_first_save) -> None:
    restore = crash_after_first_save
    want = GPMiner(make_scorer(), config=SMALL).run(progress=False)
    with pytest.raises(RuntimeError, match="killed"):
        GPMiner(make_scorer(), config=SMALL).run(checkpoint_dir=tmp_path, progress=False)
    restore()
    got = GPMiner(make_scorer(), config=SMALL).run(checkpoint_dir=tmp_path, progress=False)
    assert got.formulas == want.formulas and got.weights == want.weights
    assert got.n_candidates == want.n_candidates
    assert [h["generation"] for h in got.history] == [0, 1, 2]


def test_gp_config_validation() -> None:
    with pytest.raises(ValueError, match="tournament_size"):
        GPConfig(population=10, tournament_size=20)
    with pytest.raises(ValueError, match="unknown GPConfig key"):
        GPConfig.from_dict({"populaton": 10})
