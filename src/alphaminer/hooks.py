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


class ParameterHooks:
    """Checks every parameter against :class:`alphaminer.parameters.ProjectParams` as soon as
    the context exists, before any catalog is built or node runs.

    Kedro's typed-parameter validation (node inputs annotated with the same models) names only
    the top-level key of a bad block; this check names the full YAML path
    (``backtest.portfolio.topk: topk must be a positive integer, got -1``) and covers every
    pipeline's blocks, so a typo in a block the run does not use fails too.
    """

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        from alphaminer.parameters import validate_parameters

        validate_parameters(context.config_loader["parameters"])


class ProcessSharedMemoryHooks:
    """Under ``ParallelRunner``, every declared in-memory dataset becomes process-shared.

    ``raw_data`` and ``clean_result`` are declared ``MemoryDataset`` (``copy_mode: assign``: no
    copy of a large panel between nodes in one process). A worker process saving into such a
    dataset saves into its own copy, and the next node, in another process, found nothing. In a
    ``SharedMemoryDataCatalog`` (what Kedro builds for ``ParallelRunner``) they are replaced by
    ``SharedMemoryDataset``\\ s, which the runner attaches to its manager process, as Kedro does
    for undeclared intermediate datasets. Other runners keep the declared datasets.
    """

    @hook_impl
    def after_catalog_created(self, catalog: Any) -> None:
        from kedro.io import MemoryDataset
        from kedro.io.data_catalog import SharedMemoryDataCatalog
        from kedro.io.shared_memory_dataset import SharedMemoryDataset

        if not isinstance(catalog, SharedMemoryDataCatalog):
            return
        for name in list(catalog.keys()):
            if name == "parameters" or name.startswith("params:"):
                continue
            ds = catalog.get(name)
            if type(ds) is MemoryDataset and not catalog.exists(name):
                catalog[name] = SharedMemoryDataset()
                log.debug("%s: process-shared for ParallelRunner", name)
