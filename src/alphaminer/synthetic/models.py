"""Model registry and the trained bundle (scaler + generators + evaluator) on disk.

The bundle is one folder: ``<name>.safetensors`` per model plus ``config.json`` holding every
architecture config, the scaler and the context length (pickle-free, swapped in atomically).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from alphaminer.checkpoint import atomic_dir

from .csdi import CSDIConfig, CSDIGenerator
from .recurrent import RecurrentConfig, RecurrentDensity
from .representation import Scaler
from .transformer import CausalTransformer, TransformerConfig

#: Generator names (the ablation parameter picks among them; ``all`` = every one).
GENERATORS: tuple[str, ...] = ("gru", "transformer", "diffusion")
FORMAT = "alphaminer.synthetic.v1"


def build_model(kind: str, config: dict[str, Any] | None = None) -> nn.Module:
    """A fresh model of ``kind`` (``gru``, ``transformer``, ``diffusion`` or ``lstm``)."""
    cfg = dict(config or {})
    if kind in ("gru", "lstm"):
        cfg["cell"] = kind
        return RecurrentDensity(RecurrentConfig(**cfg))
    if kind == "transformer":
        return CausalTransformer(TransformerConfig(**cfg))
    if kind == "diffusion":
        return CSDIGenerator(CSDIConfig(**cfg))
    raise ValueError(f"unknown synthetic model kind {kind!r}; have {(*GENERATORS, 'lstm')}")


def resolve_generators(which: str | list[str]) -> list[str]:
    """The ablation parameter (``all``, one name or a list of names) → generator names."""
    names = list(GENERATORS) if which == "all" else [which] if isinstance(which, str) \
        else list(which)
    bad = [n for n in names if n not in GENERATORS]
    if bad or not names:
        raise ValueError(f"generators must be 'all' or among {GENERATORS}; got {which!r}")
    return names


@dataclass
class SyntheticModels:
    """Everything market assembly needs: scaler, generators by name, evaluator, context ``c``."""

    scaler: Scaler
    generators: dict[str, nn.Module]
    evaluator: RecurrentDensity
    context: int
    meta: dict[str, Any] = field(default_factory=dict)

    def to(self, device: str | torch.device) -> SyntheticModels:
        for m in (*self.generators.values(), self.evaluator):
            m.to(device).eval()
        return self

    def save(self, path: str | Path) -> Path:
        models = {**self.generators, "evaluator": self.evaluator}
        cfg = {"format": FORMAT, "context": self.context, "scaler": self.scaler.to_dict(),
               "generators": list(self.generators), "meta": self.meta,
               "models": {n: {"kind": _kind(m), "config": m.config.to_dict()}
                          for n, m in models.items()}}
        with atomic_dir(path) as tmp:
            for n, m in models.items():
                save_file({k: v.detach().cpu().contiguous() for k, v in m.state_dict().items()},
                          str(tmp / f"{n}.safetensors"))
            (tmp / "config.json").write_text(json.dumps(cfg, indent=1))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> SyntheticModels:
        path = Path(path)
        cfg = json.loads((path / "config.json").read_text())
        if cfg.get("format") != FORMAT:
            raise ValueError(f"{path}: not a synthetic model bundle ({cfg.get('format')!r})")
        built: dict[str, nn.Module] = {}
        for n, spec in cfg["models"].items():
            conf = dict(spec["config"])
            conf.pop("cell", None)
            m = build_model(spec["kind"], conf)
            m.load_state_dict(load_file(str(path / f"{n}.safetensors")))
            built[n] = m
        out = cls(scaler=Scaler.from_dict(cfg["scaler"]),
                  generators={n: built[n] for n in cfg["generators"]},
                  evaluator=built["evaluator"], context=int(cfg["context"]),
                  meta=cfg.get("meta", {}))
        return out.to(device)


def _kind(m: nn.Module) -> str:
    if isinstance(m, RecurrentDensity):
        return m.config.cell
    if isinstance(m, CausalTransformer):
        return "transformer"
    if isinstance(m, CSDIGenerator):
        return "diffusion"
    raise TypeError(f"not a synthetic model: {type(m).__name__}")


__all__ = ["GENERATORS", "SyntheticModels", "build_model", "resolve_generators"]
