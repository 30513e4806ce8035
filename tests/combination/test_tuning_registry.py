"""combine(): optuna tuning (trials frame, best params, determinism), config and split handling."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from combination_data import HORIZON, SPLITS, planted_linear

from alphaminer.combination import METHODS, combine, method_config
from alphaminer.combination.base import segment_splits
from alphaminer.data.splits import make_splits

FAST = {
    "lasso_pool": {"n_trials": 3, "progress": False},
    "dynamic_linear": {"n_trials": 3, "progress": False, "window_range": (10, 40)},
    "xgboost": {"n_trials": 2, "progress": False, "top_k": 3, "n_estimators_range": (10, 30),
                "max_depth_range": (2, 3), "early_stopping_rounds": 5},
    "lightgbm": {"n_trials": 2, "progress": False, "top_k": 3, "n_estimators_range": (10, 30),
                 "max_depth_range": (2, 3), "num_leaves_range": (3, 7),
                 "early_stopping_rounds": 5},
    "rank_average": {"n_trials": 3, "progress": False, "max_k": 6},
}


@pytest.fixture(scope="module")
def data():
    return planted_linear(S=30)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_optuna_returns_trials_and_best_params_deterministically(data, method):
    f, names, y = data
    cfg = FAST[method]
    a = combine(method, f, names, y, SPLITS, HORIZON, cfg)
    b = combine(method, f, names, y, SPLITS, HORIZON, cfg)
    assert isinstance(a.study, pd.DataFrame) and len(a.study) == cfg["n_trials"]
    assert (a.study["state"] == "COMPLETE").all()
    best_row = a.study.loc[a.study["value"].idxmax()]
    best = a.model["tuning"]["best_params"]
    for k, v in best.items():
        assert a.study.loc[best_row.name, f"params_{k}"] == v
        assert a.params[k] == v  # the returned model uses the best parameters
    # the objective is the returned signal's validation IC
    assert a.metrics["valid_ic"] == pytest.approx(a.model["tuning"]["best_value"])
    assert a.metrics["valid_ic"] == pytest.approx(best_row["value"])
    pd.testing.assert_frame_equal(
        a.study.drop(columns=["datetime_start", "datetime_complete", "duration"]),
        b.study.drop(columns=["datetime_start", "datetime_complete", "duration"]))
    torch.testing.assert_close(a.signal, b.signal, equal_nan=True, rtol=0, atol=0)
    json.dumps(a.model)  # JSON-serialisable


def test_different_seed_samples_different_trials(data):
    f, names, y = data
    cfg = dict(FAST["lasso_pool"])
    a = combine("lasso_pool", f, names, y, SPLITS, HORIZON, {**cfg, "seed": 0})
    b = combine("lasso_pool", f, names, y, SPLITS, HORIZON, {**cfg, "seed": 1})
    assert not np.allclose(a.study["params_l1"], b.study["params_l1"])


def test_splits_objects_and_errors(data):
    f, names, y = data
    T = f.shape[1]
    dates = pd.bdate_range("2020-01-01", periods=T)
    sp = make_splits(dates, {"fractions": (0.6, 0.2, 0.2), "horizon": HORIZON})
    r1 = segment_splits(sp, T)
    r2 = segment_splits(sp.to_dict(), T)
    assert r1.ranges == r2.ranges == sp.ranges
    res = combine("lasso_pool", f, names, y, sp, HORIZON, {"n_trials": 0})
    assert res.model["splits"]["train"] == list(sp.ranges["train"])
    assert segment_splits({"train": slice(0, 5), "valid": range(5, 9), "test": [9, 12]},
                          20).test == (9, 12)
    with pytest.raises(KeyError, match="valid"):
        segment_splits({"train": (0, 5), "test": (6, 9)}, 20)
    with pytest.raises(ValueError, match="overlap"):
        segment_splits({"train": (0, 10), "valid": (5, 12), "test": (12, 20)}, 20)
    with pytest.raises(ValueError, match="ordered"):
        segment_splits({"train": (12, 20), "valid": (0, 5), "test": (5, 12)}, 20)
    with pytest.raises(ValueError, match="outside"):
        segment_splits({"train": (0, 10), "valid": (10, 12), "test": (12, 30)}, 20)
    with pytest.raises(KeyError, match="unknown combination method"):
        combine("ridge", f, names, y, SPLITS, HORIZON)
    with pytest.raises(ValueError, match="unknown LassoPoolConfig key"):
        combine("lasso_pool", f, names, y, SPLITS, HORIZON, {"lambda": 0.1})
    with pytest.raises(ValueError, match="names has 2 entries"):
        combine("lasso_pool", f, names[:2], y, SPLITS, HORIZON)
    with pytest.raises(ValueError, match=r"y has shape"):
        combine("lasso_pool", f, names, y[:-1], SPLITS, HORIZON)
    assert method_config("xgboost", {"top_k": 7}).top_k == 7
