"""Thin adapters: parameters → :mod:`alphaminer.neural.baselines` /
:mod:`alphaminer.combination.ml_baselines` → ``<m>.signal`` and ``<m>.train_metrics``."""

from __future__ import annotations

import logging
import time
from typing import Any

import pandas as pd

from alphaminer.combination.base import jsonable
from alphaminer.combination.ml_baselines import TREE_KINDS, train_tree
from alphaminer.data import Splits
from alphaminer.neural.baselines import train_net
from alphaminer.panel import Panel
from alphaminer.parameters import MLBaselinesParams
from alphaminer.pipelines._common import labels_tensor, signal_frame

log = logging.getLogger(__name__)


def fit_predict(panel: Panel, labels: pd.DataFrame, splits: dict[str, Any],
                params: MLBaselinesParams, kind: str, min_stocks: int, seed: int
                ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Train baseline ``kind`` (``params[kind]``, shared ``params['window']``) and predict every
    day; the metrics carry the best iteration/epoch, valid IC, IC per segment and wall time."""
    p = MLBaselinesParams.coerce(params)
    window = p.window_config(kind)
    model_params = getattr(p, kind)
    y = labels_tensor(panel, labels)
    sp = Splits.coerce(splits, panel.dates, required=("train", "valid"))
    t0 = time.perf_counter()
    if kind in TREE_KINDS:
        cfg = model_params.to_config({"seed": seed}, kind=kind)
        res = train_tree(panel, y, sp, window, cfg, min_stocks)
    else:
        cfg = model_params.to_config({"seed": seed, "device": p.device}, kind=kind)
        res = train_net(panel, y, sp, window, cfg, min_stocks)
    wall = time.perf_counter() - t0
    log.info("%s baseline: valid IC %.4f, test IC %.4f (%.1f s)", kind,
             res.metrics["best_valid_ic"], res.metrics.get("test_ic", float("nan")), wall)
    return signal_frame(panel, res.signal), jsonable({**res.metrics, "wall_s": wall})
