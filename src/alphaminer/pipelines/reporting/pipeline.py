"""``reporting``: all methods side by side → one self-contained HTML report + manifest."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node


def create_pipeline(**kwargs) -> Pipeline:
    from . import nodes

    inputs = {"parameters": "parameters", "data_report": "data_report",
              "planted_alphas": "planted_alphas", "market_panel": "market_panel",
              "labels": "labels", "splits": "splits", "min_stocks": "params:min_stocks",
              **nodes.report_inputs()}
    return Pipeline(
        [
            node(nodes.build_research_report, inputs,
                 ["research_report", "report_figures", "comparison_table", "run_manifest"],
                 name="build_research_report"),
        ],
        tags="cpu",
    )
