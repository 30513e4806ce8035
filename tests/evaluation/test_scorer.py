"""CandidateScorer against independent references (daily_ic, pandas, a fresh AlphaPool)."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from alphaminer.data import make_labels
from alphaminer.evaluation import (
    AlphaPool,
    CandidateScorer,
    PoolConfig,
    daily_ic,
    daily_rank_ic,
    ic_stats,
    max_correlation,
)
from alphaminer.expr import evaluate
from alphaminer.panel import Panel

FORMULAS = [
    "Div(Sub(close,open),Sub(high,low))",
    "Mean(Div(close,Ref(close,5d)),10d)",
    "Corr(close,volume,10d)",
    "CSRank(Std(close,20d))",
    "Sub(Mean(close,5d),Mean(close,20d))",
    "TsRank(volume,15d)",
    "Neg(Delta(vwap,3d))",
]


def _panel(T: int = 160, S: int = 40, seed: int = 0) -> Panel:
    """A random-walk market with gaps in the universe and a few missing values."""
    rng = np.random.default_rng(seed)
    ret = 0.01 * rng.standard_normal((T, S))
    close = 20 * np.exp(np.cumsum(ret, axis=0))
    open_ = close * np.exp(0.005 * rng.standard_normal((T, S)))
    high = np.maximum(open_, close) * (1 + 0.01 * rng.random((T, S)))
    low = np.minimum(open_, close) * (1 - 0.01 * rng.random((T, S)))
    volume = np.exp(10 + 0.5 * rng.standard_normal((T, S)))
    vwap = (high + low + close) / 3
    vals = np.stack([open_, high, low, close, volume, vwap], axis=-1).astype(np.float32)
    vals[rng.random((T, S)) < 0.01] = np.nan
    universe = rng.random((T, S)) > 0.05
    return Panel(values=torch.from_numpy(vals),
                 dates=pd.bdate_range("2020-01-01", periods=T),
                 instruments=[f"S{i:03d}" for i in range(S)],
                 features=("open", "high", "low", "close", "volume", "vwap"),
                 observed=torch.ones(T, S, dtype=torch.bool),
                 universe=torch.from_numpy(universe),
                 tradable=torch.ones(T, S, dtype=torch.bool))


@pytest.fixture(scope="module")
def market():
    panel = _panel()
    return panel, make_labels(panel, 5)


DAYS = (60, 150)


def _split_values(formula: str, panel: Panel, days=DAYS) -> torch.Tensor:
    """Independent: evaluate on the whole panel without any cache, then slice."""
    return evaluate(formula, panel)[days[0]:days[1]]


def test_ic_and_rank_ic_equal_daily_ic_on_the_same_inputs(market):
    panel, y = market
    sc = CandidateScorer(panel, y, DAYS, min_days=5)
    scores = sc.score(FORMULAS)
    yt = y[DAYS[0]:DAYS[1]]
    for f, s in zip(FORMULAS, scores):
        assert s.ok, s.reason
        v = sc.values(f)  # the same inputs: exactly daily_ic / daily_rank_ic + ic_stats
        ic_d = daily_ic(v, yt)
        m, _, ir, n = ic_stats(ic_d)
        rm, _, rir, _ = ic_stats(daily_rank_ic(v, yt))
        assert s.ic == pytest.approx(float(m), abs=1e-12)
        assert s.icir == pytest.approx(float(ir), abs=1e-12)
        assert s.rank_ic == pytest.approx(float(rm), abs=1e-12)
        assert s.rank_icir == pytest.approx(float(rir), abs=1e-12)
        assert s.n_days == int(n)
        # and the independent pandas Pearson of the day's complete pairs, on values evaluated
        # without any cache on the whole panel
        w = _split_values(f, panel)
        ref = pd.DataFrame(w.numpy()).T.corrwith(pd.DataFrame(yt.numpy()).T)
        cnt = (np.isfinite(w.numpy()) & np.isfinite(yt.numpy())).sum(axis=1)
        assert s.ic == pytest.approx(ref[cnt >= 10].mean(), abs=1e-5)


def test_split_values_equal_whole_panel_sliced_and_slicing_first_would_not(market):
    panel, y = market
    sc = CandidateScorer(panel, y, DAYS)
    f = "Mean(Div(close,Ref(close,5d)),10d)"
    whole = _split_values(f, panel)
    # (equal to float32 rounding: the rolling-sum kernel's last bit depends on the panel length,
    # and the scorer's evaluator ends at t1)
    got = sc.values(f)
    assert torch.equal(torch.isnan(got), torch.isnan(whole))
    np.testing.assert_allclose(got.numpy(), whole.numpy(), rtol=1e-6, equal_nan=True)
    # a warm-up margin covering the look-back (5 + 9 days) gives the same values
    warm = CandidateScorer(panel, y, DAYS, warmup=20)
    np.testing.assert_allclose(warm.values(f).numpy(), whole.numpy(), rtol=1e-6,
                               equal_nan=True)
    # evaluating on the panel sliced at t0 restarts every window: the first days differ
    sliced = evaluate(f, panel.slice_dates(*DAYS))
    assert torch.isnan(sliced[:14]).all() and torch.isfinite(whole[:14]).any()


def test_future_data_after_t1_cannot_change_any_score(market):
    panel, y = market
    t1 = DAYS[1]
    base = CandidateScorer(panel, y, DAYS, pool=PoolConfig(capacity=3),
                           reference=[FORMULAS[0]], min_days=5)
    base.commit(FORMULAS[1])
    g = torch.Generator().manual_seed(1)
    vals = panel.values.clone()
    vals[t1:] = vals[t1:] * (1 + torch.rand(vals[t1:].shape, generator=g))
    vals[t1:, :5] = float("nan")
    moved = Panel(values=vals, dates=panel.dates, instruments=panel.instruments,
                  features=panel.features, observed=panel.observed,
                  universe=panel.universe, tradable=panel.tradable)
    y2 = y.clone()
    y2[t1:] = torch.randn(y2[t1:].shape, generator=g)
    other = CandidateScorer(moved, y2, DAYS, pool=PoolConfig(capacity=3),
                            reference=[FORMULAS[0]], min_days=5)
    other.commit(FORMULAS[1])
    assert base.score(FORMULAS) == other.score(FORMULAS)
    # the perturbation is real: scored over the whole panel, the results move
    whole_a = CandidateScorer(panel, y, min_days=5).score(FORMULAS)
    whole_b = CandidateScorer(moved, y2, min_days=5).score(FORMULAS)
    assert [s.ic for s in whole_a] != [s.ic for s in whole_b]


def test_failures_come_back_with_reasons(market, monkeypatch):
    panel, y = market
    sc = CandidateScorer(panel, y, DAYS)
    bad = {
        "Mean(close,": "parse error",
        "Mean(foo,20d)": "unknown feature",
        "Ref(close,-3d)": "look-ahead",
        "Sub(close,close)": "no cross-sectional variation",
        "Mean(close,500d)": "all NaN",  # a window longer than the history
        "Div(close,close)": "no cross-sectional variation",
    }
    scores = sc.score([*bad, FORMULAS[0]])
    for (f, kind), s in zip(bad.items(), scores):
        assert not s.ok and s.reason.startswith(kind), (f, s.reason)
        assert np.isnan(s.ic) and np.isnan(s.pool_gain)
    assert scores[-1].ok
    assert "column" in scores[0].reason  # the parser's position survives
    few = sc.score_one("Mean(close,120d)")  # valid from day 119: 31 of 90 days
    assert not few.ok and few.reason.startswith("too few valid days") and few.n_days > 0
    st = sc.stats()
    assert st["failures"]["no cross-sectional variation"] == 2
    assert st["failures"]["parse error"] == 1 and st["scored"] == 8
    # an evaluation error is reported, never raised; interrupts still propagate
    def boom(*_a, **_k):
        raise RuntimeError("kernel exploded")

    monkeypatch.setattr(sc.evaluator, "evaluate", boom)
    s = sc.score_one("Abs(close)")
    assert not s.ok and s.reason == "evaluation error: RuntimeError: kernel exploded"

    def interrupt(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(sc.evaluator, "evaluate", interrupt)
    with pytest.raises(KeyboardInterrupt):
        sc.score(["Log(close)"])
    with pytest.raises(ValueError, match="unknown feature"):
        sc.values("Mean(foo,20d)")


def test_cache_hit_gives_identical_results(market):
    panel, y = market
    sc = CandidateScorer(panel, y, DAYS, pool=PoolConfig(capacity=4), reference=[FORMULAS[2]])
    first = sc.score(FORMULAS + ["Mean(close,"])
    hits0 = sc.stats()["cache_hits"]
    # the same formulas, some written non-canonically, and duplicates within one batch
    again = sc.score([" Div( Sub(close,open), Sub(high,low) )", *FORMULAS[1:], FORMULAS[0],
                      "Mean(close,"])
    assert again[:len(FORMULAS)] == first[:len(FORMULAS)]
    assert again[len(FORMULAS)] == first[0] and again[-1] == first[-1]
    assert sc.stats()["cache_hits"] == hits0 + len(again)
    # a fresh scorer computes the same numbers from scratch
    fresh = CandidateScorer(panel, y, DAYS, pool=PoolConfig(capacity=4),
                            reference=[FORMULAS[2]]).score(FORMULAS)
    assert fresh == first[:len(FORMULAS)]


def _ref_corr(a: np.ndarray, b: np.ndarray, y: np.ndarray, min_stocks: int = 10) -> float:
    """Independent definition of max_corr's correlation: per day, on the target's sample cells
    (finite target, a day with >= min_stocks of them), both factors z-scored (ddof=1) over their
    finite cells there, NaN -> 0, Pearson over the sample cells; mean over usable days."""
    sample = np.isfinite(y) & (np.isfinite(y).sum(axis=1, keepdims=True) >= min_stocks)
    rs = []
    for t in range(y.shape[0]):
        cells = sample[t]
        if cells.sum() < min_stocks:
            continue
        za = pd.Series(np.where(cells & np.isfinite(a[t]), a[t], np.nan)[cells])
        zb = pd.Series(np.where(cells & np.isfinite(b[t]), b[t], np.nan)[cells])
        za = ((za - za.mean()) / za.std(ddof=1)).fillna(0.0)
        zb = ((zb - zb.mean()) / zb.std(ddof=1)).fillna(0.0)
        if za.var() < 1e-9 or zb.var() < 1e-9:
            continue
        rs.append(np.corrcoef(za, zb)[0, 1])
    return float(np.mean(rs)) if rs else 0.0


def test_max_corr_equals_the_sample_cell_definition(market):
    panel, y = market
    refs = [FORMULAS[0], FORMULAS[3], "Mean(close,30d)"]  # the last one: NaN before day 29
    sc = CandidateScorer(panel, y, DAYS, reference=refs)
    cands = [FORMULAS[1], FORMULAS[4], "Neg(Div(Sub(close,open),Sub(high,low)))"]
    yt = y[DAYS[0]:DAYS[1]].numpy()
    for f, s in zip(cands, sc.score(cands)):
        v = _split_values(f, panel).numpy()
        ref = max(abs(_ref_corr(v, _split_values(r, panel).numpy(), yt)) for r in refs)
        assert s.max_corr == pytest.approx(ref, abs=1e-6)
    assert sc.score_one(cands[2]).max_corr == pytest.approx(1.0, abs=1e-6)  # negated member
    # set_reference replaces, add_reference appends; values and formulas are interchangeable
    by_vals = CandidateScorer(panel, y, DAYS)
    by_vals.set_reference(torch.stack([_split_values(r, panel) for r in refs]))
    assert by_vals.score(cands) == sc.score(cands)
    by_vals.set_reference([])
    assert by_vals.score_one(cands[0]).max_corr == 0.0
    by_vals.add_reference(refs[0])
    assert by_vals.reference_names == [refs[0]]
    assert by_vals.score_one(cands[2]).max_corr == pytest.approx(1.0, abs=1e-6)


def test_max_corr_matches_metrics_where_both_factors_are_complete():
    """With no missing value on the sample cells the two correlation definitions coincide."""
    T, S = 80, 30
    g = torch.Generator().manual_seed(3)
    y = torch.randn(T, S, generator=g)
    a = torch.randn(T, S, generator=g) + 0.5 * y
    b = 0.7 * a + torch.randn(T, S, generator=g)
    vals = torch.stack([a, b, torch.exp(a), y], dim=-1)
    panel = Panel(values=vals, dates=pd.bdate_range("2021-01-01", periods=T),
                  instruments=[f"S{i}" for i in range(S)], features=("a", "b", "c", "d"),
                  observed=torch.ones(T, S, dtype=torch.bool),
                  universe=torch.ones(T, S, dtype=torch.bool),
                  tradable=torch.ones(T, S, dtype=torch.bool))
    sc = CandidateScorer(panel, y, reference=["b", "d"])
    for f in ("a", "c", "Mul(a,b)"):
        ref = max_correlation(evaluate(f, panel), [b, y])
        assert sc.score_one(f).max_corr == pytest.approx(ref, abs=1e-6)


def test_pool_gain_is_the_dry_run_pool_ic_minus_the_current_one(market):
    panel, y = market
    sc = CandidateScorer(panel, y, DAYS, pool=PoolConfig(capacity=2), min_days=5)
    # an independent pool, fed independently computed values
    yt = y[DAYS[0]:DAYS[1]]
    ref_pool = AlphaPool(capacity=2, target=yt)
    empty = sc.score(FORMULAS)
    for f, s in zip(FORMULAS, empty):
        r = ref_pool.evaluate(f, _split_values(f, panel))
        assert s.pool_ic == pytest.approx(r.pool_ic, abs=1e-7)
        assert s.pool_gain == pytest.approx(r.pool_ic - 0.0, abs=1e-7)
        assert s.pool_accepted == r.accepted and s.pool_reason == r.reason
    # commit two, then cached entries are re-priced against the new pool
    for f in FORMULAS[:2]:
        res = sc.commit(f)
        ref_res = ref_pool.try_add(f, _split_values(f, panel))
        assert res.accepted == ref_res.accepted
        assert res.pool_ic == pytest.approx(ref_res.pool_ic, abs=1e-7)
    assert sc.pool.names == ref_pool.names
    cur = ref_pool.pool_ic()
    after = sc.score(FORMULAS)
    for f, s in zip(FORMULAS, after):
        r = copy.deepcopy(ref_pool).evaluate(f, _split_values(f, panel))
        assert s.pool_ic == pytest.approx(r.pool_ic, abs=1e-7)
        assert s.pool_gain == pytest.approx(r.pool_ic - cur, abs=1e-7)
    # members are already in: no gain; IC/RankIC unchanged by the pool
    assert after[0].pool_gain == pytest.approx(0.0, abs=1e-12)
    assert [s.ic for s in after] == [s.ic for s in empty]
    # a given AlphaPool is bound (empty → set on the split's target); a foreign one is refused
    own = AlphaPool(capacity=3)
    CandidateScorer(panel, y, DAYS, pool=own)
    assert own.cells is not None and own.cells.shape == tuple(yt.shape)
    with pytest.raises(ValueError, match="another target"):
        CandidateScorer(panel, y, DAYS, pool=AlphaPool(capacity=3, target=y[:90]))
    with pytest.raises(RuntimeError, match="no pool"):
        CandidateScorer(panel, y, DAYS).commit(FORMULAS[0])


def test_batched_scoring_equals_one_at_a_time(market):
    panel, y = market
    kw = {"pool": PoolConfig(capacity=3), "reference": [FORMULAS[5]], "min_days": 5}
    batched = CandidateScorer(panel, y, DAYS, batch_size=4, **kw).score(FORMULAS)
    single = CandidateScorer(panel, y, DAYS, batch_size=1, **kw)
    one = [single.score_one(f) for f in FORMULAS]
    for a, b in zip(batched, one):
        assert a.formula == b.formula and a.ok == b.ok
        for k in ("ic", "rank_ic", "max_corr", "pool_ic", "pool_gain"):
            assert getattr(a, k) == pytest.approx(getattr(b, k), abs=1e-7)
    st = single.stats()
    assert st["scored"] == len(FORMULAS) and st["candidates_per_second"] > 0


def test_from_splits_and_bad_arguments(market):
    from alphaminer.data import SplitConfig, make_splits

    panel, y = market
    splits = make_splits(panel.dates, SplitConfig(fractions=(0.6, 0.2, 0.2), horizon=5))
    sc = CandidateScorer.from_splits(panel, y, splits, "valid")
    assert sc.days == splits.ranges["valid"]
    with pytest.raises(KeyError):
        CandidateScorer.from_splits(panel, y, splits, "nope")
    with pytest.raises(ValueError, match="days"):
        CandidateScorer(panel, y, (100, 50))
    with pytest.raises(ValueError, match="target"):
        CandidateScorer(panel, y[:10], DAYS)
    with pytest.raises(ValueError, match="min_stocks"):
        CandidateScorer(panel, y, DAYS, pool=AlphaPool(min_stocks=5))


def test_concurrent_evaluation_equals_one_thread(market):
    """Formulas of a batch are evaluated side by side on worker threads (sharing one evaluator
    cache): the scores equal those of a single-threaded scorer, and torch's thread count is
    restored afterwards."""
    panel, y = market
    kw = {"pool": PoolConfig(capacity=3), "reference": [FORMULAS[5]], "min_days": 5}
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = CandidateScorer(panel, y, DAYS, batch_size=len(FORMULAS), **kw).score(FORMULAS)
        torch.set_num_threads(2)
        two = CandidateScorer(panel, y, DAYS, batch_size=len(FORMULAS), **kw).score(FORMULAS)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    for a, b in zip(one, two):
        assert a.formula == b.formula and a.ok == b.ok and a.reason == b.reason
        for k in ("ic", "rank_ic", "max_corr", "pool_ic", "pool_gain"):
            assert getattr(a, k) == pytest.approx(getattr(b, k), abs=1e-9, nan_ok=True)


def test_failures_inside_a_batch_and_buffer_reuse_keep_scores(market):
    """Formulas failing after evaluation (no variation, too few days) sit between good ones, so
    the z-scoring reads a subset of the batch's rows in place; the value buffer is reused by the
    next batch. Scores equal one-formula-at-a-time scoring and daily_ic / daily_rank_ic."""
    panel, y = market
    mixed = [FORMULAS[0], "Greater(close,1000000.0)", FORMULAS[1], "Ref(close,130d)",
             FORMULAS[2], FORMULAS[4], "Less(volume,-1.0)", FORMULAS[6]]
    kw = {"pool": PoolConfig(capacity=3), "reference": [FORMULAS[5]], "min_days": 30}
    batched = CandidateScorer(panel, y, DAYS, batch_size=5, **kw)
    got = batched.score(mixed)
    single = CandidateScorer(panel, y, DAYS, batch_size=1, **kw)
    one = [single.score_one(f) for f in mixed]
    assert [s.ok for s in got] == [True, False, True, False, True, True, False, True]
    assert got[1].reason.startswith("no cross-sectional variation")
    assert got[3].reason.startswith("too few valid days")
    yt = y[DAYS[0]:DAYS[1]]
    for a, b, f in zip(got, one, mixed):
        assert (a.formula, a.ok, a.reason, a.pool_accepted) == \
            (b.formula, b.ok, b.reason, b.pool_accepted)
        if not a.ok:
            continue
        v = batched.values(f)  # the same inputs
        assert a.ic == float(ic_stats(daily_ic(v, yt))[0])
        assert a.rank_ic == float(ic_stats(daily_rank_ic(v, yt))[0])
        for k in ("max_corr", "pool_ic", "pool_gain"):
            assert getattr(a, k) == pytest.approx(getattr(b, k), abs=1e-7)


def test_stage_clock_accounts_for_the_scoring_time(market):
    panel, y = market
    sc = CandidateScorer(panel, y, DAYS, pool=PoolConfig(capacity=3), reference=[FORMULAS[5]],
                         min_days=5)
    sc.commit(FORMULAS[0])  # commits and values() are not candidates: not timed
    assert all(v == {"cpu": 0.0, "wall": 0.0} for k, v in sc.stats()["stages"].items()
               if k != "other")
    sc.score(FORMULAS[1:])
    st = sc.stats()
    stages = st["stages"]
    assert list(stages) == ["evaluate", "stack", "ic", "rank_ic", "zscore", "max_corr", "pool",
                            "other"]
    assert stages["evaluate"]["cpu"] > 0 and stages["rank_ic"]["wall"] > 0
    assert sum(v["cpu"] for v in stages.values()) == pytest.approx(st["cpu_seconds"])
    assert sum(v["wall"] for v in stages.values()) == pytest.approx(st["seconds"])
    assert all(v["wall"] >= 0 for v in stages.values())
