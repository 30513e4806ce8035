"""The documented ways to run the project, as commands on conf/test, against one sequential run
(whose outputs are also checked: every method in the report, the manifest, the backtest
accounting).

- the default run split into ``default_cpu_before`` → ``default_gpu`` → ``default_cpu_after``;
- ``--pipelines=cpu`` (after a full run: every CPU node again, reading the GPU outputs) and
  ``--pipelines=gpu`` (after the split's CPU stage), both under ``--runner=ParallelRunner``
  (spawned workers), so between them every node of the default run runs in a worker process,
  ingestion's in-memory ``raw_data``/``clean_result`` included;
- the whole default run under ``alphaminer.runners.DaskRunner`` (conf/test with conf/dask's
  persisted hand-offs) on a cluster the test starts on 127.0.0.1: two worker processes, one
  with the resource ``GPU=1``, which every ``gpu`` node must run on.

Every alpha set, signal and metric must equal the sequential run's (Dask's signals within
1e-6). Timings in the alpha sets' ``meta`` are wall-clock and left out. All runs use one
OpenMP/MKL/BLAS thread per process (what Dask's workers get) so that float results are
bit-identical between runners.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from project_utils import REPO, latest, scratch_project

from alphaminer.pipeline_registry import DEFAULT_STAGES, register_pipelines
from alphaminer.pipelines._methods import ALL_METHODS, ALPHA_SET_METHODS
from alphaminer.runners import GPU_RESOURCE, DaskRunner

GPU_ALPHA_SETS = ("alphagen", "alpha2")  # mined on the GPU side, not depending on alphaformer
GPU_SIGNALS = ("alphanet", "mlp", "lstm")
#: Dask's nannies start workers with these; every other run here gets them too
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
ENV = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", **ONE_THREAD}
#: tqdm bars in modules that do not use alphaminer.progress yet (neural/alphanet,
#: evaluation/metrics.py)
STILL_TQDM = ("alphanet attribution", "alphanet epoch", "feature images", "correlation matrix")


def kedro_run(project: Path, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "kedro", "run", "--env", "test", *args],
                         cwd=project, env=ENV, capture_output=True, timeout=600, check=False)
    log = (out.stdout + out.stderr).decode("utf-8", "replace")  # bytes: keep any \r as is
    assert out.returncode == 0, f"kedro run {' '.join(args)} failed:\n{log[-4000:]}"
    # not a terminal: progress comes as log lines, not tqdm redraws (\r), except from the bars
    # not yet on alphaminer.progress
    redrawn = {seg.split(":")[0].strip() for seg in log.split("\r")[1:]} - {""}  # "": a clear
    assert all(r.startswith(STILL_TQDM) for r in redrawn), redrawn
    return log


def _json(project: Path, rel: str) -> dict:
    return json.loads(latest(project / "data" / rel).read_text())


def _alpha_set(project: Path, method: str) -> dict:
    d = _json(project, f"04_feature/{method}/alphas.json")
    return {"method": d["method"], "alphas": d["alphas"]}  # meta holds wall-clock timings


def _signal(project: Path, method: str) -> pd.DataFrame:
    return pd.read_parquet(latest(project / f"data/07_model_output/{method}/signal.parquet"))


def assert_same_method(a: Path, b: Path, method: str, signal_atol: float = 0.0) -> None:
    if method in ALPHA_SET_METHODS:
        assert _alpha_set(a, method) == _alpha_set(b, method), method
        for rel in ("combination_metrics.json",):
            assert _json(a, f"07_model_output/{method}/{rel}") == \
                _json(b, f"07_model_output/{method}/{rel}"), (method, rel)
    if signal_atol:
        pd.testing.assert_frame_equal(_signal(a, method), _signal(b, method), check_exact=False,
                                      rtol=0.0, atol=signal_atol, obj=f"{method} signal")
    else:
        pd.testing.assert_frame_equal(_signal(a, method), _signal(b, method), check_exact=True,
                                      obj=f"{method} signal")
    assert _json(a, f"07_model_output/{method}/backtest_metrics.json") == \
        _json(b, f"07_model_output/{method}/backtest_metrics.json"), method


def n_versions(project: Path, rel: str) -> int:
    return sum(1 for p in (project / "data" / rel).iterdir() if p.is_dir())


@pytest.fixture(scope="module")
def sequential(tmp_path_factory) -> Path:
    proj = scratch_project(tmp_path_factory.mktemp("sequential"))
    kedro_run(proj)
    return proj


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> Path:
    proj = scratch_project(tmp_path_factory.mktemp("split"))
    for stage in DEFAULT_STAGES:
        kedro_run(proj, f"--pipelines={stage}")
    return proj


def test_split_equals_sequential(sequential: Path, split: Path) -> None:
    for m in ALL_METHODS:
        assert_same_method(sequential, split, m)
    pd.testing.assert_frame_equal(
        pd.read_csv(latest(sequential / "data/08_reporting/comparison_table.csv")),
        pd.read_csv(latest(split / "data/08_reporting/comparison_table.csv")))
    assert latest(split / "data/08_reporting/research_report.html").stat().st_size > 0


def test_cpu_pipeline_in_parallel_workers(sequential: Path, tmp_path: Path) -> None:
    """After a full run, ``--pipelines=cpu`` reruns every CPU node (ingestion to the report)
    in spawned ParallelRunner workers and reproduces every method's results."""
    proj = tmp_path / "cpu"
    shutil.copytree(sequential, proj)
    kedro_run(proj, "--pipelines=cpu", "--runner=ParallelRunner")
    # the CPU side was really recomputed: a second version of its outputs, none of the GPU's
    assert n_versions(proj, "04_feature/library/alphas.json") == 2
    assert n_versions(proj, "08_reporting/research_report.html") == 2
    assert n_versions(proj, "07_model_output/alphanet/signal.parquet") == 1
    for m in ALL_METHODS:
        assert_same_method(sequential, proj, m)
    for rel in ("03_primary/labels.parquet",):
        pd.testing.assert_frame_equal(pd.read_parquet(sequential / "data" / rel),
                                      pd.read_parquet(proj / "data" / rel))


def test_gpu_pipeline_in_parallel_workers(sequential: Path, split: Path, tmp_path: Path
                                          ) -> None:
    """After the CPU-before stage, ``--pipelines=gpu`` runs every GPU node, including the
    synthetic markets and AlphaFormer pre-training (not in the default run), in spawned
    workers; the GPU methods that do not depend on the new AlphaFormer model are unchanged."""
    proj = tmp_path / "gpu"
    shutil.copytree(split, proj)
    kedro_run(proj, "--pipelines=gpu", "--runner=ParallelRunner")
    for m in GPU_ALPHA_SETS:
        assert _alpha_set(sequential, m) == _alpha_set(proj, m), m
    for m in GPU_SIGNALS:
        pd.testing.assert_frame_equal(_signal(sequential, m), _signal(proj, m), check_exact=True)
    # what only the gpu pipeline makes: a pre-trained AlphaFormer and the synthetic markets
    assert (latest(proj / "data/06_models/alphaformer/model") / "model.safetensors").exists()
    assert _json(proj, "08_reporting/synthetic/quality.json")
    assert n_versions(proj, "04_feature/alphaformer/alphas.json") == 2


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
    manifest = _json(project, "08_reporting/run_manifest.json")
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
    assert _json(proj, "08_reporting/run_manifest.json")["provenance"]["invocation"][
        "runner"] == "DaskRunner"
    # the manifest hook (driver) wrote the provenance sidecars of outputs saved on workers
    sidecar = latest(proj / "data/07_model_output/mlp/backtest_metrics.json")
    assert Path(str(sidecar) + ".run.json").exists()


# ---- what the default run must produce (formerly test_default_run.py, which ran its own
# in-process copy of the same run: one ~40 s run less for the suite)


@pytest.fixture(scope="module")
def project(sequential: Path) -> Path:
    """The sequential default run (``kedro run --env test``); read only."""
    return sequential


def _metrics(proj: Path, method: str) -> dict:
    return json.loads(latest(proj / f"data/07_model_output/{method}/backtest_metrics.json")
                      .read_text())


def test_report_has_every_method(project: Path):
    html = latest(project / "data/08_reporting/research_report.html").read_text()
    for m in ALL_METHODS:
        assert f">{m}<" in html or f"{m}</" in html
    assert "Comparison" in html and "data:image/png;base64," in html
    assert "http://" not in html and "https://" not in html
    table = pd.read_csv(latest(project / "data/08_reporting/comparison_table.csv"))
    assert set(ALL_METHODS) <= set(table.iloc[:, 0].astype(str))


def test_manifest(project: Path):
    man = json.loads(latest(project / "data/08_reporting/run_manifest.json").read_text())
    text = json.dumps(man)
    for key in ("commit", "torch", "kedro"):
        assert key in text
    report = json.loads(latest(project / "data/08_reporting/data_report.json").read_text())
    assert report["panel"]["fingerprint"] in text


def test_oracle_beats_library_out_of_sample(project: Path):
    oracle, library = _metrics(project, "oracle"), _metrics(project, "library")
    assert oracle["ic"] > library["ic"]
    assert oracle["rank_ic"] > 0


def test_backtest_accounting_in_catalog(project: Path):
    for m in ALL_METHODS:
        path = project / f"data/07_model_output/{m}/backtest_daily.parquet"
        daily = pd.read_parquet(latest(path))
        assert ((daily["equity"] - daily["cash"] - daily["holdings_value"]).abs()
                <= 1e-6 * daily["equity"]).all()
        assert (daily["cash"] >= 0).all()


def test_alphanet_outputs(project: Path):
    attr = pd.read_parquet(latest(project / "data/07_model_output/alphanet/attribution.parquet"))
    assert len(attr) > 0 and attr["feature"].str.startswith("BN(").all()
    model_dir = latest(project / "data/06_models/alphanet/model")
    assert (model_dir / "model.safetensors").exists() and (model_dir / "config.json").exists()
    tm = json.loads(latest(project / "data/06_models/alphanet/train_metrics.json").read_text())
    assert tm["device"] in ("auto", "cpu")
