"""xgboost / lightgbm: train rows only from train, deterministic, native model dumps, recovery."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest
import torch
import xgboost as xgb
from combination_data import HORIZON, SPLITS, np_daily_ic, np_mean_ic, planted_linear

from alphaminer.combination import GBMConfig, combine
from alphaminer.combination.base import CombinationInputs
from alphaminer.combination.gbm import GBMData

METHODS = ["xgboost", "lightgbm"]


@pytest.fixture(scope="module")
def planted():
    return planted_linear(S=40)


def _cfg(**kw):
    base = {"n_trials": 0, "n_estimators": 40, "top_k": 4, "learning_rate": 0.2,
            "max_depth": 3, "num_leaves": 7, "early_stopping_rounds": 10}
    return GBMConfig(**{**base, **kw})


def test_rows_come_only_from_their_segment_fit_rows(planted):
    f, names, y = planted
    inputs = CombinationInputs.build(f, names, y, SPLITS, HORIZON)
    data = GBMData.build(inputs, 4, "zscore")
    S = inputs.S
    tr_days = data.train_rows // S
    va_days = data.valid_rows // S
    assert tr_days.min() >= SPLITS["train"][0]
    assert (tr_days + HORIZON < SPLITS["train"][1]).all()  # label ends inside train
    assert tr_days.max() == SPLITS["train"][1] - HORIZON - 1
    assert va_days.min() >= SPLITS["valid"][0]
    assert (va_days + HORIZON < SPLITS["valid"][1]).all()
    assert np.isfinite(data.target[data.train_rows]).all()


def test_top_k_is_largest_abs_valid_ic(planted):
    f, names, y = planted
    inputs = CombinationInputs.build(f, names, y, SPLITS, HORIZON)
    v0, v1 = SPLITS["valid"][0], SPLITS["valid"][1] - HORIZON
    ref = [abs(np.nanmean(np_daily_ic(f[k, v0:v1].numpy(), y[v0:v1].numpy())))
           for k in range(len(names))]
    expect = list(np.argsort(-np.array(ref), kind="stable")[:3])
    assert inputs.top_k_by_valid_ic(3) == expect


@pytest.mark.parametrize("method", METHODS)
def test_recovers_planted_signal(planted, method):
    f, names, y = planted
    res = combine(method, f, names, y, SPLITS, HORIZON, _cfg())
    assert res.metrics["test_ic"] > 0.3
    t0, t1 = SPLITS["test"]
    assert np_mean_ic(res.signal, y, (t0, t1 - HORIZON)) == pytest.approx(
        res.metrics["test_ic"], abs=1e-3)
    assert set(res.selected) == {names[0], names[1], names[2], res.selected[3]}
    assert torch.isfinite(res.signal).float().mean() > 0.9  # every day is predicted


@pytest.mark.parametrize("method", METHODS)
def test_deterministic_and_native_model_round_trip(planted, method):
    f, names, y = planted
    cfg = _cfg(subsample=0.7, colsample_bytree=0.8)
    a = combine(method, f, names, y, SPLITS, HORIZON, cfg)
    b = combine(method, f, names, y, SPLITS, HORIZON, cfg)
    torch.testing.assert_close(a.signal, b.signal, equal_nan=True, rtol=0, atol=0)
    key = "booster_json" if method == "xgboost" else "booster_text"
    assert a.model[key] == b.model[key]
    # a different seed gives a different (subsampled) model: the seed is really used
    c = combine(method, f, names, y, SPLITS, HORIZON, _cfg(subsample=0.7, seed=5))
    assert c.model[key] != a.model[key]
    # reload the native dump and predict the test day from its z-scored features
    inputs = CombinationInputs.build(f, names, y, SPLITS, HORIZON)
    idx = [names.index(n) for n in a.selected]
    t = SPLITS["test"][0] + 3
    X = inputs.z[idx][:, t].T.numpy()
    if method == "xgboost":
        booster = xgb.Booster()
        booster.load_model(bytearray(a.model[key].encode()))
        pred = booster.predict(xgb.DMatrix(X, missing=np.nan,
                                           feature_names=a.model["feature_ids"]))
    else:
        pred = lgb.Booster(model_str=a.model[key]).predict(X)
    ok = np.isfinite(X).any(axis=1)
    np.testing.assert_allclose(a.signal[t].numpy()[ok], pred[ok], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_labels_outside_train_fit_rows_do_not_change_the_booster(planted, method):
    f, names, y = planted
    cfg = _cfg()
    base = combine(method, f, names, y, SPLITS, HORIZON, cfg)
    key = "booster_json" if method == "xgboost" else "booster_text"
    # scramble labels in the purge tail of train (t + h >= train end) and in test, and the test
    # factor values: nothing about the fit may change, nor the signal before test
    y2, f2 = y.clone(), f.clone()
    tail = slice(SPLITS["train"][1] - HORIZON, SPLITS["valid"][0])
    y2[tail] = torch.randn_like(y2[tail]) * 10
    y2[SPLITS["test"][0]:] = torch.randn_like(y2[SPLITS["test"][0]:])
    f2[:, SPLITS["test"][0]:] = torch.randn_like(f2[:, SPLITS["test"][0]:])
    res = combine(method, f2, names, y2, SPLITS, HORIZON, cfg)
    assert res.model[key] == base.model[key]
    s0 = SPLITS["test"][0]
    torch.testing.assert_close(res.signal[:s0], base.signal[:s0], equal_nan=True)
    # ...whereas a change to labels the fit may use does change the booster
    y3 = y.clone()
    y3[20:40] = torch.randn_like(y3[20:40])
    assert combine(method, f, names, y3, SPLITS, HORIZON, cfg).model[key] != base.model[key]


def test_config_validation():
    with pytest.raises(ValueError, match="top_k"):
        GBMConfig(top_k=0)
    with pytest.raises(ValueError, match="target"):
        GBMConfig(target="ranks")
