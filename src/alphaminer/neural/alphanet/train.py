"""Training, checkpoint/resume and inference for AlphaNet.

Training (:func:`train_alphanet`):

- batches are whole cross-sections: ``days_per_batch`` consecutive sample days of the train
  segment, iterated in chronological order every epoch (no shuffling across time);
- loss ``"neg_ic"`` (default): −(signed Pearson IC) of each day's cross-section, averaged over
  the batch's days, by default against each day's *ranked* labels (``label_transform="rank"``)
  so one fat-tailed return cannot dominate a day (differentiable, written here as a torch
  autograd loss over a batch; the *reporting* IC is :func:`alphaminer.evaluation.daily_ic`);
  ``"neg_abs_ic"`` (the seed's −|IC|) or ``"mse"``. On real panels −|IC| learned a score with a
  large |IC| but a mean signed IC of ~0 (its payoff flips sign from day to day), which is why
  the signed loss is the default (``docs/methods/alphanet.md``, "On real data");
- Adam, early stopping on the validation IC (patience epochs without improvement);
- the −|IC| loss (only) is blind to the sign of the score, so after each epoch the model's
  ``output_sign`` is set from the sign of the epoch's mean *training* IC (never from validation
  data): a higher score then means a higher expected return, and the validation IC used for early
  stopping is the signed IC of that oriented score;
- after every epoch the complete state (weights, optimizer, RNG states, best weights so far,
  epoch, history) goes to ``checkpoint_dir`` in the project's one checkpoint format
  (:mod:`alphaminer.checkpoint`: safetensors + JSON, no pickle, written atomically), under the
  folder's live lock. A run killed at any point and started again with the same arguments
  resumes from the last finished epoch and ends with bit-identical weights (tested); a second
  live process on the same folder fails at once.

Inference (:func:`predict`) builds stride-1 images for every day in memory-bounded chunks and
scores each day's cross-section; each score uses only the trailing window, so it is causal.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from alphaminer.checkpoint import CheckpointStore, atomic_dir, capture_rng, restore_rng, run_dir
from alphaminer.evaluation.metrics import daily_ic, daily_rank_ic
from alphaminer.neural.alphanet.images import (
    FeatureImages,
    ImageConfig,
    iter_image_chunks,
    sample_days,
)
from alphaminer.neural.alphanet.model import AlphaNet, AlphaNetConfig
from alphaminer.panel import Panel
from alphaminer.runtime import resolve_device, seed_everything

log = logging.getLogger(__name__)

LOSSES = ("neg_abs_ic", "neg_ic", "mse")
LABEL_TRANSFORMS = ("none", "rank", "zscore")
MONITORS = ("ic", "rank_ic")
_EPS = 1e-12


@dataclass(frozen=True)
class TrainConfig:
    """AlphaNet training hyper-parameters.

    Attributes:
        loss: ``"neg_ic"`` (−signed IC per day, averaged; default since issue 15),
            ``"neg_abs_ic"`` (the seed's −|IC|, sign-blind) or ``"mse"``.
        lr / weight_decay: Adam parameters.
        epochs: maximum number of epochs.
        patience: stop after this many epochs without a better validation IC.
        days_per_batch: sample days (full cross-sections) per optimisation step.
        min_stocks: days with fewer images are left out of the IC loss and the IC metric.
        seed: seeds python/numpy/torch before the model is built.
        device: ``"auto"`` (cuda if present), ``"cpu"``, ``"cuda"``...
        eval_batch: images per forward pass in validation / prediction.
        progress: tqdm bar per epoch.
        label_transform: per-day cross-sectional transform of the *training* labels:
            ``"none"``, ``"rank"`` (standardised ranks: the Pearson IC loss becomes a RankIC-like
            loss that one fat-tailed return cannot dominate) or ``"zscore"`` (day mean 0, std 1;
            for ``mse``). Uses only the labels of the same day, so no look-ahead.
        shuffle_days: visit the training day-batches in a new random order every epoch (seeded;
            all inside the train segment) instead of chronologically.
        monitor: early-stopping metric on the validation images: mean daily ``"ic"`` (Pearson)
            or ``"rank_ic"`` (Spearman).
    """

    loss: str = "neg_ic"
    lr: float = 1e-3
    weight_decay: float = 0.0
    epochs: int = 50
    patience: int = 10
    days_per_batch: int = 1
    min_stocks: int = 10
    seed: int = 0
    device: str = "auto"
    eval_batch: int = 65536
    progress: bool = True
    label_transform: str = "rank"
    shuffle_days: bool = False
    monitor: str = "ic"

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.label_transform not in LABEL_TRANSFORMS:
            raise ValueError(f"label_transform must be one of {LABEL_TRANSFORMS}, "
                             f"got {self.label_transform!r}")
        if self.monitor not in MONITORS:
            raise ValueError(f"monitor must be one of {MONITORS}, got {self.monitor!r}")
        if self.epochs < 1 or self.patience < 1 or self.days_per_batch < 1:
            raise ValueError("epochs, patience and days_per_batch must be >= 1")
        if self.min_stocks < 2:
            raise ValueError(f"min_stocks must be >= 2 (an IC needs two stocks), "
                             f"got {self.min_stocks}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    """Outcome of :func:`train_alphanet`: the best model (eval mode) and the epoch history."""

    model: AlphaNet
    history: pd.DataFrame
    best_epoch: int
    best_valid_ic: float
    stopped_early: bool
    checkpoint_dir: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------- losses / metrics
def grouped_ic(pred: torch.Tensor, y: torch.Tensor, group: torch.Tensor, n_groups: int,
               min_count: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Pearson IC of ``pred`` vs ``y`` inside each group (day): ``(ic [G], valid [G])``.

    Differentiable in ``pred``. Groups with fewer than ``min_count`` members or a constant side
    are invalid (their IC is 0 and must be ignored).
    """
    ones = torch.ones_like(pred)
    cnt = torch.zeros(n_groups, dtype=pred.dtype, device=pred.device).index_add(0, group, ones)
    safe = cnt.clamp_min(1.0)
    mp = torch.zeros_like(cnt).index_add(0, group, pred) / safe
    my = torch.zeros_like(cnt).index_add(0, group, y) / safe
    pc, yc = pred - mp[group], y - my[group]
    sxy = torch.zeros_like(cnt).index_add(0, group, pc * yc)
    sxx = torch.zeros_like(cnt).index_add(0, group, pc * pc)
    syy = torch.zeros_like(cnt).index_add(0, group, yc * yc)
    valid = (cnt >= min_count) & (sxx > 0) & (syy > 0)
    den = torch.sqrt(torch.where(valid, sxx * syy, torch.ones_like(sxx)) + _EPS)
    ic = torch.where(valid, sxy / den, torch.zeros_like(sxy))
    return ic, valid


def neg_abs_ic_loss(pred: torch.Tensor, y: torch.Tensor, group: torch.Tensor, n_groups: int,
                    min_count: int = 2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """−mean over valid days of |IC|; returns ``(loss, ic.detach(), valid)``.

    Kept here (not in :mod:`alphaminer.evaluation`) because it is an autograd loss over one
    batch of images, not the reporting metric over a ``[T, S]`` signal.
    """
    ic, valid = grouped_ic(pred, y, group, n_groups, min_count)
    if not bool(valid.any()):
        return pred.sum() * 0.0, ic.detach(), valid
    return -(ic.abs()[valid]).mean(), ic.detach(), valid


def neg_ic_loss(pred: torch.Tensor, y: torch.Tensor, group: torch.Tensor, n_groups: int,
                min_count: int = 2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """−mean over valid days of the *signed* IC; returns ``(loss, ic.detach(), valid)``.

    Unlike −|IC| it asks for the same direction every day, so a score cannot earn loss by
    tracking something whose payoff changes sign from day to day (market beta, volatility).
    """
    ic, valid = grouped_ic(pred, y, group, n_groups, min_count)
    if not bool(valid.any()):
        return pred.sum() * 0.0, ic.detach(), valid
    return -(ic[valid]).mean(), ic.detach(), valid


def transform_labels(y: torch.Tensor, day_index: torch.Tensor, how: str) -> torch.Tensor:
    """Per-day cross-sectional ``"rank"`` / ``"zscore"`` of ``y`` (``"none"``: unchanged).

    ``rank``: average ranks (ties share a rank), centred and scaled to unit standard deviation
    within the day; ``zscore``: ``(y − day mean) / day std``. Days with one image or a constant
    label get 0. ``day_index`` must be sorted (images are ordered by day).
    """
    if how == "none":
        return y
    if how not in LABEL_TRANSFORMS:
        raise ValueError(f"label_transform must be one of {LABEL_TRANSFORMS}, got {how!r}")
    out = torch.zeros_like(y, dtype=torch.float32)
    _, counts = torch.unique_consecutive(day_index, return_counts=True)
    i0 = 0
    for c in counts.tolist():
        v = y[i0:i0 + c].double()
        if how == "rank":
            v = torch.from_numpy(np.array(pd.Series(v.cpu().numpy()).rank().to_numpy())
                                 ).to(v.device)
        v = v - v.mean()
        sd = v.pow(2).mean().sqrt()
        out[i0:i0 + c] = (v / sd).float() if c > 1 and float(sd) > 0 else 0.0
        i0 += c
    return out


def _dense(images: FeatureImages, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    days, inv = torch.unique(images.day_index, return_inverse=True)
    S = len(images.instruments)
    f = torch.full((len(days), S), float("nan"))
    y = torch.full((len(days), S), float("nan"))
    f[inv, images.stock_index] = values.detach().to("cpu", torch.float32)
    y[inv, images.stock_index] = images.labels.to(torch.float32)
    return f, y


def daily_ic_of(images: FeatureImages, scores: torch.Tensor, min_stocks: int,
                rank: bool = False) -> torch.Tensor:
    """Per-day IC (``rank=True``: RankIC) of ``scores [N]`` vs ``images.labels`` on the days
    present (``[D]``, NaN-able), with :func:`alphaminer.evaluation.daily_ic` /
    :func:`~alphaminer.evaluation.daily_rank_ic` on the dense ``[D, S]`` cross-sections.
    """
    f, y = _dense(images, scores)
    fn = daily_rank_ic if rank else daily_ic
    return fn(f, y, min_stocks=min_stocks).to(torch.float32)


# ---------------------------------------------------------------------- checkpoints
def save_checkpoint(model: AlphaNet, path: str | Path, extra: dict[str, Any] | None = None
                    ) -> Path:
    """Export the model: ``path/model.safetensors`` + ``path/config.json`` (architecture +
    ``extra``), swapped in as a whole folder so a reader never sees a half-written export.

    This is the trained-model artifact the catalog stores; resumable training state is the
    :mod:`alphaminer.checkpoint` format (:func:`train_alphanet`).
    """
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"format": "alphaminer.alphanet.v1", "architecture": model.config.to_dict(),
            "extra": extra or {}}
    with atomic_dir(path) as tmp:
        save_file(state, str(tmp / "model.safetensors"))
        (tmp / "config.json").write_text(json.dumps(meta, indent=1))
    return Path(path)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> AlphaNet:
    """Rebuild an :class:`AlphaNet` from :func:`save_checkpoint` output (eval mode)."""
    path = Path(path)
    if not (path / "model.safetensors").exists():
        raise FileNotFoundError(f"no AlphaNet checkpoint in {path} (model.safetensors missing)")
    meta = json.loads((path / "config.json").read_text())
    model = AlphaNet(AlphaNetConfig.from_dict(meta["architecture"]))
    model.load_state_dict(load_file(str(path / "model.safetensors")))
    return model.to(resolve_device(device)).eval()


def _fingerprint(images: FeatureImages) -> str:
    h = hashlib.sha256()
    for t in (images.labels, images.day_index, images.stock_index, images.split):
        h.update(t.cpu().numpy().tobytes())
    h.update(str(tuple(images.images.shape)).encode())
    return h.hexdigest()[:16]


def _run_key(images: FeatureImages, config: TrainConfig, model_config: AlphaNetConfig
             ) -> dict[str, Any]:
    key = {"train": config.to_dict(), "model": model_config.to_dict(),
           "data": _fingerprint(images)}
    key["train"].pop("progress")
    key["train"].pop("device")
    return key


def run_checkpoint_dir(root: str | Path, images: FeatureImages, config: TrainConfig,
                       model_config: AlphaNetConfig) -> Path:
    """``root/<hash>``: one resumable folder per (data, config), so a killed run resumes while a
    run with other data or hyper-parameters starts fresh instead of clashing."""
    return run_dir(root, _run_key(images, config, model_config))


# ---------------------------------------------------------------------- training
def day_batches(day_index: torch.Tensor, days_per_batch: int) -> list[tuple[int, int]]:
    """``(start, end)`` image ranges of consecutive ``days_per_batch``-day blocks."""
    _, counts = torch.unique_consecutive(day_index, return_counts=True)
    ends = torch.cumsum(counts, 0)
    bounds = torch.cat([torch.zeros(1, dtype=ends.dtype), ends])[::days_per_batch].tolist()
    if bounds[-1] != int(ends[-1]):
        bounds.append(int(ends[-1]))
    return list(zip(bounds[:-1], bounds[1:]))


@torch.no_grad()
def score_images(model: AlphaNet, images: torch.Tensor, device: torch.device,
                 batch: int = 65536) -> torch.Tensor:
    """Eval-mode scores ``[N]`` (CPU float32) of an image tensor, in batches."""
    model.eval()
    out = [model(images[i:i + batch].to(device, torch.float32)).cpu()
           for i in range(0, images.shape[0], batch)]
    return torch.cat(out) if out else torch.zeros(0)


def _check_sorted(images: FeatureImages) -> None:
    if len(images) > 1 and bool((images.day_index[1:] < images.day_index[:-1]).any()):
        raise ValueError("images must be ordered by day (as build_feature_images returns them)")


def train_alphanet(
    images: FeatureImages,
    config: TrainConfig | None = None,
    model_config: AlphaNetConfig | None = None,
    *,
    checkpoint_dir: str | Path | None = None,
    resume: bool = True,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train AlphaNet on ``images`` (segments ``train`` and, if present, ``valid``).

    Args:
        images: output of :func:`~alphaminer.neural.alphanet.images.build_feature_images` with
            a ``train`` split (without split names every image is used for training and the
            training IC drives early stopping).
        config: :class:`TrainConfig`.
        model_config: architecture; defaults to :class:`AlphaNetConfig` with the images' rows
            and window.
        checkpoint_dir: folder of the resumable state (:class:`~alphaminer.checkpoint.
            CheckpointStore`, locked for the whole run; see :func:`run_checkpoint_dir`);
            ``None`` keeps everything in memory.
        resume: continue from the newest complete checkpoint in ``checkpoint_dir``.
        on_epoch_end: called as ``on_epoch_end(epoch, row)`` after the epoch's checkpoint.
    """
    config = config or TrainConfig()
    model_config = model_config or AlphaNetConfig(rows=images.rows,
                                                  window=images.config.window)
    if tuple(images.images.shape[1:]) != (model_config.n_rows, model_config.window):
        raise ValueError(f"images are {tuple(images.images.shape[1:])} but the model expects "
                         f"{(model_config.n_rows, model_config.window)}")
    _check_sorted(images)
    if "train" in images.split_names:
        train = images.subset("train")
    else:
        train = images
    valid = images.subset("valid") if "valid" in images.split_names else None
    if valid is not None and len(valid) == 0:
        valid = None
    if len(train) == 0:
        raise ValueError("no training images (check the splits and the panel length)")
    device = resolve_device(config.device)
    seed_everything(config.seed)
    model = AlphaNet(model_config).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)

    root = Path(checkpoint_dir) if checkpoint_dir is not None else None
    run_key = _run_key(images, config, model_config)
    state: dict[str, Any] = {"epoch": 0, "best_metric": None, "best_epoch": 0,
                             "bad_epochs": 0, "history": [], "done": False}
    best_state: dict[str, torch.Tensor] = copy.deepcopy(model.state_dict())
    with contextlib.ExitStack() as stack:
        store = None
        if root is not None:
            store = CheckpointStore(root, config=run_key)
            stack.enter_context(store.lock())  # a second live trainer here fails loudly
            loaded = store.load_latest() if resume else None
            if loaded is not None:
                ck = loaded.state
                model.load_state_dict(ck["model"])
                opt.load_state_dict(ck["optimizer"])
                restore_rng(ck["rng"])
                best_state = {k: v.to(device) for k, v in ck["best_model"].items()}
                state = {k: ck["progress"][k] for k in state}
                log.info("resuming AlphaNet training from %s after epoch %d", root,
                         state["epoch"])
        return _train_loop(model, opt, train, valid, config, device, state, best_state,
                           store, on_epoch_end)


def _train_loop(model: AlphaNet, opt: torch.optim.Optimizer, train: FeatureImages,
                valid: FeatureImages | None, config: TrainConfig, device: torch.device,
                state: dict[str, Any], best_state: dict[str, torch.Tensor],
                store: CheckpointStore | None,
                on_epoch_end: Callable[[int, dict[str, float]], None] | None) -> TrainResult:
    """Epochs from ``state["epoch"] + 1`` on; after each one the whole state goes to ``store``."""
    x_train = train.images.to(device)
    y_train = transform_labels(train.labels.to(torch.float32), train.day_index,
                               config.label_transform).to(device)
    batches = day_batches(train.day_index, config.days_per_batch)
    _, g_all = torch.unique_consecutive(train.day_index, return_inverse=True)
    g_all = g_all.to(device)
    monitor = valid if valid is not None else train

    while not state["done"] and state["epoch"] < config.epochs:
        epoch = state["epoch"] + 1
        t0 = time.perf_counter()
        model.train()
        loss_sum, n_steps = 0.0, 0
        ic_sum, ic_n = 0.0, 0
        order = (torch.randperm(len(batches)).tolist() if config.shuffle_days
                 else range(len(batches)))
        bar = tqdm([batches[k] for k in order], desc=f"alphanet epoch {epoch}/{config.epochs}",
                   unit="batch", disable=not config.progress, leave=False)
        for i0, i1 in bar:
            if i1 - i0 < 2:
                continue  # batch norm needs two samples
            x = x_train[i0:i1].float()
            y = y_train[i0:i1]
            g = g_all[i0:i1] - g_all[i0]
            n_g = int(g[-1]) + 1
            pred = model(x)
            if config.loss in ("neg_abs_ic", "neg_ic"):
                fn = neg_abs_ic_loss if config.loss == "neg_abs_ic" else neg_ic_loss
                loss, ic, ok = fn(pred, y, g, n_g, config.min_stocks)
                if not bool(ok.any()):
                    continue
            else:
                loss = torch.mean((pred - y) ** 2)
                ic, ok = grouped_ic(pred.detach(), y, g, n_g, config.min_stocks)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += float(loss.detach())
            n_steps += 1
            ic_sum += float(ic[ok].sum())
            ic_n += int(ok.sum())
        train_ic = ic_sum / ic_n if ic_n else float("nan")
        if config.loss == "neg_abs_ic" and train_ic < 0:
            model.output_sign.mul_(-1.0)  # orient the score on training data only
            train_ic = -train_ic
        scores = score_images(model, monitor.images, device, config.eval_batch)
        dic = daily_ic_of(monitor, scores, config.min_stocks, rank=config.monitor == "rank_ic")
        valid_ic = float(torch.nanmean(dic)) if bool(torch.isfinite(dic).any()) else float("nan")
        metric = valid_ic if np.isfinite(valid_ic) else -np.inf
        improved = state["best_metric"] is None or metric > state["best_metric"]
        if improved:
            state["best_metric"], state["best_epoch"], state["bad_epochs"] = metric, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            state["bad_epochs"] += 1
        row = {"epoch": epoch, "train_loss": loss_sum / max(n_steps, 1), "train_ic": train_ic,
               "valid_ic": valid_ic, "seconds": time.perf_counter() - t0}
        state["history"].append(row)
        state["epoch"] = epoch
        if state["bad_epochs"] >= config.patience:
            state["done"] = True
        log.info("alphanet epoch %d/%d  train_loss %.5f  train_ic %.4f  valid_ic %.4f  "
                 "(%.1fs)%s", epoch, config.epochs, row["train_loss"], train_ic, valid_ic,
                 row["seconds"], "  *best*" if improved else "")
        if store is not None:
            store.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                        "rng": capture_rng(), "best_model": best_state, "progress": state},
                       step=epoch)
        if on_epoch_end is not None:
            on_epoch_end(epoch, row)
    stopped = bool(state["done"]) and state["epoch"] < config.epochs
    if stopped:
        log.info("early stopping after epoch %d (best epoch %d)", state["epoch"],
                 state["best_epoch"])
    model.load_state_dict(best_state)
    best_metric = state["best_metric"]
    return TrainResult(
        model=model.eval(), history=pd.DataFrame(state["history"]),
        best_epoch=int(state["best_epoch"]),
        best_valid_ic=float(best_metric) if best_metric is not None else float("nan"),
        stopped_early=stopped, checkpoint_dir=store.folder if store is not None else None,
    )


# ---------------------------------------------------------------------- inference
def predict(
    model: AlphaNet,
    panel: Panel,
    image_config: ImageConfig | None = None,
    *,
    device: str | torch.device = "auto",
    batch: int = 65536,
    progress: bool = True,
) -> torch.Tensor:
    """Score every day of ``panel``: a ``[T, S]`` float32 signal (CPU), NaN where no image.

    Builds stride-1 images (same rows, window and normalisation as training) chunk by chunk and
    scores each chunk in eval mode. A day's score uses only days ``t−W+1..t`` (causal); days
    before the first complete window, incomplete windows and stocks outside the universe are NaN.
    """
    cfg = (image_config or ImageConfig(rows=model.config.rows, window=model.config.window)
           ).with_(stride=1, require_label=False)
    if cfg.rows != model.config.rows or cfg.window != model.config.window:
        raise ValueError(f"image config rows/window {cfg.rows}/{cfg.window} differ from the "
                         f"model's {model.config.rows}/{model.config.window}")
    dev = resolve_device(device)
    model = model.to(dev).eval()
    out = torch.full((panel.T, panel.S), float("nan"))
    days = sample_days(panel.T, cfg)
    for img, day, stock, _ in iter_image_chunks(panel, cfg, days, None, progress):
        out[day, stock] = score_images(model, img, dev, batch)
    return out


__all__ = [
    "LABEL_TRANSFORMS", "LOSSES", "MONITORS", "TrainConfig", "TrainResult", "daily_ic_of",
    "day_batches", "grouped_ic", "load_checkpoint", "neg_abs_ic_loss", "neg_ic_loss", "predict",
    "save_checkpoint", "score_images", "train_alphanet", "transform_labels",
]
