"""AlphaPool against independent references: sklearn Lasso, ISTA, pandas z-scores."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import Lasso

from alphaminer.evaluation import AlphaPool, PoolConfig, daily_ic, lasso_cd

LAMBDA = 0.005


def _zscore_pandas(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Independent per-day z-score (ddof=1) over finite cells inside ``mask``, NaN -> 0."""
    df = pd.DataFrame(np.where(mask & np.isfinite(values), values, np.nan).astype(float))
    z = df.sub(df.mean(axis=1), axis=0).div(df.std(axis=1, ddof=1), axis=0)
    return z.fillna(0.0).to_numpy()


def _sample_mask(y: np.ndarray, min_stocks: int) -> np.ndarray:
    ok = np.isfinite(y)
    return ok & (ok.sum(axis=1, keepdims=True) >= min_stocks)


def _market(T=120, S=60, K=5, seed=0, nan=0.05):
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(T, S, generator=g)
    fs = [0.3 * y + torch.randn(T, S, generator=g) for _ in range(K)]
    for f in fs:
        f[torch.rand(T, S, generator=g) < nan] = float("nan")
    y[torch.rand(T, S, generator=g) < nan] = float("nan")
    y[3, 5:] = float("nan")  # a day below min_stocks: dropped from the sample
    return y, fs


def test_lasso_weights_match_sklearn_on_the_pool_design():
    y, fs = _market(K=4)
    noise = torch.randn(y.shape, generator=torch.Generator().manual_seed(9))
    fs.append(noise)  # an uninformative factor the lasso should shrink to ~0
    pool = AlphaPool(capacity=10, l1=LAMBDA, target=y)
    for i, f in enumerate(fs):
        assert pool.try_add(f"f{i}", f).accepted
    ynp = y.numpy()
    mask = _sample_mask(ynp, 10)
    X = np.stack([_zscore_pandas(f.numpy(), mask)[mask] for f in fs], axis=1)
    yz = _zscore_pandas(ynp, mask)[mask]
    # sklearn minimises (1/2n)||y - Xw||^2 + a||w||_1 = (1/2)[mean((Xw - y)^2) + 2a||w||_1]
    # so our lambda maps to a = lambda / 2.
    ref = Lasso(alpha=LAMBDA / 2, fit_intercept=False, tol=1e-12, max_iter=200_000).fit(X, yz)
    np.testing.assert_allclose(pool.weights, ref.coef_, atol=1e-4)
    assert abs(pool.weights[-1]) < 0.01 < pool.weights[:-1].min()


def test_lasso_cd_matches_proximal_gradient():
    rng = np.random.default_rng(1)
    A = rng.normal(size=(400, 6))
    A[:, 5] = A[:, 4] * 0.9 + 0.1 * A[:, 5]  # correlated pair: slow for CD, fine when exact
    yv = A @ np.array([0.5, -0.2, 0.0, 0.05, 0.3, 0.0]) + rng.normal(size=400)
    G, b = A.T @ A / 400, A.T @ yv / 400
    for lam in (0.0, 0.005, 0.1):
        w = lasso_cd(G, b, lam)
        # ISTA on mean((Aw - y)^2) + lam |w|_1: gradient 2(Gw - b), step 1/L with L = 2 max eig
        step = 1.0 / (2 * np.linalg.eigvalsh(G).max())
        v = np.zeros(6)
        for _ in range(200_000):
            u = v - step * 2 * (G @ v - b)
            v_new = np.sign(u) * np.maximum(np.abs(u) - step * lam, 0)
            if np.abs(v_new - v).max() < 1e-14:
                break
            v = v_new
        np.testing.assert_allclose(w, v, atol=1e-7)
    # warm start converges to the same point
    np.testing.assert_allclose(lasso_cd(G, b, 0.005, w0=np.ones(6)), lasso_cd(G, b, 0.005),
                               atol=1e-9)


def test_eviction_drops_smallest_weight():
    g = torch.Generator().manual_seed(2)
    T, S = 150, 80
    a, b, c, d = (torch.randn(T, S, generator=g) for _ in range(4))
    y = 0.5 * a + 0.3 * b + 0.08 * c + 0.2 * d + 0.5 * torch.randn(T, S, generator=g)
    pool = AlphaPool(capacity=3, target=y)
    for name, f in (("a", a), ("b", b), ("c", c)):
        assert pool.try_add(name, f).accepted
    order = np.argsort(np.abs(pool.weights))
    assert [pool.names[i] for i in order] == ["c", "b", "a"]
    res = pool.try_add("d", d)
    assert res.accepted and res.evicted == "c" and "evicted c" in res.reason
    assert pool.names == ["a", "b", "d"]
    # independent check: the four-factor sklearn fit ranks c smallest too
    mask = _sample_mask(y.numpy(), 10)
    X = np.stack([_zscore_pandas(f.numpy(), mask)[mask] for f in (a, b, c, d)], axis=1)
    ref = Lasso(alpha=LAMBDA / 2, fit_intercept=False, tol=1e-12).fit(
        X, _zscore_pandas(y.numpy(), mask)[mask])
    assert int(np.argmin(np.abs(ref.coef_))) == 2
    # a weak newcomer evicts itself and leaves the pool unchanged
    before = pool.weights.copy()
    weak = 0.02 * a + torch.randn(T, S, generator=g)
    res = pool.try_add("weak", weak)
    assert not res.accepted and res.evicted == "weak"
    np.testing.assert_array_equal(pool.weights, before)


def test_pool_ic_equals_daily_ic_of_explicit_weighted_sum():
    y, fs = _market(seed=3)
    pool = AlphaPool(capacity=3, target=y)
    for i, f in enumerate(fs):
        pool.try_add(f"f{i}", f)
    mask = _sample_mask(y.numpy(), 10)
    zs = {f"f{i}": _zscore_pandas(f.numpy(), mask) for i, f in enumerate(fs)}
    explicit = sum(w * zs[n] for n, w in zip(pool.names, pool.weights))
    ref_daily = daily_ic(torch.tensor(explicit), y).numpy()
    np.testing.assert_allclose(pool.daily_pool_ic(), ref_daily, atol=1e-6, equal_nan=True)
    assert pool.pool_ic() == pytest.approx(np.nanmean(ref_daily), abs=1e-6)
    # the tensor API agrees as well, and so does the "other split" path on the same data
    np.testing.assert_allclose(pool.combined().numpy(), explicit * mask, atol=1e-5)
    vals = [fs[int(n[1:])] for n in pool.names]
    assert pool.pool_ic(y, vals) == pytest.approx(pool.pool_ic(), abs=1e-6)
    # and pandas' own per-day corr of the explicit sum
    pd_daily = pd.DataFrame(explicit).where(mask).T.corrwith(
        pd.DataFrame(y.numpy()).where(mask).T)
    assert pool.pool_ic() == pytest.approx(pd_daily.mean(), abs=1e-6)


def test_pool_ic_on_another_split():
    y, fs = _market(T=200, seed=4)
    tr, te = slice(0, 120), slice(130, 200)
    pool = AlphaPool(capacity=4, target=y[tr])
    for i, f in enumerate(fs):
        pool.try_add(f"f{i}", f[tr])
    vals = [fs[int(n[1:])][te] for n in pool.names]
    mask = _sample_mask(y[te].numpy(), 2)  # combined() restricts to finite target cells
    explicit = sum(w * _zscore_pandas(v.numpy(), np.isfinite(y[te].numpy()) & mask)
                   for w, v in zip(pool.weights, vals))
    ref = np.nanmean(daily_ic(torch.tensor(explicit), y[te]).numpy())
    assert pool.pool_ic(y[te], vals) == pytest.approx(ref, abs=1e-6)
    with pytest.raises(ValueError, match="both"):
        pool.pool_ic(target=y[te])


def test_duplicates_rejected():
    y, fs = _market(K=2, seed=5)
    pool = AlphaPool(target=y)
    assert pool.try_add("f0", fs[0]).accepted
    res = pool.try_add("affine", 3 * fs[0] - 2)
    assert not res.accepted and res.duplicate_of == "f0" and "duplicate of f0" in res.reason
    res = pool.try_add("neg", -fs[0])
    assert not res.accepted and res.duplicate_of == "f0"
    res = pool.try_add("f0", fs[1])
    assert not res.accepted and "already in pool" in res.reason
    near = fs[0] + 0.5 * torch.randn(fs[0].shape, generator=torch.Generator().manual_seed(0))
    res = pool.try_add("near", near)  # corr ~0.9: allowed
    assert res.accepted and 0.8 < res.max_corr < 0.99
    assert not pool.try_add("const", torch.ones_like(y)).accepted
    assert len(pool) == 2


def test_incremental_gram_equals_full_recomputation():
    y, fs = _market(K=6, seed=6)
    pool = AlphaPool(capacity=4, target=y)
    for i, f in enumerate(fs):
        pool.try_add(f"f{i}", f)
    assert len(pool) == 4
    mask = _sample_mask(y.numpy(), 10)
    Z = np.stack([_zscore_pandas(fs[int(n[1:])].numpy(), mask)[mask] for n in pool.names], 1)
    yz = _zscore_pandas(y.numpy(), mask)[mask]
    np.testing.assert_allclose(pool.gram, Z.T @ Z / len(yz), atol=1e-6)
    np.testing.assert_allclose(pool.xty, Z.T @ yz / len(yz), atol=1e-6)
    V = pool.values().numpy()
    np.testing.assert_allclose(V[:, mask].T, Z, atol=1e-5)
    # remove keeps the cache consistent
    pool.remove(pool.names[1])
    Z2 = np.delete(Z, 1, axis=1)
    np.testing.assert_allclose(pool.gram, Z2.T @ Z2 / len(yz), atol=1e-6)


def test_evaluate_candidate_does_not_mutate_and_predicts_try_add():
    y, fs = _market(K=5, seed=7)
    pool = AlphaPool(capacity=3, target=y)
    for i in range(3):
        pool.try_add(f"f{i}", fs[i])
    snapshot = (pool.names, pool.weights.copy(), pool.gram.copy(), pool.pool_ic())
    predicted = pool.evaluate_candidate(fs[3])
    assert (pool.names, pool.pool_ic()) == (snapshot[0], snapshot[3])
    np.testing.assert_array_equal(pool.weights, snapshot[1])
    np.testing.assert_array_equal(pool.gram, snapshot[2])
    other = copy.deepcopy(pool)
    res = other.try_add("f3", fs[3])
    assert predicted == pytest.approx(res.pool_ic, abs=1e-12)
    assert res.pool_ic == pytest.approx(other.pool_ic(), abs=1e-12)
    # a duplicate changes nothing: reward = current pool IC
    assert pool.evaluate_candidate(2 * fs[0]) == pytest.approx(pool.pool_ic(), abs=1e-12)


def test_json_round_trip_and_refit(tmp_path):
    y, fs = _market(K=4, seed=8)
    pool = AlphaPool(capacity=3, l1=0.01, target=y)
    for i, f in enumerate(fs):
        pool.try_add(f"Mean(f{i},20d)", f)
    path = tmp_path / "pool.json"
    pool.save(path)
    doc = json.loads(path.read_text())
    assert doc["config"]["l1"] == 0.01 and len(doc["members"]) == 3
    back = AlphaPool.load(path)
    assert back.config == pool.config == PoolConfig(capacity=3, l1=0.01)
    assert back.names == pool.names
    np.testing.assert_array_equal(back.weights, pool.weights)
    assert [m.ic for m in back.members] == [m.ic for m in pool.members]
    assert back.pool_ic() == pool.pool_ic()
    assert AlphaPool.from_json(back.to_json()).to_dict() == pool.to_dict()
    with pytest.raises(RuntimeError, match="refit"):
        back.gram  # noqa: B018 - no values loaded yet
    vals = [fs[int(n[6])] for n in back.names]
    assert back.pool_ic(y, vals) == pytest.approx(pool.pool_ic(), abs=1e-6)
    back.refit(y, vals)
    np.testing.assert_allclose(back.weights, pool.weights, atol=1e-9)
    np.testing.assert_allclose(back.gram, pool.gram, atol=1e-9)
    # member metrics are the raw-value metrics on the fitting target
    m0 = pool.members[0]
    f0 = fs[int(m0.name[6])]
    # (stored against the float32 z-scored target: equal to float32 rounding)
    assert m0.ic == pytest.approx(np.nanmean(daily_ic(f0, y).numpy()), abs=1e-6)
    with pytest.raises(ValueError, match="format"):
        AlphaPool.from_json('{"format": "other"}')


def test_target_standardisation_and_bad_input():
    y, fs = _market(K=1, seed=9)
    pool = AlphaPool(target=y)
    assert pool.n_cells == int(_sample_mask(y.numpy(), 10).sum())
    with pytest.raises(ValueError, match="expected"):
        pool.try_add("bad", fs[0][:, :10])
    with pytest.raises(ValueError, match="capacity"):
        AlphaPool(capacity=0)
    with pytest.raises(RuntimeError, match="target"):
        AlphaPool().try_add("x", fs[0])
    assert AlphaPool(target=y).pool_ic() == 0.0


def test_evaluate_many_equals_evaluate_one_by_one():
    y, fs = _market(K=6, seed=10)
    pool = AlphaPool(capacity=3, target=y)
    for i in range(3):
        pool.try_add(f"f{i}", fs[i])
    cands = [fs[3], fs[4], 2 * fs[0] + 1, fs[5], torch.ones_like(y)]
    names = [f"c{i}" for i in range(len(cands))]
    one = [pool.evaluate(n, v) for n, v in zip(names, cands)]
    many = pool.evaluate_many(names, torch.stack(cands))
    z = pool.cells.standardise(torch.stack(cands))
    pre = pool.evaluate_many(names, z, standardised=True)
    for a, b, c in zip(one, many, pre):
        assert (a.accepted, a.reason, a.evicted, a.duplicate_of) == \
            (b.accepted, b.reason, b.evicted, b.duplicate_of) == \
            (c.accepted, c.reason, c.evicted, c.duplicate_of)
        assert b.pool_ic == pytest.approx(a.pool_ic, abs=1e-9)
        assert c.pool_ic == pytest.approx(a.pool_ic, abs=1e-6)
    assert many[2].duplicate_of == "f0" and not many[4].accepted
    # the dry run predicts try_add, and the pool is unchanged by the batch
    other = copy.deepcopy(pool)
    assert other.try_add("c0", cands[0]).pool_ic == pytest.approx(many[0].pool_ic, abs=1e-9)
    assert pool.names == ["f0", "f1", "f2"]


def test_fused_zscore_sums_equal_pandas_and_the_torch_path():
    y, fs = _market(K=2, seed=11)
    fs[1][7] = 3.0  # a constant day
    fs[1][8, 1:] = float("nan")  # a day with at most one valid cell
    cells = AlphaPool(target=y).cells
    V = torch.stack(fs)
    z, s, dd, b = cells.standardise_sums(V)
    mask = _sample_mask(y.numpy(), 10)
    yz = _zscore_pandas(y.numpy(), mask)
    for k in range(2):
        ref = _zscore_pandas(fs[k].numpy(), mask)
        np.testing.assert_allclose(z[k].numpy(), ref, atol=1e-6)
        np.testing.assert_allclose(s[k], ref.sum(axis=1), atol=1e-5)
        np.testing.assert_allclose(dd[k], (ref * ref).sum(axis=1), atol=1e-4)
        np.testing.assert_allclose(b[k], (ref * yz).sum(axis=1), atol=1e-4)
    assert not z[1, 7].any() and not z[1, 8].any()
    zt = cells.standardise(V)  # the torch path (cs_zscore) used off CPU
    np.testing.assert_allclose(z.numpy(), zt.numpy(), atol=1e-6)


def test_warm_started_lasso_equals_a_cold_solve():
    rng = np.random.default_rng(12)
    for _ in range(20):
        K = int(rng.integers(2, 12))
        A = rng.normal(size=(300, K))
        A[:, -1] = 0.8 * A[:, 0] + 0.2 * A[:, -1]  # correlated columns
        yv = A @ rng.normal(scale=0.3, size=K) + rng.normal(size=300)
        G, bb = A.T @ A / 300, A.T @ yv / 300
        cold = lasso_cd(G, bb, 0.02)
        w0 = cold + rng.normal(scale=0.05, size=K) * (rng.random(K) < 0.5)
        np.testing.assert_allclose(lasso_cd(G, bb, 0.02, w0=w0), cold, atol=1e-7)
        np.testing.assert_allclose(lasso_cd(G, bb, 0.02, w0=np.zeros(K)), cold, atol=1e-7)


def test_zscore_of_a_candidate_subset_reads_rows_in_place():
    """``standardise_sums(values, rows=...)`` equals z-scoring the copied subset, and pandas."""
    y, fs = _market(K=4, seed=13)
    cells = AlphaPool(target=y).cells
    V = torch.stack(fs)
    mask = _sample_mask(y.numpy(), 10)
    for rows in ([2, 0], [3], []):
        got = cells.standardise_sums(V, rows=rows)
        want = cells.standardise_sums(V[rows])
        assert got[0].shape == (len(rows), *y.shape)
        for a, b in zip(got, want):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        for j, k in enumerate(rows):
            np.testing.assert_allclose(got[0][j].numpy(), _zscore_pandas(fs[k].numpy(), mask),
                                       atol=1e-6)


def test_cross_sums_on_worker_threads_equal_per_day_products():
    """Day blocks on worker threads: the per-day sums equal a float64 numpy reference, and are
    bit-identical whatever torch's thread count."""
    from alphaminer.evaluation.pool import cross_sums

    g = torch.Generator().manual_seed(14)
    z = torch.randn(5, 37, 50, generator=g)
    m = torch.randn(37, 4, 50, generator=g)
    ref = np.einsum("cts,tks->ctk", z.double().numpy(), m.double().numpy())
    before = torch.get_num_threads()
    try:
        outs = []
        for n in (1, 2):
            torch.set_num_threads(n)
            outs.append(cross_sums(z, m))
            assert torch.get_num_threads() == n
    finally:
        torch.set_num_threads(before)
    np.testing.assert_allclose(outs[0], ref, atol=1e-4)
    np.testing.assert_array_equal(outs[0], outs[1])
    assert cross_sums(z[:0], m).shape == (0, 37, 4)


def test_batched_member_correlation_equals_one_candidate_at_a_time():
    """evaluate_many computes every candidate's correlation with the members in one pass: the
    decisions equal evaluate() one by one, and max_corr / pool IC up to the float32 rounding of
    the cross sums (a batch of one runs another matrix-product kernel)."""
    y, fs = _market(K=6, seed=15)
    pool = AlphaPool(capacity=4, target=y, dup_threshold=0.9)
    for i in range(3):
        pool.try_add(f"f{i}", fs[i])
    cands = [fs[3], -fs[1] + 0.01 * fs[4], fs[5], 0.5 * fs[2]]
    names = [f"c{i}" for i in range(len(cands))]
    many = pool.evaluate_many(names, torch.stack(cands))
    for n, v, b in zip(names, cands, many):
        a = pool.evaluate(n, v)
        assert (a.accepted, a.reason, a.duplicate_of) == (b.accepted, b.reason, b.duplicate_of)
        assert b.max_corr == pytest.approx(a.max_corr, abs=1e-6)
        assert b.pool_ic == pytest.approx(a.pool_ic, abs=1e-6)
    assert many[1].duplicate_of == "f1" and many[3].duplicate_of == "f2"
