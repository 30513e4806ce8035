"""Gaussian-mixture likelihood head shared by the autoregressive generators and the evaluator.

A day's representation vector ``x ∈ R^F`` is modelled as a mixture of ``K`` diagonal Gaussians
with shared component weights, so the components capture joint regimes (a wide-range, high-volume
day moves every coordinate at once) while the density stays cheap and exact:
``log p(x) = logsumexp_k [log π_k + Σ_f log N(x_f; μ_kf, σ_kf)]``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

LOG_SIGMA_MIN, LOG_SIGMA_MAX = -7.0, 3.0
#: Samples fed back into an autoregressive model are clipped to ±this many standard units, so a
#: rare extreme draw cannot make the rollout diverge (real standardised days sit well inside).
SAMPLE_CLIP = 8.0


class MixtureHead(nn.Module):
    """``h [..., H]`` → mixture parameters over ``F`` features with ``K`` components."""

    def __init__(self, hidden: int, n_features: int, n_components: int) -> None:
        super().__init__()
        self.F, self.K = n_features, n_components
        self.proj = nn.Linear(hidden, n_components * (1 + 2 * n_features))

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.proj(h)
        K, F = self.K, self.F
        logit = out[..., :K]
        mu = out[..., K:K + K * F].unflatten(-1, (K, F))
        log_sigma = out[..., K + K * F:].unflatten(-1, (K, F)).clamp(LOG_SIGMA_MIN,
                                                                     LOG_SIGMA_MAX)
        return torch.log_softmax(logit, -1), mu, log_sigma

    @staticmethod
    def log_prob(params: tuple[torch.Tensor, torch.Tensor, torch.Tensor], x: torch.Tensor
                 ) -> torch.Tensor:
        """``log p(x)`` for ``x [..., F]`` → ``[...]``."""
        log_pi, mu, log_sigma = params
        z = (x.unsqueeze(-2) - mu) * torch.exp(-log_sigma)
        comp = -0.5 * z.pow(2) - log_sigma - 0.5 * math.log(2 * math.pi)
        return torch.logsumexp(log_pi + comp.sum(-1), dim=-1)

    @staticmethod
    def sample(params: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
               generator: torch.Generator | None = None) -> torch.Tensor:
        """One draw per leading index → ``[..., F]`` (clipped to ``±SAMPLE_CLIP``)."""
        log_pi, mu, log_sigma = params
        lead = log_pi.shape[:-1]
        k = torch.multinomial(log_pi.reshape(-1, log_pi.shape[-1]).exp(), 1,
                              generator=generator).reshape(*lead, 1, 1)
        F = mu.shape[-1]
        m = torch.gather(mu, -2, k.expand(*lead, 1, F)).squeeze(-2)
        s = torch.gather(log_sigma, -2, k.expand(*lead, 1, F)).squeeze(-2).exp()
        eps = torch.randn(m.shape, generator=generator, device=m.device, dtype=m.dtype)
        return (m + s * eps).clamp(-SAMPLE_CLIP, SAMPLE_CLIP)


__all__ = ["SAMPLE_CLIP", "MixtureHead"]
