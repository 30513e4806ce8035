"""Raw-data schema shared by every source, the :class:`RawData` container and the data error type.

Every source (simulator, parquet/csv, qlib store, baostock, yfinance) returns a long frame in the
same *raw* schema, one row per (``datetime``, ``instrument``):

- required: ``datetime, instrument, open, high, low, close, volume``
- optional: ``vwap`` (NaN/missing → fallback in cleaning), ``amount`` (missing → vwap·volume),
  ``adj_factor`` (default 1), ``in_universe`` (point-in-time membership, default True),
  ``is_suspended`` (default False), ``is_trading`` (the opposite convention, e.g. baostock's
  ``tradestatus``: 1 = trading; map it with ``columns: {is_trading: tradestatus}``), ``is_st``
  (special treatment: ±5 % price limit on the main boards under ``market: cn``).

Prices are *unadjusted* unless :attr:`RawData.adjusted` says the source already multiplied them by
``adj_factor`` (the qlib store does); cleaning never adjusts twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

DATE_COL = "datetime"
INSTRUMENT_COL = "instrument"
PRICE_COLS: tuple[str, ...] = ("open", "high", "low", "close")
REQUIRED_COLS: tuple[str, ...] = (DATE_COL, INSTRUMENT_COL, *PRICE_COLS, "volume")
NUMERIC_COLS: tuple[str, ...] = (*PRICE_COLS, "volume", "vwap", "amount", "adj_factor")
FLAG_COLS: tuple[str, ...] = ("in_universe", "is_suspended", "is_trading", "is_st")
OPTIONAL_COLS: tuple[str, ...] = ("vwap", "amount", "adj_factor", *FLAG_COLS)
RAW_COLS: tuple[str, ...] = (*REQUIRED_COLS, *OPTIONAL_COLS)


class DataValidationError(ValueError):
    """Input the run cannot use at all (missing column, unparseable dates, no rows left, ...).

    The message always names the file (or source), the column and a few example rows.
    """


@dataclass
class RawData:
    """What a source hands to :func:`alphaminer.data.clean`.

    Attributes:
        frame: long frame in the raw schema (module docstring); extra columns are allowed and
            ignored by cleaning.
        source: human-readable description used in every error message (file names, API, ...).
        extras: anything else the source produced (e.g. the simulator's planted-alpha table).
        adjusted: True when prices/volume are already adjusted by ``adj_factor``.
    """

    frame: pd.DataFrame
    source: str
    extras: dict[str, Any] = field(default_factory=dict)
    adjusted: bool = False

    def __post_init__(self) -> None:
        missing = [c for c in REQUIRED_COLS if c not in self.frame.columns]
        if missing:
            raise DataValidationError(
                f"{self.source}: raw frame lacks required column(s) {missing}; "
                f"found {list(self.frame.columns)}"
            )

    def __len__(self) -> int:
        return len(self.frame)


def examples(df: pd.DataFrame, mask: Any = None, n: int = 3) -> str:
    """A few rows as text, for error messages."""
    sub = df if mask is None else df[mask]
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        return sub.head(n).to_string()
