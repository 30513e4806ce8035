"""Gradient-boosted trees (XGBoost, LightGBM) on the top-k alphas.

Features are the per-day cross-sectional z-scores of the ``top_k`` factors with the largest
|validation IC| (NaN kept: both libraries route missing values). The target is the label,
per-day z-scored by default (``target``), which removes the day-level return scale so the trees
learn the cross-section rather than the market's mood. The fit uses train *fit rows* only (days
``t`` with ``t + horizon < train end``); early stopping watches valid fit rows; the booster then
predicts every day. Models are returned as the libraries' native JSON/text dumps (no pickle).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from alphaminer.combination.base import (
    TARGETS,
    CombinationInputs,
    CombinationResult,
    jsonable,
)


@dataclass
class GBMConfig:
    """Shared configuration of the ``xgboost`` and ``lightgbm`` combiners.

    Attributes:
        top_k: number of factors (largest |validation IC|) used as features.
        target: ``zscore`` | ``rank`` | ``raw`` per-day transform of the label.
        n_estimators: most boosting rounds (early stopping usually ends sooner).
        max_depth: tree depth (LightGBM: -1 for unlimited is allowed).
        num_leaves: LightGBM leaves per tree (ignored by XGBoost).
        learning_rate, subsample, colsample_bytree, min_child_weight, reg_lambda: as in the libs
            (``min_child_weight`` maps to LightGBM's ``min_sum_hessian_in_leaf``).
        early_stopping_rounds: rounds without validation improvement before stopping.
        n_jobs: threads; seed: library seed (results are deterministic for a fixed seed).
        n_trials: optuna trials on the validation IC (0 → use the values above).
        *_range: optuna search space.
        progress: show a tqdm bar over optuna trials.
    """

    top_k: int = 20
    target: str = "zscore"
    n_estimators: int = 300
    max_depth: int = 4
    num_leaves: int = 15
    learning_rate: float = 0.05
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    min_child_weight: float = 1.0
    reg_lambda: float = 1.0
    early_stopping_rounds: int = 30
    n_jobs: int = 2
    seed: int = 0
    n_trials: int = 10
    max_depth_range: tuple[int, int] = (2, 8)
    num_leaves_range: tuple[int, int] = (7, 63)
    learning_rate_range: tuple[float, float] = (0.01, 0.3)
    n_estimators_range: tuple[int, int] = (50, 500)
    subsample_range: tuple[float, float] = (0.5, 1.0)
    progress: bool = True

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {self.target!r}")
        if self.n_estimators < 1:
            raise ValueError(f"n_estimators must be >= 1, got {self.n_estimators}")
        if not 0 < self.subsample <= 1 or not 0 < self.colsample_bytree <= 1:
            raise ValueError("subsample and colsample_bytree must be in (0, 1]")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")


@dataclass
class GBMData:
    """Row-major design matrices for one (inputs, top_k, target) choice, reused across trials."""

    idx: list[int]
    X: np.ndarray  # [T * S, k] float32, NaN kept
    target: np.ndarray  # [T * S] float32
    train_rows: np.ndarray  # flat row indices
    valid_rows: np.ndarray
    predict_rows: np.ndarray  # rows with at least one finite feature

    @classmethod
    def build(cls, inputs: CombinationInputs, top_k: int, target: str) -> GBMData:
        idx = inputs.top_k_by_valid_ic(top_k)
        z = inputs.z[idx]  # [k, T, S]
        T, S = inputs.T, inputs.S
        X = z.permute(1, 2, 0).reshape(T * S, len(idx)).cpu().numpy().astype(np.float32)
        tgt = inputs.target(target).reshape(-1).cpu().numpy().astype(np.float32)
        has_x = np.isfinite(X).any(axis=1)
        usable = has_x & np.isfinite(tgt)
        day = np.repeat(np.arange(T), S)

        def rows(seg: str) -> np.ndarray:
            i0, i1 = inputs.fit_rows(seg)
            return np.flatnonzero(usable & (day >= i0) & (day < i1))

        train_rows, valid_rows = rows("train"), rows("valid")
        if len(train_rows) == 0:
            raise ValueError(
                f"no train rows: train segment {inputs.splits.train} with horizon "
                f"{inputs.horizon} leaves no day with a finite label and a finite feature"
            )
        if len(valid_rows) == 0:
            raise ValueError(
                f"no valid rows for early stopping: valid segment {inputs.splits.valid} with "
                f"horizon {inputs.horizon}"
            )
        return cls(idx, X, tgt, train_rows, valid_rows, np.flatnonzero(has_x))


def _to_signal(pred_rows: np.ndarray, pred: np.ndarray, T: int, S: int) -> torch.Tensor:
    out = np.full(T * S, np.nan, dtype=np.float32)
    out[pred_rows] = pred.astype(np.float32)
    return torch.from_numpy(out.reshape(T, S))


def _params_of(config: GBMConfig, keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: getattr(config, k) for k in keys}


_XGB_KEYS = ("top_k", "target", "n_estimators", "max_depth", "learning_rate", "subsample",
             "colsample_bytree", "min_child_weight", "reg_lambda", "early_stopping_rounds", "seed")
_LGB_KEYS = ("top_k", "target", "n_estimators", "max_depth", "num_leaves", "learning_rate",
             "subsample", "colsample_bytree", "min_child_weight", "reg_lambda",
             "early_stopping_rounds", "seed")


def _result(method: str, inputs: CombinationInputs, config: GBMConfig, data: GBMData,
            pred: np.ndarray, best: int, dump: dict[str, str]) -> CombinationResult:
    """The one assembly of a tree model's result: signal, JSON model (with ``dump``), metrics."""
    names = [inputs.names[i] for i in data.idx]
    signal = _to_signal(data.predict_rows, pred, inputs.T, inputs.S)
    used = _params_of(config, _XGB_KEYS if method == "xgboost" else _LGB_KEYS)
    model = {
        "method": method,
        "features": names,
        "feature_ids": [f"f{j}" for j in range(len(names))],
        "best_iteration": best,
        "params": jsonable(used),
        **dump,
        "config": jsonable(asdict(config)),
    }
    return CombinationResult(
        method=method,
        signal=signal,
        model=model,
        metrics=inputs.metrics(signal),
        params={**used, "best_iteration": best},
        selected=names,
    )


def fit_xgboost(
    inputs: CombinationInputs, config: GBMConfig, data: GBMData | None = None
) -> CombinationResult:
    """Fit XGBoost (hist) on train fit rows with early stopping on valid fit rows."""
    import xgboost as xgb

    data = data if data is not None else GBMData.build(inputs, config.top_k, config.target)
    names = [inputs.names[i] for i in data.idx]
    feat = [f"f{j}" for j in range(len(names))]
    dtrain = xgb.DMatrix(data.X[data.train_rows], label=data.target[data.train_rows],
                         missing=np.nan, feature_names=feat)
    dvalid = xgb.DMatrix(data.X[data.valid_rows], label=data.target[data.valid_rows],
                         missing=np.nan, feature_names=feat)
    params = {
        "objective": "reg:squarederror",
        "tree_method": "hist",
        "max_depth": int(config.max_depth),
        "eta": float(config.learning_rate),
        "subsample": float(config.subsample),
        "colsample_bytree": float(config.colsample_bytree),
        "min_child_weight": float(config.min_child_weight),
        "lambda": float(config.reg_lambda),
        "nthread": int(config.n_jobs),
        "seed": int(config.seed),
        "eval_metric": "rmse",
        "verbosity": 0,
    }
    booster = xgb.train(
        params,
        dtrain,
        num_boost_round=int(config.n_estimators),
        evals=[(dvalid, "valid")],
        early_stopping_rounds=int(config.early_stopping_rounds),
        verbose_eval=False,
    )
    best = int(booster.best_iteration) + 1
    booster = booster[:best]  # keep the early-stopped trees only: the dump reproduces the signal
    dpred = xgb.DMatrix(data.X[data.predict_rows], missing=np.nan, feature_names=feat)
    pred = booster.predict(dpred)
    return _result("xgboost", inputs, config, data, np.asarray(pred), best,
                   {"booster_json": booster.save_raw(raw_format="json").decode()})


def fit_lightgbm(
    inputs: CombinationInputs, config: GBMConfig, data: GBMData | None = None
) -> CombinationResult:
    """Fit LightGBM (deterministic, row-wise) on train fit rows, early stopping on valid."""
    import lightgbm as lgb

    data = data if data is not None else GBMData.build(inputs, config.top_k, config.target)
    names = [inputs.names[i] for i in data.idx]
    feat = [f"f{j}" for j in range(len(names))]
    params = {
        "objective": "regression",
        "num_leaves": int(config.num_leaves),
        "max_depth": int(config.max_depth),
        "learning_rate": float(config.learning_rate),
        "bagging_fraction": float(config.subsample),
        "bagging_freq": 1 if config.subsample < 1 else 0,
        "feature_fraction": float(config.colsample_bytree),
        "min_sum_hessian_in_leaf": float(config.min_child_weight),
        "lambda_l2": float(config.reg_lambda),
        "num_threads": int(config.n_jobs),
        "seed": int(config.seed),
        "deterministic": True,
        "force_row_wise": True,
        "verbosity": -1,
        "metric": "l2",
    }
    dtrain = lgb.Dataset(data.X[data.train_rows], label=data.target[data.train_rows],
                         feature_name=feat, free_raw_data=True)
    dvalid = lgb.Dataset(data.X[data.valid_rows], label=data.target[data.valid_rows],
                         reference=dtrain, feature_name=feat)
    booster = lgb.train(
        params,
        dtrain,
        num_boost_round=int(config.n_estimators),
        valid_sets=[dvalid],
        valid_names=["valid"],
        callbacks=[lgb.early_stopping(int(config.early_stopping_rounds), verbose=False)],
    )
    best = booster.best_iteration if booster.best_iteration > 0 else booster.current_iteration()
    best = int(best)
    pred = booster.predict(data.X[data.predict_rows], num_iteration=best)
    return _result("lightgbm", inputs, config, data, np.asarray(pred), best,
                   {"booster_text": booster.model_to_string(num_iteration=best)})


def suggest_gbm(trial: Any, config: GBMConfig, method: str) -> dict[str, Any]:
    """Optuna search space (depth, learning rate, rounds, leaves for LightGBM, subsample)."""
    out: dict[str, Any] = {
        "max_depth": trial.suggest_int("max_depth", *config.max_depth_range),
        "learning_rate": trial.suggest_float("learning_rate", *config.learning_rate_range,
                                             log=True),
        "n_estimators": trial.suggest_int("n_estimators", *config.n_estimators_range),
        "subsample": trial.suggest_float("subsample", *config.subsample_range),
    }
    if method == "lightgbm":
        out["num_leaves"] = trial.suggest_int("num_leaves", *config.num_leaves_range)
    return out
