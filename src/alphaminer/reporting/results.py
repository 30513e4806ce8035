"""The plain-data input of the reporting layer: one :class:`MethodResults` per method.

Everything is a pandas DataFrame or a dict of floats so the report does not depend on the objects
of ``alphaminer.backtest`` / ``alphaminer.evaluation`` (a notebook can fill it by hand).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

#: Columns each frame must have (others are ignored); ``alphas`` may lack any of its columns.
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "daily": ("date", "return"),
    "ic_series": ("date", "ic"),
    "quantiles": ("date",),
    "attribution": (),
}

ALPHA_COLUMNS = (
    "name", "formula", "ic_train", "ic_valid", "ic_test",
    "rank_ic_train", "rank_ic_valid", "rank_ic_test", "weight",
)


@dataclass
class MethodResults:
    """What the report shows for one method (``"oracle"``, ``"library"``, ``"alpha2"``, ...).

    Attributes:
        name: method label, shown verbatim (HTML-escaped) in the report.
        alphas: one row per alpha; columns among :data:`ALPHA_COLUMNS` (missing → blank).
        daily: backtest daily frame: ``date, return`` required; ``equity, benchmark_return,
            excess_return, turnover`` used when present.
        ic_series: ``date, ic`` (+ ``rank_ic``) of the method's signal.
        quantiles: ``date, q1..qN`` (or ``Q1..QN``) daily mean forward return per signal group
            (``qN`` = highest signal), optionally ``long_short`` (defaults to ``qN − q1``) and
            ``universe`` (equal-weight mean, drawn as a reference line).
        metrics: headline numbers keyed as the backtest/evaluation write them (``ic``, ``rank_ic``,
            ``icir``, ``sharpe_standard``, ``max_drawdown_qlib``, ...).
        seed_metrics: one metrics dict per seed; when given the comparison table shows
            ``mean ± std`` over seeds instead of ``metrics``.
        attribution: e.g. AlphaNet's top-k features (``rank, feature, score``).
        notes: free-text remarks shown under the method heading.
        quantile_horizon: horizon ``h`` (days) of the forward returns in ``quantiles``: group
            means are annualised as ``mean · N / h`` and the long–short curve is
            ``cumsum / h`` (as ``alphaminer.backtest.quantile_analysis`` does).
        tearsheet: daily tear-sheet series (``date, ic_<h>d, rank_ic_<h>d, rank_autocorr_<l>d``,
            :func:`alphaminer.reporting.tearsheet.factor_tearsheet`); ``None`` → those figures
            say there is no data.
        label_horizon: horizon (days) of the label ``ic_series`` is computed against (named in
            the captions; ``None`` → "the label").
        train_horizon: horizon (days) of the label the method was trained on, when it has its
            own (AlphaNet's ``feature_images.horizon``).
        warnings: shown highlighted under the method heading and at the top of the report
            (e.g. a validation IC <= 0: the method did not learn).
        combiner: how the signal was made, shown in its comparison row (``"auto → xgboost"``
            for an alpha set, ``"model"`` for a method that predicts directly); ``None`` → "–".

    Frames indexed by date (a ``DatetimeIndex`` or an index named ``date``) are accepted and
    turned into a ``date`` column.
    """

    name: str
    alphas: pd.DataFrame | None
    daily: pd.DataFrame
    ic_series: pd.DataFrame
    quantiles: pd.DataFrame
    metrics: dict[str, float]
    seed_metrics: list[dict[str, float]] | None = None
    attribution: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    quantile_horizon: int = 1
    tearsheet: pd.DataFrame | None = None
    label_horizon: int | None = None
    train_horizon: int | None = None
    warnings: list[str] = field(default_factory=list)
    combiner: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"MethodResults.name must be a non-empty string, got {self.name!r}")
        if int(self.quantile_horizon) != self.quantile_horizon or self.quantile_horizon < 1:
            raise ValueError(f"MethodResults({self.name!r}).quantile_horizon must be an integer "
                             f">= 1, got {self.quantile_horizon!r}")
        self.quantile_horizon = int(self.quantile_horizon)
        for attr, cols in REQUIRED_COLUMNS.items():
            frame = getattr(self, attr)
            if frame is None and attr == "attribution":
                continue
            if not isinstance(frame, pd.DataFrame):
                raise TypeError(
                    f"MethodResults({self.name!r}).{attr} must be a pandas DataFrame, "
                    f"got {type(frame).__name__}")
            if "date" in cols and "date" not in frame.columns and (
                    frame.index.name == "date" or isinstance(frame.index, pd.DatetimeIndex)):
                # the backtest/analysis frames are indexed by date: accept them as they are
                frame = frame.rename_axis("date").reset_index()
                setattr(self, attr, frame)
            missing = [c for c in cols if c not in frame.columns]
            if missing:
                raise ValueError(
                    f"MethodResults({self.name!r}).{attr} lacks column(s) {missing}; "
                    f"has {list(frame.columns)}")
        if self.alphas is not None and not isinstance(self.alphas, pd.DataFrame):
            raise TypeError(f"MethodResults({self.name!r}).alphas must be a DataFrame or None")
        if not isinstance(self.metrics, dict):
            raise TypeError(f"MethodResults({self.name!r}).metrics must be a dict")
        if self.seed_metrics is not None:
            if not isinstance(self.seed_metrics, list | tuple) or not all(
                    isinstance(d, dict) for d in self.seed_metrics):
                raise TypeError(
                    f"MethodResults({self.name!r}).seed_metrics must be a list of dicts")
            if len(self.seed_metrics) == 0:
                raise ValueError(
                    f"MethodResults({self.name!r}).seed_metrics is empty; pass None instead")
        self.notes = [str(n) for n in self.notes]
        self.warnings = [str(w) for w in self.warnings]
        if self.tearsheet is not None:
            if not isinstance(self.tearsheet, pd.DataFrame):
                raise TypeError(f"MethodResults({self.name!r}).tearsheet must be a DataFrame "
                                "or None")
            if len(self.tearsheet.columns) == 0:
                self.tearsheet = None  # an empty dataset (a skipped method) is no tear sheet
            elif "date" not in self.tearsheet.columns:
                raise ValueError(f"MethodResults({self.name!r}).tearsheet lacks a 'date' column")
        for attr in ("label_horizon", "train_horizon"):
            v = getattr(self, attr)
            if v is not None and (int(v) != v or v < 1):
                raise ValueError(f"MethodResults({self.name!r}).{attr} must be an integer >= 1 "
                                 f"or None, got {v!r}")
            setattr(self, attr, None if v is None else int(v))
