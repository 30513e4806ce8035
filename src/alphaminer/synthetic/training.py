"""Training of the generators and the LSTM evaluator on real windows, with checkpoint/resume.

Every model trains on random fixed-length windows of *standardised* representation days drawn
from the train split only (windows never cross a missing or suspended day). Training state
(weights, optimiser, every RNG including the batch generator, loss history) is written through
:mod:`alphaminer.checkpoint` every ``checkpoint_every`` steps into one folder per model and run
configuration; a killed run resumes from the newest complete checkpoint and ends bit-identical
to an uninterrupted one on CPU.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from alphaminer.checkpoint import CheckpointStore, capture_rng, restore_rng
from alphaminer.panel import Panel
from alphaminer.progress import progress
from alphaminer.runtime import config_from, resolve_device

from .models import SyntheticModels, build_model, resolve_generators
from .representation import RealSequences, Scaler

log = logging.getLogger(__name__)

#: Fixed order so each model's seed offset does not depend on which generators are trained.
_SEED_OFFSET = {"gru": 1, "transformer": 2, "diffusion": 3, "evaluator": 4}
#: Settings that only change sampling: left out of the checkpoint identity, so a new sampler
#: setting reuses the trained weights instead of retraining.
_SAMPLING_ONLY = frozenset({"sample_steps", "eta"})


@dataclass
class FitConfig:
    """Optimisation settings shared by every synthetic model."""

    steps: int = 300
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    checkpoint_every: int = 50
    progress: bool = False

    def key(self) -> dict[str, Any]:
        """What changes the result (checkpoint identity): not progress bars or save cadence."""
        d = asdict(self)
        d.pop("progress")
        d.pop("checkpoint_every")
        return d


@dataclass
class SyntheticTrainConfig:
    """``params:synthetic`` minus the market and quality sections (see ``conf/base``)."""

    generators: str | list[str] = "all"
    context: int = 40
    seed: int = 0
    device: str = "auto"
    train: dict[str, Any] = field(default_factory=dict)
    #: per-model overrides of ``train`` (e.g. more steps for the cheap recurrent models)
    train_per_model: dict[str, dict[str, Any]] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)

    def fit(self, name: str) -> FitConfig:
        """The optimisation settings of model ``name`` (``train`` + its override)."""
        return config_from(FitConfig, {**self.train, **self.train_per_model.get(name, {})})


class TrainingData:
    """Standardised train-split sequences on a device and the valid window ends per length."""

    def __init__(self, real: RealSequences, scaler: Scaler, device: torch.device) -> None:
        self.real = real
        x = scaler.transform(real.rep)
        self.x = torch.nan_to_num(x, nan=0.0).to(device)
        self.device = device
        self._ends: dict[int, torch.Tensor] = {}

    def ends(self, length: int) -> torch.Tensor:
        """``[N, 2]`` (day, stock) of every fully valid window of ``length`` days."""
        if length not in self._ends:
            e = torch.nonzero(self.real.window_ends(length)).to(self.device)
            if e.shape[0] == 0:
                raise ValueError(f"no fully valid {length}-day window in the train split "
                                 f"({self.real.valid.shape[0]} days): shorten the windows")
            self._ends[length] = e
        return self._ends[length]

    def batch(self, length: int, size: int, generator: torch.Generator) -> torch.Tensor:
        e = self.ends(length)
        pick = e[torch.randint(0, e.shape[0], (size,), generator=generator, device=self.device)]
        days = pick[:, :1] - torch.arange(length - 1, -1, -1, device=self.device)
        return self.x[days, pick[:, 1:]]

    def fingerprint(self) -> str:
        h = hashlib.sha256(self.x.detach().cpu().numpy().tobytes())
        h.update(self.real.valid.numpy().tobytes())
        return h.hexdigest()[:16]


def fit_model(model: nn.Module, data: TrainingData, config: FitConfig, seed: int, *,
              store: CheckpointStore | None = None, name: str = "model",
              on_step: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """Train ``model`` (anything with ``loss(x, generator)`` and ``window_length``) in place.

    Resumes from ``store`` when it holds a checkpoint (the caller holds ``store.lock()``).
    Returns one ``{"model", "step", "loss", "seconds"}`` row per step.
    """
    device = data.device
    model.to(device)
    gen = torch.Generator(device=device).manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    step, history = 0, []
    loaded = store.load_latest() if store is not None else None
    if loaded is not None:
        st = loaded.state
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        restore_rng(st["rng"])
        gen.set_state(st["batch_rng"].to(torch.uint8).cpu())
        step, history = int(st["step"]), list(st["history"])
        log.info("synthetic %s: resumed from %s at step %d", name, store.folder, step)
    model.train()
    W = model.window_length
    t0 = time.perf_counter()
    bar = progress(total=config.steps, initial=step, desc=f"synthetic {name}",
               disable=not config.progress, leave=False)
    while step < config.steps:
        x = data.batch(W, config.batch_size, gen)
        loss = model.loss(x, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        opt.step()
        step += 1
        history.append({"model": name, "step": step, "loss": float(loss.detach()),
                        "seconds": time.perf_counter() - t0})
        bar.update(1)
        if store is not None and (step % max(1, config.checkpoint_every) == 0
                                  or step == config.steps):
            store.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                        "rng": capture_rng(), "batch_rng": gen.get_state(), "step": step,
                        "history": history}, step=step)
        if on_step is not None:
            on_step(step)
    bar.close()
    model.eval()
    if history:
        log.info("synthetic %s: %d steps, final loss %.4f", name, step, history[-1]["loss"])
    return history


def model_configs(cfg: SyntheticTrainConfig) -> dict[str, tuple[str, dict[str, Any]]]:
    """``name → (kind, architecture overrides)`` for the chosen generators and the evaluator."""
    out = {g: (g, dict(cfg.models.get(g, {}))) for g in resolve_generators(cfg.generators)}
    out["evaluator"] = ("lstm", dict(cfg.models.get("evaluator", {})))
    diff = out.get("diffusion")
    if diff is not None:
        diff[1].setdefault("context", min(cfg.context, 32))
        if diff[1]["context"] > cfg.context:
            raise ValueError(f"diffusion context {diff[1]['context']} exceeds the market "
                             f"context c = {cfg.context}")
    return out


def train_synthetic_models(train_panel: Panel, config: SyntheticTrainConfig | dict[str, Any],
                           checkpoint_dir: str | Path | None = None,
                           on_step: Callable[[str, int], None] | None = None
                           ) -> tuple[SyntheticModels, pd.DataFrame]:
    """Fit the scaler, every chosen generator and the LSTM evaluator on ``train_panel``.

    ``train_panel`` must already be the train segment (the caller slices it), so nothing
    after the train split can reach a model. Returns the bundle and the per-step loss history.
    """
    cfg = config_from(SyntheticTrainConfig, config)
    unknown = set(cfg.train_per_model) - {*_SEED_OFFSET}
    if unknown:
        raise ValueError(f"train_per_model has unknown model(s) {sorted(unknown)}")
    device = resolve_device(cfg.device)
    real = RealSequences.from_panel(train_panel)
    scaler = Scaler.fit(real.rep, real.valid)
    data = TrainingData(real, scaler, device)
    fp = data.fingerprint()
    trained: dict[str, nn.Module] = {}
    history: list[dict[str, Any]] = []
    for name, (kind, arch) in model_configs(cfg).items():
        seed = cfg.seed * 100 + _SEED_OFFSET[name]
        fit = cfg.fit(name)
        torch.manual_seed(seed)
        model = build_model(kind, arch)
        arch_key = {k: v for k, v in model.config.to_dict().items() if k not in _SAMPLING_ONLY}
        key = {"name": name, "kind": kind, "model": arch_key, "fit": fit.key(),
               "seed": seed, "data": fp}
        store = CheckpointStore.for_run(Path(checkpoint_dir) / name, key) \
            if checkpoint_dir is not None else None
        cb = (lambda s, _n=name: on_step(_n, s)) if on_step is not None else None
        if store is not None:
            with store.lock():
                history += fit_model(model, data, fit, seed, store=store, name=name, on_step=cb)
        else:
            history += fit_model(model, data, fit, seed, name=name, on_step=cb)
        trained[name] = model
    evaluator = trained.pop("evaluator")
    bundle = SyntheticModels(scaler=scaler, generators=trained, evaluator=evaluator,
                             context=cfg.context,
                             meta={"train_days": int(train_panel.T),
                                   "train_start": str(train_panel.dates[0].date()),
                                   "train_end": str(train_panel.dates[-1].date()),
                                   "data_fingerprint": fp, "device": str(device)})
    return bundle.to(device), pd.DataFrame(history, columns=["model", "step", "loss", "seconds"])


__all__ = ["FitConfig", "SyntheticTrainConfig", "TrainingData", "fit_model", "model_configs",
           "train_synthetic_models"]
