"""DaskRunner on a real 2-process Dask cluster (127.0.0.1), against the SequentialRunner.

One cluster for the module: two worker processes, one advertising ``GPU=1``. The pipeline is
the default run cut at ``library.backtest_metrics`` and ``mlp.backtest_metrics`` on conf/test
sizes: ingestion (its in-memory datasets persisted by conf/dask), the classic alpha library
→ combination → backtest chain, and the ``gpu``-tagged MLP baseline → backtest. The full
default run (about 60 nodes, minutes on 2 cores) is covered for ParallelRunner by
tests/pipelines/test_run_modes.py; this subset has every kind of hand-off the full one has.

Both runs use one thread per process (Dask's worker default): float results are then
bit-identical between runners.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline, node

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipelines"))
from project_utils import REPO, latest, scratch_project  # noqa: E402

from alphaminer.runners import DaskRunner  # noqa: E402
from alphaminer.runners.dask_runner import in_memory_handoffs  # noqa: E402

OUTPUTS = ("library.backtest_metrics", "mlp.backtest_metrics")
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def cluster():
    from distributed import Nanny, Scheduler, SpecCluster

    worker = {"cls": Nanny, "options": {"nthreads": 1, "host": "127.0.0.1"}}
    gpu = {"cls": Nanny, "options": {"nthreads": 1, "host": "127.0.0.1",
                                     "resources": {"GPU": 1}}}
    spec = SpecCluster(
        scheduler={"cls": Scheduler, "options": {"host": "127.0.0.1",
                                                 "dashboard_address": None}},
        workers={"cpu": worker, "gpu": gpu})
    try:
        yield spec
    finally:
        spec.close()


def _gpu_address(cluster) -> str:
    from distributed import Client

    with Client(cluster, set_as_default=False) as c:
        info = c.scheduler_info(n_workers=-1)["workers"]
    [addr] = [a for a, w in info.items() if w.get("resources", {}).get("GPU")]
    return addr


def _run(project: Path, runner, env: str = "test") -> None:
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    old_cwd, old_env = Path.cwd(), {k: os.environ.get(k) for k in ONE_THREAD}
    os.environ.update(ONE_THREAD)
    os.environ["KEDRO_DISABLE_TELEMETRY"] = "1"
    os.chdir(project)
    try:
        bootstrap_project(project)
        with KedroSession.create(project_path=project, env=env) as session:
            session.run(runner=runner, to_outputs=list(OUTPUTS))
    finally:
        os.chdir(old_cwd)
        for k, v in old_env.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def _json(project: Path, rel: str) -> dict:
    return json.loads(latest(project / "data" / rel).read_text())


def _signal(project: Path, method: str) -> pd.DataFrame:
    return pd.read_parquet(latest(project / f"data/07_model_output/{method}/signal.parquet"))


def test_dask_equals_sequential_and_routes_gpu_nodes(cluster, tmp_path: Path) -> None:
    from kedro.runner import SequentialRunner

    (tmp_path / "seq").mkdir()
    (tmp_path / "dask").mkdir()
    seq, dsk = scratch_project(tmp_path / "seq"), scratch_project(tmp_path / "dask")
    # conf/test sizes with conf/dask's persisted hand-offs
    shutil.copy(REPO / "conf/dask/catalog_dask.yml", dsk / "conf/test/catalog_dask.yml")
    _run(seq, SequentialRunner())
    runner = DaskRunner(address=cluster.scheduler_address)
    _run(dsk, runner)

    gpu_worker = _gpu_address(cluster)
    ran = runner.node_workers
    assert "mlp.fit_predict_mlp" in ran and "library.backtest" in str(sorted(ran))
    assert ran["mlp.fit_predict_mlp"] == gpu_worker
    # the CPU nodes were free to go anywhere and some went to the worker without a GPU
    assert {w for n, w in ran.items() if n != "mlp.fit_predict_mlp"} - {gpu_worker}
    # ingestion's hand-offs went through files, not memory
    assert (dsk / "data/02_intermediate/dask/clean_result.pkl").exists()

    a = _json(seq, "04_feature/library/alphas.json")
    b = _json(dsk, "04_feature/library/alphas.json")
    assert (a["method"], a["alphas"]) == (b["method"], b["alphas"])
    for rel in ("library/combination_metrics.json", "library/backtest_metrics.json",
                "mlp/backtest_metrics.json"):
        assert _json(seq, f"07_model_output/{rel}") == _json(dsk, f"07_model_output/{rel}"), rel
    for m in ("library", "mlp"):
        pd.testing.assert_frame_equal(_signal(seq, m), _signal(dsk, m), check_exact=False,
                                      rtol=0.0, atol=1e-6)
    # project hooks ran: the manifest hook wrote provenance sidecars for Dask-written outputs
    sidecar = latest(dsk / "data/07_model_output/mlp/backtest_metrics.json")
    assert Path(str(sidecar) + ".run.json").exists()


def _double(x: int) -> int:
    return 2 * x


def test_in_memory_handoff_fails_before_any_node_runs() -> None:
    pipe = Pipeline([node(_double, "a", "b", name="first"), node(_double, "b", "c", name="x")])
    catalog = DataCatalog({"a": MemoryDataset(1)})
    assert in_memory_handoffs(pipe, catalog) == ["b"]
    with pytest.raises(ValueError, match=r"\['b'\].*--env dask"):
        DaskRunner(address="tcp://127.0.0.1:1").run(pipe, catalog)  # never connects


def test_gpu_node_without_gpu_worker_fails_early(tmp_path: Path) -> None:
    from distributed import LocalCluster

    from alphaminer.runners.dask_runner import GPU_RESOURCE

    pipe = Pipeline([node(_double, "a", "b", name="train", tags=["gpu"])])
    catalog = DataCatalog({"a": MemoryDataset(3), "b": MemoryDataset()})
    # an in-process cluster (inproc:// transport, no network) whose one worker has no GPU
    with (LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                       dashboard_address=None) as lc,
          pytest.raises(RuntimeError, match=f"{GPU_RESOURCE}=1.*has none")):
        DaskRunner(address=lc.scheduler_address, project_path=str(tmp_path)).run(pipe, catalog)
