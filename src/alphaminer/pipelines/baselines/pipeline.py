"""``baselines``: the seeds' baseline miners on the mining kit — typed GP (namespace ``gp``) and
AlphaGen-style RL (namespace ``alphagen``). Each writes ``<m>.alphas`` (its pool) and
``<m>.mining_log``; combination, backtest and the report pick them up as methods."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node

#: miner namespace → (node function name, hardware tag)
MINERS: dict[str, tuple[str, str]] = {"gp": ("mine_gp", "cpu"), "alphagen": ("mine_alphagen",
                                                                             "gpu")}


def create_pipeline(**kwargs) -> Pipeline:
    from . import nodes

    parts = []
    for ns, (fn, tag) in MINERS.items():
        inner = Pipeline([node(getattr(nodes, fn),
                               ["market_panel", "labels", "splits", "params:mining",
                                "params:min_stocks", "params:seed"],
                               ["alphas", "mining_log"], name=fn)], tags=tag)
        parts.append(Pipeline(inner, namespace=ns, inputs={"market_panel", "labels", "splits"},
                              parameters={"params:min_stocks", "params:seed"}))
    return sum(parts, Pipeline([]))
