"""Forward-return labels, computed through the expression evaluator (one semantics everywhere).

- ``kind="close"``: ``Ref(close, -h) / close - 1`` — the h-day close-to-close return.
- ``kind="vwap_lag"``: ``Ref(vwap, -(h+1)) / Ref(vwap, -1) - 1`` — enter at tomorrow's vwap,
  exit h days later at vwap (one day of execution lag).

Labels are NaN where the needed future lies beyond the data (``Ref`` with a negative window runs
off the end) and outside the point-in-time universe (the evaluator masks its output).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch

LABEL_KINDS: tuple[str, ...] = ("close", "vwap_lag")


def label_expression(horizon: int = 20, kind: str = "close") -> str:
    """Canonical formula of the label (in the expression language)."""
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise ValueError(f"horizon must be a positive integer number of days, got {horizon!r}")
    if kind == "close":
        return f"Sub(Div(Ref(close,-{horizon}d),close),1)"
    if kind == "vwap_lag":
        return f"Sub(Div(Ref(vwap,-{horizon + 1}d),Ref(vwap,-1d)),1)"
    raise ValueError(f"unknown label kind {kind!r}; valid: {', '.join(LABEL_KINDS)}")


def label_lookahead(horizon: int = 20, kind: str = "close") -> int:
    """How many days past ``t`` the label at ``t`` reads (the purge gap splits need)."""
    label_expression(horizon, kind)
    return horizon + 1 if kind == "vwap_lag" else horizon


def make_labels(panel: Any, horizon: int = 20, kind: str = "close") -> torch.Tensor:
    """``[T, S]`` float32 label tensor aligned with ``panel`` (see module docstring)."""
    from alphaminer.expr import Evaluator

    formula = label_expression(horizon, kind)
    if horizon >= panel.T:
        raise ValueError(f"horizon {horizon} >= number of dates {panel.T}: every label is NaN")
    return Evaluator(panel).evaluate(formula)


def make_label_frame(panel: Any, horizon: int = 20, kind: str = "close",
                     name: str = "label") -> pd.DataFrame:
    """Long ``datetime, instrument, <name>`` frame of the finite labels (catalog-friendly)."""
    return panel.frame(make_labels(panel, horizon, kind), name=name)
