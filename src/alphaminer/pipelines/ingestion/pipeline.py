"""``ingestion``: source → validated, adjusted panel + labels + purged splits + reports."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node


def create_pipeline(**kwargs) -> Pipeline:
    from . import nodes

    return Pipeline(
        [
            node(nodes.load_raw, "params:ingestion.source", "raw_data", name="load_raw"),
            node(nodes.clean_raw, ["raw_data", "params:ingestion.clean"], "clean_result",
                 name="clean_raw"),
            node(nodes.build_panel, "clean_result", ["market_panel", "rejected_rows"],
                 name="build_panel"),
            node(nodes.build_labels, ["market_panel", "params:ingestion.labels"], "labels",
                 name="build_labels"),
            node(nodes.build_splits,
                 ["market_panel", "params:ingestion.splits", "params:ingestion.labels"],
                 "splits", name="build_splits"),
            node(nodes.build_data_report, ["clean_result", "market_panel", "labels", "splits"],
                 "data_report", name="build_data_report"),
            # the oracle method's alpha set: in the `oracle` namespace like every method's
            node(nodes.planted_ground_truth,
                 ["raw_data", "market_panel", "labels", "splits", "params:min_stocks"],
                 ["planted_alphas", "oracle.alphas"], name="planted_ground_truth",
                 namespace="oracle"),
        ],
        tags="cpu",
    )
