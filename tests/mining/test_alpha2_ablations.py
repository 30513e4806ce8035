"""Alpha2's first-play urgency and the ablation runner: FPU against hand-computed PUCT scores,
config merging, the ablation rows against an independent numpy judgement, deduplicated
variants, the disabled pipeline node, and no look-ahead (test labels cannot change what is
mined)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alphaminer.evaluation.alphaset import AlphaSet
from alphaminer.evaluation.scorer import CandidateScorer
from alphaminer.expr import Evaluator
from alphaminer.mining.alpha2.ablations import merge_config, run_ablations
from alphaminer.mining.alpha2.mcts import MinMaxStats, Node, SearchConfig, select_child

# the CPU settings of conf/base (FPU, stop-first, zero leaf value), at toy sizes
TINY = {"iterations": 1, "games": 2, "max_len": 3, "train_steps": 1, "batch_size": 8,
        "leaf_value": "zero", "move_selection": "value",
        "search": {"simulations": 3, "fpu": "parent", "end_first": True}}


def _root_with_one_visited_child(fpu: str, reduction: float = 0.0) -> tuple[Node, SearchConfig,
                                                                           MinMaxStats]:
    cfg = SearchConfig(fpu=fpu, fpu_reduction=reduction, beta=1.0, top_k=5)
    root = Node(object(), k=5)  # type: ignore[arg-type]
    root.expand(np.array([3, 5, 8]), np.array([0.4, 0.3, 0.3]), 0.0)
    # four simulations: the root's returns 0.0, 0.2, 0.4, 1.0 → backed (β = 1, mean) 0.4;
    # child 0 visited 3 times with Q 0.25, child 1 and 2 never
    for v in (0.0, 0.2, 0.4, 1.0):
        root.heap.push(v)
    root.visits, root.N[:] = 4, [3, 0, 0]
    root.Q[:] = [0.25, 0.0, 0.0]
    mm = MinMaxStats()
    for q in (0.25, -0.5, 1.0):  # Q bounds seen elsewhere in the tree
        mm.update(q)
    return root, cfg, mm


def _puct(root: Node, cfg: SearchConfig, q_unvisited: float) -> np.ndarray:
    n = root.visits
    c = np.log((n + cfg.pb_c_base + 1) / cfg.pb_c_base) + cfg.pb_c_init
    q = np.where(root.N > 0, (root.Q + 0.5) / 1.5, q_unvisited)
    return q + c * root.priors * np.sqrt(n) / (1 + root.N)


def test_fpu_zero_keeps_the_visited_child() -> None:
    root, cfg, mm = _root_with_one_visited_child("zero")
    want = _puct(root, cfg, 0.0)
    assert select_child(root, cfg, mm) == int(np.argmax(want)) == 0


def test_fpu_parent_tries_a_sibling_when_the_child_is_worse_than_its_parent() -> None:
    root, cfg, mm = _root_with_one_visited_child("parent")
    # unvisited children score the parent's backed value (mean 0.4) normalised by (q+0.5)/1.5
    want = _puct(root, cfg, (0.4 + 0.5) / 1.5)
    assert select_child(root, cfg, mm) == int(np.argmax(want)) == 1
    # a large reduction brings the visited child back
    root, cfg, mm = _root_with_one_visited_child("parent", reduction=0.6)
    want = _puct(root, cfg, (0.4 + 0.5) / 1.5 - 0.6)
    assert select_child(root, cfg, mm) == int(np.argmax(want)) == 0


def test_bad_fpu_is_refused() -> None:
    with pytest.raises(ValueError, match="fpu"):
        SearchConfig(fpu="leela")


def test_merge_config_merges_nested_dicts_one_level() -> None:
    base = {"iterations": 3, "search": {"simulations": 8, "beta": 0.5}, "net": {"lr": 0.1}}
    got = merge_config(base, {"search": {"beta": 0.0}, "dims": False})
    assert got == {"iterations": 3, "search": {"simulations": 8, "beta": 0.0},
                   "net": {"lr": 0.1}, "dims": False}
    assert base["search"]["beta"] == 0.5  # the base is not touched


def _np_ic(x: torch.Tensor, y: torch.Tensor, min_stocks: int = 10) -> float:
    """Mean daily Pearson correlation with plain numpy (independent reference)."""
    x, y = x.numpy().astype(np.float64), y.numpy().astype(np.float64)
    out = []
    for t in range(x.shape[0]):
        ok = np.isfinite(x[t]) & np.isfinite(y[t])
        if ok.sum() < min_stocks or np.std(x[t, ok]) == 0 or np.std(y[t, ok]) == 0:
            continue
        out.append(np.corrcoef(x[t, ok], y[t, ok])[0, 1])
    return float(np.mean(out)) if out else float("nan")


@pytest.fixture(scope="module")
def ablation(market):
    panel, labels, splits = market
    planted = AlphaSet("planted", ["Neg(TsReturn(close,5d))", "Corr(close,volume,10d)"],
                       ["rev", "pv"])

    def make_scorer() -> CandidateScorer:
        return CandidateScorer.from_splits(panel, labels, splits, "train", compute_rank_ic=False)

    variants = {"default": {}, "beta_0.5": {"search": {"beta": 0.5}}, "no_dims": {"dims": False}}
    res = run_ablations(make_scorer, panel, labels, splits.ranges, planted,
                        {**TINY, "search": {**TINY["search"], "beta": 0.5}}, variants, [0],
                        top_k=2)
    return res, planted


def test_ablation_rows_match_an_independent_judgement(market, ablation) -> None:
    panel, labels, splits = market
    res, planted = ablation
    (r0, r1), (t0, t1) = splits.ranges["train"], splits.ranges["test"]
    ev = Evaluator(panel)
    pv = [ev.evaluate(f)[t0:t1] for f in planted.formulas]
    for row in res["rows"]:
        fs = row["formulas"]
        assert row["n_alphas"] == len(fs) > 0
        vals = [ev.evaluate(f) for f in fs]
        ic_tr = np.array([_np_ic(v[r0:r1], labels[r0:r1]) for v in vals])
        ic_te = np.array([_np_ic(v[t0:t1], labels[t0:t1]) for v in vals])
        order = np.argsort(-np.abs(ic_tr), kind="stable")[:2]
        assert row["top_formulas"] == [fs[i] for i in order]
        aligned = np.sign(ic_tr[order]) * ic_te[order]
        assert row["top_test_ic"] == pytest.approx(list(aligned), abs=1e-4)
        assert row["top_test_ic_mean"] == pytest.approx(aligned.mean(), abs=1e-4)
        for name, p in zip(planted.names, pv):
            best = max(abs(_np_ic(v[t0:t1], p)) for v in vals)
            assert row["planted_abs_corr"][name] == pytest.approx(best, abs=1e-4)
        assert row["recovered"] == sum(c >= 0.9 for c in row["planted_abs_corr"].values())
        assert row["candidates"] > 0 and row["wall_seconds"] > 0


def test_identical_variants_are_mined_once(ablation) -> None:
    res, _ = ablation
    rows = {r["variant"]: r for r in res["rows"]}
    assert rows["beta_0.5"]["same_as"] == "default"
    assert rows["beta_0.5"]["formulas"] == rows["default"]["formulas"]
    assert "same_as" not in rows["no_dims"] and rows["no_dims"]["dims"] is False
    assert [s["variant"] for s in res["summary"]] == ["default", "beta_0.5", "no_dims"]
    assert res["summary"][2]["recovered"] == rows["no_dims"]["recovered"]


def test_test_labels_cannot_change_what_is_mined(market, ablation) -> None:
    panel, labels, splits = market
    res, planted = ablation
    t0, _ = splits.ranges["test"]
    _, v1 = splits.ranges["valid"]
    future = labels.clone()
    future[max(t0, v1):] = torch.randn_like(future[max(t0, v1):])  # scramble the test labels

    def make_scorer() -> CandidateScorer:
        return CandidateScorer.from_splits(panel, future, splits, "train", compute_rank_ic=False)

    got = run_ablations(make_scorer, panel, future, splits.ranges, planted,
                        {**TINY, "search": {**TINY["search"], "beta": 0.5}},
                        {"default": {}}, [0], top_k=2)
    assert got["rows"][0]["formulas"] == res["rows"][0]["formulas"]


def test_disabled_node_runs_nothing() -> None:
    from alphaminer.pipelines.alpha2_mining.nodes import alpha2_ablations

    out = alpha2_ablations(None, None, {}, None, {}, {"enabled": False}, 10)  # type: ignore[arg-type]
    assert out == {"enabled": False, "rows": [], "summary": []}


def test_end_first_tries_stopping_before_anything_else() -> None:
    cfg = SearchConfig(end_first=True, end_action=9)
    node = Node(object(), k=5)  # type: ignore[arg-type]
    node.expand(np.array([2, 4, 9]), np.array([0.9, 0.09, 0.01]), 0.0)
    mm = MinMaxStats()
    assert select_child(node, cfg, mm) == 2  # End (the last action) despite its small prior
    node.visits, node.N[2] = 1, 1
    assert select_child(node, cfg, mm) == 0  # then PUCT: the prior decides
    off = SearchConfig(end_first=False, end_action=9)
    node.N[2] = 0
    assert select_child(node, off, mm) == 0


@pytest.mark.parametrize("leaf_value", ["network", "zero"])
def test_leaf_value_is_the_network_or_stop_here(market, leaf_value: str) -> None:
    from alphaminer.mining.alpha2.miner import Alpha2Miner

    panel, labels, splits = market
    sc = CandidateScorer.from_splits(panel, labels, splits, "train", compute_rank_ic=False)
    miner = Alpha2Miner(sc, config={**TINY, "leaf_value": leaf_value})
    tab = miner.table
    child = Node(tab.run([("Sub", "close", "open")]), k=5)
    miner._expand([child])
    _, v = miner.net.predict(tab.encode(child.state)[None])
    want = float(v[0]) if leaf_value == "network" else 0.0
    assert child.value == pytest.approx(want, abs=1e-7)
    assert miner.search.end_action == tab.end_id  # the miner tells the search which is End
