"""``feature_images``: AlphaNet data images (stride 5) and their 5-day labels, split-aware."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node


def create_pipeline(**kwargs) -> Pipeline:
    from . import nodes

    return Pipeline(
        [node(nodes.build_images, ["market_panel", "splits", "params:feature_images"],
              "alphanet_images", name="build_feature_images")],
        tags="cpu",
    )
