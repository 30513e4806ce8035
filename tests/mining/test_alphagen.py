"""AlphaGen-style RL: grammar-valid formulas only, pool-IC rewards, determinism, resume."""

from __future__ import annotations

import pytest

from alphaminer.expr import parse
from alphaminer.expr.vocab import Vocabulary
from alphaminer.mining.alphagen.miner import AlphaGenMiner, random_formulas

SMALL = {"iterations": 3, "batch_size": 12, "max_len": 10,
         "ppo": {"epochs": 2, "minibatch_size": 12}}


def test_alphagen_runs_deterministically_and_logs_the_learning_curve(make_scorer) -> None:  # noqa: ANN001
    a = AlphaGenMiner(make_scorer(), config=SMALL).run(progress=False)
    b = AlphaGenMiner(make_scorer(), config=SMALL).run(progress=False)
    assert a.formulas == b.formulas and a.weights == b.weights
    assert a.n_candidates == 36 and len(a.history) == 3
    for h in a.history:
        assert {"mean_reward", "entropy", "approx_kl", "clip_frac", "value_loss",
                "pool_ic"} <= set(h)
        assert -1.0 <= h["mean_reward"] <= 1.0
    for f in a.formulas:
        parse(f)


def test_alphagen_resumes_after_a_crash(make_scorer, tmp_path, crash_after_first_save) -> None:  # noqa: ANN001
    restore = crash_after_first_save
    want = AlphaGenMiner(make_scorer(), config=SMALL).run(progress=False)
    with pytest.raises(RuntimeError, match="killed"):
        AlphaGenMiner(make_scorer(), config=SMALL).run(checkpoint_dir=tmp_path, progress=False)
    restore()
    got = AlphaGenMiner(make_scorer(), config=SMALL).run(checkpoint_dir=tmp_path,
                                                         progress=False)
    assert got.formulas == want.formulas and got.weights == want.weights
    assert [h["iteration"] for h in got.history] == [0, 1, 2]


def test_random_formulas_are_valid_and_seeded() -> None:
    v = Vocabulary.default()
    a = random_formulas(v, 50, max_len=15, seed=4)
    assert a == random_formulas(v, 50, max_len=15, seed=4)
    assert all(len(v.encode(f)) <= 15 for f in a)
