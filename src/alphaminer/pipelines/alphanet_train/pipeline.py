"""``alphanet_train``: train AlphaNet on the images, predict ``alphanet.signal``, attribution.

Written as a namespace (``alphanet``) so its datasets read ``alphanet.model``,
``alphanet.signal`` … like every other method's.
"""

from __future__ import annotations

from kedro.pipeline import Pipeline, node


def create_pipeline(**kwargs) -> Pipeline:
    from . import nodes

    inner = Pipeline(
        [
            node(nodes.train, ["alphanet_images", "params:alphanet", "params:seed"],
                 ["model", "train_history", "train_metrics"], name="train_alphanet"),
            node(nodes.predict_signal,
                 ["model", "market_panel", "alphanet_images", "params:alphanet"],
                 "signal", name="predict_alphanet"),
            node(nodes.attribute, ["model", "alphanet_images", "params:alphanet"],
                 "attribution", name="attribute_alphanet"),
        ],
        tags="gpu",
    )
    return Pipeline(inner, namespace="alphanet", inputs={"alphanet_images", "market_panel"},
                    parameters={"params:alphanet", "params:seed"})
