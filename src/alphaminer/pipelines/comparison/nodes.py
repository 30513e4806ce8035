"""Thin adapters: one method's outputs → its (method, seed) record; all records → the tables."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from alphaminer.evaluation.alphaset import AlphaSet
from alphaminer.evaluation.recovery import miner_table, planted_sets, recovery_table
from alphaminer.panel import Panel
from alphaminer.pipelines._common import labels_tensor, signal_tensor, split_ranges
from alphaminer.reporting.multiseed import (
    comparison_hash,
    comparison_html,
    make_record,
    records_frame,
    summarise,
    summary_to_json,
)

log = logging.getLogger(__name__)

#: the command that runs the comparison (shown in the report)
COMMAND = "kedro compare"


def _planted(planted_alphas: pd.DataFrame) -> AlphaSet | None:
    return planted_sets(planted_alphas)[0]


def _segment(backtest_metrics: dict[str, Any], splits: dict[str, Any]) -> tuple[int, int]:
    return split_ranges(splits)[str(backtest_metrics.get("segment", "test"))]


def alpha_set_record(method: str, backtest_metrics: dict[str, Any], alphas: dict[str, Any],
                     planted_alphas: pd.DataFrame, market_panel: Panel, labels: pd.DataFrame,
                     splits: dict[str, Any], parameters: dict[str, Any], min_stocks: int
                     ) -> dict[str, Any]:
    """Record of a formula method: its signal's metrics, its alphas' own Table-4 figures and
    their best |corr| with each planted formula, all on the backtest segment."""
    from alphaminer.pipelines.reporting.nodes import num_factors

    metrics = dict(backtest_metrics)
    metrics.setdefault("num_factors", num_factors(alphas))
    aset = AlphaSet.from_dict(alphas)
    row = miner_table({method: aset}, market_panel, labels_tensor(market_panel, labels),
                      _segment(backtest_metrics, splits), _planted(planted_alphas),
                      min_stocks, orient_days=split_ranges(splits)["train"]).iloc[0].to_dict()
    mined = {k: row.get(k) for k in ("n_alphas", "ic_mean", "rank_ic_mean",
                                     "mean_mutual_abs_corr")}
    planted = {k[len("corr_"):]: v for k, v in row.items() if k.startswith("corr_")}
    return make_record(method, int(parameters.get("seed", 0)), comparison_hash(parameters),
                       metrics, mined, planted)


def signal_record(method: str, backtest_metrics: dict[str, Any], signal: pd.DataFrame,
                  planted_alphas: pd.DataFrame, market_panel: Panel, splits: dict[str, Any],
                  parameters: dict[str, Any], min_stocks: int) -> dict[str, Any]:
    """Record of a signal method (AlphaNet, the ML baselines): metrics, no formulas (Num Factors
    N/A), and the |corr| of the signal itself with each planted formula."""
    metrics = {**backtest_metrics, "num_factors": float("nan")}
    planted = _planted(planted_alphas)
    corr: dict[str, float] = {}
    if planted is not None and signal is not None and len(signal):
        t0, t1 = _segment(backtest_metrics, splits)
        sig = signal_tensor(market_panel, signal)[t0:t1].unsqueeze(0)
        pv = planted.values(market_panel)[:, t0:t1]
        rec = recovery_table(sig, [method], pv, planted.names, min_stocks)
        corr = dict(zip(rec["planted"], rec["abs_corr"]))
    return make_record(method, int(parameters.get("seed", 0)), comparison_hash(parameters),
                       metrics, None, corr)


def summarise_comparison(records: list[dict[str, Any]], parameters: dict[str, Any]
                         ) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame, pd.DataFrame,
                                    str]:
    """The comparison of the current parameters' records → summary JSON, Table 1 and Table 4
    CSVs, every record as a flat CSV, and a standalone HTML page."""
    from alphaminer.reporting.manifest import build_manifest
    from alphaminer.reporting.report import build_page

    cfg = parameters.get("comparison", {}) or {}
    methods, seeds = list(cfg.get("methods", [])), [int(s) for s in cfg.get("seeds", [])]
    digest = comparison_hash(parameters)
    mine = [r for r in records if r.get("params_hash") == digest]
    summary = summarise(mine, methods, seeds, digest)
    n_ok = int((summary["status"]["status"] == "ok").sum())
    log.info("comparison %s: %d of %d pairs finished", digest, n_ok, len(summary["status"]))
    body = comparison_html(summary, methods, seeds, digest, COMMAND)
    manifest = build_manifest(parameters, f"comparison:{digest}",
                              extra={"comparison": digest, "methods": methods, "seeds": seeds})
    html = build_page("AlphaMiner method comparison", manifest,
                      [("multi-seed", "Methods over seeds", body)])
    return ({"params_hash": digest, "methods": methods, "seeds": seeds,
             "html": body, **summary_to_json(summary)},
            summary["table1"], summary["table4"], records_frame(mine), html)
