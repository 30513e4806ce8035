"""``ml_baselines``: four return-prediction baselines on raw-feature windows, one namespace each
(``mlp``, ``lstm``, ``xgb``, ``lgbm``), writing ``<m>.signal`` and ``<m>.train_metrics``."""

from __future__ import annotations

from functools import partial, update_wrapper

from kedro.pipeline import Pipeline, node

#: namespace → hardware tag (the torch models are tagged gpu but run on CPU too)
MODELS: dict[str, str] = {"mlp": "gpu", "lstm": "gpu", "xgb": "cpu", "lgbm": "cpu"}


def create_pipeline(**kwargs) -> Pipeline:
    from . import nodes

    parts = []
    for ns, tag in MODELS.items():
        fn = update_wrapper(partial(nodes.fit_predict, kind=ns), nodes.fit_predict)
        inner = Pipeline([node(fn, {"panel": "market_panel", "labels": "labels",
                                    "splits": "splits", "params": "params:ml_baselines",
                                    "min_stocks": "params:min_stocks", "seed": "params:seed"},
                               ["signal", "train_metrics"], name=f"fit_predict_{ns}")],
                         tags=tag)
        parts.append(Pipeline(inner, namespace=ns,
                              inputs={"market_panel", "labels", "splits"},
                              parameters={"params:ml_baselines", "params:min_stocks",
                                          "params:seed"}))
    return sum(parts, Pipeline([]))
