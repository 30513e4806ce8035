"""The whole default run under ``alphaminer.runners.DaskRunner`` (conf/test with conf/dask's
persisted hand-offs) on a cluster the test starts on 127.0.0.1: two worker processes, one with
the resource ``GPU=1``, which every ``gpu`` node must run on. Every alpha set and metric must
equal the session's sequential run's (:func:`project_utils.shared_default_run`), signals within
1e-6. (A file of its own so that pytest-xdist can run it beside test_run_modes.py.)
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
from project_utils import ONE_THREAD, REPO, latest, scratch_project, shared_default_run
from run_compare import assert_same_method, read_json

from alphaminer.pipeline_registry import register_pipelines
from alphaminer.pipelines._methods import ALL_METHODS
from alphaminer.runners import GPU_RESOURCE, DaskRunner


@pytest.fixture(scope="module")
def sequential(tmp_path_factory) -> Path:
    return shared_default_run(tmp_path_factory)


@pytest.fixture
def dask_cluster():
    """Two worker processes on 127.0.0.1, one thread each, the second with ``GPU=1``."""
    from distributed import Nanny, Scheduler, SpecCluster

    opts = {"nthreads": 1, "host": "127.0.0.1", "env": ONE_THREAD}
    spec = SpecCluster(
        scheduler={"cls": Scheduler, "options": {"host": "127.0.0.1",
                                                 "dashboard_address": None}},
        workers={"cpu": {"cls": Nanny, "options": opts},
                 "gpu": {"cls": Nanny, "options": {**opts, "resources": {GPU_RESOURCE: 1}}}})
    try:
        yield spec
    finally:
        spec.close()


def _gpu_worker(cluster) -> str:
    from distributed import Client

    with Client(cluster, set_as_default=False) as c:
        info = c.scheduler_info(n_workers=-1)["workers"]
    [addr] = [a for a, w in info.items() if w.get("resources", {}).get(GPU_RESOURCE)]
    return addr


def _run_in_process(project: Path, runner) -> None:
    """``kedro run --env test`` in this process (the runner object is needed afterwards)."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    old_cwd, old_env = Path.cwd(), {k: os.environ.get(k) for k in ("KEDRO_DISABLE_TELEMETRY",
                                                                    *ONE_THREAD)}
    os.environ.update({"KEDRO_DISABLE_TELEMETRY": "1", **ONE_THREAD})
    os.chdir(project)
    try:
        bootstrap_project(project)
        with KedroSession.create(project_path=project, env="test") as session:
            session.run(runner=runner)
    finally:
        os.chdir(old_cwd)
        for k, v in old_env.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def _provenance(project: Path) -> dict:
    """The report manifest's provenance with the run's own id replaced by ``<run>``."""
    manifest = read_json(project, "08_reporting/run_manifest.json")
    prov = manifest["provenance"]
    sid = prov["session_id"]
    assert sid, "the report saw no run context"
    out = json.loads(json.dumps(prov).replace(sid, "<run>"))
    out.pop("invocation")  # the runner, and the CLI's [] where the API passes None
    return {**out, "params_sha256": manifest["params_sha256"],
            "data_fingerprint": manifest["data_fingerprint"]}


def test_dask_runner_equals_sequential(sequential: Path, dask_cluster, tmp_path: Path) -> None:
    """The whole default run under DaskRunner: each node one task, the ``gpu`` ones only on the
    ``GPU=1`` worker; every method's alpha set and metrics equal the sequential run's, signals
    within 1e-6, and the report's provenance names this run and its inputs as there."""
    proj = scratch_project(tmp_path)
    shutil.copy(REPO / "conf/dask/catalog_dask.yml", proj / "conf/test/catalog_dask.yml")
    runner = DaskRunner(address=dask_cluster.scheduler_address)
    _run_in_process(proj, runner)

    default = register_pipelines()["__default__"]
    gpu_nodes = {n.name for n in default.nodes if "gpu" in n.tags}
    ran, gpu_worker = runner.node_workers, _gpu_worker(dask_cluster)
    assert set(ran) == {n.name for n in default.nodes}
    assert len(gpu_nodes) >= 5 and {ran[n] for n in gpu_nodes} == {gpu_worker}
    assert {w for n, w in ran.items() if n not in gpu_nodes} - {gpu_worker}, \
        "no CPU node ran on the worker without a GPU"
    # ingestion's hand-offs went through files, not memory
    assert (proj / "data/02_intermediate/dask/clean_result.pkl").exists()

    for m in ALL_METHODS:
        assert_same_method(sequential, proj, m, signal_atol=1e-6)
    pd.testing.assert_frame_equal(
        pd.read_csv(latest(sequential / "data/08_reporting/comparison_table.csv")),
        pd.read_csv(latest(proj / "data/08_reporting/comparison_table.csv")))
    # the report node ran on a worker started before the run: the run's context reached it
    assert _provenance(proj) == _provenance(sequential)
    assert read_json(proj, "08_reporting/run_manifest.json")["provenance"]["invocation"][
        "runner"] == "DaskRunner"
    # the manifest hook (driver) wrote the provenance sidecars of outputs saved on workers
    sidecar = latest(proj / "data/07_model_output/mlp/backtest_metrics.json")
    assert Path(str(sidecar) + ".run.json").exists()
