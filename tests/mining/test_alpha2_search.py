"""Alpha2's search and learning loop: the top-k backup on a hand-built tree, PUCT, the reward
arithmetic against an independent IC, determinism and resume after a kill."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alphaminer.evaluation.scorer import CandidateScorer, Score
from alphaminer.expr import Evaluator
from alphaminer.mining.alpha2.mcts import MinMaxStats, Node, SearchConfig, TopK, backup
from alphaminer.mining.alpha2.miner import Alpha2Miner, perf_of

TINY = {"iterations": 2, "games": 2, "max_len": 3, "train_steps": 2, "batch_size": 8,
        "search": {"simulations": 4}}


def test_topk_heap_keeps_exactly_the_k_largest() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(size=50)
    h = TopK(5)
    for v in values:
        h.push(v)
    assert sorted(h.heap) == sorted(values)[-5:]
    assert h.heap[0] == min(h.heap)  # min-heap: the smallest kept value on top
    assert h.mean() == pytest.approx(np.sort(values)[-5:].mean())


def _tree(k: int) -> tuple[Node, Node, Node]:
    state = object()
    root = Node(state, k=k)  # type: ignore[arg-type]
    root.expand(np.array([0, 1]), np.array([0.5, 0.5]), 0.0)
    child = Node(state, reward=0.2, k=k, parent=root, slot=0)  # type: ignore[arg-type]
    child.expand(np.array([0]), np.array([1.0]), 0.0)
    leaf = Node(state, reward=0.1, k=k, parent=child, slot=0)  # type: ignore[arg-type]
    return root, child, leaf


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0])
def test_backup_on_a_hand_built_tree(beta: float) -> None:
    k, gamma = 3, 0.9
    cfg = SearchConfig(beta=beta, top_k=k, gamma=gamma)
    root, child, leaf = _tree(k)
    leaf_values = [0.5, -1.0, 2.0, 0.3, 1.5]
    mm = MinMaxStats()
    for v in leaf_values:
        backup([root, child, leaf], v, cfg, mm)
    # returns through the child: r_leaf + γ·v for each simulation; the child keeps the top k
    through_child = [0.1 + gamma * v for v in leaf_values]
    top = sorted(through_child)[-k:]
    assert sorted(child.heap.heap) == pytest.approx(top)
    want = {0.0: max(top), 1.0: float(np.mean(top)), 0.5: 0.5 * np.mean(top) + 0.5 * max(top)}
    assert root.Q[0] == pytest.approx(0.2 + gamma * want[beta])
    top_leaf = sorted(leaf_values)[-k:]
    backed = {0.0: max(top_leaf), 1.0: float(np.mean(top_leaf)),
              0.5: 0.5 * np.mean(top_leaf) + 0.5 * max(top_leaf)}[beta]
    assert child.Q[0] == pytest.approx(0.1 + gamma * backed)
    assert root.N[0] == child.visits == leaf.visits == len(leaf_values)
    assert root.N[1] == 0


def test_puct_prefers_prior_then_value() -> None:
    from alphaminer.mining.alpha2.mcts import select_child

    cfg = SearchConfig(pb_c_base=20000, pb_c_init=1.0)
    root = Node(object(), k=5)  # type: ignore[arg-type]
    root.expand(np.array([4, 7, 9]), np.array([0.1, 0.7, 0.2]), 0.0)
    mm = MinMaxStats()
    assert select_child(root, cfg, mm) == 1  # nothing visited: the prior decides
    root.visits, root.N[:] = 10, [3, 3, 3]
    root.Q[:] = [1.0, 0.0, 0.5]
    for q in root.Q:
        mm.update(q)
    n = 10
    pb_c = np.log((n + cfg.pb_c_base + 1) / cfg.pb_c_base) + cfg.pb_c_init
    score = (root.Q - 0.0) / 1.0 + pb_c * root.priors * np.sqrt(n) / (1 + root.N)
    assert select_child(root, cfg, mm) == int(np.argmax(score))


def test_perf_arithmetic() -> None:
    s = Score("x", True, None, ic=-0.05, max_corr=0.4)
    assert perf_of(s, diversity=True, abs_ic=False) == pytest.approx((1 - 0.4) * -0.05)
    assert perf_of(s, diversity=True, abs_ic=True) == pytest.approx(0.6 * 0.05)
    assert perf_of(s, diversity=False, abs_ic=False) == pytest.approx(-0.05)
    assert perf_of(Score("y", False, "all NaN"), True, True) == 0.0


def _ic(values: torch.Tensor, target: torch.Tensor, min_stocks: int = 10) -> float:
    """Mean daily Pearson IC with plain numpy (the independent reference)."""
    x, y = values.numpy().astype(np.float64), target.numpy().astype(np.float64)
    ics = []
    for t in range(x.shape[0]):
        ok = np.isfinite(x[t]) & np.isfinite(y[t])
        if ok.sum() < min_stocks or np.std(x[t, ok]) == 0 or np.std(y[t, ok]) == 0:
            continue
        ics.append(np.corrcoef(x[t, ok], y[t, ok])[0, 1])
    return float(np.mean(ics))


def test_dense_reward_is_the_perf_difference(market) -> None:
    panel, labels, splits = market
    t0, t1 = splits.ranges["train"]
    scorer = CandidateScorer.from_splits(panel, labels, splits, "train", compute_rank_ic=False)
    miner = Alpha2Miner(scorer, config={**TINY, "abs_ic": False})
    tab = miner.table
    ev = Evaluator(panel)
    first = tab.run([("Sub", "close", "open")])
    z1 = first.alpha
    ref = ev.evaluate(z1)[:t1]
    g = ev.evaluate(miner.table.run([("Mean", "close", "5")]).alpha)[t0:t1]
    # G = {Mean(close,5d)}: Perf = (1 - |corr(z, g)|) * IC(z)
    scorer.add_reference("Mean(close,5d)")
    root = Node(tab.initial(), k=5)
    miner._expand([root])
    child = miner._make_child(root, 0, tab.id(("Sub", "close", "open")))
    miner._expand([child])
    grand = miner._make_child(child, 0, tab.id(("Abs", "Reg0")))
    miner._expand([grand])
    y = labels[t0:t1]
    ic1 = _ic(ref[t0:t1], y)
    corr1 = abs(_ic(ref[t0:t1], g))
    z2 = ev.evaluate(grand.state.alpha)[t0:t1]
    ic2 = _ic(z2, y)
    corr2 = abs(_ic(z2, g))
    p1, p2 = (1 - corr1) * ic1, (1 - corr2) * ic2
    assert str(z1) == "Sub(close,open)"
    assert root.perf == 0.0
    # the scorer's correlation z-scores on the target's cells: close to the plain one here
    assert child.reward == pytest.approx(p1, abs=2e-3)
    assert grand.reward == pytest.approx(p2 - child.perf, abs=2e-3)
    assert grand.reward == pytest.approx(grand.perf - child.perf, abs=1e-12)


def test_same_seed_same_alphas(market) -> None:
    panel, labels, splits = market

    def run():  # noqa: ANN202
        sc = CandidateScorer.from_splits(panel, labels, splits, "train", compute_rank_ic=False)
        return Alpha2Miner(sc, config=TINY).run(progress=False)

    a, b = run(), run()
    assert a.formulas and a.formulas == b.formulas and a.programs == b.programs
    assert [r["mean_return"] for r in a.history] == [r["mean_return"] for r in b.history]
    assert a.search_stats["simulations"] == b.search_stats["simulations"] > 0


def test_resume_after_a_kill_gives_the_same_run(market, tmp_path) -> None:
    panel, labels, splits = market

    def scorer() -> CandidateScorer:
        return CandidateScorer.from_splits(panel, labels, splits, "train",
                                           compute_rank_ic=False)

    cfg = {**TINY, "iterations": 3}
    want = Alpha2Miner(scorer(), config=cfg).run(tmp_path / "ref", progress=False)

    class Killed(Exception):
        pass

    killer = Alpha2Miner(scorer(), config=cfg)
    real_play, calls = killer._play, []

    def play():  # noqa: ANN202
        calls.append(1)
        if len(calls) == 2:
            raise Killed  # dies during the second iteration, after one checkpoint
        return real_play()

    killer._play = play
    with pytest.raises(Killed):
        killer.run(tmp_path / "run", progress=False)
    resumed = Alpha2Miner(scorer(), config=cfg)
    got = resumed.run(tmp_path / "run", progress=False)
    assert got.formulas == want.formulas and got.programs == want.programs
    assert got.history == want.history
    assert got.search_stats["episodes"] == want.search_stats["episodes"]
    ref_params = Alpha2Miner(scorer(), config=cfg)
    ref_params.run(tmp_path / "ref", progress=False)  # loads the finished run's checkpoint
    for x, y in zip(ref_params.net.state_dict()["params"], resumed.net.state_dict()["params"]):
        np.testing.assert_array_equal(x, y)
