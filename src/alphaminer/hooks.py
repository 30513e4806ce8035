"""Kedro hooks: process set-up before any node runs, and the run manifest's raw facts."""

from __future__ import annotations

import logging
import os
from typing import Any

from kedro.framework.hooks import hook_impl

from alphaminer.runtime import seed_everything

log = logging.getLogger(__name__)


class ManifestHooks:
    """Seeds every library from the ``seed`` parameter and records what a manifest needs.

    ``XLA_PYTHON_CLIENT_PREALLOCATE=false`` is set so JAX and torch can share one GPU (DESIGN §2).
    """

    def __init__(self) -> None:
        self.run_params: dict[str, Any] = {}

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        self.run_params = dict(run_params)
        try:
            seed = int(catalog.load("params:seed"))
        except Exception:  # noqa: BLE001 - a project without a seed parameter still runs
            seed = 0
        seed_everything(seed)
        log.info("seeded python/numpy/torch with seed=%d", seed)
