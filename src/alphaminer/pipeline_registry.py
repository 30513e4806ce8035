"""Project pipelines: every folder under ``pipelines/``, the ``cpu``/``gpu`` views and the
three-stage split of the default run.

Pipeline names are fixed because users type them (README.md, "Pipelines"). ``__default__`` is
the end-to-end run on the embedded simulator: ingestion → alpha_library → baselines (gp,
alphagen) → ml_baselines (mlp, lstm, xgb, lgbm) → alpha2_mining → alphaformer_infer (with the
shipped pre-trained model) → feature_images → alphanet_train → combination → backtest →
reporting. ``alphaformer_pretrain`` is not in it: it needs ``synthetic_generation``'s markets.

``cpu`` and ``gpu`` hold every node with that tag. Neither runs alone on fresh data (GPU nodes
need the ingested panel; backtests and the report need GPU outputs), so the default run is also
split into the stages a CPU host and a GPU host can take turns on, in this order:
``default_cpu_before`` (every CPU node that needs no GPU output), ``default_gpu`` (the default
run's GPU nodes) and ``default_cpu_after`` (the CPU nodes downstream of a GPU node). Every
dataset crossing a stage boundary is a catalog file, so the stages can run on different hosts
sharing ``data/``.
"""

from __future__ import annotations

import importlib
import importlib.resources
import warnings

from kedro.pipeline import Pipeline
from kedro.pipeline.node import Node

#: Pipelines that make up ``kedro run`` (order is only documentation; Kedro sorts by data).
DEFAULT_PIPELINES: tuple[str, ...] = (
    "ingestion",
    "alpha_library",
    "baselines",
    "ml_baselines",
    "alpha2_mining",
    "alphaformer_infer",
    "feature_images",
    "alphanet_train",
    "combination",
    "backtest",
    "reporting",
    "comparison",
)

#: The default run's stages, in the order they must run.
DEFAULT_STAGES: tuple[str, ...] = ("default_cpu_before", "default_gpu", "default_cpu_after")

#: Pipelines whose nodes read every method's namespaced datasets (``oracle.backtest_metrics``,
#: ``gp.signal``, ...). Kedro warns about a dotted dataset name outside the node's own
#: namespace, which is the point of an aggregator; the warning is silenced for these only.
CROSS_NAMESPACE_READERS: frozenset[str] = frozenset({"reporting", "comparison"})

_DOTTED_NAME_WARNING = "One or more dataset names contain '.' characters"


def _create(name: str) -> Pipeline | None:
    module = importlib.import_module(f"alphaminer.pipelines.{name}")
    create = getattr(module, "create_pipeline", None)
    if create is None:
        return None
    if name not in CROSS_NAMESPACE_READERS:
        return create()
    # Kedro warns once per process (a flag on Node): restore the flag so the warning still
    # fires for the first dotted name written outside its namespace anywhere else.
    node_module = importlib.import_module("kedro.pipeline.node")  # the module, not node()
    flag = getattr(node_module, "_DOTTED_DATASET_NAME_WARNED", None)
    before = getattr(Node, flag, False) if flag else False
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_DOTTED_NAME_WARNING, category=UserWarning)
        pipeline = create()
    if flag:
        setattr(Node, flag, before)
    return pipeline


def discover_pipelines() -> dict[str, Pipeline]:
    """Every ``alphaminer.pipelines.<name>`` with a ``create_pipeline()``.

    Kedro 1.7's ``find_pipelines`` imports only the folder matching a pipeline named on the
    command line, so the derived ``cpu``/``gpu``/stage pipelines (no folder of their own) could
    not be built; the registry always needs all of them.
    """
    found: dict[str, Pipeline] = {}
    root = importlib.resources.files("alphaminer.pipelines")
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if not entry.is_dir() or entry.name.startswith(("_", ".")):
            continue
        pipeline = _create(entry.name)
        if pipeline is not None:
            found[entry.name] = pipeline
    return found


def hardware_stages(default: Pipeline) -> dict[str, Pipeline]:
    """:data:`DEFAULT_STAGES` of ``default``: CPU nodes with no GPU node upstream, the GPU
    nodes, the CPU nodes downstream of a GPU node.

    Raises ``ValueError`` when a GPU node needs a CPU node that itself needs a GPU node: the
    run would then need a fourth stage, and the documented three-step split would be wrong.
    """
    gpu = default.only_nodes_with_tags("gpu")
    cpu = default.only_nodes_with_tags("cpu")
    if gpu.nodes:
        after = default.from_nodes(*(n.name for n in gpu.nodes)).only_nodes_with_tags("cpu")
    else:
        after = Pipeline([])
    if after.nodes:
        late = default.from_nodes(*(n.name for n in after.nodes)).only_nodes_with_tags("gpu")
        if late.nodes:
            raise ValueError(f"GPU node(s) {sorted(n.name for n in late.nodes)} need CPU nodes "
                             f"that need GPU outputs: the default run no longer splits into "
                             f"{DEFAULT_STAGES}")
    return {"default_cpu_before": cpu - after, "default_gpu": gpu, "default_cpu_after": after}


def register_pipelines() -> dict[str, Pipeline]:
    pipelines = discover_pipelines()
    everything = sum(pipelines.values(), Pipeline([]))
    for n in everything.nodes:
        hw = {"cpu", "gpu"} & set(n.tags)
        if len(hw) != 1:
            raise ValueError(
                f"node {n.name!r} must carry exactly one of the tags cpu/gpu, has {n.tags}"
            )
    pipelines["cpu"] = everything.only_nodes_with_tags("cpu")
    pipelines["gpu"] = everything.only_nodes_with_tags("gpu")
    pipelines["__default__"] = sum(
        (pipelines[name] for name in DEFAULT_PIPELINES if name in pipelines), Pipeline([])
    )
    pipelines.update(hardware_stages(pipelines["__default__"]))
    return pipelines
