"""``alphaformer_pretrain`` under ``torchrun``: one process per GPU (or CPU rank), one model.

    torchrun --nproc_per_node=4 -m alphaminer.runners.torchrun_pretrain --env paper

``kedro run`` cannot be started N times on one data root: every copy would take the project's
run lock and save the outputs. So each rank opens the project read-only (a Kedro session's
context and catalog: parameters are validated, no pipeline hooks), loads ``synthetic_markets``
and ``params:alphaformer.pretraining``, and calls the pipeline's own node function, in which
:class:`~alphaminer.mining.alphaformer.pretrain.Pretrainer` shards the markets over the ranks
and averages gradients (:mod:`alphaminer.mining.alphaformer.distributed`). Rank 0 alone holds
the data root's run lock, writes checkpoints and saves ``alphaformer.model`` and
``alphaformer.pretrain_history`` through the catalog (versioned, as ``kedro run`` would).
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> None:
    """Entry point for ``torchrun ... -m alphaminer.runners.torchrun_pretrain``."""
    ap = argparse.ArgumentParser(description="AlphaFormer pre-training under torchrun")
    ap.add_argument("--env", default=None, help="Kedro configuration environment")
    ap.add_argument("--params", default=None, help="runtime parameters, as kedro run --params")
    ap.add_argument("--backend", default=None, help="torch.distributed backend (default: "
                                                    "nccl with CUDA, else gloo)")
    a = ap.parse_args(argv)

    import torch.distributed as dist
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project
    from kedro.utils import find_kedro_project

    from alphaminer.checkpoint import FolderLock
    from alphaminer.mining.alphaformer.distributed import init_from_env
    from alphaminer.pipelines.alphaformer_pretrain.nodes import pretrain_alphaformer
    from alphaminer.pipelines.comparison.driver import parse_params

    ctx = init_from_env(a.backend)
    project = find_kedro_project(Path.cwd()) or Path.cwd()
    os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
    runtime = parse_params(a.params)
    bootstrap_project(project)
    lock = None
    try:
        if ctx.is_main:
            lock = FolderLock(project / str(runtime.get("data_root") or "data"),
                              what="data folder").acquire()
        if ctx.active:
            dist.barrier()  # no rank starts before rank 0 holds the data root
        with KedroSession.create(project_path=project, env=a.env,
                                 runtime_params=runtime) as session:
            catalog = session.load_context().catalog
            model, history = pretrain_alphaformer(
                catalog.load("synthetic_markets"),
                catalog.load("params:alphaformer.pretraining"), catalog.load("params:seed"))
            if ctx.is_main:
                catalog.save("alphaformer.model", model)
                catalog.save("alphaformer.pretrain_history", history)
                log.info("saved alphaformer.model (%d ranks)", ctx.world_size)
        if ctx.active:
            dist.barrier()
    finally:
        if lock is not None:
            lock.release()
        if ctx.active:
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
