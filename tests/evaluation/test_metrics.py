"""Metrics against independent references (scipy / pandas loops, hand computation)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats as ss
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from alphaminer.evaluation import (
    correlation_matrix,
    daily_ic,
    daily_rank_ic,
    ic_summary,
    ic_summary_table,
    max_correlation,
    mutual_correlation,
    rank_autocorrelation,
    turnover,
)


def _data(K=3, T=25, S=40, seed=0, ties=True, nan=0.1):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(T, S))
    f = 0.4 * y + rng.normal(size=(K, T, S)) * 1.5 + 50.0
    if ties:
        f = np.round(f, 0)
        y = np.round(y * 3, 0)
    f[rng.random(f.shape) < nan] = np.nan
    y[rng.random(y.shape) < nan] = np.nan
    return f.astype(np.float32), y.astype(np.float32)


def _ref_daily(f, y, fn, min_stocks):
    out = np.full(f.shape[0], np.nan)
    for t in range(f.shape[0]):
        m = np.isfinite(f[t]) & np.isfinite(y[t])
        a, b = f[t, m].astype(float), y[t, m].astype(float)
        if m.sum() < min_stocks or np.ptp(a) == 0 or np.ptp(b) == 0:
            continue
        out[t] = fn(a, b)[0]
    return out


def test_daily_ic_matches_scipy_pearson_with_nans_and_ties():
    f, y = _data()
    f[0, 3, :5] = np.inf  # inf counts as missing
    got = daily_ic(torch.tensor(f), torch.tensor(y), min_stocks=5).numpy()
    assert got.shape == (3, 25)
    for k in range(3):
        ref = _ref_daily(np.where(np.isinf(f[k]), np.nan, f[k]), y, ss.pearsonr, 5)
        np.testing.assert_allclose(got[k], ref, atol=1e-6, equal_nan=True)
    # 2-D input gives [T]
    one = daily_ic(torch.tensor(f[1]), torch.tensor(y), min_stocks=5).numpy()
    np.testing.assert_allclose(one, got[1], atol=1e-12, equal_nan=True)


def test_daily_rank_ic_matches_scipy_spearman_on_pair_valid_stocks():
    f, y = _data(seed=1)
    got = daily_rank_ic(torch.tensor(f), torch.tensor(y), min_stocks=5).numpy()
    for k in range(3):
        ref = _ref_daily(f[k], y, ss.spearmanr, 5)
        assert np.isfinite(ref).sum() > 20
        np.testing.assert_allclose(got[k], ref, atol=1e-6, equal_nan=True)


def test_daily_rank_ic_fast_and_tie_paths_match_scipy():
    """Rows without ties (closed-form variances), rows with factor ties, days with tied targets,
    random and structured NaN, -0.0 next to +0.0, several blocks on several threads."""
    rng = np.random.default_rng(11)
    K, T, S = 5, 40, 300
    y = rng.normal(size=(T, S))
    f = 0.3 * y + rng.normal(size=(K, T, S))
    f[1, ::3] = np.round(f[1, ::3] * 2)  # factor ties on every third day
    f[2, 5, :150] = -0.0
    f[2, 5, 150:] = 0.0  # -0.0 and +0.0 are one tie group
    f[2, 5, :20] = rng.normal(size=20)
    y[::4] = np.round(y[::4] * 3)  # target ties on every fourth day
    f[3, :, :100] = np.nan  # a factor missing on a third of the stocks
    f[rng.random(f.shape) < 0.05] = np.nan
    y[rng.random(y.shape) < 0.05] = np.nan
    f, y = f.astype(np.float32), y.astype(np.float32)
    ref = np.full((K, T), np.nan)
    for k in range(K):
        for t in range(T):
            m = np.isfinite(f[k, t]) & np.isfinite(y[t])
            ref[k, t] = ss.spearmanr(f[k, t, m].astype(float), y[t, m].astype(float))[0]
    threads = torch.get_num_threads()
    for chunk in (1 << 19, 7 * S, S, 1):
        got = daily_rank_ic(torch.tensor(f), torch.tensor(y), chunk_elems=chunk).numpy()
        np.testing.assert_allclose(got, ref, atol=1e-9, rtol=0)
    assert torch.get_num_threads() == threads  # the worker pool restores torch's thread count
    got64 = daily_rank_ic(torch.tensor(f, dtype=torch.float64), torch.tensor(y)).numpy()
    np.testing.assert_allclose(got64, ref, atol=1e-9, rtol=0)


def test_concurrent_calls_agree_and_keep_torch_thread_count():
    import threading

    f, y = _data(K=4, T=60, S=50, seed=4)
    ft, yt = torch.tensor(f), torch.tensor(y)
    want_ic, want_ric = daily_ic(ft, yt), daily_rank_ic(ft, yt)
    before = torch.get_num_threads()
    ok = []

    def work() -> None:
        for _ in range(4):
            a = daily_ic(ft, yt, chunk_elems=500)
            b = daily_rank_ic(ft, yt, chunk_elems=500)
            ok.append(torch.allclose(a, want_ic, equal_nan=True, atol=1e-12)
                      and torch.equal(b.nan_to_num(9.0), want_ric.nan_to_num(9.0)))

    workers = [threading.Thread(target=work) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert ok == [True] * 12
    assert torch.get_num_threads() == before


def test_float64_inputs_and_chunking_agree():
    f, y = _data(K=5, seed=2)
    a = daily_ic(torch.tensor(f, dtype=torch.float64), torch.tensor(y, dtype=torch.float64))
    b = daily_ic(torch.tensor(f), torch.tensor(y), chunk_elems=1)  # one factor per block
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6, equal_nan=True)
    r1 = daily_rank_ic(torch.tensor(f), torch.tensor(y), chunk_elems=1)
    r2 = daily_rank_ic(torch.tensor(f), torch.tensor(y))
    np.testing.assert_allclose(r1.numpy(), r2.numpy(), atol=1e-12, equal_nan=True)


def test_min_stocks_rule_and_constant_days():
    T, S = 3, 12
    rng = np.random.default_rng(3)
    f = rng.normal(size=(T, S)).astype(np.float32)
    y = rng.normal(size=(T, S)).astype(np.float32)
    f[0, 9:] = np.nan  # day 0: 9 pairs
    y[1, 10:] = np.nan  # day 1: 10 pairs
    f[2] = 7.25  # day 2: constant factor
    for fn in (daily_ic, daily_rank_ic):
        got = fn(torch.tensor(f), torch.tensor(y), min_stocks=10).numpy()
        assert math.isnan(got[0]) and math.isfinite(got[1]) and math.isnan(got[2])
        got9 = fn(torch.tensor(f), torch.tensor(y), min_stocks=9).numpy()
        assert math.isfinite(got9[0])


def test_hand_computed_ic_and_icir():
    # 3 days x 4 stocks. Day 0: identical -> 1; day 1: reversed -> -1;
    # day 2: f = 1,3,2,4 vs y = 1,2,3,4 -> deviations (-1.5,.5,-.5,1.5)·(-1.5,-.5,.5,1.5) = 4,
    # variances 5 and 5 -> 0.8.
    y = torch.tensor([[1.0, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4]])
    f = torch.tensor([[10.0, 20, 30, 40], [4, 3, 2, 1], [1, 3, 2, 4]])
    got = daily_ic(f, y, min_stocks=4).numpy()
    np.testing.assert_allclose(got, [1.0, -1.0, 0.8], atol=1e-7)
    s = ic_summary(f, y, min_stocks=4)
    mean = (1 - 1 + 0.8) / 3
    std = math.sqrt(((1 - mean) ** 2 + (-1 - mean) ** 2 + (0.8 - mean) ** 2) / 2)
    assert s.ic == pytest.approx(mean, abs=1e-7)
    assert s.ic_std == pytest.approx(std, abs=1e-7)
    assert s.icir == pytest.approx(mean / std, abs=1e-6)
    assert s.rank_ic == pytest.approx(mean, abs=1e-7)  # ranks equal the values here
    assert s.n_days == 3
    assert set(s.to_dict()) == {"ic", "ic_std", "icir", "rank_ic", "rank_ic_std", "rank_icir",
                                "n_days"}
    # one missing stock on day 2 -> fewer than min_stocks -> that day is dropped
    f2 = f.clone()
    f2[2, 0] = float("nan")
    assert ic_summary(f2, y, min_stocks=4).n_days == 2


def test_ic_summary_table_matches_pandas():
    f, y = _data(K=4, seed=4, ties=False)
    df = ic_summary_table(torch.tensor(f), torch.tensor(y), names=list("abcd"), min_stocks=5)
    assert list(df.index) == list("abcd")
    yd = pd.DataFrame(y)
    for k, name in enumerate("abcd"):
        fd = pd.DataFrame(f[k])
        m = fd.notna() & yd.notna()
        ic = fd.where(m).T.corrwith(yd.where(m).T)
        ric = fd.where(m).rank(axis=1).T.corrwith(yd.where(m).rank(axis=1).T)
        ic[m.sum(axis=1) < 5] = np.nan
        ric[m.sum(axis=1) < 5] = np.nan
        assert df.loc[name, "ic"] == pytest.approx(ic.mean(), abs=1e-6)
        assert df.loc[name, "ic_std"] == pytest.approx(ic.std(), abs=1e-6)
        assert df.loc[name, "icir"] == pytest.approx(ic.mean() / ic.std(), abs=1e-5)
        assert df.loc[name, "rank_ic"] == pytest.approx(ric.mean(), abs=1e-6)
        assert df.loc[name, "rank_icir"] == pytest.approx(ric.mean() / ric.std(), abs=1e-5)
        single = ic_summary(torch.tensor(f[k]), torch.tensor(y), min_stocks=5)
        assert single.ic == pytest.approx(df.loc[name, "ic"], abs=1e-12)


def test_mutual_and_max_correlation():
    f, _ = _data(K=3, seed=5, ties=False)
    ft = torch.tensor(f)
    for i in range(3):
        for j in range(3):
            ref = np.nanmean(_ref_daily(f[i], f[j], ss.pearsonr, 10))
            assert mutual_correlation(ft[i], ft[j]) == pytest.approx(ref, abs=1e-6)
    cm = correlation_matrix(ft).numpy()
    np.testing.assert_allclose(cm, cm.T)
    np.testing.assert_allclose(np.diag(cm), 1.0)
    assert cm[0, 2] == pytest.approx(mutual_correlation(ft[0], ft[2]), abs=1e-12)
    batched = mutual_correlation(ft, ft[0])
    assert batched.shape == (3,) and float(batched[1]) == pytest.approx(cm[1, 0], abs=1e-12)
    # max |corr|: a negated copy of z in the pool gives 1
    z = ft[0]
    assert max_correlation(z, []) == 0.0
    assert max_correlation(z, torch.stack([ft[1], -z])) == pytest.approx(1.0, abs=1e-6)
    assert max_correlation(z, [ft[1], ft[2]]) == pytest.approx(
        max(abs(cm[0, 1]), abs(cm[0, 2])), abs=1e-12)


def test_turnover_matches_pandas_spearman_loop():
    rng = np.random.default_rng(6)
    T, S = 30, 50
    base = rng.normal(size=S)
    f = (base + 0.5 * rng.normal(size=(T, S)).cumsum(axis=0)).astype(np.float32)
    f[rng.random(f.shape) < 0.1] = np.nan
    ac = rank_autocorrelation(torch.tensor(f)).numpy()
    ref = np.full(T, np.nan)
    for t in range(1, T):
        ref[t] = pd.Series(f[t]).corr(pd.Series(f[t - 1]), method="spearman")
    np.testing.assert_allclose(ac, ref, atol=1e-6, equal_nan=True)
    assert turnover(torch.tensor(f)) == pytest.approx(1 - np.nanmean(ref), abs=1e-6)
    # a static ordering never turns over; batched input gives one value per factor
    static = torch.tensor(np.tile(base, (T, 1)) * np.linspace(1, 2, T)[:, None])
    tb = turnover(torch.stack([static, torch.tensor(f, dtype=torch.float64)]))
    assert float(tb[0]) == pytest.approx(0.0, abs=1e-9)
    assert float(tb[1]) == pytest.approx(1 - np.nanmean(ref), abs=1e-6)


def test_bad_input_errors():
    with pytest.raises(ValueError, match="target"):
        daily_ic(torch.zeros(5, 4), torch.zeros(5, 3))
    with pytest.raises(ValueError, match="factors"):
        daily_ic(torch.zeros(2, 2, 5, 4), torch.zeros(5, 4))
    with pytest.raises(ValueError, match="min_stocks"):
        daily_rank_ic(torch.zeros(5, 4), torch.zeros(5, 4), min_stocks=1)
    with pytest.raises(ValueError, match="ic_summary_table"):
        ic_summary(torch.zeros(2, 5, 4), torch.zeros(5, 4))


@settings(max_examples=25, deadline=None)
@given(t=st.integers(0, 7), t_other=st.integers(0, 7), seed=st.integers(0, 10_000))
def test_no_look_ahead_daily_metrics(t, t_other, seed):
    """Changing any day t' != t (factor or target) leaves the metric at day t unchanged."""
    if t == t_other:
        t_other = (t + 1) % 8
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(2, 8, 15)).astype(np.float32)
    y = rng.normal(size=(8, 15)).astype(np.float32)
    f2, y2 = f.copy(), y.copy()
    f2[:, t_other] = rng.normal(size=(2, 15)) * 100
    f2[0, t_other, :3] = np.nan
    y2[t_other] = rng.permutation(y2[t_other])
    for fn in (daily_ic, daily_rank_ic):
        a = fn(torch.tensor(f), torch.tensor(y), min_stocks=5)[:, t]
        b = fn(torch.tensor(f2), torch.tensor(y2), min_stocks=5)[:, t]
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # rank autocorrelation at day <= t only reads days <= t
    g = f[0].copy()
    g2 = g.copy()
    g2[t + 1:] = rng.normal(size=g2[t + 1:].shape)
    a = rank_autocorrelation(torch.tensor(g), min_stocks=5)[: t + 1]
    b = rank_autocorrelation(torch.tensor(g2), min_stocks=5)[: t + 1]
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_max_correlation_batched_equals_the_loop_definition():
    f, _ = _data(K=5, T=30, seed=11, ties=False)
    ft = torch.tensor(f)
    z, members = ft[0], [ft[1], -ft[2], ft[3].double(), ft[4]]
    members[3] = torch.full_like(ft[4], float("nan"))  # no usable day: ignored
    # the definition, one member at a time against scipy's Pearson per day
    loop = [np.nanmean(_ref_daily(f[0], m.numpy(), ss.pearsonr, 10)) if torch.isfinite(m).any()
            else np.nan for m in members]
    ref = max(abs(c) for c in loop if np.isfinite(c))
    assert max_correlation(z, members) == pytest.approx(ref, abs=1e-6)
    assert max_correlation(z, torch.stack([ft[1], -ft[2]])) == pytest.approx(
        max(abs(loop[0]), abs(loop[1])), abs=1e-6)
    assert math.isnan(max_correlation(z, [members[3]]))
    assert max_correlation(z, torch.zeros((0, *z.shape))) == 0.0


def test_prepared_target_gives_identical_results():
    from alphaminer.evaluation import PreparedTarget

    f, y = _data(K=4, T=30, seed=12)
    ft, yt = torch.tensor(f), torch.tensor(y)
    prep = PreparedTarget(yt)
    for fn in (daily_ic, daily_rank_ic):
        direct = fn(ft, yt, 5).numpy()
        np.testing.assert_array_equal(fn(ft, prep, 5).numpy(), direct)
        np.testing.assert_array_equal(fn(ft, prep, 5).numpy(), direct)  # cached second use
        np.testing.assert_array_equal(fn(ft.double(), prep, 5).numpy(),
                                      fn(ft.double(), yt, 5).numpy())
    with pytest.raises(ValueError, match="do not match"):
        daily_ic(ft[:, :10], prep)


def test_fused_rank_ic_pass_matches_torch_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The numba RankIC pass (CPU float32 default) and the torch path give the same daily values
    on ties in both sides, NaN, all-missing stocks and days below ``min_stocks``."""
    from alphaminer.evaluation import metrics

    rng = np.random.default_rng(5)
    K, T, S = 4, 30, 120
    y = rng.normal(size=(T, S))
    f = 0.2 * y + rng.normal(size=(K, T, S))
    f[0] = np.round(f[0])
    y[::3] = np.round(y[::3] * 2)
    f[1, :, :60] = np.nan
    f[2, 4] = 1.0  # a constant day
    y[7, 5:] = np.nan  # a day below min_stocks
    f[rng.random(f.shape) < 0.1] = np.nan
    ft, yt = torch.tensor(f, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    monkeypatch.setattr(metrics, "JIT_RANK", True)
    fused = daily_rank_ic(ft, yt, min_stocks=8)
    monkeypatch.setattr(metrics, "JIT_RANK", False)
    ref = daily_rank_ic(ft, yt, min_stocks=8)
    assert torch.equal(torch.isnan(fused), torch.isnan(ref))
    assert torch.isnan(fused[:, 7]).all() and torch.isnan(fused[2, 4])
    ok = ~torch.isnan(ref)
    np.testing.assert_allclose(fused[ok].numpy(), ref[ok].numpy(), atol=1e-12, rtol=0)


def test_fused_daily_ic_pass_matches_torch_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The numba daily-IC pass and the torch path agree, constant days and inf included."""
    from alphaminer.evaluation import metrics

    f, y = _data(K=4, T=30, S=60, seed=9)
    f[0, 3] = 7.0  # a constant day
    f[1, 5, :10] = np.inf
    y[6, 3:] = np.nan  # below min_stocks
    ft, yt = torch.tensor(f), torch.tensor(y)
    monkeypatch.setattr(metrics, "JIT_RANK", True)
    fused = daily_ic(ft, yt, min_stocks=5)
    monkeypatch.setattr(metrics, "JIT_RANK", False)
    ref = daily_ic(ft, yt, min_stocks=5)
    assert torch.equal(torch.isnan(fused), torch.isnan(ref))
    assert torch.isnan(fused[0, 3]) and torch.isnan(fused[:, 6]).all()
    ok = ~torch.isnan(ref)
    np.testing.assert_allclose(fused[ok].numpy(), ref[ok].numpy(), atol=1e-6, rtol=0)


def _spearman_ref(f: np.ndarray, y: np.ndarray, min_stocks: int) -> np.ndarray:
    """Per-day scipy Spearman on the day's complete pairs (NaN below min_stocks / constant)."""
    K, T, _ = f.shape
    out = np.full((K, T), np.nan)
    for k in range(K):
        for t in range(T):
            m = np.isfinite(f[k, t]) & np.isfinite(y[t])
            a, b = f[k, t, m].astype(float), y[t, m].astype(float)
            if m.sum() >= min_stocks and np.ptp(a) > 0 and np.ptp(b) > 0:
                out[k, t] = ss.spearmanr(a, b)[0]
    return out


def _both_rank_paths(monkeypatch: pytest.MonkeyPatch, f: np.ndarray, y: np.ndarray,
                     min_stocks: int, **kw: int) -> tuple[np.ndarray, np.ndarray]:
    from alphaminer.evaluation import metrics

    ft, yt = torch.tensor(f, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    monkeypatch.setattr(metrics, "JIT_RANK", True)
    fused = daily_rank_ic(ft, yt, min_stocks=min_stocks, **kw).numpy()
    monkeypatch.setattr(metrics, "JIT_RANK", False)
    ref = daily_rank_ic(ft, yt, min_stocks=min_stocks, **kw).numpy()
    return fused, ref


def test_fused_rank_ic_coarse_key_collisions_ties_and_missing(monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    """The fused pass packs a shifted (coarse) key with the stock index into 32 bits; values the
    shift merges must still be ranked exactly. Rows with a huge value range (one outlier, so
    close values share a code), runs of distinct values inside one code next to genuine ties,
    ±inf (missing), -0.0/+0.0, all-NaN days, days below min_stocks, constant days, the factor
    missing where the target is not (target re-ranked in the subset) with and without tied
    targets: equal to scipy per day and to the torch path."""
    rng = np.random.default_rng(21)
    K, T, S = 3, 14, 257  # S - 1 = 256 needs 9 index bits
    y = rng.normal(size=(T, S))
    y[::2] = np.round(y[::2] * 2)  # tied targets on even days
    f = 0.3 * y + rng.normal(size=(K, T, S))
    f[0, :, 0] = 1e30  # an outlier: the rest of each row collapses to a few codes
    f[0, :, 1:] = 1.0 + np.round(f[0, :, 1:] * 40) * 1e-6  # distinct close values + ties
    f[1, 1, :100] = 3.0  # a 100-stock tie group
    f[1, 2, :] = np.where(rng.random(S) < 0.5, -0.0, 0.0)  # -0.0 and +0.0: one tie group
    f[1, 2, :30] = rng.normal(size=30)
    f[1, 3] = 5.0  # constant day
    f[1, 4] = np.nan  # all-NaN day
    f[1, 5, :-8] = np.nan  # 8 valid stocks: below min_stocks
    f[1, 6, :50] = np.inf  # inf counts as missing
    f[1, 7, :50] = -np.inf
    f[2, :, ::3] = np.nan  # factor missing where the target is finite (re-ranked subset)
    f[2, :, 1::5] = np.round(f[2, :, 1::5])
    y[9, 8:] = np.nan  # target below min_stocks
    y[rng.random(y.shape) < 0.05] = np.nan
    f, y = f.astype(np.float32), y.astype(np.float32)
    fused, torch_path = _both_rank_paths(monkeypatch, f, y, 10)
    ref = _spearman_ref(f, y, 10)
    assert np.isfinite(ref).sum() > 25
    assert np.isnan(fused[1, 3:6]).all() and np.isnan(fused[:, 9]).all()
    np.testing.assert_allclose(fused, ref, atol=1e-9, rtol=0)
    np.testing.assert_allclose(fused, torch_path, atol=1e-12, rtol=0)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 100_000), S=st.integers(10, 70), levels=st.integers(2, 400),
       scale=st.sampled_from([1e-30, 1e-3, 1.0, 1e6, 1e30]), nan=st.floats(0.0, 0.6))
def test_fused_rank_ic_equals_scipy_on_random_ties_and_magnitudes(seed, S, levels, scale,
                                                                  nan):
    """Random rows over few or many distinct levels, of any magnitude and both signs, with
    outliers and missing values: the fused pass equals scipy's Spearman on every day."""
    rng = np.random.default_rng(seed)
    T = 6
    y = rng.integers(0, max(2, levels // 3), size=(T, S)).astype(np.float64)
    f = rng.integers(-levels, levels, size=(2, T, S)) * scale
    f[1] = f[1] * (1.0 + rng.normal(size=(T, S)) * 1e-6)  # near-equal distinct values
    f[1, :, 0] = scale * 1e8  # an outlier per row
    f[rng.random(f.shape) < nan] = np.nan
    y[rng.random(y.shape) < nan / 2] = np.nan
    f, y = f.astype(np.float32), y.astype(np.float32)
    with np.errstate(over="ignore"):
        f = np.where(np.isfinite(f), f, np.nan).astype(np.float32)
    got = daily_rank_ic(torch.tensor(f), torch.tensor(y), min_stocks=5).numpy()
    np.testing.assert_allclose(got, _spearman_ref(f, y, 5), atol=1e-9, rtol=0)


def test_serial_torch_keeps_the_worker_count_and_restores_threads():
    """Inside serial_torch torch runs one intra-op thread, the entering thread still sees the
    saved count as its workers (worker threads see 1), and the count is restored on exit, also
    when an error leaves the block."""
    import threading

    from alphaminer.evaluation.metrics import cpu_workers, serial_torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        seen = []
        with serial_torch():
            assert torch.get_num_threads() == 1 and cpu_workers() == 2
            w = threading.Thread(target=lambda: seen.append(cpu_workers()))
            w.start()
            w.join()
            with serial_torch():  # nested: unchanged
                assert cpu_workers() == 2
        assert seen == [1] and torch.get_num_threads() == 2 and cpu_workers() == 2
        with pytest.raises(RuntimeError), serial_torch():
            raise RuntimeError
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
