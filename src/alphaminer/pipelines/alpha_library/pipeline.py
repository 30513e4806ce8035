"""``alpha_library``: evaluate user formulas and the built-in classic set on every split.

Namespaced as ``library`` so its outputs read ``library.ic_table`` and ``library.alphas``.
"""

from __future__ import annotations

from kedro.pipeline import Pipeline, node


def create_pipeline(**kwargs) -> Pipeline:
    from . import nodes

    inner = Pipeline(
        [
            node(nodes.evaluate_library,
                 ["market_panel", "labels", "splits", "params:alpha_library",
                  "params:min_stocks"],
                 ["ic_table", "alphas"], name="evaluate_library"),
        ],
        tags="cpu",
    )
    return Pipeline(inner, namespace="library", inputs={"market_panel", "labels", "splits"},
                    parameters={"params:alpha_library", "params:min_stocks"})
