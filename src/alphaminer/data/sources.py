"""Data sources: one entry point, :func:`load_source`, for every kind of input.

Each source returns :class:`~alphaminer.data.schema.RawData` in the shared raw schema; the only
structural checks done here are the ones without which no row can be used (file exists, required
columns present, dates parseable, not empty). Row-level problems (text in a numeric column, bad
prices, duplicates, ...) are quarantined later by :func:`alphaminer.data.clean`.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
        csv_options: extra keyword arguments for :func:`pandas.read_csv` (``sep`` ...).
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
            self.instruments = [str(i) for i in self.instruments]

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
        m = df[INSTRUMENT_COL].astype(str).isin(config.instruments)
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
                           "simulator_meta": dict(getattr(market, "meta", {}) or {})})


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


def _file_columns(path: Path, kind: str, config: SourceConfig) -> list[str]:
    try:
        if kind == "parquet":
            return list(pq.read_schema(path).names)
        return list(pd.read_csv(path, nrows=0, **config.csv_options).columns)
    except pd.errors.EmptyDataError:
        raise DataValidationError(f"{path}: empty file (no header, no rows)") from None
    except Exception as e:  # pyarrow / parser errors: name the file
        raise DataValidationError(f"{path}: cannot read as {kind}: {e}") from e


def _read_one(path: Path, config: SourceConfig, folder: bool) -> pd.DataFrame:
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
        df = pq.read_table(path, columns=cols).to_pandas()
    else:
        # everything but the key columns is read as text-tolerant; cleaning coerces numbers
        df = pd.read_csv(path, usecols=cols, **config.csv_options)
    df = df.rename(columns=rename)
    if len(df) == 0:
        raise DataValidationError(f"{path}: file has a header but no rows")
    if use_stem:
        df[INSTRUMENT_COL] = path.stem
    df[DATE_COL] = _parse_dates(df[DATE_COL], config.date_format, str(path), df)
    return df


def _parse_dates(s: pd.Series, fmt: str | None, where: str, df: pd.DataFrame) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(s):
        out = s
    else:
        try:
            out = pd.to_datetime(s, format=fmt, errors="coerce")
        except (ValueError, TypeError):
            out = pd.to_datetime(s.astype(str), format=fmt, errors="coerce")
    bad = out.isna().to_numpy()
    if bad.any():
        raise DataValidationError(
            f"{where}: column {DATE_COL!r} has {int(bad.sum())} unparseable date(s)"
            f"{' for format ' + repr(fmt) if fmt else ''}, e.g. rows:\n{examples(df, bad)}"
        )
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_localize(None)
    return out.astype("datetime64[ns]")


def _load_files(config: SourceConfig) -> RawData:
    path = Path(config.path)  # type: ignore[arg-type]
    if not path.exists():
        raise DataValidationError(f"{config.kind} source: path {path} does not exist")
    if path.is_dir():
        pattern = config.pattern or f"*.{config.kind}"
        files = sorted(p for p in path.glob(pattern) if p.is_file())
        if not files:
            raise DataValidationError(f"{path}: folder has no files matching {pattern!r}")
        frames = [_read_one(p, config, folder=True) for p in _progress(files, path)]
        df = pd.concat(frames, ignore_index=True)
        source = f"{path}/{pattern} ({len(files)} files)"
    else:
        df = _read_one(path, config, folder=False)
        source = str(path)
    df[INSTRUMENT_COL] = df[INSTRUMENT_COL].astype(str).astype("category")
    return RawData(frame=df, source=source)


def _progress(files: list[Path], path: Path) -> Any:
    if len(files) < 50:
        return files
    from tqdm.auto import tqdm

    return tqdm(files, desc=f"reading {path.name}", unit="file")
