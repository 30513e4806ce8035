"""AlphaGen's policy network: a shared LSTM over the RPN prefix with policy and value heads.

AlphaFormer Table 11 (AlphaGen baseline): a shared 2-layer LSTM of 128 units and policy and
value heads of two hidden layers of 64 each. The input at step ``t`` is the embedding of the
previous token (a begin token at ``t = 0``). Implements
:class:`alphaminer.mining.ppo.SequencePolicy`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def _mlp(d_in: int, hidden: int, layers: int, d_out: int) -> nn.Sequential:
    mods: list[nn.Module] = []
    d = d_in
    for _ in range(layers):
        mods += [nn.Linear(d, hidden), nn.ReLU()]
        d = hidden
    mods.append(nn.Linear(d, d_out))
    return nn.Sequential(*mods)


class LSTMPolicy(nn.Module):
    """Token policy: ``Embedding → LSTM(layers × hidden) → {policy MLP, value MLP}``."""

    def __init__(self, n_tokens: int, hidden: int = 128, layers: int = 2, head_hidden: int = 64,
                 head_layers: int = 2, embed_dim: int | None = None) -> None:
        super().__init__()
        self.n_tokens = int(n_tokens)
        self.bos = self.n_tokens  # the begin token's embedding row
        e = int(embed_dim or hidden)
        self.embed = nn.Embedding(self.n_tokens + 1, e)
        self.lstm = nn.LSTM(e, hidden, num_layers=layers, batch_first=True)
        self.pi = _mlp(hidden, head_hidden, head_layers, self.n_tokens)
        self.v = _mlp(hidden, head_hidden, head_layers, 1)

    def initial_state(self, batch: int, context: Any = None) -> None:
        return None  # zeros, created by the LSTM

    def step(self, prev: torch.Tensor, state: Any, context: Any = None
             ) -> tuple[torch.Tensor, torch.Tensor, Any]:
        inp = torch.where(prev < 0, torch.full_like(prev, self.bos), prev)
        out, state = self.lstm(self.embed(inp).unsqueeze(1), state)
        h = out[:, 0]
        return self.pi(h), self.v(h).squeeze(-1), state

    def evaluate(self, tokens: torch.Tensor, context: Any = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        B = tokens.shape[0]
        inp = torch.cat([torch.full((B, 1), self.bos, dtype=torch.long, device=tokens.device),
                         tokens[:, :-1]], dim=1)
        out, _ = self.lstm(self.embed(inp))
        return self.pi(out), self.v(out).squeeze(-1)
