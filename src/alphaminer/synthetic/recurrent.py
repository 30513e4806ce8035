"""Recurrent density models: the GRU generator and the LSTM evaluator (one class, two cells).

Both model ``P(x_t | x_<t)`` over standardised representation days with a
:class:`~alphaminer.synthetic.mixture.MixtureHead`. The GRU *samples* futures given a real
context; the LSTM, trained separately on real data only, *scores* a candidate future given its
context (the sum of per-day log-densities, i.e. the log of the paper's product Π P(x_t | x_<t)).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from .mixture import MixtureHead


@dataclass
class RecurrentConfig:
    """Architecture of a :class:`RecurrentDensity` (``cell`` is ``gru`` or ``lstm``)."""

    cell: str = "gru"
    hidden: int = 64
    layers: int = 2
    components: int = 4
    dropout: float = 0.0
    n_features: int = 6
    #: days per training window (teacher forcing over the whole window)
    train_window: int = 64

    def __post_init__(self) -> None:
        if self.cell not in ("gru", "lstm"):
            raise ValueError(f"cell must be 'gru' or 'lstm', got {self.cell!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RecurrentDensity(nn.Module):
    """Autoregressive GRU/LSTM with a Gaussian-mixture head."""

    def __init__(self, config: RecurrentConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.inp = nn.Linear(c.n_features, c.hidden)
        rnn = nn.GRU if c.cell == "gru" else nn.LSTM
        self.rnn = rnn(c.hidden, c.hidden, c.layers, batch_first=True,
                       dropout=c.dropout if c.layers > 1 else 0.0)
        self.head = MixtureHead(c.hidden, c.n_features, c.components)

    @property
    def window_length(self) -> int:
        return self.config.train_window

    def step_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, L, F]`` → ``[B, L - 1]``: ``log p(x_t | x_<t)`` for ``t = 1 … L - 1``."""
        out, _ = self.rnn(self.inp(x[:, :-1]))
        return MixtureHead.log_prob(self.head(out), x[:, 1:])

    def loss(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean negative log-likelihood per day and coordinate (teacher forcing)."""
        return -self.step_log_probs(x).mean() / self.config.n_features

    @torch.no_grad()
    def log_likelihood(self, context: torch.Tensor, candidate: torch.Tensor) -> torch.Tensor:
        """``Σ_t log p(candidate_t | context, candidate_<t)`` → ``[B]`` (context ``[B, c, F]``,
        candidate ``[B, T, F]``, ``c >= 1``)."""
        if context.shape[1] < 1:
            raise ValueError("the evaluator needs at least one context day")
        seq = torch.cat([context, candidate], dim=1)
        return self.step_log_probs(seq)[:, -candidate.shape[1]:].sum(-1)

    @torch.no_grad()
    def sample(self, context: torch.Tensor, horizon: int,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Roll out ``horizon`` days after ``context [B, c, F]`` → ``[B, horizon, F]``.

        The loop is over generated days only (inherent to autoregression); every step is
        batched across all stocks and carries the recurrent state, so the cost is O(horizon).
        """
        out, state = self.rnn(self.inp(context))
        params = self.head(out[:, -1])
        days = []
        for _ in range(horizon):
            x = MixtureHead.sample(params, generator)
            days.append(x)
            out, state = self.rnn(self.inp(x.unsqueeze(1)), state)
            params = self.head(out[:, -1])
        return torch.stack(days, dim=1)


__all__ = ["RecurrentConfig", "RecurrentDensity"]
