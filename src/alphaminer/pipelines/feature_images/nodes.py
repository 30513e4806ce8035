"""Thin adapter: panel + splits → AlphaNet's 8 × 30 data images with 5-day labels."""

from __future__ import annotations

from typing import Any

from alphaminer.neural.alphanet import FeatureImages, ImageConfig, build_feature_images
from alphaminer.panel import Panel
from alphaminer.pipelines._common import split_ranges


def build_images(panel: Panel, splits: dict[str, Any], params: dict[str, Any]) -> FeatureImages:
    return build_feature_images(panel, split_ranges(splits), ImageConfig.from_dict(params))
