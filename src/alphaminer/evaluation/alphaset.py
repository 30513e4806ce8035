"""Alpha sets — the hand-off format between every miner and the combination stage.

An alpha set is a list of formulas (canonical strings) with optional weights and per-split
metrics. It is stored as JSON (no factor values: they are re-evaluated from the panel, which is
fast and keeps the artefact small and diffable). Every method — the classic library, the
simulator's planted oracle, Alpha2, AlphaFormer, GP, AlphaGen — writes one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from alphaminer.evaluation.metrics import ic_summary_table
from alphaminer.expr import Evaluator, parse
from alphaminer.panel import Panel

log = logging.getLogger(__name__)


def split_summary(
    values: torch.Tensor,
    target: torch.Tensor,
    ranges: Mapping[str, tuple[int, int]],
    names: Sequence[str],
    min_stocks: int = 10,
) -> pd.DataFrame:
    """IC / RankIC / ICIR of each factor ``[K, T, S]`` on every split.

    ``ranges`` maps a split name to a half-open ``(i0, i1)`` range on the day axis. Columns are
    ``ic_<split>``, ``rank_ic_<split>``, ``icir_<split>``, ``rank_icir_<split>``; rows are named.
    """
    if values.ndim != 3:
        raise ValueError(f"values must be [K, T, S], got {tuple(values.shape)}")
    out = pd.DataFrame(index=pd.Index([str(n) for n in names], name="factor"))
    for split, (i0, i1) in ranges.items():
        if i1 <= i0:
            raise ValueError(f"split {split!r} is empty: range ({i0}, {i1})")
        tab = ic_summary_table(values[:, i0:i1], target[i0:i1], names, min_stocks)
        for col in ("ic", "rank_ic", "icir", "rank_icir"):
            out[f"{col}_{split}"] = tab[col].to_numpy()
    return out


@dataclass
class AlphaSet:
    """Formulas a method produced, plus what it knows about them.

    Attributes:
        method: producing method (``library``, ``oracle``, ``alpha2`` ...).
        formulas: canonical infix strings (validated by parsing).
        names: short names (default ``alpha_00``...).
        weights: the method's own combination weights, if it has any (e.g. a pool's lasso).
        metrics: one dict per alpha (``ic_train``, ``rank_ic_test``, ...).
        meta: anything else worth keeping (search statistics, config, ...).
    """

    method: str
    formulas: list[str]
    names: list[str] = field(default_factory=list)
    weights: list[float] | None = None
    metrics: list[dict[str, float]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.formulas = [str(parse(f)) for f in self.formulas]
        if not self.names:
            self.names = [f"alpha_{i:02d}" for i in range(len(self.formulas))]
        if len(self.names) != len(self.formulas):
            raise ValueError(f"{len(self.names)} names for {len(self.formulas)} formulas")
        if self.weights is not None and len(self.weights) != len(self.formulas):
            raise ValueError(f"{len(self.weights)} weights for {len(self.formulas)} formulas")
        if self.metrics and len(self.metrics) != len(self.formulas):
            raise ValueError(f"{len(self.metrics)} metric rows for {len(self.formulas)} formulas")

    def __len__(self) -> int:
        return len(self.formulas)

    def values(self, panel: Panel, evaluator: Evaluator | None = None) -> torch.Tensor:
        """``[K, T, S]`` factor values on ``panel`` (universe-masked)."""
        if not self.formulas:
            return torch.empty((0, panel.T, panel.S), dtype=torch.float32, device=panel.device)
        _check_formulas(self.names, self.formulas, panel)
        ev = evaluator or Evaluator(panel)
        return ev.evaluate_many(self.formulas)

    def with_metrics(self, table: pd.DataFrame) -> AlphaSet:
        """A copy whose ``metrics`` are the rows of ``table`` (indexed like :attr:`names`)."""
        rows = [{k: float(v) for k, v in table.loc[n].items()} for n in self.names]
        return AlphaSet(self.method, list(self.formulas), list(self.names),
                        None if self.weights is None else list(self.weights), rows,
                        dict(self.meta))

    def table(self) -> pd.DataFrame:
        """One row per alpha: ``name, formula, weight`` and the metric columns."""
        df = pd.DataFrame({"name": self.names, "formula": self.formulas})
        df["weight"] = np.nan if self.weights is None else self.weights
        if self.metrics:
            df = pd.concat([df, pd.DataFrame(self.metrics)], axis=1)
        return df

    def to_dict(self) -> dict[str, Any]:
        def clean(x: Any) -> Any:
            return None if isinstance(x, float) and not np.isfinite(x) else x

        return {
            "method": self.method,
            "alphas": [
                {"name": n, "formula": f,
                 "weight": None if self.weights is None else clean(float(self.weights[i])),
                 "metrics": {k: clean(v) for k, v in (self.metrics[i] if self.metrics
                                                      else {}).items()}}
                for i, (n, f) in enumerate(zip(self.names, self.formulas))
            ],
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AlphaSet:
        if "alphas" not in d or "method" not in d:
            raise ValueError("an alpha set needs 'method' and 'alphas' keys")
        alphas = list(d["alphas"])
        weights = [a.get("weight") for a in alphas]
        has_w = bool(alphas) and all(w is not None for w in weights)
        metrics = [{k: (np.nan if v is None else float(v))
                    for k, v in (a.get("metrics") or {}).items()} for a in alphas]
        return cls(
            method=str(d["method"]),
            formulas=[a["formula"] for a in alphas],
            names=[a.get("name") or f"alpha_{i:02d}" for i, a in enumerate(alphas)],
            weights=[float(w) for w in weights] if has_w else None,
            metrics=metrics if any(metrics) else [],
            meta=dict(d.get("meta") or {}),
        )


def _check_formulas(names: list[str], formulas: list[str], panel: Panel) -> None:
    """Name the formula behind an unknown feature; warn where a window outruns the history."""
    from alphaminer.expr.ast import features_used, max_lookback

    for name, text in zip(names, formulas):
        node = parse(text)
        for feat in sorted(features_used(node)):
            if not panel.has_feature(feat):
                try:
                    panel.feature(feat)
                except KeyError as e:
                    raise KeyError(f"formula {name!r} = {text}: {e.args[0]}") from None
        need = max_lookback(node)
        if need >= panel.T:
            log.warning("formula %r = %s needs %d days of history but the panel has %d: its "
                        "values are all NaN", name, text, need + 1, panel.T)
