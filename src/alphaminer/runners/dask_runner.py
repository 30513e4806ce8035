"""A Kedro runner that submits one Dask distributed task per node (DESIGN §8).

Modelled on Kedro's documented Dask deployment recipe, written against Kedro 1.7's
``AbstractRunner``/``Task`` interfaces:

- the scheduler is ``DASK_SCHEDULER_ADDRESS`` (or the ``address`` runner parameter) when set;
  otherwise a ``LocalCluster`` bound to 127.0.0.1 is started for the run and closed after it;
- every node is one ``client.submit`` whose dependencies are the futures of the nodes that
  produce its inputs, so Dask orders the run and a failed node cancels what depends on it;
- nodes tagged ``gpu`` are submitted with ``resources={"GPU": 1}``: they run only on workers
  started with ``--resources GPU=1``; every other node runs anywhere;
- nodes run through Kedro's own :class:`~kedro.runner.task.Task` on the worker, with a hook
  manager built there from the project's ``settings.HOOKS`` (as ``ParallelRunner``'s workers
  do), so node and dataset hooks fire; pipeline hooks (run lock, manifest, seeding) fire in the
  driver process as for every runner, because ``KedroSession.run`` calls them around ``run``;
- workers are separate processes, possibly on other hosts: a dataset one node writes and
  another reads must be persisted by the catalog. An in-memory one fails the run before any
  node starts, naming it (use ``--env dask``, whose catalog persists them).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kedro.runner.runner import AbstractRunner

if TYPE_CHECKING:
    from distributed import Client
    from kedro.io import CatalogProtocol
    from kedro.pipeline import Pipeline
    from kedro.pipeline.node import Node
    from pluggy import PluginManager

log = logging.getLogger(__name__)

#: environment variable naming the scheduler to connect to (also read by Dask's own config)
SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"
#: the worker resource a ``gpu``-tagged node asks for
GPU_RESOURCE = "GPU"

_worker_lock = threading.Lock()
_worker_hooks: dict[str, Any] = {}


def _project_package() -> str | None:
    from kedro.framework.project import PACKAGE_NAME

    return PACKAGE_NAME


def _worker_hook_manager(package_name: str | None) -> Any:
    """The project's hook manager in this worker process, built once per process.

    A worker that is not the driver has never imported the project's settings: configure the
    project (``settings.HOOKS``, pipelines) as Kedro does in a spawned ``ParallelRunner``
    worker, then register the same hooks and plugin entry points a session would.
    """
    from kedro.framework.hooks.manager import (
        _create_hook_manager,
        _register_hooks,
        _register_hooks_entry_points,
    )
    from kedro.framework.project import configure_project, settings

    key = package_name or ""
    with _worker_lock:
        if key not in _worker_hooks:
            if package_name:
                from kedro.framework.project import PACKAGE_NAME

                if package_name != PACKAGE_NAME:
                    configure_project(package_name)
            manager = _create_hook_manager()
            _register_hooks(manager, settings.HOOKS)
            _register_hooks_entry_points(manager, settings.DISABLE_HOOKS_FOR_PLUGINS)
            _worker_hooks[key] = manager
        return _worker_hooks[key]


def run_node_on_worker(node: Node, catalog: CatalogProtocol, is_async: bool,
                       run_id: str | None, package_name: str | None, project_path: str,
                       *dependencies: Any) -> tuple[str, str]:
    """Run one node on a Dask worker; return ``(node name, worker address)``.

    ``dependencies`` are the results of the upstream nodes' tasks: Dask passes them only once
    those tasks succeeded, which is the ordering the pipeline needs. The worker works in the
    project folder, as ``kedro run`` does, so relative catalog paths (``data/...``) resolve
    to the project's files on every worker (the folder must be shared with the workers).
    """
    from kedro.runner.task import Task

    try:
        from distributed import get_worker

        address = get_worker().address
    except ValueError:  # not on a worker (a synchronous client in a test)
        address = "local"
    if Path.cwd() != Path(project_path):
        os.chdir(project_path)
    Task(node=node, catalog=catalog, hook_manager=_worker_hook_manager(package_name),
         is_async=is_async, run_id=run_id).execute()
    return node.name, address


def in_memory_handoffs(pipeline: Pipeline, catalog: CatalogProtocol) -> list[str]:
    """Datasets one node of ``pipeline`` writes and another reads that the catalog keeps only
    in memory (``MemoryDataset`` and other ephemeral datasets, declared or not)."""
    produced = set(chain.from_iterable(n.outputs for n in pipeline.nodes))
    consumed = set(chain.from_iterable(n.inputs for n in pipeline.nodes))
    bad = []
    for name in sorted(produced & consumed):
        ds = catalog.get(name, fallback_to_runtime_pattern=True)
        if ds is None or getattr(ds, "_EPHEMERAL", False):
            bad.append(name)
    return bad


class DaskRunner(AbstractRunner):
    """Runs a pipeline on a Dask distributed cluster, one task per node.

    ``kedro run --runner=alphaminer.runners.DaskRunner --env dask`` with
    ``DASK_SCHEDULER_ADDRESS=tcp://host:8786`` to use a running cluster, or without it to start
    a local one (``n_workers`` processes, ``threads_per_worker`` threads each, every local
    worker holding one ``GPU`` slot since they share the host's devices). Options can be given
    as ``--runner-params=n_workers=4``.

    After a run, :attr:`node_workers` maps each node to the worker address that ran it.
    """

    def __init__(self, address: str | None = None, n_workers: int | None = None,
                 threads_per_worker: int = 1, gpu_tag: str = "gpu",
                 project_path: str | None = None, is_async: bool = False) -> None:
        super().__init__(is_async=is_async)
        self._address = address
        self._n_workers = int(n_workers) if n_workers is not None else None  # CLI: a str
        self._threads_per_worker = int(threads_per_worker)
        self._gpu_tag = gpu_tag
        self._project_path = project_path
        self.node_workers: dict[str, str] = {}

    def _get_executor(self, max_workers: int) -> None:  # tasks go to Dask, not an executor
        return None

    # ---- cluster ---------------------------------------------------------------------------

    def scheduler_address(self) -> str | None:
        """The scheduler to connect to: the ``address`` parameter, else the environment."""
        return self._address or os.environ.get(SCHEDULER_ENV) or None

    def _connect(self) -> tuple[Client, Any]:
        from distributed import Client, LocalCluster

        address = self.scheduler_address()
        if address:
            self._logger.info("Dask: connecting to the scheduler at %s", address)
            return Client(address, set_as_default=False), None
        from alphaminer import available_cpus

        n = self._n_workers or max(1, min(available_cpus(), 4))
        cluster = LocalCluster(n_workers=n, threads_per_worker=self._threads_per_worker,
                               processes=True, host="127.0.0.1", dashboard_address=None,
                               resources={GPU_RESOURCE: 1})
        self._logger.info("Dask: started a local cluster of %d worker processes at %s", n,
                          cluster.scheduler_address)
        return Client(cluster, set_as_default=False), cluster

    @staticmethod
    def _gpu_workers(client: Client) -> list[str]:
        workers = client.scheduler_info(n_workers=-1).get("workers", {})
        return sorted(a for a, w in workers.items()
                      if (w.get("resources") or {}).get(GPU_RESOURCE, 0) >= 1)

    # ---- run -------------------------------------------------------------------------------

    def _check_handoffs(self, pipeline: Pipeline, catalog: CatalogProtocol) -> None:
        bad = in_memory_handoffs(pipeline, catalog)
        if bad:
            raise ValueError(
                f"DaskRunner: dataset(s) {bad} pass from one node to another in memory only; "
                "on Dask each node may run in another process or host, where they would not "
                "exist. Run with --env dask (conf/dask persists them), or declare them in the "
                "catalog as files.")

    def _run(self, pipeline: Pipeline, catalog: CatalogProtocol,
             hook_manager: PluginManager | None = None, run_id: str | None = None) -> None:
        from distributed import as_completed

        self._check_handoffs(pipeline, catalog)
        nodes = pipeline.nodes
        gpu_nodes = [n for n in nodes if self._gpu_tag in n.tags]
        project_path = str(Path(self._project_path or Path.cwd()).resolve())
        package = _project_package()
        client, cluster = self._connect()
        self.node_workers = {}
        try:
            if gpu_nodes and not self._gpu_workers(client):
                raise RuntimeError(
                    f"DaskRunner: {len(gpu_nodes)} node(s) tagged '{self._gpu_tag}' (e.g. "
                    f"{gpu_nodes[0].name!r}) need a worker with the resource {GPU_RESOURCE}=1 "
                    f"and the cluster at {client.scheduler.address} has none; start one with "
                    f"`dask worker <scheduler> --resources {GPU_RESOURCE}=1`.")
            [catalog_future] = client.scatter([catalog], broadcast=False, hash=False)
            futures: dict[Node, Any] = {}
            deps = pipeline.node_dependencies
            for node in nodes:  # topologically sorted: every dependency is submitted first
                resources = {GPU_RESOURCE: 1} if node in gpu_nodes else None
                futures[node] = client.submit(
                    run_node_on_worker, node, catalog_future, self._is_async, run_id, package,
                    project_path, *(futures[d] for d in deps[node]),
                    key=f"kedro-node-{node.name}-{run_id or ''}", resources=resources,
                    pure=False)
            self._logger.info("Dask: submitted %d node(s), %d of them to %s workers",
                              len(nodes), len(gpu_nodes), GPU_RESOURCE)
            by_future = {f: n for n, f in futures.items()}
            load_counts = Counter(chain.from_iterable(n.inputs for n in nodes))
            done: set[Node] = set()
            try:
                with client.as_current():
                    finished = as_completed(list(futures.values()))
                for future in finished:
                    name, worker = future.result()
                    node = by_future[future]
                    done.add(node)
                    self.node_workers[name] = worker
                    self._logger.info("Completed node: %s (worker %s)", name, worker)
                    self._logger.info("Completed %d out of %d tasks", len(done), len(nodes))
                    self._release_datasets(node, catalog, load_counts, pipeline)
            except Exception:
                client.cancel(list(futures.values()))
                self._suggest_resume_scenario(pipeline, done, catalog)
                raise
        finally:
            client.close()
            if cluster is not None:
                cluster.close()


__all__ = ["GPU_RESOURCE", "SCHEDULER_ENV", "DaskRunner", "in_memory_handoffs",
           "run_node_on_worker"]
