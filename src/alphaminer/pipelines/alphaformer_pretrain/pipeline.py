"""``alphaformer_pretrain`` (namespace ``alphaformer``): synthetic markets → ``alphaformer.model``
(versioned safetensors + config) and ``alphaformer.pretrain_history`` (the learning curve).
Not in the default run: it needs ``synthetic_generation``'s markets."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node


def create_pipeline(**kwargs) -> Pipeline:
    from . import nodes

    inner = Pipeline([node(nodes.pretrain_alphaformer,
                           ["synthetic_markets", "params:pretraining", "params:seed"],
                           ["model", "pretrain_history"], name="pretrain_alphaformer")],
                     tags="gpu")
    return Pipeline(inner, namespace="alphaformer", inputs={"synthetic_markets"},
                    parameters={"params:seed"})
