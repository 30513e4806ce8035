"""Reader and writer for the qlib binary data store (daily frequency).

Layout (``<root>/``)::

    calendars/day.txt                 one trading day per line (YYYY-MM-DD), ascending
    instruments/<universe>.txt        lines ``INSTRUMENT<TAB>start<TAB>end`` (membership spans;
                                      one instrument may have several lines)
    features/<instrument>/<field>.day.bin
                                      little-endian float32; element 0 = calendar index of the
                                      first day, then one value per calendar day from there on
                                      (NaN for holes)

qlib stores prices *already adjusted* (price × factor) and volume adjusted (volume / factor), with
the ``factor`` field holding the adjustment factor. We keep those semantics: the reader returns
adjusted prices with ``adj_factor = factor`` and ``RawData.adjusted = True`` so cleaning does not
adjust a second time; :func:`write_qlib_store` writes an adjusted long panel the same way.
Calendar days where every price field is NaN are holes (not listed / suspended) and produce no row.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .schema import DATE_COL, INSTRUMENT_COL, PRICE_COLS, DataValidationError, RawData

QLIB_FIELDS: tuple[str, ...] = ("open", "high", "low", "close", "volume", "vwap", "amount",
                                "factor")
_REQUIRED_FIELDS = ("open", "high", "low", "close", "volume")


def _read_calendar(root: Path) -> pd.DatetimeIndex:
    cal_path = root / "calendars" / "day.txt"
    if not cal_path.exists():
        raise DataValidationError(
            f"qlib store {root}: calendar file {cal_path} is missing (needs calendars/day.txt)"
        )
    lines = [s.strip() for s in cal_path.read_text().splitlines() if s.strip()]
    if not lines:
        raise DataValidationError(f"qlib store {root}: calendar {cal_path} is empty")
    cal = pd.to_datetime(pd.Series(lines), errors="coerce")
    if cal.isna().any():
        bad = [lines[i] for i in np.flatnonzero(cal.isna().to_numpy())[:3]]
        raise DataValidationError(f"{cal_path}: unparseable calendar line(s) {bad}")
    idx = pd.DatetimeIndex(cal).astype("datetime64[ns]")
    if not idx.is_monotonic_increasing or not idx.is_unique:
        raise DataValidationError(f"{cal_path}: calendar dates must be unique and ascending")
    return idx


def _read_instruments(root: Path, universe: str) -> pd.DataFrame:
    inst_dir = root / "instruments"
    path = inst_dir / f"{universe}.txt"
    if not path.exists():
        avail = sorted(p.stem for p in inst_dir.glob("*.txt")) if inst_dir.exists() else []
        raise DataValidationError(
            f"qlib store {root}: universe file {path} is missing; available universes: {avail}"
        )
    try:
        spans = pd.read_csv(path, sep="\t", header=None, names=["instrument", "start", "end"],
                            dtype=str)
    except pd.errors.EmptyDataError:
        raise DataValidationError(f"{path}: universe file is empty") from None
    if spans.isna().any().any():
        raise DataValidationError(
            f"{path}: each line must be INSTRUMENT<TAB>start<TAB>end; bad lines:\n"
            f"{spans[spans.isna().any(axis=1)].head(3)}"
        )
    for c in ("start", "end"):
        spans[c] = pd.to_datetime(spans[c], errors="coerce")
        if spans[c].isna().any():
            raise DataValidationError(f"{path}: unparseable {c} date(s) in membership spans")
    return spans


def _read_bin(path: Path, cal_len: int) -> tuple[int, np.ndarray]:
    raw = path.read_bytes()
    if len(raw) % 4 != 0 or len(raw) < 4:
        raise DataValidationError(
            f"{path}: corrupt qlib bin file ({len(raw)} bytes; must be a non-empty multiple of 4)"
        )
    arr = np.frombuffer(raw, dtype="<f4")
    start = arr[0]
    if not np.isfinite(start) or start != int(start) or not 0 <= int(start) < cal_len:
        raise DataValidationError(
            f"{path}: first value {start!r} is not a valid calendar index (0..{cal_len - 1})"
        )
    start = int(start)
    values = arr[1:]
    if start + len(values) > cal_len:
        raise DataValidationError(
            f"{path}: {len(values)} values from calendar index {start} run past the calendar "
            f"end ({cal_len} days)"
        )
    return start, values


def _feature_dir(root: Path, inst: str) -> Path | None:
    for name in (inst.lower(), inst, inst.upper()):
        p = root / "features" / name
        if p.is_dir():
            return p
    return None


def read_qlib_store(
    path: str | Path,
    universe: str = "all",
    start: str | None = None,
    end: str | None = None,
    instruments: Sequence[str] | None = None,
) -> RawData:
    """Read a qlib daily store into :class:`RawData` (adjusted prices, ``adjusted=True``).

    Every instrument listed in ``instruments/<universe>.txt`` is read over its *whole* stored
    history (compute-then-mask); ``in_universe`` is True on days inside a membership span.
    """
    root = Path(path)
    if not root.is_dir():
        raise DataValidationError(f"qlib store {root} does not exist or is not a folder")
    cal = _read_calendar(root)
    spans = _read_instruments(root, universe)
    names = list(dict.fromkeys(spans["instrument"]))
    if instruments is not None:
        wanted = set(instruments)
        names = [n for n in names if n in wanted]
    T = len(cal)
    frames: list[pd.DataFrame] = []
    for inst in names:
        fdir = _feature_dir(root, inst)
        if fdir is None:
            raise DataValidationError(
                f"qlib store {root}: instrument {inst!r} is listed in {universe}.txt but has no "
                f"features/{inst.lower()}/ folder"
            )
        cols: dict[str, tuple[int, np.ndarray]] = {}
        for fld in QLIB_FIELDS:
            fp = fdir / f"{fld}.day.bin"
            if fp.exists():
                cols[fld] = _read_bin(fp, T)
            elif fld in _REQUIRED_FIELDS:
                raise DataValidationError(f"qlib store {root}: {fp} is missing (field {fld!r})")
        lo = min(s for s, _ in cols.values())
        hi = max(s + len(v) for s, v in cols.values())
        block = {}
        for fld in QLIB_FIELDS:
            a = np.full(hi - lo, np.nan, dtype=np.float64)
            if fld in cols:
                s, v = cols[fld]
                a[s - lo:s - lo + len(v)] = v
            block[fld] = a
        present = ~np.all(np.isnan(np.stack([block[c] for c in PRICE_COLS])), axis=0)
        df = pd.DataFrame({c: block[c][present] for c in QLIB_FIELDS})
        df.insert(0, INSTRUMENT_COL, inst)
        df.insert(0, DATE_COL, cal[lo:hi][present])
        frames.append(df)
    if not frames:
        raise DataValidationError(f"qlib store {root}: universe {universe!r} has no instruments")
    frame = pd.concat(frames, ignore_index=True)
    frame = frame.rename(columns={"factor": "adj_factor"})
    frame["adj_factor"] = frame["adj_factor"].fillna(1.0)
    # point-in-time membership: a row is in the universe if any span of its instrument covers it
    sp = spans.merge(frame[[INSTRUMENT_COL]].drop_duplicates(), on=INSTRUMENT_COL)
    key = frame[[DATE_COL, INSTRUMENT_COL]].reset_index()
    m = key.merge(sp, on=INSTRUMENT_COL, how="left")
    inside = (m[DATE_COL] >= m["start"]) & (m[DATE_COL] <= m["end"])
    member = np.zeros(len(frame), dtype=bool)
    member[m.loc[inside.to_numpy(), "index"].to_numpy()] = True
    frame["in_universe"] = member
    frame[INSTRUMENT_COL] = frame[INSTRUMENT_COL].astype("category")
    if start:
        frame = frame[frame[DATE_COL] >= pd.Timestamp(start)]
    if end:
        frame = frame[frame[DATE_COL] <= pd.Timestamp(end)]
    return RawData(frame=frame.reset_index(drop=True), source=f"qlib store {root} ({universe})",
                   adjusted=True)


def write_qlib_store(
    panel_long: pd.DataFrame,
    path: str | Path,
    universe: str = "all",
    fields: Sequence[str] = ("open", "high", "low", "close", "volume", "vwap", "amount"),
) -> Path:
    """Write an (adjusted) long panel as a qlib daily store; returns the store root.

    The calendar is the panel's union of dates; ``adj_factor`` (if present) is written as
    ``factor``. Membership spans come from ``in_universe`` (contiguous runs of True over the
    instrument's rows); without that column each instrument spans its first..last day.
    """
    root = Path(path)
    df = panel_long.sort_values([DATE_COL, INSTRUMENT_COL])
    cal = pd.DatetimeIndex(sorted(pd.to_datetime(df[DATE_COL]).unique()))
    (root / "calendars").mkdir(parents=True, exist_ok=True)
    (root / "instruments").mkdir(parents=True, exist_ok=True)
    (root / "calendars" / "day.txt").write_text(
        "\n".join(d.strftime("%Y-%m-%d") for d in cal) + "\n")
    pos = cal.get_indexer(pd.to_datetime(df[DATE_COL]))
    df = df.assign(_pos=pos)
    write_fields = [f for f in fields if f in df.columns]
    if "adj_factor" in df.columns:
        df = df.assign(factor=df["adj_factor"])
        write_fields.append("factor")
    lines: list[str] = []
    for key, g in df.groupby(INSTRUMENT_COL, sort=True, observed=True):
        inst = str(key)
        p = g["_pos"].to_numpy()
        lo, hi = int(p.min()), int(p.max()) + 1
        fdir = root / "features" / inst.lower()
        fdir.mkdir(parents=True, exist_ok=True)
        for fld in write_fields:
            a = np.full(hi - lo + 1, np.nan, dtype="<f4")
            a[0] = lo
            a[1 + p - lo] = g[fld].to_numpy(dtype=np.float32)
            a.tofile(fdir / f"{fld}.day.bin")
        d = cal[p]
        if "in_universe" in g.columns:
            mem = g["in_universe"].to_numpy(dtype=bool)
            # runs of consecutive member rows of this instrument
            run_id = np.cumsum(np.r_[True, mem[1:] != mem[:-1]])
            for r in np.unique(run_id[mem]):
                sel = run_id == r
                lines.append(f"{inst}\t{d[sel][0]:%Y-%m-%d}\t{d[sel][-1]:%Y-%m-%d}")
        else:
            lines.append(f"{inst}\t{d[0]:%Y-%m-%d}\t{d[-1]:%Y-%m-%d}")
    (root / "instruments" / f"{universe}.txt").write_text("\n".join(lines) + "\n")
    return root
