"""Causal Transformer generator: autoregressive, Gaussian-mixture head (as the GRU)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from .mixture import MixtureHead


@dataclass
class TransformerConfig:
    """Architecture of a :class:`CausalTransformer`; ``max_len`` is its attention span (days)."""

    d_model: int = 64
    heads: int = 4
    layers: int = 2
    ff: int = 128
    components: int = 4
    dropout: float = 0.0
    n_features: int = 6
    max_len: int = 64

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class CausalTransformer(nn.Module):
    """Decoder-only Transformer over days with learned positions inside its span."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.inp = nn.Linear(c.n_features, c.d_model)
        self.pos = nn.Parameter(torch.randn(c.max_len, c.d_model) * 0.02)
        layer = nn.TransformerEncoderLayer(c.d_model, c.heads, c.ff, c.dropout,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, c.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(c.d_model)
        self.head = MixtureHead(c.d_model, c.n_features, c.components)

    @property
    def window_length(self) -> int:
        return self.config.max_len + 1

    def _hidden(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[1]
        if n > self.config.max_len:
            raise ValueError(f"sequence of {n} days exceeds max_len {self.config.max_len}")
        mask = nn.Transformer.generate_square_subsequent_mask(n, device=x.device, dtype=x.dtype)
        h = self.encoder(self.inp(x) + self.pos[:n], mask=mask, is_causal=True)
        return self.norm(h)

    def step_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, L, F]`` (``L <= max_len + 1``) → ``[B, L - 1]`` next-day log-densities."""
        return MixtureHead.log_prob(self.head(self._hidden(x[:, :-1])), x[:, 1:])

    def loss(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return -self.step_log_probs(x).mean() / self.config.n_features

    @torch.no_grad()
    def sample(self, context: torch.Tensor, horizon: int,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Roll out ``horizon`` days after ``context [B, c, F]``, attending to the last
        ``max_len`` days (a sliding window, batched across stocks)."""
        span = self.config.max_len
        seq = context[:, -span:]
        days = []
        for _ in range(horizon):
            x = MixtureHead.sample(self.head(self._hidden(seq)[:, -1]), generator)
            days.append(x)
            seq = torch.cat([seq, x.unsqueeze(1)], dim=1)[:, -span:]
        return torch.stack(days, dim=1)


__all__ = ["CausalTransformer", "TransformerConfig"]
