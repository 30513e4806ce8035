"""``synthetic_generation``: train generators + LSTM evaluator, assemble markets by selection,
report their quality (all nodes ``gpu``; they run on CPU at the default and test sizes)."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node


def create_pipeline(**kwargs) -> Pipeline:
    from . import nodes

    return Pipeline(
        [
            node(nodes.train_models,
                 ["market_panel", "splits", "params:synthetic", "params:seed"],
                 ["synthetic_models", "synthetic_train_history"],
                 name="train_synthetic_models"),
            node(nodes.build_markets,
                 ["synthetic_models", "market_panel", "splits", "params:synthetic",
                  "params:seed"],
                 "synthetic_markets", name="build_synthetic_markets"),
            node(nodes.market_quality,
                 ["synthetic_models", "synthetic_markets", "market_panel", "splits",
                  "params:synthetic", "params:seed"],
                 ["synthetic_quality", "synthetic_quality_figure"],
                 name="synthetic_quality"),
        ],
        tags="gpu",
    )
