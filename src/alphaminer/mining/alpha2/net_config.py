"""Alpha2's policy/value network settings, apart from the network itself, so that reading a
configuration (``alphaminer.parameters``, every ``kedro`` command) does not import JAX and flax
(~1.7 s per process); :mod:`alphaminer.mining.alpha2.network` imports them when a miner runs."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NetConfig"]


@dataclass(frozen=True)
class NetConfig:
    """Torso width/depth, optimiser and value scaling (values are small IC differences; the
    value head works on ``value_scale`` × returns)."""

    hidden: int = 128
    layers: int = 2
    lr: float = 2e-4
    momentum: float = 0.9
    weight_decay: float = 1e-4
    value_coef: float = 1.0
    value_scale: float = 10.0
