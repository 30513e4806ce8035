"""``comparison``: each method's (method, seed) record, and the multi-seed tables.

Per method ``m`` (namespace): ``<m>.comparison_record`` from its backtest and its alphas (formula
methods) or signal (signal methods). ``kedro compare`` runs each (method, seed) pair as
``kedro run --to-outputs=<m>.comparison_record`` in the pair's own data root; then
``summarise_comparison`` reads every record of the current parameters (``comparison_records``)
into Table 1, Table 4 and a standalone page.
"""

from __future__ import annotations

from functools import partial, update_wrapper

from kedro.pipeline import Pipeline, node

from alphaminer.pipelines._methods import ALL_METHODS, ALPHA_SET_METHODS

SHARED = {"planted_alphas", "market_panel", "labels", "splits"}


def _named(fn, method: str):
    f = partial(fn, method)
    update_wrapper(f, fn)
    return f


def create_pipeline(**kwargs) -> Pipeline:
    from . import nodes

    parts = []
    for m in ALL_METHODS:
        if m in ALPHA_SET_METHODS:
            inner = node(_named(nodes.alpha_set_record, m),
                         ["backtest_metrics", "alphas", "planted_alphas", "market_panel",
                          "labels", "splits", "parameters", "params:min_stocks"],
                         "comparison_record", name="comparison_record")
        else:
            inner = node(_named(nodes.signal_record, m),
                         ["backtest_metrics", "signal", "planted_alphas", "market_panel",
                          "splits", "parameters", "params:min_stocks"],
                         "comparison_record", name="comparison_record")
        parts.append(Pipeline([inner], namespace=m, inputs=SHARED & set(inner.inputs),
                              parameters={"params:min_stocks", "parameters"}, tags="cpu"))
    summary = Pipeline([node(nodes.summarise_comparison, ["comparison_records", "parameters"],
                             ["comparison_summary", "comparison_table1", "comparison_table4",
                              "comparison_records_table", "comparison_report"],
                             name="summarise_comparison")], tags="cpu")
    return sum(parts, Pipeline([])) + summary
