"""``alpha2_mining``: Alpha2's MCTS + policy/value network over alpha programs (namespace
``alpha2``) → ``alpha2.alphas``, ``alpha2.mining_log`` and ``alpha2.search_stats``; and
``alpha2.ablations`` (the ablation table, empty unless ``alpha2.ablations.enabled``)."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node


def create_pipeline(**kwargs) -> Pipeline:
    from . import nodes

    inner = Pipeline([node(nodes.mine_alpha2,
                           ["market_panel", "labels", "splits", "params:mining",
                            "params:min_stocks", "params:seed"],
                           ["alphas", "mining_log", "search_stats"], name="mine_alpha2"),
                     node(nodes.alpha2_ablations,
                          ["market_panel", "labels", "splits", "planted_alphas",
                           "params:mining", "params:ablations", "params:min_stocks"],
                          "ablations", name="alpha2_ablations")],
                     tags="gpu")
    return Pipeline(inner, namespace="alpha2",
                    inputs={"market_panel", "labels", "splits", "planted_alphas"},
                    parameters={"params:min_stocks", "params:seed"})
