"""AlphaNet: financial-operator layers over feature images, BN, pooling, residual concat, MLP.

Architecture (AlphaNet v1, docs/methods/alphanet.md), for ``R`` rows (8), image width ``W``
(30), operator window ``d`` (10) and stride ``d`` (→ ``C = 3`` columns):

1. **Operator layer** on each ``d``-day block: ``ts_corr`` and ``ts_cov`` for every row pair
   (28 + 28), and per row ``ts_stddev ts_zscore ts_return decay_linear ts_mean`` (5 × 8)
   → ``96 × C``; then BatchNorm.
2. **Pooling** over the columns (window 3, stride 3): ``ts_max ts_min ts_mean`` → ``96 × 3 = 288``
   features; then BatchNorm.
3. **Residual concat** of the flattened BN'd operator output (96 · C = 288) with the pooled (288)
   → 576; ``FC(30) + ReLU + Dropout(0.5) + FC(1)``.

Operator semantics equal the expression language's on the same window (docs/operators.md): ``Std``,
``Cov``, ``Corr`` use ddof = 1; ``ts_zscore = (last − mean)/std`` (``TsZScore``); ``ts_return =
last/first − 1`` (``TsReturn(x, d−1)``); ``decay_linear`` = ``WMA`` with weights 1..d (newest
largest, normalised to sum 1); ``ts_mean`` = ``Mean``. Inside the network, results that the
language would call NaN are set to 0 instead so gradients stay finite: correlation with a constant
window, z-score of a constant window, a return from a zero first value. Constant windows are
detected exactly (max == min), not by a variance threshold.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import combinations
from typing import Any

import torch
from torch import nn

from alphaminer.neural.alphanet.images import DEFAULT_ROWS
from alphaminer.runtime import config_from

PAIR_OPS: tuple[str, ...] = ("ts_corr", "ts_cov")
SINGLE_OPS: tuple[str, ...] = ("ts_stddev", "ts_zscore", "ts_return", "decay_linear", "ts_mean")
POOL_OPS: tuple[str, ...] = ("ts_max", "ts_min", "ts_mean")


@dataclass(frozen=True)
class AlphaNetConfig:
    """Architecture of :class:`AlphaNet` (saved as JSON beside the weights)."""

    rows: tuple[str, ...] = DEFAULT_ROWS
    window: int = 30
    op_window: int = 10
    op_stride: int = 10
    pool_window: int = 3
    pool_stride: int = 3
    hidden: int = 30
    dropout: float = 0.5
    bn_momentum: float = 0.1

    def __post_init__(self) -> None:
        object.__setattr__(self, "rows", tuple(self.rows))
        if len(self.rows) < 2:
            raise ValueError(f"AlphaNet needs at least 2 image rows, got {self.rows}")
        if not 2 <= self.op_window <= self.window:
            raise ValueError(f"op_window must be in [2, window={self.window}], "
                             f"got {self.op_window}")
        if self.op_stride < 1 or self.pool_stride < 1:
            raise ValueError("op_stride and pool_stride must be >= 1")
        if not 1 <= self.pool_window <= self.n_columns:
            raise ValueError(f"pool_window must be in [1, {self.n_columns}] (operator columns), "
                             f"got {self.pool_window}")

    @property
    def n_rows(self) -> int:
        return len(self.rows)

    @property
    def n_columns(self) -> int:
        """Operator-layer output columns ``(W − d) // stride + 1``."""
        return (self.window - self.op_window) // self.op_stride + 1

    @property
    def n_pool_columns(self) -> int:
        return (self.n_columns - self.pool_window) // self.pool_stride + 1

    @property
    def n_pairs(self) -> int:
        return self.n_rows * (self.n_rows - 1) // 2

    @property
    def n_channels(self) -> int:
        """Operator channels: 2 per row pair + 5 per row (96 for 8 rows)."""
        return len(PAIR_OPS) * self.n_pairs + len(SINGLE_OPS) * self.n_rows

    @property
    def n_pooled(self) -> int:
        return self.n_channels * len(POOL_OPS) * self.n_pool_columns

    @property
    def fc_input(self) -> int:
        return self.n_channels * self.n_columns + self.n_pooled

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rows"] = list(self.rows)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AlphaNetConfig:
        d = dict(d)
        d["rows"] = tuple(d.get("rows", DEFAULT_ROWS))
        return config_from(cls, d)


def row_pairs(n_rows: int) -> tuple[list[int], list[int]]:
    """Index lists ``(i, j)`` of all row pairs ``i < j`` in lexicographic order."""
    pairs = list(combinations(range(n_rows), 2))
    return [p[0] for p in pairs], [p[1] for p in pairs]


def operator_names(config: AlphaNetConfig) -> list[str]:
    """Names of the operator channels, e.g. ``ts_corr(open,low,10)``, in channel order."""
    d, rows = config.op_window, config.rows
    ii, jj = row_pairs(config.n_rows)
    names = [f"{op}({rows[i]},{rows[j]},{d})" for op in PAIR_OPS for i, j in zip(ii, jj)]
    names += [f"{op}({r},{d})" for op in SINGLE_OPS for r in rows]
    return names


def pooled_names(config: AlphaNetConfig) -> list[str]:
    """Symbolic names of the pooled features, e.g. ``BN(ts_max(BN(ts_corr(open,low,10)),3))``.

    Order matches :meth:`AlphaNet.pooled_features` (channel-major, then pool op, then pool
    column; the column suffix ``[k]`` appears only when there is more than one pool column).
    """
    p, cols = config.pool_window, config.n_pool_columns
    out = []
    for ch in operator_names(config):
        for op in POOL_OPS:
            for k in range(cols):
                suffix = f"[{k}]" if cols > 1 else ""
                out.append(f"BN({op}(BN({ch}),{p})){suffix}")
    return out


def _safe_div(num: torch.Tensor, den: torch.Tensor, bad: torch.Tensor) -> torch.Tensor:
    """``num/den`` with 0 where ``bad`` (and a safe denominator so gradients stay finite)."""
    return torch.where(bad, 0.0, num / torch.where(bad, 1.0, den))


def operator_layer(x: torch.Tensor, window: int = 10, stride: int = 10) -> torch.Tensor:
    """The operator layer: ``x [B, R, W]`` → ``[B, 2·R(R−1)/2 + 5·R, C]`` (96 × 3 for 8 × 30).

    Channel order: ``ts_corr`` over pairs, ``ts_cov`` over pairs (pairs ``i < j`` in
    lexicographic order), then ``ts_stddev ts_zscore ts_return decay_linear ts_mean`` per row.
    All pair moments come from one batched ``[R, R]`` co-moment matrix per block (a matmul).
    """
    if x.ndim != 3:
        raise ValueError(f"operator_layer expects [B, R, W], got {tuple(x.shape)}")
    d = window
    blk = x.unfold(-1, d, stride).transpose(1, 2)  # [B, C, R, d]
    mean = blk.mean(dim=-1)  # [B, C, R]
    xc = blk - mean.unsqueeze(-1)
    const = blk.amax(dim=-1) == blk.amin(dim=-1)  # exact constant-window test
    comat = torch.matmul(xc, xc.transpose(-1, -2)) / (d - 1)  # [B, C, R, R]
    var = torch.diagonal(comat, dim1=-2, dim2=-1)
    # sqrt'(0) is infinite: take the root of a safe value and zero it where constant
    std = torch.where(const, 0.0, torch.sqrt(torch.where(const, 1.0, var)))
    ii, jj = torch.triu_indices(x.shape[1], x.shape[1], offset=1, device=x.device)
    cov = comat[..., ii, jj]  # [B, C, P]
    bad_pair = const[..., ii] | const[..., jj]
    corr = _safe_div(cov, std[..., ii] * std[..., jj], bad_pair).clamp(-1.0, 1.0)
    last, first = blk[..., -1], blk[..., 0]
    zscore = _safe_div(last - mean, std, const)
    ret = torch.where(first == 0, 0.0, last / torch.where(first == 0, 1.0, first) - 1.0)
    w = torch.arange(1, d + 1, device=x.device, dtype=x.dtype)
    decay = torch.matmul(blk, w / w.sum())  # [B, C, R]
    return torch.cat([corr, cov, std, zscore, ret, decay, mean], dim=-1).transpose(1, 2)


class AlphaNet(nn.Module):
    """AlphaNet v1 (see module docstring). ``forward(x [B, R, W]) -> [B]`` score."""

    def __init__(self, config: AlphaNetConfig | None = None) -> None:
        super().__init__()
        self.config = config or AlphaNetConfig()
        c = self.config
        self.bn_ops = nn.BatchNorm1d(c.n_channels, momentum=c.bn_momentum)
        self.bn_pool = nn.BatchNorm1d(c.n_pooled, momentum=c.bn_momentum)
        self.fc1 = nn.Linear(c.fc_input, c.hidden)
        self.act = nn.ReLU()
        self.drop = nn.Dropout(c.dropout)
        self.fc2 = nn.Linear(c.hidden, 1)
        # +1/-1: orientation of the score (the −|IC| loss is sign-blind; training sets this so
        # that a higher score means a higher expected return on the training set).
        self.register_buffer("output_sign", torch.ones(()))

    def operator_features(self, x: torch.Tensor) -> torch.Tensor:
        """BN'd operator-layer output ``[B, channels, C]``."""
        c = self.config
        if x.ndim != 3 or x.shape[1:] != (c.n_rows, c.window):
            raise ValueError(f"AlphaNet expects [B, {c.n_rows}, {c.window}] images, "
                             f"got {tuple(x.shape)}")
        return self.bn_ops(operator_layer(x.float(), c.op_window, c.op_stride))

    def pooled_features(self, ops: torch.Tensor) -> torch.Tensor:
        """BN'd pooled features ``[B, n_pooled]`` from :meth:`operator_features` output."""
        c = self.config
        blk = ops.unfold(-1, c.pool_window, c.pool_stride)  # [B, ch, C2, p]
        pooled = torch.stack([blk.amax(-1), blk.amin(-1), blk.mean(-1)], dim=-2)  # [B,ch,3,C2]
        return self.bn_pool(pooled.flatten(1))

    def head(self, ops: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
        z = torch.cat([ops.flatten(1), pooled], dim=1)
        out = self.fc2(self.drop(self.act(self.fc1(z)))).squeeze(-1)
        return out * self.output_sign

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ops = self.operator_features(x)
        return self.head(ops, self.pooled_features(ops))

    def feature_names(self) -> list[str]:
        """Symbolic names of the pooled features (see :func:`pooled_names`)."""
        return pooled_names(self.config)


__all__ = [
    "POOL_OPS", "PAIR_OPS", "SINGLE_OPS", "AlphaNet", "AlphaNetConfig", "operator_layer",
    "operator_names", "pooled_names", "row_pairs",
]
