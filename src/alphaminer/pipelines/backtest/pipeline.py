"""``backtest``: one namespace-template instance per method: ``<m>.signal`` → portfolio."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node

from alphaminer.pipelines._methods import ALL_METHODS


def template() -> Pipeline:
    from . import nodes

    return Pipeline(
        [
            node(nodes.backtest_signal,
                 ["signal", "market_panel", "labels", "splits", "params:backtest",
                  "params:min_stocks"],
                 ["backtest_daily", "backtest_metrics", "quantiles", "ic_series", "trades"],
                 name="backtest_signal"),
            node(nodes.signal_tearsheet,
                 ["signal", "market_panel", "splits", "params:backtest",
                  "params:ingestion.labels", "params:min_stocks"],
                 "tearsheet", name="signal_tearsheet"),
        ],
        tags="cpu",
    )


def create_pipeline(**kwargs) -> Pipeline:
    return sum(
        (Pipeline(template(), namespace=m,
                  inputs={"market_panel", "labels", "splits"},
                  parameters={"params:backtest", "params:min_stocks",
                              "params:ingestion.labels"})
         for m in ALL_METHODS),
        Pipeline([]),
    )
