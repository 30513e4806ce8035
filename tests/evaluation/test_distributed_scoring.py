"""Candidate scoring on Dask workers (alphaminer.evaluation.distributed): a LocalCluster of two
worker processes scores exactly what the in-process scorer does (IC against a plain numpy
Pearson, reference set, pool dry runs, failures), a short GP run finds the same alphas, the
panel reaches each worker once, and a pool changed behind the scorer's back is scored
in-process rather than wrongly."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from alphaminer.data import clean, load_source, make_labels, make_splits
from alphaminer.evaluation.distributed import (
    DaskScorer,
    ScoringBackend,
    ScoringConfig,
    worker_counters,
)
from alphaminer.evaluation.pool import PoolConfig
from alphaminer.evaluation.scorer import CandidateScorer
from alphaminer.expr import evaluate
from alphaminer.expr.grammar import random_formulas
from alphaminer.expr.vocab import Vocabulary
from alphaminer.mining.gp.miner import GPMiner
from alphaminer.parameters import GPMiningParams, ProjectParams, ScoringParams

pytest.importorskip("distributed")

FLOATS = ("ic", "rank_ic", "icir", "rank_icir", "max_corr", "pool_ic", "pool_gain")
REFS = ["Corr(close,volume,10d)", "Mean(Div(close,Ref(close,5d)),10d)"]
COMMITS = ["Div(Sub(close,open),Sub(high,low))", "Neg(Delta(vwap,3d))",
           "CSRank(Std(close,20d))", "TsRank(volume,15d)"]
BROKEN = ["Add(close,", "Mean(turnover,5d)", "Ref(close,-3d)", "Sub(close,close)"]


@pytest.fixture(scope="module")
def market():
    raw = load_source({"kind": "simulator",
                       "simulator": {"n_stocks": 30, "n_days": 220, "seed": 1,
                                     "alpha_horizon": 5}})
    panel = clean(raw).to_panel()
    labels = make_labels(panel, 5)
    splits = make_splits(panel.dates, {"fractions": [0.5, 0.25, 0.25], "horizon": 5})
    return panel, labels, tuple(splits.ranges["train"])


@pytest.fixture(scope="module")
def backend():
    """The backend's own LocalCluster (address null, no scheduler variable): 2 processes."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
        b = ScoringBackend({"backend": "dask", "n_workers": 2, "chunk": 8})
        client = b.client
        assert len(client.nthreads()) == 2
        yield b
        b.close()
        assert b._client is None and client.status == "closed"


def _scorers(market, backend, **kw):  # noqa: ANN001, ANN202
    panel, labels, days = market
    local = CandidateScorer(panel, labels, days, **kw)
    remote = backend.scorer(panel, labels, days, **kw)
    assert isinstance(remote, DaskScorer)
    return local, remote


def _assert_same(a: list, b: list) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert (x.formula, x.ok, x.reason, x.n_days, x.pool_accepted, x.pool_reason) == \
            (y.formula, y.ok, y.reason, y.n_days, y.pool_accepted, y.pool_reason)
        for f in FLOATS:
            u, v = getattr(x, f), getattr(y, f)
            assert (math.isnan(u) and math.isnan(v)) or abs(u - v) <= 1e-7 * max(1, abs(u)), \
                (x.formula, f, u, v)


def _numpy_ic(panel, labels, days, formula: str) -> float:  # noqa: ANN001
    """Mean over days of the Pearson correlation on the stocks valid on both sides (numpy)."""
    t0, t1 = days
    x = evaluate(formula, panel.slice_dates(0, t1)).numpy()[t0:t1].astype(np.float64)
    y = labels.numpy()[t0:t1].astype(np.float64)
    ics = []
    for xt, yt in zip(x, y):
        m = np.isfinite(xt) & np.isfinite(yt)
        if m.sum() >= 10 and xt[m].std() > 0 and yt[m].std() > 0:
            ics.append(np.corrcoef(xt[m], yt[m])[0, 1])
    return float(np.mean(ics))


def test_scores_equal_the_in_process_scorer(market, backend) -> None:  # noqa: ANN001
    panel, labels, days = market
    local, remote = _scorers(market, backend, pool=PoolConfig(capacity=3, min_stocks=10),
                             reference=REFS)
    vocab = Vocabulary.default()
    batch = random_formulas(vocab, 40, max_len=12, seed=3) + BROKEN + COMMITS
    for s in (local, remote):
        for f in COMMITS[:2]:
            s.commit(f)
    a, b = local.score(batch), remote.score(batch)
    _assert_same(a, b)
    assert remote.stats()["backend"]["tasks"] >= 2  # spread over the two workers' chunks
    assert {s.reason.split(":")[0] for s in b if not s.ok} >= {
        "parse error", "unknown feature", "look-ahead"}
    assert sum(s.ok for s in b) >= 10 and any(s.pool_accepted for s in b)
    # independent reference for the pool-independent part
    for s in [s for s in b if s.ok][:3]:
        assert s.ic == pytest.approx(_numpy_ic(panel, labels, days, s.formula), abs=2e-6)
    # the pool (an eviction at capacity 3) and the reference set move: cached formulas are
    # re-priced by the workers against the new state, repeats are never re-sent
    for s in (local, remote):
        for f in COMMITS[2:]:
            s.commit(f)
        s.add_reference("Sub(Mean(close,5d),Mean(close,20d))")
        s.add_reference(labels[days[0]:days[1]].clone(), ["the_label"])  # values, not a formula
    assert remote.pool.names == local.pool.names and len(local.pool) == 3
    np.testing.assert_allclose(remote.pool.weights, local.pool.weights, rtol=1e-12)
    sent = remote.stats()["backend"]["remote_formulas"]
    more = random_formulas(vocab, 10, max_len=12, seed=4)
    _assert_same(local.score(batch + more), remote.score(batch + more))
    st_l, st_r = local.stats(), remote.stats()
    assert st_r["backend"]["remote_formulas"] - sent == len(set(more) - set(batch)) + sum(
        s.ok for s in b)  # the new ones, and the ok ones again for their pool/set parts
    for k in ("scored", "cache_hits", "failures", "cached_entries"):
        assert st_l[k] == st_r[k], k
    assert st_r["backend"]["in_process_reason"] is None


def test_gp_finds_the_same_alphas_with_either_backend(market, backend) -> None:  # noqa: ANN001
    small = {"population": 16, "generations": 3, "tournament_size": 4, "hall_of_fame": 4,
             "pool_every": 1, "init_depth": (1, 3), "max_depth": 4, "seed": 5}
    local, remote = _scorers(market, backend, pool=PoolConfig(capacity=4, min_stocks=10))
    a = GPMiner(local, config=small).run(progress=False)
    b = GPMiner(remote, config=small).run(progress=False)
    assert a.formulas and a.formulas == b.formulas
    np.testing.assert_allclose(b.weights, a.weights, rtol=1e-9)
    assert [h["best_fitness"] for h in a.history] == pytest.approx(
        [h["best_fitness"] for h in b.history], abs=1e-9)
    assert remote.stats()["backend"]["remote_formulas"] > 0


def test_the_panel_reaches_each_worker_once(market, backend) -> None:  # noqa: ANN001
    backend.client.wait_for_workers(2, timeout=60)  # both up even on a loaded host
    _, remote = _scorers(market, backend)
    remote.score(random_formulas(Vocabulary.default(), 24, max_len=10, seed=9))
    # an idle pause longer than the Active Memory Manager's 2 s cycle: with its ReduceReplicas
    # policy on (Dask's default) one worker's copy is dropped here and fetched again below
    time.sleep(4.5)
    held = {k: w for k, w in backend.client.who_has().items() if k.startswith("_Shared")}
    assert held and all(len(w) == 2 for w in held.values()), held
    remote.score(random_formulas(Vocabulary.default(), 24, max_len=10, seed=19))
    counters = backend.client.run(worker_counters)
    assert len(counters) == 2
    for c in counters.values():
        # every scorer of this module used one (panel, target, split): one copy per worker,
        # however many tasks and scorers ran on it; one replica per scorer that worker served
        assert list(c["loads"].values()) == [1], c["loads"]
        assert set(c["builds"].values()) <= {1}
    assert sum(c["tasks"].get(remote._id, 0) for c in counters.values()) >= 2
    assert len(backend._shared) == 1


def test_a_pool_changed_outside_commit_is_scored_in_process(market, backend) -> None:  # noqa: ANN001
    local, remote = _scorers(market, backend, pool=PoolConfig(capacity=3, min_stocks=10))
    for s in (local, remote):
        s.pool.try_add(COMMITS[0], s.values(COMMITS[0]))  # not through commit(): no log
    batch = random_formulas(Vocabulary.default(), 12, max_len=10, seed=11)
    _assert_same(local.score(batch), remote.score(batch))
    st = remote.stats()["backend"]
    assert st["remote_formulas"] == 0 and "commit()" in st["in_process_reason"]


def test_a_dask_task_scores_through_its_own_scheduler(market, backend) -> None:  # noqa: ANN001
    """Inside a task (a node under DaskRunner) the backend uses worker_client(): the task's
    thread leaves the pool, so its chunks run on the same two workers without deadlock."""
    panel, labels, days = market
    batch = random_formulas(Vocabulary.default(), 10, max_len=10, seed=12)

    def node(panel, labels, days, batch):  # noqa: ANN001, ANN202
        with ScoringBackend({"backend": "dask"}) as b:
            s = b.scorer(panel, labels, days)
            return s.score(batch), s.stats()["backend"]["tasks"]

    scores, tasks = backend.client.submit(node, panel, labels, days, batch).result(timeout=120)
    assert tasks >= 1
    _assert_same(CandidateScorer(panel, labels, days).score(batch), scores)


def test_scoring_parameters(market) -> None:  # noqa: ANN001
    assert ScoringConfig.coerce(None) == ScoringConfig()  # in-process by default
    assert ScoringParams.coerce({"backend": "dask", "chunk": 16}).to_config() == ScoringConfig(
        backend="dask", chunk=16)
    assert GPMiningParams.coerce({}).scoring is None
    with pytest.raises(ValueError, match="backend"):
        ScoringParams.coerce({"backend": "ray"})
    with pytest.raises(ValueError, match="chunk"):
        ScoringParams.coerce({"chunk": 0})
    assert ProjectParams.model_validate({"scoring": {"n_workers": 4}}).scoring.n_workers == 4
    with ScoringBackend(None) as local:  # in-process: no client, a plain CandidateScorer
        assert type(local.scorer(*market)) is CandidateScorer and local._client is None
