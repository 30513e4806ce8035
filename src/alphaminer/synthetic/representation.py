"""Per-stock daily representation of OHLCV + vwap that generators model, with an exact inverse.

A day ``t`` is described relative to the previous day's close and volume (the *anchor*):

=========  ==========================================================================
``ret``    ``log(close_t / close_{t-1})``
``open``   ``log(open_t / close_t)``
``high``   ``log(log(high_t / max(open_t, close_t)) + EPS)``   (the gap above the body)
``low``    ``log(log(min(open_t, close_t) / low_t) + EPS)``    (the gap below the body)
``vwap``   ``log(vwap_t / close_t)``
``dvol``   ``log(volume_t / volume_{t-1})``
=========  ==========================================================================

Why this form: every coordinate is unconstrained, so a generator may emit any real vector, and
:func:`decode` still returns a valid bar: the body gaps go through ``max(exp(x) - EPS, 0) >= 0``
so ``low <= min(open, close) <= max(open, close) <= high``; vwap is clipped into
``[low, high]``; volume is an exponential, so positive. On data that already satisfies those
rules (every real bar), ``decode(encode(x)) == x`` up to floating-point rounding: the clip and
the ``max(·, 0)`` never bind. The ``log(· + EPS)`` on the gaps turns their skewed, often exactly
zero distribution into a roughly Gaussian one a mixture head can fit.

Generated coordinates are clipped to :data:`REP_BOUNDS` and cumulative log levels to
``±LEVEL_BOUND`` before exponentiating, so even a diverging generator decodes to finite prices
(real daily bars sit far inside those bounds, so exactness on real data is unaffected).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from alphaminer.panel import Panel

#: Representation coordinates, in order.
REP_FEATURES: tuple[str, ...] = ("ret", "open", "high", "low", "vwap", "dvol")
#: Raw per-day columns :func:`encode` takes and :func:`decode` returns, in order.
RAW_FEATURES: tuple[str, ...] = ("open", "high", "low", "close", "volume", "vwap")
EPS = 1e-4
#: Per-coordinate clip applied by :func:`decode` (log-space; real bars are far inside).
REP_BOUNDS: tuple[tuple[float, float], ...] = (
    (-2.0, 2.0), (-2.0, 2.0), (float(np.log(EPS)), float(np.log(2.0 + EPS))),
    (float(np.log(EPS)), float(np.log(2.0 + EPS))), (-2.0, 2.0), (-15.0, 15.0))
#: Bound on the cumulative log price / volume level relative to the anchor.
LEVEL_BOUND = 40.0


def encode(raw: torch.Tensor) -> torch.Tensor:
    """``raw [..., L + 1, 6]`` (:data:`RAW_FEATURES`) → representation ``[..., L, 6]``.

    Day 0 is the anchor (only its close and volume are used). Computed in float64.
    """
    x = raw.to(torch.float64)
    o, h, lo, c, v, w = x.unbind(-1)
    body_hi = torch.maximum(o, c)
    body_lo = torch.minimum(o, c)
    rep = torch.stack([
        torch.log(c[..., 1:] / c[..., :-1]),
        torch.log(o[..., 1:] / c[..., 1:]),
        torch.log(torch.log(h[..., 1:] / body_hi[..., 1:]) + EPS),
        torch.log(torch.log(body_lo[..., 1:] / lo[..., 1:]) + EPS),
        torch.log(w[..., 1:] / c[..., 1:]),
        torch.log(v[..., 1:] / v[..., :-1]),
    ], dim=-1)
    return rep


def decode(rep: torch.Tensor, anchor_close: torch.Tensor, anchor_volume: torch.Tensor
           ) -> torch.Tensor:
    """Representation ``[..., L, 6]`` + anchors ``[...]`` → raw bars ``[..., L, 6]`` (float64).

    Valid for any real input (see the module docstring); NaN in, NaN out.
    """
    x = rep.to(torch.float64)
    lo_b = torch.tensor([b[0] for b in REP_BOUNDS], dtype=x.dtype, device=x.device)
    hi_b = torch.tensor([b[1] for b in REP_BOUNDS], dtype=x.dtype, device=x.device)
    x = torch.maximum(torch.minimum(x, hi_b), lo_b)
    r, xo, xh, xl, xw, xv = x.unbind(-1)
    c0 = torch.as_tensor(anchor_close, dtype=x.dtype, device=x.device).unsqueeze(-1)
    v0 = torch.as_tensor(anchor_volume, dtype=x.dtype, device=x.device).unsqueeze(-1)
    close = c0 * torch.exp(torch.cumsum(r, -1).clamp(-LEVEL_BOUND, LEVEL_BOUND))
    volume = v0 * torch.exp(torch.cumsum(xv, -1).clamp(-LEVEL_BOUND, LEVEL_BOUND))
    open_ = close * torch.exp(xo)
    high = torch.maximum(open_, close) * torch.exp((torch.exp(xh) - EPS).clamp_min(0.0))
    low = torch.minimum(open_, close) * torch.exp(-(torch.exp(xl) - EPS).clamp_min(0.0))
    vwap = torch.minimum(torch.maximum(close * torch.exp(xw), low), high)
    return torch.stack([open_, high, low, close, volume, vwap], dim=-1)


@dataclass
class Scaler:
    """Per-coordinate standardisation fitted on training days (networks see ~N(0, 1))."""

    mean: torch.Tensor
    std: torch.Tensor

    @classmethod
    def fit(cls, rep: torch.Tensor, valid: torch.Tensor) -> Scaler:
        x = rep[valid].to(torch.float64)
        if x.shape[0] < 2:
            raise ValueError("need at least two valid training days to fit the scaler")
        return cls(mean=x.mean(0).float(), std=x.std(0).clamp_min(1e-6).float())

    def transform(self, rep: torch.Tensor) -> torch.Tensor:
        return ((rep - self.mean.to(rep)) / self.std.to(rep)).to(torch.float32)

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(torch.float64) * self.std.to(x.device, torch.float64) + \
            self.mean.to(x.device, torch.float64)

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, list[float]]) -> Scaler:
        return cls(mean=torch.tensor(d["mean"]), std=torch.tensor(d["std"]))


def panel_raw(panel: Panel) -> torch.Tensor:
    """``[T, S, 6]`` float64 raw bars (:data:`RAW_FEATURES`) of a panel (CPU)."""
    return torch.stack([panel.feature(f).detach().cpu().to(torch.float64)
                        for f in RAW_FEATURES], dim=-1)


@dataclass
class RealSequences:
    """A panel segment in representation space, aligned with its days.

    ``rep[t, s]`` describes day ``t`` of stock ``s`` relative to day ``t - 1``; ``valid[t, s]``
    says both days were observed and tradable with positive finite prices and volume (day 0 is
    never valid). ``close`` / ``volume`` are the raw levels used as anchors.
    """

    rep: torch.Tensor       # [T, S, 6] float64
    valid: torch.Tensor     # [T, S] bool
    close: torch.Tensor     # [T, S] float64
    volume: torch.Tensor    # [T, S] float64
    dates: object
    instruments: object

    @classmethod
    def from_panel(cls, panel: Panel) -> RealSequences:
        raw = panel_raw(panel)
        ok_day = (panel.observed & panel.tradable).cpu() & torch.isfinite(raw).all(-1) & \
            (raw > 0).all(-1)
        ok_day = ok_day & (raw[..., 1] >= torch.maximum(raw[..., 0], raw[..., 3])) & \
            (raw[..., 2] <= torch.minimum(raw[..., 0], raw[..., 3])) & \
            (raw[..., 5] >= raw[..., 2]) & (raw[..., 5] <= raw[..., 1])
        T, S = ok_day.shape
        rep = torch.full((T, S, len(REP_FEATURES)), float("nan"), dtype=torch.float64)
        valid = torch.zeros(T, S, dtype=torch.bool)
        if T > 1:
            safe = torch.where(ok_day.unsqueeze(-1), raw, torch.ones_like(raw))
            rep[1:] = encode(safe.transpose(0, 1)).transpose(0, 1)
            valid[1:] = ok_day[1:] & ok_day[:-1]
            valid &= torch.isfinite(rep).all(-1)
        return cls(rep=rep, valid=valid, close=raw[..., 3], volume=raw[..., 4],
                   dates=panel.dates, instruments=panel.instruments)

    def window_ends(self, length: int) -> torch.Tensor:
        """``[T, S]`` bool: days ``e`` such that rep days ``[e - length + 1, e]`` are all valid."""
        bad = (~self.valid).to(torch.int64).cumsum(0)
        T = self.valid.shape[0]
        out = torch.zeros_like(self.valid)
        if length <= T:
            prev = torch.cat([torch.zeros(1, bad.shape[1], dtype=bad.dtype), bad[:-length]])
            out[length - 1:] = (bad[length - 1:] - prev) == 0
        return out


def panel_from_bars(bars: torch.Tensor, dates: object, instruments: list[str],
                    meta: dict | None = None) -> Panel:
    """``bars [S, T, 6]`` (:data:`RAW_FEATURES`) → a fully observed :class:`Panel` with amount."""
    b = bars.transpose(0, 1).to(torch.float64)
    o, h, lo, c, v, w = b.unbind(-1)
    values = torch.stack([o, h, lo, c, v, w, w * v], dim=-1).to(torch.float32)
    T, S = values.shape[:2]
    ones = torch.ones(T, S, dtype=torch.bool)
    return Panel(values=values, dates=dates, instruments=instruments,
                 features=("open", "high", "low", "close", "volume", "vwap", "amount"),
                 observed=ones, universe=ones.clone(), tradable=ones.clone(), meta=meta or {})


__all__ = ["EPS", "LEVEL_BOUND", "RAW_FEATURES", "REP_BOUNDS", "REP_FEATURES", "RealSequences",
           "Scaler", "decode", "encode", "panel_from_bars", "panel_raw"]
