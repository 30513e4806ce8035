"""XGBoost and LightGBM baselines on the flattened 60-day raw-feature windows (AlphaFormer
Table 11).

Samples, normalisation (each feature divided by its value on day ``t``, minus 1), the per-day
z-scored target, fit rows and the day stride are those of :mod:`alphaminer.neural.baselines`;
here a window ``[window, F]`` is flattened into ``window·F`` columns named ``<feature>_<lag>``
(lag 0 = day ``t``). Early stopping watches the valid fit rows' squared error (the libraries'
built-in), the model keeps the early-stopped rounds and predicts every day. Boosters come back
as the libraries' native JSON/text dumps (no pickle), as in :mod:`alphaminer.combination.gbm`.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from alphaminer.combination.base import jsonable
from alphaminer.data.splits import Splits
from alphaminer.neural.baselines import (
    BaselineResult,
    SampleSet,
    WindowConfig,
    Windows,
    fit_samples,
    mean_ic,
    predict_windows,
    segment_ics,
)
from alphaminer.panel import Panel

log = logging.getLogger(__name__)

TREE_KINDS: tuple[str, ...] = ("xgb", "lgbm")


@dataclass
class TreeConfig:
    """Tree baseline hyper-parameters (defaults: AlphaFormer Table 11).

    Attributes:
        kind: ``xgb`` | ``lgbm``.
        n_estimators: most boosting rounds (Table 11: 1000 for XGBoost).
        max_depth, learning_rate: both libraries.
        num_leaves: LightGBM only (Table 11: 210).
        subsample: row fraction per round (XGBoost ``subsample``, LightGBM ``bagging_fraction``).
        bagging_freq: LightGBM bagging frequency (Table 11: 5).
        colsample_bytree: column fraction (XGBoost ``colsample_bytree``, LightGBM
            ``feature_fraction``).
        early_stopping_rounds: rounds without valid improvement before stopping.
        n_jobs: threads; seed: library seed (deterministic for a fixed seed).
    """

    kind: str = "xgb"
    n_estimators: int = 1000
    max_depth: int = 8
    learning_rate: float = 0.05
    num_leaves: int = 210
    subsample: float = 0.9
    bagging_freq: int = 5
    colsample_bytree: float = 0.9
    early_stopping_rounds: int = 50
    n_jobs: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in TREE_KINDS:
            raise ValueError(f"kind must be one of {TREE_KINDS}, got {self.kind!r}")
        if self.n_estimators < 1 or self.early_stopping_rounds < 1:
            raise ValueError("n_estimators and early_stopping_rounds must be >= 1")
        if not 0 < self.subsample <= 1 or not 0 < self.colsample_bytree <= 1:
            raise ValueError("subsample and colsample_bytree must be in (0, 1]")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")


def feature_names(windows: Windows) -> list[str]:
    """Column names of a flattened window, ``<feature>_<lag>`` in the row-major order of
    ``x.reshape(N, window * F)``."""
    W = windows.config.window
    return [f"{f}_{W - 1 - k}" for k in range(W) for f in windows.features]


def _flat(x: torch.Tensor) -> np.ndarray:
    return x.reshape(len(x), -1).numpy().astype(np.float32, copy=False)


def _fit_xgb(train: SampleSet, valid: SampleSet, names: list[str], cfg: TreeConfig
             ) -> tuple[Any, int, dict[str, str]]:
    import xgboost as xgb

    dtrain = xgb.DMatrix(_flat(train.x), label=train.y.numpy(), feature_names=names)
    dvalid = xgb.DMatrix(_flat(valid.x), label=valid.y.numpy(), feature_names=names)
    params = {"objective": "reg:squarederror", "tree_method": "hist",
              "max_depth": int(cfg.max_depth), "eta": float(cfg.learning_rate),
              "subsample": float(cfg.subsample), "colsample_bytree": float(cfg.colsample_bytree),
              "nthread": int(cfg.n_jobs), "seed": int(cfg.seed), "eval_metric": "rmse",
              "verbosity": 0}
    booster = xgb.train(params, dtrain, num_boost_round=int(cfg.n_estimators),
                        evals=[(dvalid, "valid")],
                        early_stopping_rounds=int(cfg.early_stopping_rounds), verbose_eval=False)
    best = int(booster.best_iteration) + 1
    booster = booster[:best]  # the dump reproduces the signal

    def score(x: torch.Tensor) -> np.ndarray:
        return booster.predict(xgb.DMatrix(_flat(x), feature_names=names))

    return score, best, {"booster_json": booster.save_raw(raw_format="json").decode()}


def _fit_lgbm(train: SampleSet, valid: SampleSet, names: list[str], cfg: TreeConfig
              ) -> tuple[Any, int, dict[str, str]]:
    import lightgbm as lgb

    params = {"objective": "regression", "num_leaves": int(cfg.num_leaves),
              "max_depth": int(cfg.max_depth), "learning_rate": float(cfg.learning_rate),
              "bagging_fraction": float(cfg.subsample),
              "bagging_freq": int(cfg.bagging_freq) if cfg.subsample < 1 else 0,
              "feature_fraction": float(cfg.colsample_bytree), "num_threads": int(cfg.n_jobs),
              "seed": int(cfg.seed), "deterministic": True, "force_row_wise": True,
              "verbosity": -1, "metric": "l2"}
    dtrain = lgb.Dataset(_flat(train.x), label=train.y.numpy(), feature_name=names,
                         free_raw_data=True)
    dvalid = lgb.Dataset(_flat(valid.x), label=valid.y.numpy(), reference=dtrain,
                         feature_name=names)
    booster = lgb.train(params, dtrain, num_boost_round=int(cfg.n_estimators),
                        valid_sets=[dvalid], valid_names=["valid"],
                        callbacks=[lgb.early_stopping(int(cfg.early_stopping_rounds),
                                                      verbose=False)])
    best = int(booster.best_iteration if booster.best_iteration > 0
               else booster.current_iteration())

    def score(x: torch.Tensor) -> np.ndarray:
        return booster.predict(_flat(x), num_iteration=best)

    return score, best, {"booster_text": booster.model_to_string(num_iteration=best)}


def train_tree(panel: Panel, labels: torch.Tensor, splits: Splits, window: WindowConfig,
               config: TreeConfig, min_stocks: int = 10) -> BaselineResult:
    """Fit XGBoost/LightGBM on train fit rows (early stopping on valid), predict every day.

    ``result.model`` is a JSON-ready dict with the booster dump and the columns it reads.
    """
    win, train, valid = fit_samples(panel, labels, splits, window)
    names = feature_names(win)
    fit = _fit_xgb if config.kind == "xgb" else _fit_lgbm
    score, best, dump = fit(train, valid, names, config)
    valid_ic = mean_ic(score(valid.x), valid, win.T, win.S, min_stocks)
    log.info("%s: best iteration %d, valid IC %.4f", config.kind, best, valid_ic)
    signal = predict_windows(win, score)
    cfg = {**asdict(config), **{f"window_{k}": v for k, v in asdict(window).items()}}
    metrics = {
        "method": config.kind, "best_iteration": best, "best_valid_ic": float(valid_ic),
        "n_train_samples": int(len(train.y)), "n_valid_samples": int(len(valid.y)),
        "features": list(win.features), "window": window.window,
        "config": jsonable(cfg),
        **segment_ics(signal, labels.cpu(), splits, splits.horizon, min_stocks),
    }
    model = {"method": config.kind, "columns": names, "best_iteration": best, **dump,
             "config": jsonable(cfg)}
    return BaselineResult(signal, metrics, [], model)


__all__ = ["TREE_KINDS", "TreeConfig", "feature_names", "train_tree"]
