"""``alpha_library``: evaluate user formulas and the built-in classic set on every split."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node


def create_pipeline(**kwargs) -> Pipeline:
    from . import nodes

    return Pipeline(
        [
            node(nodes.evaluate_library,
                 ["market_panel", "labels", "splits", "params:alpha_library",
                  "params:min_stocks"],
                 ["library.ic_table", "library.alphas"], name="evaluate_library"),
        ],
        tags="cpu",
    )
