"""Small adapters shared by several pipelines' nodes (catalog formats ↔ library objects)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import torch

from alphaminer.data import Splits
from alphaminer.panel import Panel

LABEL_COL = "label"
SIGNAL_COL = "signal"


def labels_tensor(panel: Panel, labels: pd.DataFrame) -> torch.Tensor:
    """The long ``labels`` dataset aligned to ``panel`` as ``[T, S]`` (NaN where unknown)."""
    return panel.wide(labels, LABEL_COL)


def split_ranges(splits: Mapping[str, Any]) -> dict[str, tuple[int, int]]:
    """Half-open day-index ranges per segment from the ``splits`` JSON dataset."""
    return dict(Splits.from_dict(splits).ranges)


def signal_frame(panel: Panel, signal: torch.Tensor) -> pd.DataFrame:
    return panel.frame(signal, name=SIGNAL_COL)


def signal_tensor(panel: Panel, signal: pd.DataFrame) -> torch.Tensor:
    return panel.wide(signal, SIGNAL_COL)
