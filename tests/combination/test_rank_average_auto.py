"""The rank-average combiner and the validation-chosen ``auto`` combiner, against numpy."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from combination_data import HORIZON, SPLITS, planted_linear
from scipy.stats import rankdata, spearmanr

from alphaminer.combination import combine
from alphaminer.parameters import CombinationParams


def _np_rank_centred(x: np.ndarray) -> np.ndarray:
    out = np.full_like(x, np.nan, dtype=np.float64)
    for t in range(x.shape[0]):
        ok = np.isfinite(x[t])
        if ok.any():
            out[t, ok] = rankdata(x[t, ok]) / ok.sum() - 0.5
    return out


def _np_valid_rank_ic(f: np.ndarray, y: np.ndarray, rows: range) -> float:
    vals = []
    for t in rows:
        ok = np.isfinite(f[t]) & np.isfinite(y[t])
        if ok.sum() >= 10:
            vals.append(spearmanr(f[t, ok], y[t, ok])[0])
    return float(np.mean(vals))


def test_rank_average_equals_numpy_signed_mean_of_ranks():
    f, names, y = planted_linear()
    res = combine("rank_average", f, names, y, SPLITS, HORIZON, {"top_k": 3, "n_trials": 0})
    v0, v1 = SPLITS["valid"][0], SPLITS["valid"][1] - HORIZON  # valid fit rows
    fn, yn = f.numpy().astype(np.float64), y.numpy().astype(np.float64)
    ric = np.array([_np_valid_rank_ic(fn[k], yn, range(v0, v1)) for k in range(len(names))])
    top = list(np.argsort(-np.abs(ric), kind="stable")[:3])
    assert sorted(top) == [0, 1, 2]  # the three planted factors, by construction
    assert res.selected == [names[k] for k in top]
    ranks = np.stack([np.sign(ric[k]) * _np_rank_centred(fn[k]) for k in top])
    expected = np.nanmean(ranks, axis=0)
    np.testing.assert_allclose(res.signal.numpy(), expected, atol=1e-6, equal_nan=True)
    assert res.model["weights"][names[1]] == pytest.approx(-1 / 3)  # β₁ < 0 → flipped
    assert res.metrics["test_rank_ic"] > 0.2


@pytest.mark.parametrize(("beta", "want_k"), [
    (np.array([0.6, 0.0, 0.0, 0.0, 0.0, 0.0]), 1),   # one real factor: averaging dilutes it
    (np.array([0.4, -0.4, 0.4, 0.0, 0.0, 0.0]), 3),  # three equal ones: their average wins
])
def test_k_grid_keeps_the_k_with_the_best_validation_rank_ic(beta, want_k):
    """Factors picked and signed on train, k chosen on the validation RankIC, all in numpy."""
    f, names, y = planted_linear(beta=beta)
    grid = (1, 2, 3, 6)
    res = combine("rank_average", f, names, y, SPLITS, HORIZON,
                  {"k_grid": grid, "select_on": "train", "n_trials": 0})
    fn, yn = f.numpy().astype(np.float64), y.numpy().astype(np.float64)
    train = range(SPLITS["train"][0], SPLITS["train"][1] - HORIZON)
    valid = range(SPLITS["valid"][0], SPLITS["valid"][1] - HORIZON)
    ric = np.array([_np_valid_rank_ic(fn[k], yn, train) for k in range(len(names))])
    order = list(np.argsort(-np.abs(ric), kind="stable"))
    ranks = np.stack([np.sign(ric[k]) * _np_rank_centred(fn[k]) for k in order])
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN cells stay NaN
        averages = {k: np.nanmean(ranks[:k], axis=0) for k in grid}
    valid_ric = {k: _np_valid_rank_ic(averages[k], yn, valid) for k in grid}
    best = max(grid, key=lambda k: (valid_ric[k], -k))
    assert best == want_k, valid_ric
    assert res.params["top_k"] == best and res.selected == [names[k] for k in order[:best]]
    np.testing.assert_allclose(res.signal.numpy(), averages[best], atol=1e-6, equal_nan=True)
    for k in grid:  # float32 sums of ranks break a few ties differently from float64
        assert res.model["k_grid_valid_rank_ic"][str(k)] == pytest.approx(valid_ric[k], abs=1e-3)
    with pytest.raises(ValueError, match="n_trials"):
        combine("rank_average", f, names, y, SPLITS, HORIZON, {"k_grid": grid, "n_trials": 3})


def test_auto_keeps_the_best_candidate_on_validation():
    f, names, y = planted_linear()
    cfgs = {"lasso_pool": {"n_trials": 0}, "rank_average": {"top_k": 1, "n_trials": 0}}
    res = combine("auto", f, names, y, SPLITS, HORIZON,
                  {"candidates": ["rank_average", "lasso_pool"], "configs": cfgs})
    table = res.model["auto"]["candidates"]
    alone = {n: combine(n, f, names, y, SPLITS, HORIZON, cfgs[n]) for n in cfgs}
    for n, r in alone.items():
        assert table[n]["valid_rank_ic"] == pytest.approx(r.metrics["valid_rank_ic"])
    best = max(alone, key=lambda n: alone[n].metrics["valid_rank_ic"])
    assert res.model["auto"]["chosen"] == best
    torch.testing.assert_close(res.signal, alone[best].signal, equal_nan=True)


def test_auto_records_a_failing_candidate_and_goes_on(monkeypatch):
    from dataclasses import replace

    from alphaminer.combination import registry

    def broken(inputs, cfg, state):
        raise ValueError("broken on purpose")

    monkeypatch.setitem(registry.METHODS, "rank_average",
                        replace(registry.METHODS["rank_average"], fit=broken))
    f, names, y = planted_linear()
    res = combine("auto", f, names, y, SPLITS, HORIZON,
                  {"candidates": ["rank_average", "lasso_pool"],
                   "configs": {"lasso_pool": {"n_trials": 0}}})
    assert res.model["auto"]["chosen"] == "lasso_pool"
    assert "broken on purpose" in res.model["auto"]["candidates"]["rank_average"]["error"]
    monkeypatch.setitem(registry.METHODS, "lasso_pool",
                        replace(registry.METHODS["lasso_pool"], fit=broken))
    with pytest.raises(ValueError, match="every auto candidate failed"):
        combine("auto", f, names, y, SPLITS, HORIZON,
                {"candidates": ["rank_average", "lasso_pool"]})
    with pytest.raises(ValueError, match="unknown auto candidates"):
        combine("auto", f, names, y, SPLITS, HORIZON, {"candidates": ["nope"]})


def test_params_build_auto_from_the_sibling_blocks():
    p = CombinationParams.coerce({"model": "auto",
                                  "auto": {"candidates": ["lasso_pool", "rank_average"]},
                                  "rank_average": {"top_k": 7}, "lasso_pool": {"capacity": 100}})
    cfg = p.combiner_config()
    assert cfg.candidates == ("lasso_pool", "rank_average")
    assert cfg.configs["rank_average"].top_k == 7 and cfg.configs["lasso_pool"].capacity == 100
    with pytest.raises(ValueError):
        CombinationParams.coerce({"model": "auto", "auto": {"candidates": ["bogus"]}})
