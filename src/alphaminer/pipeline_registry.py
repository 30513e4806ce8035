"""Project pipelines: every folder under ``pipelines/`` plus the derived ``cpu``/``gpu`` views.

Pipeline names are fixed by DESIGN §2 (users type them). ``__default__`` is the end-to-end run on
the embedded simulator: ingestion → alpha_library → baselines (gp, alphagen) → ml_baselines
(mlp, lstm, xgb, lgbm) → alpha2_mining → alphaformer_infer (with the shipped pre-trained
model) → feature_images → alphanet_train → combination → backtest →
reporting. ``alphaformer_pretrain`` is not in it: it needs ``synthetic_generation``'s markets.
"""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

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


def register_pipelines() -> dict[str, Pipeline]:
    pipelines = find_pipelines(raise_errors=True)
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
    return pipelines
