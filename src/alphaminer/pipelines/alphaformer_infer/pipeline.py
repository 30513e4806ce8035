"""``alphaformer_infer`` (namespace ``alphaformer``): ``alphaformer.model`` (the latest
pre-trained version, else the shipped ``models/alphaformer``) mines the panel's train split →
``alphaformer.alphas`` and ``alphaformer.mining_log``. In the default run."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node


def create_pipeline(**kwargs) -> Pipeline:
    from . import nodes

    inner = Pipeline([node(nodes.infer_alphaformer,
                           ["model", "market_panel", "labels", "splits", "params:inference",
                            "params:min_stocks", "params:seed"],
                           ["alphas", "mining_log"], name="infer_alphaformer")], tags="gpu")
    return Pipeline(inner, namespace="alphaformer", inputs={"market_panel", "labels", "splits"},
                    parameters={"params:min_stocks", "params:seed"})
