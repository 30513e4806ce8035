"""Run tracking: every ``kedro run`` as one MLflow run, so many runs can be searched and compared.

One MLflow run per Kedro run, in a local SQLite store under the run's data root
(``<data_root>/09_tracking/mlflow.db``, artifacts next to it), so ``data_root=/tmp/x`` keeps
runs apart like every other output. Logged: the run's parameters (flattened, ``backtest.
portfolio.topk``), tags naming the Kedro session, env, pipelines, runner, git commit and
parameters hash (the same facts as the report's manifest), every numeric entry of each
``<method>.backtest_metrics`` the run wrote as ``<method>.<key>`` (``gp.ic``, ``gp.rank_ic``,
``gp.icir``, ``gp.sharpe_standard``, ``gp.max_drawdown_qlib``, ...) and of each
``<method>.combination_metrics`` as ``<method>.combination.<key>`` (``gp.combination.valid_ic``),
and the report, comparison table and manifest files as artifacts when the run wrote them.

Configuration: ``conf/<env>/mlflow.yml`` (``enabled``, ``store``, ``tracking_uri``,
``experiment``); ``ALPHAMINER_TRACKING=0|1`` overrides ``enabled``. conf/test turns it off.

Why not kedro-mlflow's ``MlflowHook`` (2.0.3 was tried: its hooks load under Kedro 1.7, but it
logs parameters in ``before_node_run``, which ``ParallelRunner`` does not call in its spawned
workers, so a parallel run would have no parameters; its metrics need ``MlflowMetricDataset``
catalog entries in place of the JSON metric files the report reads; a store it cannot open
fails the run in ``after_context_created``; and it has no global off switch. This hook works in
the main process only (start, end, error) with an explicit ``MlflowClient`` (no process-global
active run, so threads and workers cannot pick up the wrong run), and any tracking error is a
warning: tracking never fails a run.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

log = logging.getLogger(__name__)

#: environment switch overriding ``enabled`` in mlflow.yml (``0/false/off`` or ``1/true/on``)
TRACKING_ENV = "ALPHAMINER_TRACKING"
#: the store when mlflow.yml names none (relative paths are relative to the project)
DEFAULT_STORE = "data/09_tracking/mlflow.db"
DEFAULT_EXPERIMENT = "alphaminer"
#: datasets whose saved file becomes an artifact of the run when the run wrote them
ARTIFACT_DATASETS: tuple[str, ...] = ("research_report", "comparison_table", "run_manifest")
#: per-method metric datasets (``<method><suffix>``) and the prefix of their keys after
#: ``<method>.``: the backtest's (test segment: IC, RankIC, ICIR, Sharpe, MDD, ...) as
#: ``<method>.<key>``, the combination's train/valid/test ICs as ``<method>.combination.<key>``
METRIC_DATASETS: dict[str, str] = {".backtest_metrics": "", ".combination_metrics": "combination."}

_FALSE = {"0", "false", "no", "off"}
_TRUE = {"1", "true", "yes", "on"}
_BAD_KEY_CHARS = re.compile(r"[^/\w.\- :]")


@dataclass(frozen=True)
class TrackingConfig:
    """Where and whether a run is tracked (``conf/<env>/mlflow.yml`` plus the env switch)."""

    enabled: bool = True
    tracking_uri: str = ""
    experiment: str = DEFAULT_EXPERIMENT
    artifact_location: str = ""

    @classmethod
    def from_conf(cls, conf: Mapping[str, Any] | None, project_path: Path) -> TrackingConfig:
        """Read mlflow.yml's keys; a relative ``store`` is taken relative to the project."""
        conf = dict(conf or {})
        unknown = set(conf) - {"enabled", "store", "tracking_uri", "experiment"}
        if unknown:
            raise ValueError(f"mlflow.yml: unknown keys {sorted(unknown)}; have enabled, store, "
                             "tracking_uri, experiment")
        enabled = _truthy(conf.get("enabled", True))
        switch = os.environ.get(TRACKING_ENV, "").strip().lower()
        if switch in _FALSE:
            enabled = False
        elif switch in _TRUE:
            enabled = True
        elif switch:
            log.warning("%s=%r is neither 0 nor 1: ignored", TRACKING_ENV, switch)
        uri = str(conf.get("tracking_uri") or "")
        artifacts = ""
        if not uri:
            store = Path(str(conf.get("store") or DEFAULT_STORE)).expanduser()
            if not store.is_absolute():
                store = project_path / store
            uri = f"sqlite:///{store.resolve()}"
            # mlflow's default artifact root is ./mlruns in the working directory: keep the
            # artifacts next to the store instead
            artifacts = (store.resolve().parent / "artifacts").as_uri()
        return cls(enabled=enabled, tracking_uri=uri,
                   experiment=str(conf.get("experiment") or DEFAULT_EXPERIMENT),
                   artifact_location=artifacts)

    @property
    def store_path(self) -> Path | None:
        """The SQLite file, when the store is one."""
        if self.tracking_uri.startswith("sqlite:///"):
            return Path(self.tracking_uri[len("sqlite:///"):])
        return None


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in _FALSE
    return bool(value)


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """``(dotted key, text)`` for every leaf of a nested parameter mapping; lists stay whole."""
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from flatten_params(value, prefix=f"{name}.")
        else:
            yield name, str(value)


def _metric_items(metrics: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, float]]:
    """Numeric leaves of a metrics mapping (bools, text and ``None`` are not metrics)."""
    for key, value in metrics.items():
        name = f"{prefix}.{key}"
        if isinstance(value, Mapping):
            yield from _metric_items(value, name)
        elif isinstance(value, bool) or value is None:
            continue
        else:
            try:
                yield name, float(value)
            except (TypeError, ValueError):
                continue


def _key(name: str) -> str:
    """A valid MLflow key: disallowed characters become ``_``, at most 250 characters."""
    from mlflow.utils.validation import MAX_ENTITY_KEY_LENGTH

    return _BAD_KEY_CHARS.sub("_", name)[:MAX_ENTITY_KEY_LENGTH]


def _runner_name(runner: Any) -> str | None:
    """``ParallelRunner`` for the ``"<kedro.runner.ParallelRunner object at 0x..>"`` Kedro
    records in ``run_params``."""
    text = str(runner or "")
    return re.sub(r"^<(?:[\w.]+\.)?(\w+) object at 0x[0-9a-fA-F]+>$", r"\1", text) or None


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


class TrackingHooks:
    """Logs each Kedro run as one MLflow run (see the module docstring). Every hook catches
    its own errors: a store that cannot be written gives a warning and the run goes on."""

    def __init__(self) -> None:
        self.project_path: Path | None = None
        self.config: TrackingConfig | None = None
        self.run_id: str | None = None
        self._client: Any = None
        self._started: float = 0.0

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        from kedro.config import MissingConfigException

        self.project_path = Path(context.project_path)
        try:
            conf = context.config_loader["mlflow"]
        except MissingConfigException:
            conf = {}
        except Exception as exc:  # noqa: BLE001 - bad tracking conf must not stop the run
            log.warning("tracking off: could not read mlflow.yml: %s", exc)
            self.config = TrackingConfig(enabled=False)
            return
        try:
            self.config = TrackingConfig.from_conf(conf, self.project_path)
        except ValueError as exc:
            log.warning("tracking off: %s", exc)
            self.config = TrackingConfig(enabled=False)

    @hook_impl(trylast=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any,
                            catalog: Any) -> None:
        # trylast: after the lock, the parameter check and the manifest's start, since Kedro
        # calls no on_pipeline_error for an error raised in a before_pipeline_run hook, and an
        # MLflow run started before such an error would stay RUNNING
        if self.run_id is not None:  # a previous run in this process ended without our hooks
            self._end("FAILED")
        self._started = time.time()
        cfg = self.config
        if cfg is None or not cfg.enabled:
            return
        try:
            self._start(cfg, run_params, catalog)
        except Exception as exc:  # noqa: BLE001 - tracking never fails a run
            log.warning("tracking off for this run: could not start an MLflow run in %s: %s",
                        cfg.tracking_uri, exc)
            self._abandon()

    def _start(self, cfg: TrackingConfig, run_params: dict[str, Any], catalog: Any) -> None:
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient
        from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH, MAX_PARAMS_TAGS_PER_BATCH

        from alphaminer.reporting.manifest import canonical, canonical_json, git_state, params_hash

        if cfg.store_path is not None:
            cfg.store_path.parent.mkdir(parents=True, exist_ok=True)
        client = MlflowClient(tracking_uri=cfg.tracking_uri)
        exp = client.get_experiment_by_name(cfg.experiment)
        if exp is None:
            exp_id = client.create_experiment(cfg.experiment,
                                              artifact_location=cfg.artifact_location or None)
        else:
            exp_id = exp.experiment_id
        pipelines = list(run_params.get("pipeline_names") or ["__default__"])
        try:  # validated blocks are pydantic models: canonical() dumps them as the YAML wrote them
            parameters = canonical(catalog.load("parameters"))
        except Exception:  # noqa: BLE001 - a run without parameters still gets tracked
            parameters = {}
        git = git_state(self.project_path or run_params.get("project_path"))
        tags = {
            "mlflow.source.name": "kedro run",
            "kedro.session_id": run_params.get("run_id"),
            "kedro.env": run_params.get("env"),
            "kedro.pipelines": ",".join(pipelines),
            "kedro.runner": _runner_name(run_params.get("runner")),
            "kedro.runtime_params": canonical_json(run_params.get("runtime_params") or {}),
            "git.commit": git["commit"],
            "git.dirty": git["dirty"],
        }
        for key in ("tags", "node_names", "from_nodes", "to_nodes", "from_inputs", "to_outputs",
                    "namespaces", "load_versions"):
            if run_params.get(key):  # the filters of a partial run
                tags[f"kedro.{key}"] = canonical_json(run_params[key])
        with contextlib.suppress(Exception):  # unhashable parameters: no hash tag
            tags["params_sha256"] = params_hash(parameters)
        run = client.create_run(exp_id, run_name="+".join(pipelines),
                                tags={k: str(v) for k, v in tags.items() if v is not None})
        self._client, self.run_id = client, run.info.run_id
        flat: dict[str, str] = {}  # by MLflow key: a key logged twice in one batch is an error
        for name, text in flatten_params(parameters if isinstance(parameters, Mapping) else {}):
            if len(text) > MAX_PARAM_VAL_LENGTH:
                log.warning("tracking: parameter %s (%d characters) truncated to %d", name,
                            len(text), MAX_PARAM_VAL_LENGTH)
            flat[_key(name)] = text[:MAX_PARAM_VAL_LENGTH]
        params = [Param(k, v) for k, v in flat.items()]
        for batch in _chunks(params, MAX_PARAMS_TAGS_PER_BATCH):
            client.log_batch(self.run_id, params=batch)
        log.info("tracking this run as MLflow run %s (experiment %r) in %s", self.run_id,
                 cfg.experiment, cfg.tracking_uri)

    def _abandon(self) -> None:
        self.run_id, self._client = None, None

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], run_result: Any, pipeline: Any,
                           catalog: Any) -> None:
        if self.run_id is None:
            return
        status = "FINISHED"
        try:
            self._log_results(run_params, pipeline, catalog)
        except Exception as exc:  # noqa: BLE001 - tracking never fails a run
            log.warning("tracking: could not log this run's results: %s", exc)
        self._end(status)

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict[str, Any], pipeline: Any,
                          catalog: Any) -> None:
        if self.run_id is None:
            return
        try:  # what finished before the error is still worth comparing
            self._log_results(run_params, pipeline, catalog)
        except Exception as exc:  # noqa: BLE001
            log.warning("tracking: could not log this run's results: %s", exc)
        self._end("FAILED")

    def _end(self, status: str) -> None:
        try:
            self._client.set_terminated(self.run_id, status)
        except Exception as exc:  # noqa: BLE001
            log.warning("tracking: could not close MLflow run %s: %s", self.run_id, exc)
        self._abandon()

    def _log_results(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        from mlflow.entities import Metric
        from mlflow.utils.time import get_current_time_millis
        from mlflow.utils.validation import MAX_METRICS_PER_BATCH

        outputs = set(pipeline.all_outputs())
        sid = run_params.get("run_id")
        now = get_current_time_millis()
        metrics: list[Metric] = []
        for name in sorted(outputs):
            suffix = next((x for x in METRIC_DATASETS if name.endswith(x)), None)
            if suffix is None:
                continue
            data = self._this_runs_save(catalog, name, sid, self._started)
            if data is None:
                continue
            prefix = name[:-len(suffix)] + "." + METRIC_DATASETS[suffix]
            for key, value in _metric_items(data, prefix.rstrip(".")):
                if math.isfinite(value) or math.isnan(value):
                    metrics.append(Metric(_key(key), value, now, 0))
        for batch in _chunks(metrics, MAX_METRICS_PER_BATCH):
            self._client.log_batch(self.run_id, metrics=batch)
        for name in ARTIFACT_DATASETS:
            if name in outputs:
                path = self._saved_file(catalog, name, sid, self._started)
                if path is not None:
                    self._client.log_artifact(self.run_id, str(path))

    @staticmethod
    def _this_runs_save(catalog: Any, name: str, sid: str | None, started: float) -> Any:
        """The metrics this run saved in ``name`` (``None`` when it saved none)."""
        path = TrackingHooks._saved_file(catalog, name, sid, started)
        if path is None:
            return None
        import json

        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, Mapping) else None

    @staticmethod
    def _saved_file(catalog: Any, name: str, sid: str | None, started: float
                    ) -> Path | None:
        """The local file this run saved for ``name``: its version ``sid`` when versioned,
        else its one file if written since ``started``; ``None`` when there is none (a node
        that failed or was skipped)."""
        from alphaminer.hooks import _version_path, _versioned

        try:
            ds = catalog.get(name)
        except Exception:  # noqa: BLE001 - not a catalog entry
            return None
        if ds is None or getattr(ds, "_protocol", "file") not in ("file", "local"):
            return None
        versioned = _versioned(ds)
        if versioned is not None:
            if sid is None:
                return None
            path = Path(_version_path(versioned, sid))
        else:
            filepath = getattr(ds, "_filepath", None)
            if filepath is None:
                return None
            path = Path(str(filepath))
            if not path.is_file() or path.stat().st_mtime < started - 1.0:
                return None
        return path if path.is_file() else None


__all__ = ["TrackingConfig", "TrackingHooks", "flatten_params"]
