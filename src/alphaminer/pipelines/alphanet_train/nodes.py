"""Thin adapters: train AlphaNet, predict a daily signal, attribute it to symbolic features."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from alphaminer.neural.alphanet import (
    AlphaNet,
    AlphaNetConfig,
    FeatureImages,
    TrainConfig,
    attribution_table,
    predict,
    train_alphanet,
)
from alphaminer.neural.alphanet.train import run_checkpoint_dir
from alphaminer.panel import Panel
from alphaminer.pipelines._common import signal_frame
from alphaminer.runtime import config_from

log = logging.getLogger(__name__)


def train(images: FeatureImages, params: dict[str, Any], seed: int
          ) -> tuple[AlphaNet, pd.DataFrame, dict[str, Any]]:
    """Train with early stopping. ``checkpoint_dir`` (resumable state after a kill) is the one
    place the library writes by itself; the best model goes through the catalog."""
    cfg = config_from(TrainConfig, {"seed": seed, **params.get("train", {})})
    model_cfg = params.get("model") or {}
    model_config = AlphaNetConfig.from_dict({"rows": list(images.rows),
                                             "window": images.config.window, **model_cfg})
    ckpt = params.get("checkpoint_dir")
    if ckpt:
        ckpt = run_checkpoint_dir(ckpt, images, cfg, model_config)
    res = train_alphanet(images, cfg, model_config, checkpoint_dir=ckpt, resume=True)
    metrics = {"best_epoch": res.best_epoch, "best_valid_ic": res.best_valid_ic,
               "stopped_early": res.stopped_early, "epochs_run": len(res.history),
               "num_pooled_features": 288, "device": str(cfg.device)}
    log.info("AlphaNet: best epoch %d, valid IC %.4f", res.best_epoch, res.best_valid_ic)
    return res.model, res.history, metrics


def predict_signal(model: AlphaNet, panel: Panel, images: FeatureImages,
                   params: dict[str, Any]) -> pd.DataFrame:
    device = params.get("train", {}).get("device", "auto")
    return signal_frame(panel, predict(model, panel, images.config, device=device))


def attribute(model: AlphaNet, images: FeatureImages, params: dict[str, Any]) -> pd.DataFrame:
    a = params.get("attribution", {})
    return attribution_table(model, images, split=a.get("split", "test"),
                             top_k=a.get("top_k", 20), method=a.get("method", "grad_x_activation"),
                             device=params.get("train", {}).get("device", "auto"))
