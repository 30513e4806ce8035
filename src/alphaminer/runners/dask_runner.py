"""A Kedro runner that submits one Dask distributed task per node (docs/howto.md).

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
- what those driver hooks leave for the nodes travels with the tasks: the run's context (the
  manifest hook's ``$ALPHAMINER_RUN_CONTEXT`` file, which the report's provenance reads) is
  sent as text and put in a file on each worker, since a worker started before the run (or on
  another host) has neither the variable nor the driver's file;
- a worker's one-off start-up (importing the project, the nodes' modules and their libraries,
  building the hook manager) is one task per worker submitted before the nodes, so the workers
  pay it side by side instead of one after another inside their first node (on 2 cores the
  second worker's start-up otherwise sat on the critical path of a conf/test run: ~9 s);
- workers are separate processes, possibly on other hosts: a dataset one node writes and
  another reads must be persisted by the catalog. An in-memory one fails the run before any
  node starts, naming it (use ``--env dask``, whose catalog persists them).
"""

from __future__ import annotations

import atexit
import importlib
import logging
import os
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
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
#: this worker process's copies of runs' contexts: run id -> [file, tasks using it now]
_worker_contexts: dict[str, list[Any]] = {}
_env_before: list[str | None] = []  # the variable's value before the first task set it


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


def _run_context_env() -> str:
    from alphaminer.reporting.manifest import RUN_CONTEXT_ENV

    return RUN_CONTEXT_ENV


def driver_run_context() -> str | None:
    """The text of the current run's context file in the driver (``None`` outside a run)."""
    path = os.environ.get(_run_context_env())
    if not path:
        return None
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError:
        return None


def _drop_context_files() -> None:
    for path, _users in _worker_contexts.values():
        Path(path).unlink(missing_ok=True)
    _worker_contexts.clear()


atexit.register(_drop_context_files)


@contextmanager
def worker_run_context(run_id: str | None, text: str | None) -> Iterator[None]:
    """While a node runs, ``$ALPHAMINER_RUN_CONTEXT`` names this process's copy of ``text``.

    One file per run and worker process, written by the run's first task there; a later run's
    first task removes the files of earlier runs no task still uses. The variable is
    process-wide: a worker running tasks of two runs at the same time (several threads, two
    drivers) shows both the last one's context. Restored when no task uses it any more.
    """
    if text is None:
        yield
        return
    var, key = _run_context_env(), run_id or ""
    with _worker_lock:
        if key not in _worker_contexts:
            for old in [k for k, (_p, users) in _worker_contexts.items() if users == 0]:
                Path(_worker_contexts.pop(old)[0]).unlink(missing_ok=True)
            fd, path = tempfile.mkstemp(prefix="alphaminer-run-", suffix=".json")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            _worker_contexts[key] = [path, 0]
        entry = _worker_contexts[key]
        if not any(users for _p, users in _worker_contexts.values()):
            _env_before[:] = [os.environ.get(var)]
        entry[1] += 1
        os.environ[var] = entry[0]
    try:
        yield
    finally:
        with _worker_lock:
            entry[1] -= 1
            if not any(users for _p, users in _worker_contexts.values()):
                before = _env_before[0] if _env_before else None
                if before is None:
                    os.environ.pop(var, None)
                else:
                    os.environ[var] = before


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except ValueError:  # not on a worker (a synchronous client in a test)
        return "local"


def node_modules(nodes: list[Node]) -> list[str]:
    """The modules defining the nodes' functions (what unpickling a node imports)."""
    mods = set()
    for n in nodes:
        func = n.func
        while not getattr(func, "__module__", None) and hasattr(func, "func"):
            func = func.func  # functools.partial
        mod = getattr(func, "__module__", None)
        if mod and mod != "__main__":
            mods.add(mod)
    return sorted(mods)


def warm_up_worker(package_name: str | None, project_path: str, modules: list[str]) -> str:
    """Pay a worker's start-up before its first node: the project's configuration and hook
    manager, and the nodes' modules (torch, JAX, the boosters... come with them). Returns the
    worker's address. A module that does not import fails here, before any node ran."""
    if Path.cwd() != Path(project_path):
        os.chdir(project_path)
    _worker_hook_manager(package_name)
    for mod in modules:
        importlib.import_module(mod)
    return _worker_address()


def run_node_on_worker(node: Node, catalog: CatalogProtocol, is_async: bool,
                       run_id: str | None, package_name: str | None, project_path: str,
                       run_context: str | None, *dependencies: Any) -> tuple[str, str]:
    """Run one node on a Dask worker; return ``(node name, worker address)``.

    ``dependencies`` are the results of the upstream nodes' tasks: Dask passes them only once
    those tasks succeeded, which is the ordering the pipeline needs. The worker works in the
    project folder, as ``kedro run`` does, so relative catalog paths (``data/...``) resolve
    to the project's files on every worker (the folder must be shared with the workers).
    ``run_context`` is the driver's run context (:func:`driver_run_context`), made visible to
    the node by :func:`worker_run_context`.
    """
    from kedro.runner.task import Task

    address = _worker_address()
    if Path.cwd() != Path(project_path):
        os.chdir(project_path)
    with worker_run_context(run_id, run_context):
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
        from distributed import Client

        address = self.scheduler_address()
        if address:
            self._logger.info("Dask: connecting to the scheduler at %s", address)
            return Client(address, set_as_default=False), None
        from alphaminer import available_cpus
        from alphaminer.evaluation.distributed import local_cluster

        n = self._n_workers or max(1, min(available_cpus(), 4))
        cluster = local_cluster(n, self._threads_per_worker, resources={GPU_RESOURCE: 1})
        self._logger.info("Dask: started a local cluster of %d worker processes at %s", n,
                          cluster.scheduler_address)
        return Client(cluster, set_as_default=False), cluster

    @staticmethod
    def _workers(client: Client) -> dict[str, Any]:
        return dict(client.scheduler_info(n_workers=-1).get("workers", {}))

    @classmethod
    def _gpu_workers(cls, client: Client) -> list[str]:
        return sorted(a for a, w in cls._workers(client).items()
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
            # every worker gets the catalog and the run's context now, and starts up, side
            # by side: a node then waits for neither
            catalog_future, context_future = client.scatter(
                [catalog, driver_run_context()], broadcast=True, hash=False)
            modules = node_modules(nodes)
            warm = [client.submit(warm_up_worker, package, project_path, modules,
                                  key=f"kedro-warm-up-{addr}-{run_id or ''}", workers=[addr],
                                  allow_other_workers=False, pure=False)
                    for addr in sorted(self._workers(client))]
            futures: dict[Node, Any] = {}
            deps = pipeline.node_dependencies
            for node in nodes:  # topologically sorted: every dependency is submitted first
                resources = {GPU_RESOURCE: 1} if node in gpu_nodes else None
                futures[node] = client.submit(
                    run_node_on_worker, node, catalog_future, self._is_async, run_id, package,
                    project_path, context_future, *(futures[d] for d in deps[node]),
                    key=f"kedro-node-{node.name}-{run_id or ''}", resources=resources,
                    pure=False)
            self._logger.info("Dask: submitted %d node(s), %d of them to %s workers",
                              len(nodes), len(gpu_nodes), GPU_RESOURCE)
            by_future = {f: n for n, f in futures.items()}
            load_counts = Counter(chain.from_iterable(n.inputs for n in nodes))
            done: set[Node] = set()
            warm_set = set(warm)
            try:
                with client.as_current():
                    finished = as_completed([*warm, *futures.values()])
                for future in finished:
                    if future in warm_set:
                        future.result()  # a worker that cannot import the project fails here
                        continue
                    name, worker = future.result()
                    node = by_future[future]
                    done.add(node)
                    self.node_workers[name] = worker
                    self._logger.info("Completed node: %s (worker %s)", name, worker)
                    self._logger.info("Completed %d out of %d tasks", len(done), len(nodes))
                    self._release_datasets(node, catalog, load_counts, pipeline)
            except Exception:
                client.cancel([*warm, *futures.values()])
                self._suggest_resume_scenario(pipeline, done, catalog)
                raise
        finally:
            client.close()
            if cluster is not None:
                cluster.close()


__all__ = ["GPU_RESOURCE", "SCHEDULER_ENV", "DaskRunner", "driver_run_context",
           "in_memory_handoffs", "node_modules", "run_node_on_worker", "warm_up_worker",
           "worker_run_context"]
