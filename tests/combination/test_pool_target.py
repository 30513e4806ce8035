"""Per-day target treatments (rank / winsor) for the lasso pool, and ``auto``'s variants."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from combination_data import HORIZON, SPLITS, planted_linear

from alphaminer.combination import combine
from alphaminer.combination.base import transform_target
from alphaminer.combination.lasso import LassoPoolConfig
from alphaminer.evaluation import AlphaPool
from alphaminer.parameters import CombinationParams


def _y_with_nans(seed: int = 3) -> torch.Tensor:
    g = np.random.default_rng(seed)
    y = g.standard_t(3, size=(40, 25))
    y[g.random(y.shape) < 0.1] = np.nan
    y[5] = np.nan  # an empty day
    y[7, 3:9] = 1.5  # ties
    return torch.tensor(y, dtype=torch.float32)


def test_rank_target_is_pandas_pct_rank_per_day() -> None:
    y = _y_with_nans()
    expected = pd.DataFrame(y.numpy()).rank(axis=1, method="average", pct=True).to_numpy() - 0.5
    np.testing.assert_allclose(transform_target(y, "rank").numpy(), expected, atol=1e-6,
                               equal_nan=True)


def test_winsor_target_clips_each_day_at_its_own_quantiles() -> None:
    y = _y_with_nans()
    q = 0.1
    arr = y.numpy().astype(np.float64)
    expected = np.full_like(arr, np.nan)
    for t in range(arr.shape[0]):
        ok = np.isfinite(arr[t])
        if ok.any():
            lo, hi = np.quantile(arr[t, ok], [q, 1 - q])
            expected[t, ok] = np.clip(arr[t, ok], lo, hi)
    got = transform_target(y, "winsor", q).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6, equal_nan=True)
    # per day: changing one day's label changes no other day's treated values
    y2 = y.clone()
    y2[20] = y2[20] * 50.0
    diff = ~np.isclose(transform_target(y2, "winsor", q).numpy(), got, equal_nan=True)
    assert set(np.nonzero(diff)[0]) <= {20}


def test_raw_target_is_the_label_and_bad_choices_fail() -> None:
    y = _y_with_nans()
    assert transform_target(y, "raw") is y
    with pytest.raises(ValueError, match="target must be one of"):
        LassoPoolConfig(target="log")
    with pytest.raises(ValueError, match="winsor_quantile"):
        LassoPoolConfig(target="winsor", winsor_quantile=0.5)


def test_rank_target_pool_equals_the_shared_pool_fitted_to_ranks() -> None:
    f, names, y = planted_linear()
    res = combine("lasso_pool", f, names, y, SPLITS, HORIZON,
                  {"n_trials": 0, "target": "rank"})
    t0, t1 = SPLITS["train"][0], SPLITS["train"][1] - HORIZON
    ranks = pd.DataFrame(y[t0:t1].numpy()).rank(axis=1, pct=True).to_numpy()
    pool = AlphaPool(capacity=len(names), l1=0.005,
                     target=torch.tensor(ranks, dtype=torch.float32))
    for n, v in zip(names, f):
        pool.try_add(n, v[t0:t1])
    for n, w in zip(pool.names, pool.weights.tolist()):
        assert res.model["weights"][n] == pytest.approx(w, rel=1e-4, abs=1e-6)
    assert res.model["params"]["target"] == "rank"


def test_rank_target_resists_a_few_extreme_labels() -> None:
    """One factor explains the bulk of the label; another only 3 % of huge outliers. The raw
    fit gives the outlier factor nearly half the weight; the rank fit leans on the factor that
    ranks the stocks, and ranks the test days better."""
    g = np.random.default_rng(0)
    T, S = 260, 60
    f = g.standard_normal((2, T, S))
    y = 0.3 * f[0] + g.standard_normal((T, S))
    tail = g.random((T, S)) < 0.03
    y = np.where(tail, 30.0 * np.sign(f[1]) * np.abs(g.standard_normal((T, S))), y)
    ft, yt = torch.tensor(f, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    names = ["good", "tails"]
    cfg = {"n_trials": 0, "l1": 0.0}
    raw = combine("lasso_pool", ft, names, yt, SPLITS, HORIZON, {**cfg, "target": "raw"})
    rank = combine("lasso_pool", ft, names, yt, SPLITS, HORIZON, {**cfg, "target": "rank"})
    share = {k: abs(r.model["weights"]["good"]) / sum(abs(w) for w in r.model["weights"].values())
             for k, r in (("raw", raw), ("rank", rank))}
    assert share["rank"] > 0.8 and share["raw"] < 0.6  # measured 0.88 vs 0.55
    assert rank.metrics["test_rank_ic"] > raw.metrics["test_rank_ic"]


def test_auto_compares_target_treatments_as_candidates() -> None:
    f, names, y = planted_linear()
    cands = ["lasso_pool", "lasso_pool@rank", "lasso_pool@winsor"]
    res = combine("auto", f, names, y, SPLITS, HORIZON,
                  {"candidates": cands, "configs": {"lasso_pool": {"n_trials": 0}}})
    table = res.model["auto"]["candidates"]
    assert list(table) == cands
    for name, target in zip(cands, ["raw", "rank", "winsor"]):
        alone = combine("lasso_pool", f, names, y, SPLITS, HORIZON,
                        {"n_trials": 0, "target": target})
        assert table[name]["valid_rank_ic"] == pytest.approx(alone.metrics["valid_rank_ic"])
    best = max(cands, key=lambda n: table[n]["valid_rank_ic"])
    assert res.model["auto"]["chosen"] == best
    with pytest.raises(ValueError, match="unknown auto candidates"):
        combine("auto", f, names, y, SPLITS, HORIZON, {"candidates": ["xgboost@log"]})


def test_params_accept_variants_and_use_the_base_block() -> None:
    p = CombinationParams.coerce({"model": "auto",
                                  "auto": {"candidates": ["lasso_pool", "lasso_pool@rank"]},
                                  "lasso_pool": {"capacity": 100}})
    cfg = p.combiner_config()
    assert cfg.configs["lasso_pool@rank"].capacity == 100
    assert cfg.configs["lasso_pool@rank"].target == "raw"  # the variant is applied by auto
    with pytest.raises(ValueError):
        CombinationParams.coerce({"model": "auto", "auto": {"candidates": ["lasso_pool@log"]}})
