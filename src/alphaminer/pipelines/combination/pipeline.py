"""``combination``: one namespace-template instance per alpha-set method.

``<m>.alphas`` → ``<m>.signal`` (+ model, metrics, optuna trials). Parameters are per method:
``<m>.combination`` (Kedro prefixes the template's ``params:combination`` with the namespace).
"""

from __future__ import annotations

from kedro.pipeline import Pipeline, node

from alphaminer.pipelines._methods import ALPHA_SET_METHODS


def template() -> Pipeline:
    from . import nodes

    return Pipeline(
        [
            node(nodes.combine_alphas,
                 ["alphas", "market_panel", "labels", "splits", "params:combination",
                  "params:min_stocks"],
                 ["signal", "combination_model", "combination_metrics", "optuna_trials"],
                 name="combine_alphas"),
        ],
        tags="cpu",
    )


def create_pipeline(**kwargs) -> Pipeline:
    return sum(
        (Pipeline(template(), namespace=m,
                  inputs={"market_panel", "labels", "splits"},
                  parameters={"params:min_stocks"})
         for m in ALPHA_SET_METHODS),
        Pipeline([]),
    )
