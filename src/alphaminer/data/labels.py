"""Forward returns — the project's one definition — and the labels built from them.

:func:`forward_returns` is the single home of ``P[t+lag+h] / P[t+lag] - 1``: labels, the
backtest's quantile returns and the simulator's ground-truth ICs all call it.

- ``kind="close"``: ``Ref(close, -h) / close - 1`` — the h-day close-to-close return.
- ``kind="vwap_lag"``: ``Ref(vwap, -(h+1)) / Ref(vwap, -1) - 1`` — enter at tomorrow's vwap,
  exit h days later at vwap (one day of execution lag).

Labels are NaN where the needed future lies beyond the data and outside the point-in-time
universe; they equal the expression evaluator's value of :func:`label_expression` (tested).
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


def forward_returns(price: torch.Tensor, horizon: int, lag: int = 0,
                    valid: torch.Tensor | None = None,
                    entry_valid: torch.Tensor | None = None) -> torch.Tensor:
    """``out[t] = price[t+lag+horizon] / price[t+lag] - 1`` along dim 0, in ``price``'s dtype.

    NaN where either end lies beyond the data, where ``valid`` (``[T, ...]`` bool: the price is
    usable) is False at either end, where ``entry_valid`` is False at the entry day ``t + lag``
    (e.g. not tradable), where the entry price is 0 and where the result is not finite. The
    arithmetic is the evaluator's ``Sub(Div(Ref(p,-(lag+h)),Ref(p,-lag)),1)`` (a division, then
    subtracting 1, both in ``price``'s dtype), so float32 labels are bit-identical to it.
    """
    if isinstance(horizon, bool) or int(horizon) != horizon or horizon < 1:
        raise ValueError(f"horizon must be a positive integer, got {horizon!r}")
    if isinstance(lag, bool) or int(lag) != lag or lag < 0:
        raise ValueError(f"lag must be a non-negative integer, got {lag!r}")
    h, lag = int(horizon), int(lag)
    T = price.shape[0]
    out = torch.full_like(price, float("nan"))
    n = T - lag - h
    if n <= 0:
        return out
    entry, exit_ = price[lag:lag + n], price[lag + h:]
    ok = entry != 0
    if valid is not None:
        ok = ok & valid[lag:lag + n] & valid[lag + h:]
    if entry_valid is not None:
        ok = ok & entry_valid[lag:lag + n]
    r = torch.div(exit_, torch.where(ok, entry, torch.ones_like(entry))) - 1.0
    out[:n] = torch.where(ok & torch.isfinite(r), r, float("nan"))
    return out


def make_labels(panel: Any, horizon: int = 20, kind: str = "close") -> torch.Tensor:
    """``[T, S]`` float32 label tensor aligned with ``panel`` (see module docstring)."""
    label_expression(horizon, kind)
    if horizon >= panel.T:
        raise ValueError(f"horizon {horizon} >= number of dates {panel.T}: every label is NaN")
    feature = "close" if kind == "close" else "vwap"
    price = panel.feature(feature).to(torch.float32)
    price = torch.where(torch.isfinite(price), price, float("nan"))
    labels = forward_returns(price, horizon, lag=0 if kind == "close" else 1)
    return panel.mask_universe(labels)


def make_label_frame(panel: Any, horizon: int = 20, kind: str = "close",
                     name: str = "label") -> pd.DataFrame:
    """Long ``datetime, instrument, <name>`` frame of the finite labels (catalog-friendly)."""
    return panel.frame(make_labels(panel, horizon, kind), name=name)
