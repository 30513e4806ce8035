"""CSDI-style conditional score-based diffusion generator.

Following CSDI (Tashiro et al., 2021), every (feature, day) cell of a window is a token. The
first ``context`` days are observed (the condition), the next ``block`` days are generated. The
denoiser predicts the noise added to the target cells from the noisy targets, the observed
context, a conditional mask and side information (sinusoidal day embedding + learned feature
embedding); each residual layer mixes tokens with a **temporal** Transformer layer (across days,
per feature) and a **feature** Transformer layer (across features, per day), then a gated
activation conditioned on the side information. Training minimises the denoising loss
``E ||ε - ε_θ(x_t, t | context)||²`` on the target cells.

Sampling runs DDIM-style on ``sample_steps`` evenly spaced diffusion steps (``sample_steps``
may be far below the ``diffusion_steps`` used in training; ``eta = 1`` is ancestral-like and
stochastic, ``eta = 0`` deterministic). Futures longer than one block are generated block by
block, each conditioned on the last ``context`` days (real at first, then generated).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from .mixture import SAMPLE_CLIP


@dataclass
class CSDIConfig:
    channels: int = 32
    layers: int = 2
    heads: int = 4
    ff: int = 64
    step_embedding: int = 64
    time_embedding: int = 32
    feature_embedding: int = 8
    diffusion_steps: int = 50
    beta_start: float = 1e-4
    beta_end: float = 0.5
    sample_steps: int = 20
    eta: float = 1.0
    context: int = 32
    block: int = 32
    n_features: int = 6

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sinusoid(pos: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freq = torch.exp(-math.log(10000.0) * torch.arange(half, device=pos.device) / max(half, 1))
    ang = pos.to(torch.float32).unsqueeze(-1) * freq
    return torch.cat([torch.sin(ang), torch.cos(ang)], dim=-1)


class _ResidualLayer(nn.Module):
    def __init__(self, c: CSDIConfig, side_dim: int) -> None:
        super().__init__()
        C = c.channels
        self.step_proj = nn.Linear(c.step_embedding, C)
        self.time_layer = nn.TransformerEncoderLayer(C, c.heads, c.ff, 0.0, batch_first=True)
        self.feature_layer = nn.TransformerEncoderLayer(C, c.heads, c.ff, 0.0, batch_first=True)
        self.mid = nn.Linear(C, 2 * C)
        self.cond = nn.Linear(side_dim, 2 * C)
        self.out = nn.Linear(C, 2 * C)

    def forward(self, x: torch.Tensor, side: torch.Tensor, step: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        B, K, L, C = x.shape
        y = x + self.step_proj(step)[:, None, None, :]
        y = self.time_layer(y.reshape(B * K, L, C)).reshape(B, K, L, C)
        y = self.feature_layer(y.transpose(1, 2).reshape(B * L, K, C))
        y = y.reshape(B, L, K, C).transpose(1, 2)
        gate, filt = (self.mid(y) + self.cond(side)).chunk(2, dim=-1)
        y = torch.sigmoid(gate) * torch.tanh(filt)
        res, skip = self.out(y).chunk(2, dim=-1)
        return (x + res) / math.sqrt(2.0), skip


class CSDIGenerator(nn.Module):
    """Conditional diffusion over ``[context + block]``-day windows of representation days."""

    def __init__(self, config: CSDIConfig) -> None:
        super().__init__()
        self.config = c = config
        L = c.context + c.block
        side_dim = c.time_embedding + c.feature_embedding + 1
        self.inp = nn.Linear(2, c.channels)
        self.feature_emb = nn.Embedding(c.n_features, c.feature_embedding)
        self.register_buffer("time_emb", _sinusoid(torch.arange(L), c.time_embedding),
                             persistent=False)
        self.step_mlp = nn.Sequential(nn.Linear(c.step_embedding, c.step_embedding), nn.SiLU(),
                                      nn.Linear(c.step_embedding, c.step_embedding), nn.SiLU())
        self.layers = nn.ModuleList(_ResidualLayer(c, side_dim) for _ in range(c.layers))
        self.out = nn.Sequential(nn.Linear(c.channels, c.channels), nn.ReLU(),
                                 nn.Linear(c.channels, 1))
        betas = torch.linspace(c.beta_start ** 0.5, c.beta_end ** 0.5, c.diffusion_steps) ** 2
        self.register_buffer("alpha_bar", torch.cumprod(1.0 - betas, 0), persistent=False)
        mask = torch.zeros(L)
        mask[:c.context] = 1.0
        self.register_buffer("cond_mask", mask, persistent=False)

    @property
    def window_length(self) -> int:
        return self.config.context + self.config.block

    def _side(self, B: int) -> torch.Tensor:
        c = self.config
        K, L = c.n_features, c.context + c.block
        t = self.time_emb[None, :, :].expand(K, L, -1)
        f = self.feature_emb.weight[:, None, :].expand(K, L, -1)
        m = self.cond_mask[None, :, None].expand(K, L, 1)
        return torch.cat([t, f, m], dim=-1).unsqueeze(0).expand(B, K, L, -1)

    def denoise(self, cond: torch.Tensor, noisy: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Predicted noise ``[B, K, L]`` from the observed part ``cond`` (zeros on targets),
        the noisy targets ``noisy`` (zeros on the context) and diffusion steps ``t [B]``."""
        x = self.inp(torch.stack([cond, noisy], dim=-1))
        step = self.step_mlp(_sinusoid(t, self.config.step_embedding))
        side = self._side(x.shape[0])
        skips = 0.0
        for layer in self.layers:
            x, skip = layer(x, side, step)
            skips = skips + skip
        return self.out(skips / math.sqrt(len(self.layers))).squeeze(-1)

    def loss(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Denoising loss on the target days of windows ``x [B, context + block, F]``."""
        x0 = x.transpose(1, 2)  # [B, K, L]
        B = x0.shape[0]
        t = torch.randint(0, self.config.diffusion_steps, (B,), generator=generator,
                          device=x.device)
        ab = self.alpha_bar[t][:, None, None]
        noise = torch.randn(x0.shape, generator=generator, device=x.device, dtype=x0.dtype)
        xt = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
        m = self.cond_mask
        pred = self.denoise(x0 * m, xt * (1 - m), t)
        tgt = (1 - m).expand_as(x0)
        return ((pred - noise) ** 2 * tgt).sum() / tgt.sum()

    def _schedule(self) -> list[int]:
        n = max(1, min(self.config.sample_steps, self.config.diffusion_steps))
        steps = torch.linspace(self.config.diffusion_steps - 1, 0, n).round().long().tolist()
        return list(dict.fromkeys(steps))

    @torch.no_grad()
    def sample_block(self, context: torch.Tensor, generator: torch.Generator | None = None
                     ) -> torch.Tensor:
        """One block ``[B, block, F]`` after ``context [B, self.config.context, F]``."""
        c = self.config
        B = context.shape[0]
        L = c.context + c.block
        cond = torch.zeros(B, c.n_features, L, device=context.device, dtype=context.dtype)
        cond[:, :, :c.context] = context.transpose(1, 2)
        x = torch.randn(cond.shape, generator=generator, device=cond.device, dtype=cond.dtype)
        m = self.cond_mask
        steps = self._schedule()
        for i, t in enumerate(steps):
            ab = self.alpha_bar[t]
            ab_next = self.alpha_bar[steps[i + 1]] if i + 1 < len(steps) else \
                torch.ones((), device=ab.device)
            tt = torch.full((B,), t, device=cond.device, dtype=torch.long)
            eps = self.denoise(cond, x * (1 - m), tt)
            x0 = ((x - (1 - ab).sqrt() * eps) / ab.sqrt()).clamp(-SAMPLE_CLIP, SAMPLE_CLIP)
            if i + 1 == len(steps):
                x = x0
                break
            sigma = c.eta * ((1 - ab_next) / (1 - ab) * (1 - ab / ab_next)).clamp_min(0).sqrt()
            z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            x = ab_next.sqrt() * x0 + (1 - ab_next - sigma ** 2).clamp_min(0).sqrt() * eps \
                + sigma * z
        return x[:, :, c.context:].transpose(1, 2)

    @torch.no_grad()
    def sample(self, context: torch.Tensor, horizon: int,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """``horizon`` days after ``context [B, c, F]`` (``c >= config.context``), block by
        block; each block is batched across all stocks."""
        k = self.config.context
        if context.shape[1] < k:
            raise ValueError(f"diffusion needs {k} context days, got {context.shape[1]}")
        hist = context[:, -k:]
        out = []
        n = 0
        while n < horizon:
            blk = self.sample_block(hist, generator)
            out.append(blk)
            n += blk.shape[1]
            hist = torch.cat([hist, blk], dim=1)[:, -k:]
        return torch.cat(out, dim=1)[:, :horizon]


__all__ = ["CSDIConfig", "CSDIGenerator"]
