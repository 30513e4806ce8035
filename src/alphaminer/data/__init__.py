"""Data ingestion: sources → validation/cleaning → Panel, labels and purged splits.

Typical use (each line is one Kedro node)::

    raw = load_source(SourceConfig(kind="parquet", path="cn.parquet",
                                   columns={"datetime": "date"}))
    result = clean(raw, CleanConfig(market="cn"))  # A-share price limits by board
    panel = Panel.from_long(result.panel_long, meta=result.meta)
    labels = make_labels(panel, horizon=20)
    splits = make_splits(panel.dates, SplitConfig(horizon=20))
    report = data_report(result, labels=labels, splits=splits, panel=panel)

The simulator (``alphaminer.data.simulator``) is imported lazily by ``load_source``.
"""

from .cleaning import (
    CN_LIMIT_RULES,
    LIMIT_COLS,
    PANEL_COLS,
    REJECTION_REASONS,
    CleanConfig,
    CleanResult,
    clean,
    coverage,
    data_report,
)
from .labels import (
    LABEL_KINDS,
    forward_returns,
    label_expression,
    label_lookahead,
    make_label_frame,
    make_labels,
)
from .qlib import read_qlib_store, write_qlib_store
from .schema import DataValidationError, RawData
from .sources import SOURCE_KINDS, SourceConfig, load_source
from .splits import SplitConfig, Splits, make_splits

__all__ = [
    "CN_LIMIT_RULES",
    "LABEL_KINDS",
    "LIMIT_COLS",
    "PANEL_COLS",
    "REJECTION_REASONS",
    "SOURCE_KINDS",
    "CleanConfig",
    "CleanResult",
    "DataValidationError",
    "RawData",
    "SourceConfig",
    "SplitConfig",
    "Splits",
    "clean",
    "coverage",
    "data_report",
    "forward_returns",
    "label_expression",
    "label_lookahead",
    "load_source",
    "make_label_frame",
    "make_labels",
    "make_splits",
    "read_qlib_store",
    "write_qlib_store",
]
