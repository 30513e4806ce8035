"""``alpha2_mining``: Alpha2's MCTS + policy/value network over alpha programs (namespace
``alpha2``) → ``alpha2.alphas``, ``alpha2.mining_log`` and ``alpha2.search_stats``."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node


def create_pipeline(**kwargs) -> Pipeline:
    from . import nodes

    inner = Pipeline([node(nodes.mine_alpha2,
                           ["market_panel", "labels", "splits", "params:mining",
                            "params:min_stocks", "params:seed"],
                           ["alphas", "mining_log", "search_stats"], name="mine_alpha2")],
                     tags="gpu")
    return Pipeline(inner, namespace="alpha2", inputs={"market_panel", "labels", "splits"},
                    parameters={"params:min_stocks", "params:seed"})
