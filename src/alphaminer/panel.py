"""The Panel data model: a dense ``[T, S, F]`` float32 tensor plus its axes and masks.

Everything above this module (expressions, metrics, miners, backtests) talks in Panels and
``[T, S]`` tensors. On disk a panel is a *long* parquet file, one row per (``datetime``,
``instrument``); :meth:`Panel.from_long` / :meth:`Panel.to_long` convert between the two, and
:meth:`Panel.save` / :meth:`Panel.load` keep the metadata (e.g. the vwap-fallback flag) in the
parquet schema so nothing is lost in the catalog round trip.

Masks (all ``[T, S]`` bool):

- ``observed``: a row existed for (day, stock) in the cleaned data (listed, not missing).
- ``universe``: point-in-time membership. Operators run on each stock's *full* history and the
  result is masked by membership afterwards (compute-then-mask, docs/data.md).
- ``tradable``: the stock could be traded that day (observed, not suspended, not limit-locked).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

#: Canonical feature columns of a panel, in order. ``vwap`` may come from the fallback.
PRICE_FEATURES: tuple[str, ...] = ("open", "high", "low", "close", "vwap")
BASE_FEATURES: tuple[str, ...] = ("open", "high", "low", "close", "volume", "vwap", "amount")
DATE_COL = "datetime"
INSTRUMENT_COL = "instrument"
MASK_COLUMNS: dict[str, str] = {
    "in_universe": "universe",
    "is_tradable": "tradable",
}
_META_KEY = b"alphaminer.panel.meta"


def _as_bool_tensor(x: Any, shape: tuple[int, int], device: torch.device) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x, dtype=bool), device=device)
    if tuple(t.shape) != shape:
        raise ValueError(f"mask has shape {tuple(t.shape)}, expected {shape}")
    return t


@dataclass(eq=False)
class Panel:
    """Dense market panel.

    Attributes:
        values: ``[T, S, F]`` float32 tensor; NaN where a value is missing.
        dates: trading days, strictly increasing, length T.
        instruments: instrument codes, unique, length S.
        features: feature names, length F (``values[..., i]`` is ``features[i]``).
        observed / universe / tradable: ``[T, S]`` bool masks (see module docstring).
        meta: free-form JSON-serialisable metadata (source, vwap fallback flag, ...).
    """

    values: torch.Tensor
    dates: pd.DatetimeIndex
    instruments: pd.Index
    features: tuple[str, ...]
    observed: torch.Tensor
    universe: torch.Tensor
    tradable: torch.Tensor
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.values.ndim != 3:
            raise ValueError(f"values must be [T, S, F], got shape {tuple(self.values.shape)}")
        if self.values.dtype != torch.float32:
            self.values = self.values.to(torch.float32)
        self.dates = pd.DatetimeIndex(self.dates)
        self.instruments = pd.Index([str(i) for i in self.instruments], dtype=object)
        self.features = tuple(self.features)
        T, S, F = self.values.shape
        if (len(self.dates), len(self.instruments), len(self.features)) != (T, S, F):
            raise ValueError(
                f"axes ({len(self.dates)} dates, {len(self.instruments)} instruments, "
                f"{len(self.features)} features) do not match values shape {(T, S, F)}"
            )
        if T > 1 and not self.dates.is_monotonic_increasing or not self.dates.is_unique:
            raise ValueError("dates must be unique and strictly increasing")
        if not self.instruments.is_unique:
            raise ValueError("instruments must be unique")
        if len(set(self.features)) != F:
            raise ValueError(f"duplicate feature names: {self.features}")
        for name in ("observed", "universe", "tradable"):
            m = getattr(self, name)
            if tuple(m.shape) != (T, S):
                raise ValueError(f"{name} mask has shape {tuple(m.shape)}, expected {(T, S)}")
            if m.dtype != torch.bool:
                setattr(self, name, m.to(torch.bool))

    # ------------------------------------------------------------------ shape & access
    @property
    def T(self) -> int:
        return int(self.values.shape[0])

    @property
    def S(self) -> int:
        return int(self.values.shape[1])

    @property
    def F(self) -> int:
        return int(self.values.shape[2])

    @property
    def device(self) -> torch.device:
        return self.values.device

    def feature(self, name: str) -> torch.Tensor:
        """``[T, S]`` view of one feature."""
        try:
            i = self.features.index(name)
        except ValueError:
            import difflib

            close = difflib.get_close_matches(name, self.features, n=3, cutoff=0.6)
            raise KeyError(
                f"feature {name!r} not in panel; available: {', '.join(self.features)}"
                + (f"; did you mean {' or '.join(map(repr, close))}?" if close else "")
            ) from None
        return self.values[..., i]

    def has_feature(self, name: str) -> bool:
        return name in self.features

    def to(self, device: str | torch.device) -> Panel:
        device = torch.device(device)
        return replace(
            self,
            values=self.values.to(device),
            observed=self.observed.to(device),
            universe=self.universe.to(device),
            tradable=self.tradable.to(device),
            meta=dict(self.meta),
        )

    def mask_universe(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x`` ([T, S] or [..., T, S]) with NaN outside the point-in-time universe."""
        return torch.where(self.universe, x, torch.full_like(x, float("nan")))

    def date_index(self, date: str | pd.Timestamp, side: str = "left") -> int:
        """Position of ``date`` in :attr:`dates` (``side`` as in ``searchsorted``)."""
        return int(self.dates.searchsorted(pd.Timestamp(date), side=side))

    def slice_dates(self, start: int | str | pd.Timestamp | None = None,
                    end: int | str | pd.Timestamp | None = None) -> Panel:
        """Rows ``start..end`` (inclusive dates or half-open integer positions), as views."""
        i0 = 0 if start is None else (
            start if isinstance(start, int) else self.date_index(start, "left"))
        i1 = self.T if end is None else (
            end if isinstance(end, int) else self.date_index(end, "right"))
        sl = slice(i0, i1)
        return replace(
            self,
            values=self.values[sl],
            dates=self.dates[sl],
            observed=self.observed[sl],
            universe=self.universe[sl],
            tradable=self.tradable[sl],
            meta=dict(self.meta),
        )

    def select_instruments(self, instruments: Sequence[str]) -> Panel:
        idx = self.instruments.get_indexer(list(instruments))
        if (idx < 0).any():
            missing = [i for i, j in zip(instruments, idx) if j < 0][:5]
            raise KeyError(f"instruments not in panel: {missing}")
        ix = torch.as_tensor(idx, device=self.device)
        return replace(
            self,
            values=self.values[:, ix],
            instruments=self.instruments[idx],
            observed=self.observed[:, ix],
            universe=self.universe[:, ix],
            tradable=self.tradable[:, ix],
            meta=dict(self.meta),
        )

    # ------------------------------------------------------------------ long <-> dense
    @classmethod
    def from_long(
        cls,
        df: pd.DataFrame,
        features: Sequence[str] | None = None,
        meta: dict[str, Any] | None = None,
        date_col: str = DATE_COL,
        instrument_col: str = INSTRUMENT_COL,
    ) -> Panel:
        """Build a dense panel from a long frame (one row per date × instrument).

        Feature columns default to every float column except the mask columns. ``in_universe``
        and ``is_tradable`` columns become masks (missing → observed). Duplicate keys raise.
        """
        for col in (date_col, instrument_col):
            if col not in df.columns:
                raise KeyError(f"long panel needs a {col!r} column; got {list(df.columns)}")
        if features is None:
            skip = {date_col, instrument_col, *MASK_COLUMNS}
            features = [c for c in df.columns
                        if c not in skip and pd.api.types.is_numeric_dtype(df[c])
                        and not pd.api.types.is_bool_dtype(df[c])]
        features = list(features)
        dates_ser = pd.to_datetime(df[date_col])
        d_codes, d_uni = pd.factorize(dates_ser, sort=True)
        i_codes, i_uni = pd.factorize(df[instrument_col].astype(str), sort=True)
        T, S = len(d_uni), len(i_uni)
        flat = d_codes.astype(np.int64) * S + i_codes
        if len(flat) and np.bincount(flat, minlength=T * S).max() > 1:
            dup = df[pd.Series(flat).duplicated(keep=False).to_numpy()].head(5)
            raise ValueError(f"duplicate (date, instrument) rows, e.g.:\n{dup}")
        vals = np.full((T * S, len(features)), np.nan, dtype=np.float32)
        if features:
            vals[flat] = df[features].to_numpy(dtype=np.float32, na_value=np.nan)
        observed = np.zeros(T * S, dtype=bool)
        observed[flat] = True
        masks: dict[str, np.ndarray] = {}
        for col, name in MASK_COLUMNS.items():
            m = np.zeros(T * S, dtype=bool)
            if col in df.columns:
                m[flat] = df[col].fillna(False).to_numpy(dtype=bool)
            else:
                m[flat] = True
            masks[name] = m.reshape(T, S)
        return cls(
            values=torch.from_numpy(vals.reshape(T, S, len(features))),
            dates=pd.DatetimeIndex(d_uni),
            instruments=pd.Index(i_uni),
            features=tuple(features),
            observed=torch.from_numpy(observed.reshape(T, S)),
            universe=torch.from_numpy(masks["universe"] & observed.reshape(T, S)),
            tradable=torch.from_numpy(masks["tradable"] & observed.reshape(T, S)),
            meta=dict(meta or {}),
        )

    def to_long(self, only_observed: bool = True) -> pd.DataFrame:
        """Long frame with ``datetime, instrument, <features>, in_universe, is_tradable``."""
        T, S, F = self.values.shape
        vals = self.values.detach().cpu().numpy().reshape(T * S, F)
        keep = self.observed.cpu().numpy().reshape(-1) if only_observed else np.ones(T * S, bool)
        dates = np.repeat(self.dates.values, S)[keep]
        inst = np.tile(np.asarray(self.instruments, dtype=object), T)[keep]
        out = pd.DataFrame({DATE_COL: dates, INSTRUMENT_COL: inst})
        for j, f in enumerate(self.features):
            out[f] = vals[keep, j]
        out["in_universe"] = self.universe.cpu().numpy().reshape(-1)[keep]
        out["is_tradable"] = self.tradable.cpu().numpy().reshape(-1)[keep]
        return out

    def frame(self, x: torch.Tensor, name: str = "value") -> pd.DataFrame:
        """Turn a ``[T, S]`` tensor aligned with this panel into a long frame (NaNs dropped)."""
        return self.frames({name: x})

    def frames(self, columns: dict[str, torch.Tensor]) -> pd.DataFrame:
        """Several ``[T, S]`` tensors as one long frame, one column each, on every
        (day, stock) where at least one is finite (the others NaN there)."""
        arrs = {}
        for name, x in columns.items():
            if tuple(x.shape) != (self.T, self.S):
                raise ValueError(f"expected [{self.T}, {self.S}], got {tuple(x.shape)}")
            arrs[name] = x.detach().cpu().numpy().reshape(-1)
        keep = np.zeros(self.T * self.S, dtype=bool)
        for a in arrs.values():
            keep |= np.isfinite(a)
        return pd.DataFrame({
            DATE_COL: np.repeat(self.dates.values, self.S)[keep],
            INSTRUMENT_COL: np.tile(np.asarray(self.instruments, dtype=object), self.T)[keep],
            **{name: a[keep] for name, a in arrs.items()},
        })

    def wide(self, frame: pd.DataFrame, column: str) -> torch.Tensor:
        """Inverse of :meth:`frame`: align a long frame's ``column`` to ``[T, S]`` (NaN-filled)."""
        d = self.dates.get_indexer(pd.to_datetime(frame[DATE_COL]))
        s = self.instruments.get_indexer(frame[INSTRUMENT_COL].astype(str))
        ok = (d >= 0) & (s >= 0)
        out = np.full((self.T, self.S), np.nan, dtype=np.float32)
        out[d[ok], s[ok]] = frame[column].to_numpy(dtype=np.float32)[ok]
        return torch.from_numpy(out).to(self.device)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        """Write the long parquet with :attr:`meta` stored in the schema metadata."""
        table = pa.Table.from_pandas(self.to_long(), preserve_index=False)
        md = dict(table.schema.metadata or {})
        md[_META_KEY] = json.dumps(self.meta, default=str).encode()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table.replace_schema_metadata(md), path)

    @classmethod
    def load(cls, path: str | Path) -> Panel:
        table = pq.read_table(path)
        md = table.schema.metadata or {}
        meta = json.loads(md[_META_KEY]) if _META_KEY in md else {}
        return cls.from_long(table.to_pandas(), meta=meta)

    def fingerprint(self) -> str:
        """Stable content hash (values, axes, masks) for run manifests."""
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.values.detach().cpu().numpy()).tobytes())
        h.update("|".join(map(str, self.dates.values)).encode())
        h.update("|".join(self.instruments).encode())
        h.update("|".join(self.features).encode())
        for m in (self.observed, self.universe, self.tradable):
            h.update(np.packbits(m.cpu().numpy()).tobytes())
        return h.hexdigest()[:16]
