"""Train / valid / test splits by date range (or fractions), with a purge gap.

Purge rule: between two consecutive segments at least ``purge`` trading days are left out, taken
from the **end of the earlier segment**. A label at day ``t`` reads prices up to ``t + h``; with
the earlier segment ending at ``next_start - purge - 1`` and ``purge = h``, its last label reads
up to ``next_start - 1``, so no label of one segment overlaps the next. We trim the earlier
segment (not the start of the later one) so evaluation segments begin exactly on the dates a
researcher asked for. A user-given gap between segments counts towards the purge. The last
segment needs no trim: its final labels are NaN because the future is beyond the data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from alphaminer.runtime import config_from

SEGMENTS: tuple[str, ...] = ("train", "valid", "test")


@dataclass
class SplitConfig:
    """Segment boundaries.

    Attributes:
        segments: ``{name: [start, end]}`` inclusive date strings, in chronological order
            (default names train/valid/test). Empty → use ``fractions``.
        fractions: shares of the trading days per segment when no dates are given.
        horizon: label horizon in days; default purge gap.
        purge: days left out between segments (None → ``horizon``; use ``horizon + 1`` for the
            vwap execution-lag label).
    """

    segments: dict[str, Sequence[str]] = field(default_factory=dict)
    fractions: Sequence[float] = (0.6, 0.2, 0.2)
    horizon: int = 20
    purge: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.horizon, bool) or not isinstance(self.horizon, int) \
                or self.horizon < 0:
            raise ValueError(f"horizon must be a non-negative integer, got {self.horizon!r}")
        if self.purge is None:
            self.purge = self.horizon
        if not isinstance(self.purge, int) or self.purge < 0:
            raise ValueError(f"purge must be a non-negative integer, got {self.purge!r}")
        self.segments = dict(self.segments or {})
        for name, rng in self.segments.items():
            if not isinstance(rng, Sequence) or isinstance(rng, str) or len(rng) != 2:
                raise ValueError(f"split {name!r} must be [start, end], got {rng!r}")
            try:
                a, b = pd.Timestamp(rng[0]), pd.Timestamp(rng[1])
            except (ValueError, TypeError):
                raise ValueError(f"split {name!r} has a bad date in {list(rng)!r}") from None
            if a is pd.NaT or b is pd.NaT:
                raise ValueError(f"split {name!r} has a bad date in {list(rng)!r}")
            if a > b:
                raise ValueError(f"split {name!r} is reversed: start {rng[0]} > end {rng[1]}")
        names = list(self.segments)
        for p, q in zip(names, names[1:]):
            if pd.Timestamp(self.segments[p][1]) >= pd.Timestamp(self.segments[q][0]):
                raise ValueError(
                    f"splits {p!r} {list(self.segments[p])} and {q!r} "
                    f"{list(self.segments[q])} overlap or are out of order")
        if not self.segments:
            fr = [float(f) for f in self.fractions]
            if len(fr) < 1 or any(f <= 0 for f in fr) or sum(fr) > 1 + 1e-9:
                raise ValueError(
                    f"fractions must be positive and sum to at most 1, got {list(self.fractions)}")
            if len(fr) > len(SEGMENTS):
                raise ValueError(f"at most {len(SEGMENTS)} fractions (train/valid/test)")
            self.fractions = tuple(fr)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SplitConfig:
        d = dict(d)
        if any(k in d for k in SEGMENTS):  # flat {train: [a, b], ...} form
            segs = {k: d.pop(k) for k in SEGMENTS if k in d and d[k] is not None}
            d["segments"] = {**segs, **d.get("segments", {})}
        return config_from(cls, d)


@dataclass
class Splits:
    """Purged segments as half-open index ranges ``[i0, i1)`` into ``dates``."""

    dates: pd.DatetimeIndex
    ranges: dict[str, tuple[int, int]]
    horizon: int
    purge: int
    requested: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return list(self.ranges)

    def mask(self, name: str) -> np.ndarray:
        """``[T]`` bool mask of the segment's days."""
        if name not in self.ranges:
            raise KeyError(f"no split {name!r}; have {self.names}")
        m = np.zeros(len(self.dates), dtype=bool)
        i0, i1 = self.ranges[name]
        m[i0:i1] = True
        return m

    @property
    def masks(self) -> dict[str, np.ndarray]:
        return {n: self.mask(n) for n in self.ranges}

    def segment_dates(self, name: str) -> pd.DatetimeIndex:
        i0, i1 = self.ranges[name]
        return self.dates[i0:i1]

    def slice(self, panel: Any, name: str) -> Any:
        """The panel restricted to one segment (views, no copy)."""
        i0, i1 = self.ranges[name]
        return panel.slice_dates(i0, i1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "horizon": self.horizon,
            "purge": self.purge,
            "n_dates": len(self.dates),
            "dates": [d.strftime("%Y-%m-%d") for d in self.dates],
            "segments": {
                n: {"start": self.dates[i0].strftime("%Y-%m-%d"),
                    "end": self.dates[i1 - 1].strftime("%Y-%m-%d"),
                    "start_index": i0, "end_index": i1, "n_days": i1 - i0,
                    **({"requested": list(self.requested[n])} if n in self.requested else {})}
                for n, (i0, i1) in self.ranges.items()
            },
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Splits:
        dates = pd.DatetimeIndex(pd.to_datetime(d["dates"]))
        ranges = {n: (int(s["start_index"]), int(s["end_index"]))
                  for n, s in d["segments"].items()}
        req = {n: tuple(s["requested"]) for n, s in d["segments"].items() if "requested" in s}
        return cls(dates=dates, ranges=ranges, horizon=int(d["horizon"]),
                   purge=int(d["purge"]), requested=req)  # type: ignore[arg-type]


def make_splits(dates: Sequence[Any] | pd.DatetimeIndex,
                config: SplitConfig | Mapping[str, Any] | None = None) -> Splits:
    """Purged splits over the trading days ``dates`` (e.g. ``panel.dates``)."""
    cfg = config if isinstance(config, SplitConfig) else SplitConfig.from_dict(config or {})
    dates = pd.DatetimeIndex(pd.to_datetime(list(dates)))
    T = len(dates)
    if T == 0:
        raise ValueError("make_splits: no dates")
    if not dates.is_monotonic_increasing or not dates.is_unique:
        raise ValueError("make_splits: dates must be unique and increasing")
    raw: dict[str, tuple[int, int]] = {}
    requested: dict[str, tuple[str, str]] = {}
    if cfg.segments:
        for name, (a, b) in cfg.segments.items():
            i0 = int(dates.searchsorted(pd.Timestamp(a), side="left"))
            i1 = int(dates.searchsorted(pd.Timestamp(b), side="right"))
            if i1 <= i0:
                where = ("after the data" if i0 >= T else "before the data" if i1 == 0
                         else "between trading days")
                raise ValueError(
                    f"split {name!r} [{a}, {b}] contains no trading day ({where}; data spans "
                    f"{dates[0].date()} .. {dates[-1].date()})")
            raw[name] = (i0, i1)
            requested[name] = (str(a), str(b))
    else:
        bounds = np.floor(np.cumsum([0.0, *cfg.fractions]) * T + 1e-9).astype(int)
        for name, i0, i1 in zip(SEGMENTS, bounds[:-1], bounds[1:]):
            if i1 <= i0:
                raise ValueError(f"split {name!r} from fractions {list(cfg.fractions)} is empty "
                                 f"({T} dates)")
            raw[name] = (int(i0), int(i1))
    names = list(raw)
    ranges = dict(raw)
    for p, q in zip(names, names[1:]):
        i0, i1 = ranges[p]
        end = min(i1, ranges[q][0] - cfg.purge)
        if end <= i0:
            raise ValueError(
                f"split {p!r} is empty after purging {cfg.purge} days before {q!r} "
                f"(it has {i1 - i0} trading days; give it more days or lower the purge)")
        ranges[p] = (i0, end)
    return Splits(dates=dates, ranges=ranges, horizon=cfg.horizon, purge=int(cfg.purge),
                  requested=requested)
