"""Kedro hooks: run isolation, process set-up before any node runs, the manifest's raw facts."""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from alphaminer.checkpoint import FolderLock
from alphaminer.runtime import seed_everything, thread_report

log = logging.getLogger(__name__)


class RunLockHooks:
    """One run at a time per data root (``data/.lock`` by default), held for the whole run.

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

    def data_root(self, run_params: dict[str, Any] | None = None) -> Path:
        """The folder whose lock a run takes: the run's ``data_root`` runtime parameter
        (relative to the project, default ``data/``). Every catalog path lives under it, so
        runs in different data roots cannot touch each other's datasets and may run together
        (``kedro compare --dask`` runs the seeds' pairs side by side this way)."""
        root = self.project_path if self.project_path is not None else Path.cwd()
        rel = ((run_params or {}).get("runtime_params") or {}).get("data_root") or "data"
        return root / str(rel)

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
        lock = FolderLock(self.data_root(run_params), what="data folder")
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

    ``XLA_PYTHON_CLIENT_PREALLOCATE=false`` is set so JAX and torch can share one GPU
    (docs/howto.md).

    Provenance (docs/report.md, "Reproducing a report"): every versioned save gets a sidecar
    ``<file>.run.json`` next to it naming the run that wrote it (session id, parameters hash,
    env, pipelines, runtime parameters, git commit), so a later run that loads that version
    knows what produced it. Before the pipeline starts, the run's facts and, for every dataset
    a node of the pipeline reads, the version it will load and the run that wrote it are put in
    a JSON file named by ``$ALPHAMINER_RUN_CONTEXT``; a report's manifest reads it
    (:func:`alphaminer.reporting.manifest.run_context`). Node and dataset hooks refine it where
    they run (sequential and thread runners); ParallelRunner runs neither in its workers, so
    there the plan made at start is used and the sidecars are written when the pipeline ends.
    """

    def __init__(self) -> None:
        self.run_params: dict[str, Any] = {}
        self.project_path: Path | None = None
        self._catalog: Any = None
        self._context: dict[str, Any] | None = None
        self._context_file: Path | None = None
        self._lock = threading.Lock()

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
        self.project_path = Path(context.project_path)

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        self.run_params = dict(run_params)
        try:
            seed = int(catalog.load("params:seed"))
        except Exception:  # noqa: BLE001 - a project without a seed parameter still runs
            seed = 0
        seed_everything(seed)
        log.info("seeded python/numpy/torch with seed=%d; threads %s", seed, thread_report())
        self._start_provenance(run_params, pipeline, catalog)

    # ---- provenance ------------------------------------------------------------------------

    def _writer_facts(self, run_params: dict[str, Any], catalog: Any) -> dict[str, Any]:
        from alphaminer.reporting.manifest import canonical, git_state, params_hash

        try:
            phash: str | None = params_hash(catalog.load("parameters"))
        except Exception:  # noqa: BLE001 - no parameters (or unhashable ones): unknown
            phash = None
        git = git_state(self.project_path or run_params.get("project_path"))
        return {
            "session_id": run_params.get("run_id"),
            "params_sha256": phash,
            "env": run_params.get("env"),
            "pipelines": list(run_params.get("pipeline_names") or ["__default__"]),
            "runtime_params": canonical(run_params.get("runtime_params") or {}),
            "git_commit": git["commit"],
            "git_dirty": git["dirty"],
        }

    def _start_provenance(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        from alphaminer.reporting.manifest import RUN_CONTEXT_ENV, canonical

        if self._context_file is not None:  # left by a run that failed in another start hook
            self._context_file.unlink(missing_ok=True)
        self._catalog = catalog
        facts = self._writer_facts(run_params, catalog)
        sid = facts["session_id"]
        invocation = {k: run_params.get(k) for k in (
            "pipeline_names", "tags", "node_names", "from_nodes", "to_nodes", "from_inputs",
            "to_outputs", "namespaces", "load_versions", "runtime_params", "runner",
            "only_missing_outputs")}
        # Kedro records a runner instance as its repr ("<...ParallelRunner object at 0x...>")
        runner = str(invocation.get("runner") or "")
        invocation["runner"] = re.sub(r"^<(?:[\w.]+\.)?(\w+) object at 0x[0-9a-fA-F]+>$", r"\1",
                                      runner) or None
        self._context = {
            "session_id": sid, "env": facts["env"], "params_sha256": facts["params_sha256"],
            "project_path": str(self.project_path or run_params.get("project_path") or ""),
            "invocation": canonical(invocation), "datasets": {}, "writers": {sid: facts},
        }
        produced = set(pipeline.all_outputs())
        pins = dict(run_params.get("load_versions") or {})
        skip_existing = bool(run_params.get("only_missing_outputs"))
        names = sorted({n for node in pipeline.nodes for n in node.inputs
                        if n != "parameters" and not n.startswith("params:")})
        for name in names:
            if name in pins or name not in produced or (skip_existing
                                                         and _exists(catalog, name)):
                self._record_load(name, pins.get(name))
            elif _versioned(catalog.get(name)) is not None:
                self._context["datasets"][name] = {"version": sid, "written_by": sid}
            else:
                self._context["datasets"][name] = {"version": None, "written_by": None}
        fd, path = tempfile.mkstemp(prefix="alphaminer-run-", suffix=".json")
        os.close(fd)
        self._context_file = Path(path)
        self._write_context()
        os.environ[RUN_CONTEXT_ENV] = path

    def _record_load(self, name: str, version: str | None = None) -> None:
        """The version of ``name`` a load gets now and the run that wrote it (its sidecar)."""
        assert self._context is not None
        ds = _versioned(self._catalog.get(name)) if self._catalog is not None else None
        if ds is None:
            self._context["datasets"][name] = {"version": None, "written_by": None}
            return
        try:
            version = version or ds.resolve_load_version()
        except Exception:  # noqa: BLE001 - no version saved yet (the node will say so)
            version = None
        writer = None
        if version is not None:
            if version == self._context["session_id"]:
                writer = self._context["writers"][version]
            else:
                writer = _read_sidecar(ds, version)
        sid = writer.get("session_id") if isinstance(writer, dict) else None
        if sid and sid not in self._context["writers"]:
            self._context["writers"][sid] = writer
        self._context["datasets"][name] = {"version": version, "written_by": sid}

    def _write_context(self) -> None:
        if self._context_file is None or self._context is None:
            return
        tmp = self._context_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._context, sort_keys=True, default=str), encoding="utf-8")
        os.replace(tmp, self._context_file)

    @hook_impl
    def before_node_run(self, node: Any, catalog: Any, inputs: dict[str, Any]) -> None:
        """The versions this node actually loads (sequential and thread runners)."""
        if self._context is None:
            return
        with self._lock:
            for name in inputs:
                if name != "parameters" and not name.startswith("params:"):
                    self._record_load(name)
            self._write_context()

    def _sidecar(self, name: str) -> None:
        """Write ``<saved file>.run.json`` for this run's save of ``name``, if it has one."""
        if self._catalog is None or self._context is None:
            return
        ds = _versioned(self._catalog.get(name))
        if ds is None:
            return
        sid = self._context["session_id"]
        try:
            target = _version_path(ds, sid)
            fs = _fs(ds)
            if not fs.exists(target) or fs.exists(target + SIDECAR):
                return
            facts = dict(self._context["writers"][sid], dataset=name, version=sid)
            with fs.open(target + SIDECAR, "w") as fh:
                fh.write(json.dumps(facts, indent=1, sort_keys=True, default=str))
        except Exception as exc:  # noqa: BLE001 - a sidecar must never fail the run
            log.warning("%s: could not write its provenance sidecar: %s", name, exc)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any, node: Any) -> None:
        self._sidecar(dataset_name)

    def _finish(self, pipeline: Any) -> None:
        from alphaminer.reporting.manifest import RUN_CONTEXT_ENV

        if self._context is not None:
            for name in sorted(pipeline.all_outputs()):  # ParallelRunner ran no dataset hooks
                self._sidecar(name)
        if self._context_file is not None:
            self._context_file.unlink(missing_ok=True)
            if os.environ.get(RUN_CONTEXT_ENV) == str(self._context_file):
                os.environ.pop(RUN_CONTEXT_ENV, None)
        self._context, self._context_file, self._catalog = None, None, None

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], run_result: Any, pipeline: Any,
                           catalog: Any) -> None:
        self._finish(pipeline)

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict[str, Any], pipeline: Any,
                          catalog: Any) -> None:
        self._finish(pipeline)


#: suffix of a save's provenance sidecar (``alphaminer.reporting.manifest.SIDECAR_SUFFIX``)
SIDECAR = ".run.json"


def _versioned(ds: Any) -> Any:
    """``ds`` when it is a versioned dataset, else ``None``."""
    from kedro.io import AbstractVersionedDataset

    if isinstance(ds, AbstractVersionedDataset) and getattr(ds, "_version", None) is not None:
        return ds
    return None


def _exists(catalog: Any, name: str) -> bool:
    try:
        return bool(catalog.exists(name))
    except Exception:  # noqa: BLE001
        return False


def _fs(ds: Any) -> Any:
    import fsspec

    fs = getattr(ds, "_fs", None)
    return fs if fs is not None else fsspec.filesystem(getattr(ds, "_protocol", "file"))


def _version_path(ds: Any, version: str) -> str:
    from kedro.io.core import get_filepath_str

    return get_filepath_str(ds._get_versioned_path(version), getattr(ds, "_protocol", "file"))


def _read_sidecar(ds: Any, version: str) -> dict[str, Any] | None:
    """The writer facts saved next to ``version`` of ``ds``; ``None`` when there are none."""
    try:
        path = _version_path(ds, version) + SIDECAR
        fs = _fs(ds)
        if not fs.exists(path):
            return None
        with fs.open(path, "r") as fh:
            facts = json.loads(fh.read())
    except Exception:  # noqa: BLE001 - unreadable: unknown writer
        return None
    if not isinstance(facts, dict):
        return None
    return {k: v for k, v in facts.items() if k not in ("dataset", "version")}


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
