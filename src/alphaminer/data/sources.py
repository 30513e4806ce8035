"""Data sources: one entry point, :func:`load_source`, for every kind of input.

Each source returns :class:`~alphaminer.data.schema.RawData` in the shared raw schema; the only
structural checks done here are the ones without which no row can be used (file exists, required
columns present, dates parseable, not empty). Row-level problems (text in a numeric column, bad
prices, duplicates, ...) are quarantined later by :func:`alphaminer.data.clean`.
"""

from __future__ import annotations

import csv
import difflib
import io
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from alphaminer.runtime import config_from

from .schema import (
    DATE_COL,
    INSTRUMENT_COL,
    RAW_COLS,
    REQUIRED_COLS,
    DataValidationError,
    RawData,
    examples,
)

log = logging.getLogger(__name__)

SOURCE_KINDS: tuple[str, ...] = ("simulator", "parquet", "csv", "qlib", "baostock", "yfinance")
_FILE_KINDS = ("parquet", "csv")


@dataclass
class SourceConfig:
    """Where the raw data comes from.

    Attributes:
        kind: one of :data:`SOURCE_KINDS`.
        path: file or folder (parquet/csv: one long file or a folder of per-instrument files;
            qlib: the store root).
        columns: ``{our_name: their_name}`` for columns whose names differ from the raw schema,
            e.g. ``{"datetime": "date", "in_universe": "in_csi300_2015"}``.
        date_format: ``strftime`` format of the date column (None → inferred).
        instrument_from: per-instrument folders: ``"column"`` (the file has one), ``"stem"``
            (file name without suffix) or ``"auto"`` (column if present, else stem).
        pattern: glob for the files of a folder (default ``*.parquet`` / ``*.csv``).
        universe: qlib ``instruments/<universe>.txt``; baostock index (``hs300``/``zz500``/
            ``sz50``) when ``instruments`` is not given.
        instruments: restrict to these codes (required for yfinance).
        start / end: inclusive date range filter (strings).
        keep_columns: extra source columns to carry through unchanged (e.g. ``pct_chg``).
        csv_options: extra keyword arguments for :func:`pandas.read_csv` (``sep``,
            ``encoding`` ...).
        exchange_tz: IANA time zone of the exchange (e.g. ``"Asia/Shanghai"``): tz-aware
            timestamps are converted to it before the date is taken. ``None`` keeps each
            timestamp's own wall-clock date (right when the offsets are the exchange's own).
            Times of day are always dropped (a daily panel has one row per date).
        simulator: keyword arguments for ``alphaminer.data.simulator.simulate_market``.
    """

    kind: str = "simulator"
    path: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    date_format: str | None = None
    instrument_from: str = "auto"
    pattern: str | None = None
    universe: str = "all"
    instruments: list[str] | None = None
    start: str | None = None
    end: str | None = None
    keep_columns: list[str] = field(default_factory=list)
    csv_options: dict[str, Any] = field(default_factory=dict)
    exchange_tz: str | None = None
    simulator: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise ValueError(
                f"unknown source kind {self.kind!r}; valid kinds: {', '.join(SOURCE_KINDS)}"
            )
        if self.kind in (*_FILE_KINDS, "qlib") and not self.path:
            raise ValueError(f"source kind {self.kind!r} needs `path`")
        if self.kind == "yfinance" and not self.instruments:
            raise ValueError("source kind 'yfinance' needs `instruments` (a list of tickers)")
        if self.instrument_from not in ("auto", "column", "stem"):
            raise ValueError(
                f"instrument_from must be 'auto', 'column' or 'stem', got {self.instrument_from!r}"
            )
        self.columns = dict(self.columns or {})
        bad = [k for k in self.columns if k not in RAW_COLS]
        if bad:
            raise ValueError(
                f"columns mapping has unknown target name(s) {bad}; the mapping is "
                f"{{our_name: their_name}} with our_name in {list(RAW_COLS)}"
            )
        for k, v in self.columns.items():
            if not isinstance(v, str) or not v:
                raise ValueError(f"columns[{k!r}] must be a non-empty column name, got {v!r}")
        for name in ("start", "end"):
            v = getattr(self, name)
            if v is not None:
                try:
                    setattr(self, name, str(pd.Timestamp(v).date()))
                except (ValueError, TypeError):
                    raise ValueError(f"{name}={v!r} is not a date") from None
        if self.start and self.end and self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        if self.instruments is not None:
            self.instruments = [str(i).strip() for i in self.instruments]
        if self.exchange_tz is not None:
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(str(self.exchange_tz))
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"exchange_tz={self.exchange_tz!r} is not an IANA time zone "
                                 "(e.g. 'Asia/Shanghai', 'America/New_York')") from None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SourceConfig:
        """Build from a parameters mapping; unknown keys raise naming the valid ones."""
        return config_from(cls, d)


# ---------------------------------------------------------------------------- dispatcher
def load_source(config: SourceConfig | Mapping[str, Any]) -> RawData:
    """Load raw data from the source described by ``config`` (see :class:`SourceConfig`)."""
    if not isinstance(config, SourceConfig):
        config = SourceConfig.from_dict(config)
    if config.kind == "simulator":
        raw = _load_simulator(config)
    elif config.kind in _FILE_KINDS:
        raw = _load_files(config)
    elif config.kind == "qlib":
        from .qlib import read_qlib_store

        raw = read_qlib_store(
            config.path, universe=config.universe, start=config.start, end=config.end,
            instruments=config.instruments,
        )
    elif config.kind == "baostock":
        from .online import load_baostock

        raw = load_baostock(config)
    else:
        from .online import load_yfinance

        raw = load_yfinance(config)
    raw.frame = _filter(raw.frame, config)
    if len(raw.frame) == 0:
        raise DataValidationError(
            f"{raw.source}: no rows left after the start/end/instruments filter "
            f"(start={config.start}, end={config.end}, instruments={config.instruments})"
        )
    log.info("loaded %d raw rows from %s", len(raw.frame), raw.source)
    return raw


def _filter(df: pd.DataFrame, config: SourceConfig) -> pd.DataFrame:
    keep = None
    if config.start:
        keep = df[DATE_COL] >= pd.Timestamp(config.start)
    if config.end:
        m = df[DATE_COL] <= pd.Timestamp(config.end)
        keep = m if keep is None else keep & m
    if config.instruments is not None:
        m = df[INSTRUMENT_COL].astype(str).str.strip().isin(config.instruments)
        keep = m if keep is None else keep & m
    if keep is None:
        return df
    return df.loc[keep.to_numpy()].reset_index(drop=True)


def _load_simulator(config: SourceConfig) -> RawData:
    """``simulate_market(**config.simulator)`` → raw frame + planted-alpha table in extras."""
    from .simulator import simulate_market

    market = simulate_market(**config.simulator)
    frame = market.raw.copy()
    if DATE_COL not in frame.columns and "date" in frame.columns:
        frame = frame.rename(columns={"date": DATE_COL})
    frame[DATE_COL] = pd.to_datetime(frame[DATE_COL]).astype("datetime64[ns]")
    kwargs = ", ".join(f"{k}={v!r}" for k, v in config.simulator.items())
    return RawData(frame=frame, source=f"simulator({kwargs})",
                   extras={"planted_alphas": market.planted,
                           "simulator_meta": dict(getattr(market, "meta", {}) or {}),
                           # simulated calendars may run past today: no future_date rule
                           "synthetic_dates": True})


# ---------------------------------------------------------------------------- files
def _resolve_columns(
    available: list[str], config: SourceConfig, where: str, instrument_optional: bool
) -> dict[str, str]:
    """``{their_name: our_name}`` for the columns to read; raise naming what is missing."""
    rename: dict[str, str] = {}
    for ours in RAW_COLS:
        theirs = config.columns.get(ours, ours)
        if theirs in available:
            rename[theirs] = ours
        elif ours in REQUIRED_COLS and not (ours == INSTRUMENT_COL and instrument_optional):
            hint = [a for a in available if a.lower() == theirs.lower()] or \
                difflib.get_close_matches(theirs, available, n=3, cutoff=0.6)
            mapped = f" (mapped from {ours!r})" if ours in config.columns else ""
            raise DataValidationError(
                f"{where}: required column {theirs!r}{mapped} not found; found columns "
                f"{available}"
                + (f"; did you mean {hint}? " if hint else "; ")
                + f"map it with columns: {{{ours}: <their column name>}}"
            )
        elif ours in config.columns:
            raise DataValidationError(
                f"{where}: column {theirs!r} (mapped to {ours!r}) not found; found {available}"
            )
    for extra in config.keep_columns:
        if extra not in available:
            raise DataValidationError(
                f"{where}: keep_columns names {extra!r}, not found; found {available}"
            )
        rename.setdefault(extra, extra)
    return rename


_COMPRESSED = (".gz", ".bz2", ".zip", ".xz", ".zst", ".tar")
#: bytes read from the end of a csv to check that its last line is complete
_TAIL_BYTES = 1 << 16


def _csv_error(path: Path, config: SourceConfig, e: Exception) -> DataValidationError:
    """A csv read failure as a DataValidationError naming the file (and the fix, if known)."""
    if isinstance(e, UnicodeDecodeError):
        enc = config.csv_options.get("encoding", "utf-8")
        return DataValidationError(
            f"{path}: is not valid {enc} text ({e.reason} at byte {e.start}); if the file is "
            "in another encoding set it in the source parameters, e.g. "
            "csv_options: {encoding: latin-1} (or gbk for Chinese sources)")
    if isinstance(e, pd.errors.EmptyDataError):
        return DataValidationError(f"{path}: empty file (no header, no rows)")
    return DataValidationError(f"{path}: cannot read as csv ({type(e).__name__}: {e})")


def _read_csv(path: Path, config: SourceConfig, **kwargs: Any) -> pd.DataFrame:
    try:
        return pd.read_csv(path, **{**config.csv_options, **kwargs})
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, ValueError,
            EOFError, OSError) as e:
        raise _csv_error(path, config, e) from e


def _duplicated(names: list[str], path: Path) -> None:
    dup = sorted(n for n, k in Counter(names).items() if k > 1)
    if dup:
        raise DataValidationError(
            f"{path}: duplicated column name(s) {dup} (columns {names}); only one column may "
            "carry each name — rename or drop the extra one in the file")


def _file_columns(path: Path, kind: str, config: SourceConfig) -> list[str]:
    """Header of one file; duplicated names raise (csv would rename the second ``close``
    to ``close.1`` and drop it silently, parquet would fail later without naming the file)."""
    if kind == "parquet":
        try:
            names = list(pq.read_schema(path).names)
        except Exception as e:  # pyarrow errors: name the file
            raise DataValidationError(f"{path}: cannot read as parquet: {e}") from e
        _duplicated(names, path)
        return names
    names = list(_read_csv(path, config, nrows=0).columns)
    if "names" not in config.csv_options and config.csv_options.get("header", "infer") in (
            "infer", 0):
        opts = {k: v for k, v in config.csv_options.items()
                if k not in ("header", "usecols", "dtype", "nrows", "index_col")}
        try:
            first = pd.read_csv(path, header=None, nrows=1, dtype=str, **opts)
        except Exception as e:  # noqa: BLE001 - the same failure as above, named
            raise _csv_error(path, config, e) from e
        _duplicated([str(x) for x in first.iloc[0].tolist()], path)
    return names


def _looks_numeric(x: str) -> bool:
    try:
        float(x)
    except ValueError:
        return False
    return True


def _check_csv_tail(path: Path, config: SourceConfig, n_fields: int) -> None:
    """Raise when the file's last line looks cut off (a partly written or copied file).

    A file that ends without a newline has a suspect last line: it is an error when it has
    fewer fields than the header, or when its last field is a number shorter than that field in
    every one of the preceding lines of the tail (``571`` where the column holds ``5716400``-like
    values). pandas would keep such a line, NaN-filled or with the cut number.
    """
    sep = config.csv_options.get("sep", config.csv_options.get("delimiter", ","))
    if path.suffix.lower() in _COMPRESSED or not isinstance(sep, str) or len(sep) != 1:
        return
    size = path.stat().st_size
    with open(path, "rb") as f:
        f.seek(max(size - _TAIL_BYTES, 0))
        tail = f.read()
    if not tail or tail.endswith(b"\n") or tail.endswith(b"\r"):
        return
    enc = config.csv_options.get("encoding") or "utf-8"
    text = tail.decode(enc, errors="replace")
    lines = text.splitlines()
    lines = lines[1:]  # the header, or a line the chunk starts in the middle of
    rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=sep))
    if not rows:
        return
    last, before = rows[-1], [r for r in rows[:-1] if len(r) == n_fields]
    where = f"{path}: the last line has no final newline and"
    fix = ("the file looks truncated (re-download or re-export it); if it is complete, "
           "end it with a newline")
    if len(last) != n_fields:
        raise DataValidationError(
            f"{where} {len(last)} of the header's {n_fields} fields: {sep.join(last)!r}; {fix}")
    prev = [r[-1] for r in before[-200:]]
    if (last[-1] and prev and _looks_numeric(last[-1])
            and all(p and _looks_numeric(p) for p in prev)
            and len(last[-1]) < min(len(p) for p in prev)):
        raise DataValidationError(
            f"{where} its last field {last[-1]!r} is shorter than in every one of the "
            f"{len(prev)} lines before it (at least {min(len(p) for p in prev)} characters): "
            f"{sep.join(last)!r}; {fix}")


def _read_one(path: Path, config: SourceConfig, folder: bool) -> tuple[pd.DataFrame, int]:
    """One file in the raw schema and its number of rows stamped with a time of day."""
    kind = config.kind
    available = _file_columns(path, kind, config)
    instr_theirs = config.columns.get(INSTRUMENT_COL, INSTRUMENT_COL)
    use_stem = folder and (
        config.instrument_from == "stem"
        or (config.instrument_from == "auto" and instr_theirs not in available)
    )
    rename = _resolve_columns(available, config, str(path), instrument_optional=use_stem)
    if use_stem:
        rename = {k: v for k, v in rename.items() if v != INSTRUMENT_COL}
    cols = list(rename)
    if kind == "parquet":
        try:
            df = pq.read_table(path, columns=cols).to_pandas()
        except Exception as e:  # truncated / corrupt file: name it
            raise DataValidationError(f"{path}: cannot read as parquet: {e}") from e
    else:
        _check_csv_tail(path, config, len(available))
        # instrument codes stay text (000001 is not 1); cleaning coerces the numbers
        dtype = None if "dtype" in config.csv_options or use_stem else {instr_theirs: str}
        df = _read_csv(path, config, usecols=cols,
                       **({"dtype": dtype} if dtype is not None else {}))
    df = df.rename(columns=rename)
    if len(df) == 0:
        raise DataValidationError(f"{path}: file has a header but no rows")
    if use_stem:
        df[INSTRUMENT_COL] = path.stem
    df[DATE_COL], n_timed = _parse_dates(df[DATE_COL], config.date_format, str(path), df,
                                         config.exchange_tz)
    return df, n_timed


def _parse_dates(s: pd.Series, fmt: str | None, where: str, df: pd.DataFrame,
                 tz: str | None = None) -> tuple[pd.Series, int]:
    """Naive ``datetime64[ns]`` dates at midnight and the number of rows that had a time of day.

    tz-aware values are converted to ``tz`` (the exchange's zone) when given, else keep their
    own wall clock; the time of day is dropped, because one stock stamped 16:00 and the rest
    00:00 would otherwise double the calendar.
    """
    if pd.api.types.is_datetime64_any_dtype(s):
        out = s
    else:
        try:
            out = pd.to_datetime(s, format=fmt, errors="coerce")
        except (ValueError, TypeError):
            out = pd.to_datetime(s.astype(str), format=fmt, errors="coerce")
        if not pd.api.types.is_datetime64_any_dtype(out):  # mixed UTC offsets → object
            out = pd.to_datetime(s, format=fmt, errors="coerce", utc=True)
    bad = out.isna().to_numpy()
    if bad.any():
        raise DataValidationError(
            f"{where}: column {DATE_COL!r} has {int(bad.sum())} unparseable date(s)"
            f"{' for format ' + repr(fmt) if fmt else ''}, e.g. rows:\n{examples(df, bad)}"
        )
    if getattr(out.dt, "tz", None) is not None:
        if tz is not None:
            out = out.dt.tz_convert(tz)
        out = out.dt.tz_localize(None)
    v = out.to_numpy(dtype="datetime64[ns]")
    day = v.astype("datetime64[D]").astype("datetime64[ns]")
    n_timed = int(np.count_nonzero(v != day))
    return pd.Series(day, index=s.index, name=s.name), n_timed


def _as_category(s: pd.Series) -> pd.Series:
    """Instrument codes as a categorical of strings; missing codes stay missing (not 'nan')."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        if pd.api.types.is_string_dtype(s.cat.categories):
            return s
        s = s.astype(object)
    return s.where(s.isna(), s.astype(str)).astype("category")


def _load_files(config: SourceConfig) -> RawData:
    path = Path(config.path)  # type: ignore[arg-type]
    if not path.exists():
        raise DataValidationError(f"{config.kind} source: path {path} does not exist")
    if path.is_dir():
        pattern = config.pattern or f"*.{config.kind}"
        files = sorted(p for p in path.glob(pattern) if p.is_file())
        if not files:
            raise DataValidationError(f"{path}: folder has no files matching {pattern!r}")
        parts = [_read_one(p, config, folder=True) for p in _progress(files, path)]
        df = pd.concat([f for f, _ in parts], ignore_index=True)
        n_timed = sum(n for _, n in parts)
        source = f"{path}/{pattern} ({len(files)} files)"
    else:
        df, n_timed = _read_one(path, config, folder=False)
        source = str(path)
    df[INSTRUMENT_COL] = _as_category(df[INSTRUMENT_COL])
    if n_timed:
        log.warning("%s: %d rows had a time of day; kept their date only", source, n_timed)
    return RawData(frame=df, source=source, extras={"rows_with_time_of_day": n_timed})


def _progress(files: list[Path], path: Path) -> Any:
    if len(files) < 50:
        return files
    from alphaminer.progress import progress

    return progress(files, desc=f"reading {path.name}", unit="file")
