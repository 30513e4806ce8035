"""``combination``: one namespace-template instance per alpha-set method.

``<m>.alphas`` → ``<m>.signal`` (+ model, metrics, optuna trials), and every combiner the
method fitted (``auto``'s candidates) backtested side by side (``<m>.combiner_comparison``).
Parameters are per method: ``<m>.combination`` (Kedro prefixes the template's
``params:combination`` with the namespace); ``backtest`` and ``min_stocks`` are global.
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
                 ["signal", "combination_model", "combination_metrics", "optuna_trials",
                  "candidate_signals"],
                 name="combine_alphas"),
            node(nodes.compare_combiners,
                 ["candidate_signals", "combination_metrics", "market_panel", "labels", "splits",
                  "params:backtest", "params:min_stocks"],
                 "combiner_comparison",
                 name="compare_combiners"),
        ],
        tags="cpu",
    )


def create_pipeline(**kwargs) -> Pipeline:
    return sum(
        (Pipeline(template(), namespace=m,
                  inputs={"market_panel", "labels", "splits"},
                  parameters={"params:min_stocks", "params:backtest"})
         for m in ALPHA_SET_METHODS),
        Pipeline([]),
    )
