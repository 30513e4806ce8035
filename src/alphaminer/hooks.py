"""Kedro hooks: run isolation, process set-up before any node runs, the manifest's raw facts."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from alphaminer.checkpoint import FolderLock
from alphaminer.runtime import seed_everything, thread_report

log = logging.getLogger(__name__)


class RunLockHooks:
    """One run at a time per project data folder: ``data/.lock``, held for the whole run.

    Two concurrent ``kedro run``\\ s in one project would read and overwrite each other's
    datasets (a report computed on the other run's panel, with this run's fingerprint in its
    manifest). The lock is taken before the pipeline starts (before any other hook's
    ``before_pipeline_run``) and released after it ends, on success or error; a second run
    fails at start naming the holder's PID, start time and command. The OS drops the lock when
    the holding process dies, even by ``kill -9``. Every run locks, read-only ones included:
    a read-only run still reads datasets another run may be half-way through rewriting.
    """

    def __init__(self) -> None:
        self.project_path: Path | None = None
        self._lock: FolderLock | None = None

    def data_root(self) -> Path:
        """The folder whose lock a run takes: the project's ``data/``."""
        root = self.project_path if self.project_path is not None else Path.cwd()
        return root / "data"

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        self.project_path = Path(context.project_path)

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any,
                            catalog: Any) -> None:
        if self._lock is not None:
            # a previous run in this process failed in another hook's before_pipeline_run,
            # after we had locked and before any after/on_error hook could release
            self._lock.release()
        lock = FolderLock(self.data_root(), what="data folder")
        lock.acquire()
        self._lock = lock
        log.info("locked %s for this run (PID %d)", lock.folder, os.getpid())

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    @hook_impl(trylast=True)
    def after_pipeline_run(self, run_params: dict[str, Any], run_result: Any, pipeline: Any,
                           catalog: Any) -> None:
        self._release()

    @hook_impl(trylast=True)
    def on_pipeline_error(self, error: Exception, run_params: dict[str, Any], pipeline: Any,
                          catalog: Any) -> None:
        self._release()


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
        log.info("seeded python/numpy/torch with seed=%d; threads %s", seed, thread_report())
