"""Shared pieces of every combination model: inputs, segments, the result type and metrics.

Conventions (see ``docs/combination.md``):

- ``values`` is ``[K, T, S]`` float32 (NaN where missing), ``y`` is ``[T, S]`` — the forward
  return of day ``t`` that becomes known ``horizon`` days later (use ``h + 1`` for the
  execution-lag label ``Ref(vwap, -(h+1)) / Ref(vwap, -1) - 1``).
- Segments are half-open day ranges ``[i0, i1)`` on the panel's day axis.
- A *fit row* of a segment is a day ``t`` with ``i0 <= t`` and ``t + horizon < i1``: its label is
  fully known inside the segment. Fitting, early stopping, the tuning objective and the reported
  per-segment metrics all use fit rows only, so no label that reaches past a segment's end is
  ever used (or scored).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import torch

from alphaminer.data.splits import SEGMENTS, Splits
from alphaminer.evaluation import daily_ic, daily_rank_ic, ic_summary
from alphaminer.expr.kernels import cs_rank, cs_zscore
from alphaminer.runtime import config_from as _config_from

#: per-day treatments of the label a combiner can be fitted to (:func:`transform_target`)
TARGETS: tuple[str, ...] = ("zscore", "rank", "raw", "winsor")


def segment_splits(splits: Any, T: int) -> Splits:
    """The train/valid/test :class:`~alphaminer.data.splits.Splits` a combination model needs.

    Any form :meth:`Splits.coerce` accepts; the three segments must exist, in order, and train
    must not be empty.
    """
    out = Splits.coerce(splits, T, required=SEGMENTS)
    if not (out.train[1] <= out.valid[0] and out.valid[1] <= out.test[0]):
        raise ValueError(
            f"segments must be ordered and disjoint (train < valid < test); got {out.ranges}")
    if out.train[1] - out.train[0] < 1:
        raise ValueError(f"train segment is empty: {out.train}")
    return out


@dataclass
class CombinationResult:
    """What every combination model returns.

    Attributes:
        method: registry name of the model.
        signal: ``[T, S]`` float32 combined signal (NaN where not computable). Day ``t`` uses
            factor values of day ``t`` and labels known strictly before ``t`` (train-fitted models
            use train labels only).
        model: JSON-serialisable description of the fitted model (for trees it carries the
            booster's native JSON/text dump — never a pickle).
        metrics: flat ``{"<segment>_<stat>": float}`` (ic, rank_ic, icir, rank_icir, n_days) of
            the signal on each segment's fit rows.
        params: the hyper-parameters actually used (the best ones when tuned).
        selected: names of the factors the model uses.
        study: optuna trials frame when tuned, else ``None``.
        daily_weights: ``[T, K]`` per-day linear weights (``dynamic_linear`` only).
        candidates: ``auto`` only: every candidate's ``[T, S]`` signal, keyed by candidate name
            (the chosen one included), so combiners can be compared side by side.
    """

    method: str
    signal: torch.Tensor
    model: dict[str, Any]
    metrics: dict[str, float]
    params: dict[str, Any]
    selected: list[str] = field(default_factory=list)
    study: pd.DataFrame | None = None
    daily_weights: torch.Tensor | None = None
    candidates: dict[str, torch.Tensor] | None = None

    def model_json(self) -> str:
        """The model description as a JSON string (what the catalog stores)."""
        return json.dumps(self.model, allow_nan=True)


@dataclass
class CombinationInputs:
    """Validated inputs plus lazily cached derived tensors shared by models and optuna trials."""

    values: torch.Tensor
    names: list[str]
    y: torch.Tensor
    splits: Splits
    horizon: int
    min_stocks: int = 10

    @classmethod
    def build(  # noqa: PLR0917 - mirrors combine()'s positional signature
        cls,
        values: torch.Tensor,
        names: Sequence[str],
        y: torch.Tensor,
        splits: Any,
        horizon: int,
        min_stocks: int = 10,
    ) -> CombinationInputs:
        if not isinstance(values, torch.Tensor):
            values = torch.as_tensor(np.asarray(values, dtype=np.float32))
        if not isinstance(y, torch.Tensor):
            y = torch.as_tensor(np.asarray(y, dtype=np.float32))
        if values.ndim != 3:
            raise ValueError(f"values must be [K, T, S], got shape {tuple(values.shape)}")
        if y.ndim != 2:
            raise ValueError(f"y must be [T, S], got shape {tuple(y.shape)}")
        K, T, S = values.shape
        if tuple(y.shape) != (T, S):
            raise ValueError(f"y has shape {tuple(y.shape)} but values is [K={K}, T={T}, S={S}]")
        names = [str(n) for n in names]
        if len(names) != K:
            raise ValueError(f"names has {len(names)} entries but values has K={K} factors")
        if K == 0:
            raise ValueError("values holds no factors (K = 0)")
        if int(horizon) < 0:
            raise ValueError(f"horizon must be >= 0, got {horizon}")
        values = values.to(torch.float32)
        y = y.to(device=values.device, dtype=torch.float32)
        return cls(
            values=values,
            names=names,
            y=y,
            splits=segment_splits(splits, T),
            horizon=int(horizon),
            min_stocks=int(min_stocks),
        )

    @property
    def K(self) -> int:
        return int(self.values.shape[0])

    @property
    def T(self) -> int:
        return int(self.values.shape[1])

    @property
    def S(self) -> int:
        return int(self.values.shape[2])

    @cached_property
    def z(self) -> torch.Tensor:
        """``[K, T, S]`` per-day cross-sectional z-scores (NaN kept)."""
        return cs_zscore(self.values)

    @cached_property
    def factor_ic(self) -> torch.Tensor:
        """``[K, T]`` daily Pearson IC of every factor with the label."""
        return daily_ic(self.values, self.y, min_stocks=self.min_stocks)

    @cached_property
    def factor_rank_ic(self) -> torch.Tensor:
        """``[K, T]`` daily rank IC of every factor with the label."""
        return daily_rank_ic(self.values, self.y, min_stocks=self.min_stocks)

    def target(self, kind: str, winsor_quantile: float = 0.01) -> torch.Tensor:
        """The regression target: the label, per-day z-scored / ranked / winsorised, or raw."""
        return transform_target(self.y, kind, winsor_quantile)

    def fit_rows(self, seg: str) -> tuple[int, int]:
        return self.splits.fit_rows(seg, self.horizon)

    def metrics(self, signal: torch.Tensor) -> dict[str, float]:
        return segment_metrics(signal, self.y, self.splits, self.horizon, self.min_stocks)

    def top_k_by_valid_ic(self, k: int) -> list[int]:
        """Indices of the ``k`` factors with the largest |mean daily IC| on valid fit rows.

        Ties and NaNs are broken deterministically (NaN last, then by position).
        """
        v0, v1 = self.fit_rows("valid")
        if v1 <= v0:
            raise ValueError(
                f"valid segment {self.splits.valid} has no day whose {self.horizon}-day label "
                "ends inside it; cannot rank factors by validation IC"
            )
        ic = self.factor_ic[:, v0:v1]
        valid = ~torch.isnan(ic)
        n = valid.sum(dim=1)
        mean = torch.where(valid, ic, torch.zeros_like(ic)).sum(dim=1) / n.clamp_min(1)
        score = torch.where(n > 0, mean.abs(), torch.full_like(mean, -1.0)).cpu().numpy()
        order = np.lexsort((np.arange(self.K), -score))
        return [int(i) for i in order[: max(1, min(int(k), self.K))]]


def transform_target(y: torch.Tensor, kind: str, winsor_quantile: float = 0.01) -> torch.Tensor:
    """``zscore``: per-day z-score; ``rank``: per-day rank centred to (-0.5, 0.5]; ``winsor``:
    per-day clip at the ``q`` and ``1 − q`` quantiles of the finite values (linear
    interpolation); ``raw``. NaN stays NaN. Per day, so no day's value depends on another day.

    Why: the 20-day label is fat-tailed; a squared loss on it lets a few extreme names set a
    linear model's weights, and ``rank`` / ``winsor`` bound their influence."""
    if kind == "zscore":
        return cs_zscore(y)
    if kind == "rank":
        return cs_rank(y) - 0.5
    if kind == "winsor":
        if not 0.0 < winsor_quantile < 0.5:
            raise ValueError(f"winsor_quantile must be in (0, 0.5), got {winsor_quantile}")
        q = torch.tensor([winsor_quantile, 1.0 - winsor_quantile], dtype=torch.float64,
                         device=y.device)
        y64 = y.to(torch.float64)
        bounds = torch.nanquantile(y64, q, dim=-1)  # [2, T]
        lo, hi = bounds[0].unsqueeze(-1), bounds[1].unsqueeze(-1)
        return torch.minimum(torch.maximum(y64, lo), hi).to(y.dtype)
    if kind == "raw":
        return y
    raise ValueError(f"target must be one of {TARGETS}, got {kind!r}")


def segment_metrics(
    signal: torch.Tensor,
    y: torch.Tensor,
    splits: Splits,
    horizon: int,
    min_stocks: int = 10,
) -> dict[str, float]:
    """IC / RankIC / ICIR of ``signal`` on each segment's fit rows, as a flat float dict."""
    out: dict[str, float] = {}
    for seg in SEGMENTS:
        i0, i1 = splits.fit_rows(seg, horizon)
        if i1 <= i0:
            stats: dict[str, Any] = {}
        else:
            stats = ic_summary(signal[i0:i1], y[i0:i1], min_stocks=min_stocks).to_dict()
        for key in ("ic", "rank_ic", "icir", "rank_icir"):
            val = stats.get(key, float("nan"))
            out[f"{seg}_{key}"] = float(val)
        out[f"{seg}_days"] = float(stats.get("n_days", 0))
    return out


def objective_value(metrics: Mapping[str, float]) -> float:
    """The tuning objective: validation IC (non-finite → -1, the worst possible IC)."""
    v = float(metrics.get("valid_ic", float("nan")))
    return v if math.isfinite(v) else -1.0


def config_from(config_cls: type, config: Any) -> Any:
    """Build ``config_cls`` from ``None``, a mapping (unknown keys raise) or an instance."""
    return _config_from(config_cls, config)


def jsonable(x: Any) -> Any:
    """Convert tensors/arrays/numpy scalars (recursively) into plain JSON types."""
    if isinstance(x, torch.Tensor):
        return jsonable(x.detach().cpu().numpy())
    if isinstance(x, np.ndarray):
        return [jsonable(v) for v in x.tolist()] if x.ndim else jsonable(x.item())
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, Mapping):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    return x
