"""Thin adapters from the ``ingestion`` parameters to ``alphaminer.data``."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from alphaminer.data import (
    CleanResult,
    RawData,
    clean,
    data_report,
    label_lookahead,
    load_source,
    make_labels,
    make_splits,
)
from alphaminer.evaluation.alphaset import AlphaSet, split_summary
from alphaminer.expr import Evaluator
from alphaminer.panel import Panel
from alphaminer.parameters import CleanParams, LabelParams, SourceParams, SplitParams
from alphaminer.pipelines._common import LABEL_COL, labels_tensor, split_ranges

log = logging.getLogger(__name__)


def load_raw(source: SourceParams) -> RawData:
    return load_source(SourceParams.coerce(source).to_config())


def clean_raw(raw: RawData, params: CleanParams) -> CleanResult:
    return clean(raw, CleanParams.coerce(params).to_config())


def build_panel(result: CleanResult) -> tuple[Panel, pd.DataFrame]:
    panel = result.to_panel()
    if panel.meta.get("vwap_fallback"):
        log.warning("vwap was missing for some rows: used (high+low+close)/3 (flagged in meta)")
    return panel, result.rejected_rows


def build_labels(panel: Panel, labels: LabelParams) -> pd.DataFrame:
    lab = LabelParams.coerce(labels)
    return panel.frame(make_labels(panel, lab.horizon, lab.kind), name=LABEL_COL)


def build_splits(panel: Panel, splits: SplitParams, labels: LabelParams) -> dict[str, Any]:
    """Purged splits; the purge defaults to the label's look-ahead unless ``horizon`` is set."""
    lab = LabelParams.coerce(labels)
    cfg = SplitParams.coerce(splits).to_config({"horizon": label_lookahead(lab.horizon,
                                                                           lab.kind)})
    return make_splits(panel.dates, cfg).to_dict()


def build_data_report(result: CleanResult, panel: Panel, labels: pd.DataFrame,
                      splits: dict[str, Any]) -> dict[str, Any]:
    from alphaminer.data import Splits

    return data_report(result, labels=labels_tensor(panel, labels),
                       splits=Splits.from_dict(splits), panel=panel)


def planted_ground_truth(raw: RawData, panel: Panel, labels: pd.DataFrame,
                         splits: dict[str, Any], min_stocks: int) -> tuple[pd.DataFrame, dict]:
    """The simulator's planted alphas with their oracle IC on each split (empty otherwise).

    The oracle AlphaSet is built from the table's ``oracle_formula`` when present (the exact
    predictor of the H-day return under the simulator's flat persistence kernel, e.g.
    ``WMA(CSZScore(f),20d)``), else from ``formula``; names are the planted names and the
    returned table keeps both formula columns.
    """
    planted = raw.extras.get("planted_alphas")
    if planted is None or len(planted) == 0:
        return pd.DataFrame(columns=["name", "formula", "strength"]), \
            AlphaSet("oracle", []).to_dict()
    planted = pd.DataFrame(planted).reset_index(drop=True)
    names = [str(n) for n in planted["name"]]
    col = "oracle_formula" if "oracle_formula" in planted.columns else "formula"
    oracle = AlphaSet("oracle", [str(f) for f in planted[col]], names,
                      meta={"source": "simulator planted alphas (ground truth)",
                            "formula_column": col})
    values = oracle.values(panel, Evaluator(panel))
    table = split_summary(values, labels_tensor(panel, labels), split_ranges(splits), names,
                          min_stocks)
    out = planted.merge(table.add_prefix("oracle_"), left_on="name", right_index=True)
    return out, oracle.with_metrics(table).to_dict()
