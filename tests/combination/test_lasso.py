"""lasso_pool: equals the shared AlphaPool, matches sklearn's Lasso, recovers a planted signal."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from combination_data import BETA, HORIZON, SPLITS, np_mean_ic
from sklearn.linear_model import Lasso

from alphaminer.combination import LassoPoolConfig, combine
from alphaminer.evaluation import AlphaPool


def _cfg(**kw):
    return LassoPoolConfig(n_trials=0, **kw)


def test_equals_evaluation_pool(planted):
    f, names, y = planted
    res = combine("lasso_pool", f, names, y, SPLITS, HORIZON, _cfg(l1=0.005))
    t0, t1 = SPLITS["train"][0], SPLITS["train"][1] - HORIZON
    pool = AlphaPool(capacity=len(names), l1=0.005, target=y[t0:t1])
    for n, v in zip(names, f):
        pool.try_add(n, v[t0:t1])
    assert res.model["weights"] == dict(zip(pool.names, pool.weights.tolist()))
    expected = pool.combined([f[names.index(n)] for n in pool.names])
    has_x = torch.isfinite(f).any(dim=0)
    torch.testing.assert_close(res.signal[has_x], expected[has_x])
    assert torch.isnan(res.signal[~has_x]).all()
    assert res.model["pool"]["members"][0]["name"] == pool.names[0]


def _zscore_np(a):
    return (a - np.nanmean(a, -1, keepdims=True)) / np.nanstd(a, -1, ddof=1, keepdims=True)


def test_weights_match_sklearn_lasso(planted):
    f, names, y = planted
    l1 = 0.01
    res = combine("lasso_pool", f, names, y, SPLITS, HORIZON, _cfg(l1=l1))
    t0, t1 = SPLITS["train"][0], SPLITS["train"][1] - HORIZON
    fn = f.numpy()[:, t0:t1].astype(np.float64)
    yn = y.numpy()[t0:t1].astype(np.float64)
    cells = np.isfinite(yn)
    fn = np.where(cells, fn, np.nan)
    X = np.nan_to_num(_zscore_np(fn))[:, cells].T  # rows = (day, stock) sample cells
    Y = _zscore_np(yn)[cells]
    # sklearn: (1 / 2n)||y - Xw||² + α||w||₁  ==  ½ (mean residual² + 2α||w||₁)  → α = λ / 2
    ref = Lasso(alpha=l1 / 2, fit_intercept=False, tol=1e-10, max_iter=100_000).fit(X, Y).coef_
    got = np.array([res.model["weights"][n] for n in names])
    np.testing.assert_allclose(got, ref, atol=2e-5)


def test_recovers_planted_signal_with_right_signs(planted):
    f, names, y = planted
    res = combine("lasso_pool", f, names, y, SPLITS, HORIZON, _cfg())
    assert res.metrics["test_ic"] > 0.3
    assert np_mean_ic(res.signal, y, (SPLITS["test"][0], SPLITS["test"][1] - HORIZON)) == \
        pytest.approx(res.metrics["test_ic"], abs=1e-3)
    for k in np.flatnonzero(BETA):
        assert np.sign(res.model["weights"][names[k]]) == np.sign(BETA[k])
    assert set(res.selected) >= {names[k] for k in np.flatnonzero(BETA)}


def test_labels_after_train_fit_rows_do_not_change_the_model(planted):
    f, names, y = planted
    base = combine("lasso_pool", f, names, y, SPLITS, HORIZON, _cfg())
    y2 = y.clone()
    y2[SPLITS["train"][1] - HORIZON:] = torch.randn_like(y2[SPLITS["train"][1] - HORIZON:])
    f2 = f.clone()
    f2[:, SPLITS["test"][0]:] = torch.randn_like(f2[:, SPLITS["test"][0]:])
    res = combine("lasso_pool", f2, names, y2, SPLITS, HORIZON, _cfg())
    assert res.model["weights"] == base.model["weights"]
    s0 = SPLITS["test"][0]
    torch.testing.assert_close(res.signal[:s0], base.signal[:s0], equal_nan=True)
    # a planted label change inside the train fit rows does change it (the check can fail)
    y3 = y.clone()
    y3[10:20] = -y3[10:20]
    assert combine("lasso_pool", f, names, y3, SPLITS, HORIZON, _cfg()).model["weights"] != \
        base.model["weights"]


def test_model_is_json(planted):
    import json

    f, names, y = planted
    res = combine("lasso_pool", f, names, y, SPLITS, HORIZON, _cfg())
    back = json.loads(res.model_json())
    assert back["pool"]["format"] == "alphaminer.alpha_pool"
    restored = AlphaPool.from_dict(back["pool"])
    assert restored.names == list(res.model["weights"])
    assert all(isinstance(v, float) for v in res.metrics.values())
    assert set(res.metrics) >= {f"{s}_{k}" for s in ("train", "valid", "test")
                                for k in ("ic", "rank_ic", "icir", "rank_icir", "days")}
