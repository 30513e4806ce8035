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
    """Purged segments as half-open index ranges ``[i0, i1)`` into ``dates``.

    The project's one in-memory form of a split: :meth:`coerce` turns every form a split arrives
    in (this object, its JSON from :meth:`to_dict`, or a mapping of bounds) into it. ``dates`` is
    None when only the number of days is known.
    """

    dates: pd.DatetimeIndex | None
    ranges: dict[str, tuple[int, int]]
    horizon: int = 0
    purge: int = 0
    requested: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return list(self.ranges)

    @property
    def n_days(self) -> int:
        if self.dates is not None:
            return len(self.dates)
        return max((i1 for _, i1 in self.ranges.values()), default=0)

    def get(self, name: str) -> tuple[int, int]:
        """``(i0, i1)`` of one segment; the error lists the segments there are."""
        if name not in self.ranges:
            raise KeyError(f"no split {name!r}; have {self.names}")
        return self.ranges[name]

    @property
    def train(self) -> tuple[int, int]:
        return self.get("train")

    @property
    def valid(self) -> tuple[int, int]:
        return self.get("valid")

    @property
    def test(self) -> tuple[int, int]:
        return self.get("test")

    def fit_rows(self, name: str, horizon: int) -> tuple[int, int]:
        """``[i0, e)`` with ``e = max(i0, i1 - horizon)``: days whose label ends inside ``name``."""
        i0, i1 = self.get(name)
        return i0, max(i0, i1 - horizon)

    def ranges_dict(self) -> dict[str, list[int]]:
        """``{name: [i0, i1]}`` (JSON-friendly)."""
        return {n: [i0, i1] for n, (i0, i1) in self.ranges.items()}

    def mask(self, name: str) -> np.ndarray:
        """``[T]`` bool mask of the segment's days."""
        i0, i1 = self.get(name)
        m = np.zeros(self.n_days, dtype=bool)
        m[i0:i1] = True
        return m

    @property
    def masks(self) -> dict[str, np.ndarray]:
        return {n: self.mask(n) for n in self.ranges}

    def segment_dates(self, name: str) -> pd.DatetimeIndex:
        if self.dates is None:
            raise ValueError("these splits carry no dates (built from a day count)")
        i0, i1 = self.get(name)
        return self.dates[i0:i1]

    def slice(self, panel: Any, name: str) -> Any:
        """The panel restricted to one segment (views, no copy)."""
        i0, i1 = self.get(name)
        return panel.slice_dates(i0, i1)

    @classmethod
    def coerce(cls, splits: Any, dates: pd.DatetimeIndex | Sequence[Any] | int,
               required: Sequence[str] = ()) -> Splits:
        """Any form of a split → :class:`Splits` over ``dates`` (or a number of days).

        Accepted: a :class:`Splits` (its dates must be ``dates``), its :meth:`to_dict` JSON, a
        mapping ``{name: bounds}`` or an object with ``train/valid/test`` attributes. Bounds are a
        ``(start, end)`` pair, a ``slice`` or a ``range`` (step 1): integers are positions
        ``[start, end)``, other values dates, inclusive on both ends; ``None`` is the first/last
        day. Segments must lie inside the days, must not overlap, and must include ``required``.
        """
        if isinstance(dates, int | np.integer):
            idx, T = None, int(dates)
        else:
            idx = pd.DatetimeIndex(pd.to_datetime(list(dates)))
            T = len(idx)
        horizon, purge, requested = 0, 0, {}
        if isinstance(splits, Splits) or (isinstance(splits, Mapping)
                                          and isinstance(splits.get("segments"), Mapping)):
            sp = splits if isinstance(splits, Splits) else cls.from_dict(splits)
            if idx is not None and sp.dates is not None and (
                    len(sp.dates) != T or not (sp.dates == idx).all()):
                raise ValueError("splits were made for other dates than the panel's")
            horizon, purge, requested = sp.horizon, sp.purge, dict(sp.requested)
            bounds: Mapping[str, Any] = sp.ranges
            idx = idx if idx is not None else sp.dates
        elif isinstance(splits, Mapping):
            bounds = splits
        elif all(hasattr(splits, k) for k in SEGMENTS):
            bounds = {k: getattr(splits, k) for k in SEGMENTS}
        else:
            raise TypeError(
                "splits must be a Splits, its to_dict() JSON, a mapping {'train': (i0, i1), ...} "
                f"or have train/valid/test attributes; got {type(splits).__name__}")
        ranges = {str(n): _position_range(b, str(n), idx, T) for n, b in bounds.items()}
        missing = [r for r in required if r not in ranges]
        if missing:
            raise KeyError(f"splits need the segment(s) {missing}; got {sorted(ranges)}")
        order = sorted(ranges, key=lambda n: ranges[n])
        for a, b in zip(order, order[1:]):
            if ranges[b][0] < ranges[a][1]:
                raise ValueError(f"split segments overlap: {a} {ranges[a]} and {b} {ranges[b]}")
        ranges = {n: ranges[n] for n in order}
        return cls(dates=idx, ranges=ranges, horizon=horizon, purge=purge, requested=requested)

    def to_dict(self) -> dict[str, Any]:
        if self.dates is None:
            raise ValueError("these splits carry no dates (built from a day count); no JSON form")
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


def _position_range(raw: Any, name: str, dates: pd.DatetimeIndex | None, T: int
                    ) -> tuple[int, int]:
    """One segment's bounds (pair, slice or range; positions or inclusive dates) → ``(i0, i1)``."""
    if isinstance(raw, slice | range):
        if raw.step not in (None, 1):
            raise ValueError(f"split {name!r} must have step 1, got {raw}")
        a, b = raw.start, raw.stop
    else:
        try:
            a, b = raw
        except (TypeError, ValueError):
            raise ValueError(
                f"split {name!r} must be a (start, end) pair, a slice or a range; got {raw!r}"
            ) from None

    def pos(v: Any, side: str) -> int:
        if v is None:
            return 0 if side == "left" else T
        if isinstance(v, int | np.integer) and not isinstance(v, bool):
            return int(v)
        if dates is None:
            raise ValueError(f"split {name!r}: date bound {v!r} needs the panel's dates")
        return int(dates.searchsorted(pd.Timestamp(v), side=side))

    i0, i1 = pos(a, "left"), pos(b, "right")
    if not 0 <= i0 <= i1 <= T:
        raise ValueError(f"split {name!r}={raw!r} gives positions [{i0}, {i1}) outside the "
                         f"{T} days [0, {T}]")
    return i0, i1


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
