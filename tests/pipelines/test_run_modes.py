"""The documented ways to run the project, as commands on conf/test, against the session's one
sequential run (:func:`project_utils.shared_default_run`), whose outputs are also checked here:
every method in the report and its figure files, the manifest, the backtest accounting.

- the default run split into ``default_cpu_before`` → ``default_gpu`` → ``default_cpu_after``,
  the two CPU stages under ``--runner=ParallelRunner`` (spawned workers; together they are the
  ``cpu`` pipeline, node for node);
- ``--pipelines=gpu`` after the split, under ``--runner=ParallelRunner``;

so between them every node of the default run runs in a worker process, ingestion's in-memory
``raw_data``/``clean_result`` included. The Dask runner's run is in test_run_modes_dask.py.

Every alpha set, signal and metric must equal the sequential run's. Timings in the alpha sets'
``meta`` are wall-clock and left out. All runs use one OpenMP/MKL/BLAS thread per process
(what Dask's workers get) so that float results are bit-identical between runners.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from project_utils import kedro_run, latest, scratch_project, shared_default_run
from run_compare import alpha_set, assert_same_method, n_versions, read_json, signal

from alphaminer.pipeline_registry import DEFAULT_STAGES, register_pipelines
from alphaminer.pipelines._methods import ALL_METHODS
from alphaminer.reporting.figures import FIGURE_KEYS

GPU_ALPHA_SETS = ("alphagen", "alpha2")  # mined on the GPU side, not depending on alphaformer
GPU_SIGNALS = ("alphanet", "mlp", "lstm")


@pytest.fixture(scope="module")
def sequential(tmp_path_factory) -> Path:
    return shared_default_run(tmp_path_factory)


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> Path:
    proj = scratch_project(tmp_path_factory.mktemp("split"))
    for stage in DEFAULT_STAGES:
        runner = () if "gpu" in stage else ("--runner=ParallelRunner",)
        kedro_run(proj, f"--pipelines={stage}", *runner)
    return proj


def test_split_stages_cover_the_cpu_pipeline() -> None:
    """The split's ParallelRunner stages are exactly ``--pipelines=cpu``: no CPU node of the
    default run escapes the workers."""
    pipes = register_pipelines()
    stages = {n.name for st in DEFAULT_STAGES if "cpu" in st for n in pipes[st].nodes}
    assert stages == {n.name for n in pipes["cpu"].nodes}
    assert len(stages) + len(pipes["default_gpu"].nodes) == len(pipes["__default__"].nodes)


def test_split_equals_sequential(sequential: Path, split: Path) -> None:
    for m in ALL_METHODS:
        assert_same_method(sequential, split, m)
    pd.testing.assert_frame_equal(
        pd.read_csv(latest(sequential / "data/08_reporting/comparison_table.csv")),
        pd.read_csv(latest(split / "data/08_reporting/comparison_table.csv")))
    for rel in ("03_primary/labels.parquet",):  # written by a ParallelRunner worker
        pd.testing.assert_frame_equal(pd.read_parquet(sequential / "data" / rel),
                                      pd.read_parquet(split / "data" / rel))
    assert latest(split / "data/08_reporting/research_report.html").stat().st_size > 0


def test_gpu_pipeline_in_parallel_workers(sequential: Path, split: Path, tmp_path: Path
                                          ) -> None:
    """After the split, ``--pipelines=gpu`` runs every GPU node, including the synthetic
    markets and AlphaFormer pre-training (not in the default run), in spawned workers; the GPU
    methods that do not depend on the new AlphaFormer model are unchanged."""
    proj = tmp_path / "gpu"
    shutil.copytree(split, proj)
    kedro_run(proj, "--pipelines=gpu", "--runner=ParallelRunner")
    for m in GPU_ALPHA_SETS:
        assert alpha_set(sequential, m) == alpha_set(proj, m), m
    for m in GPU_SIGNALS:
        pd.testing.assert_frame_equal(signal(sequential, m), signal(proj, m), check_exact=True)
    # what only the gpu pipeline makes: a pre-trained AlphaFormer and the synthetic markets
    assert (latest(proj / "data/06_models/alphaformer/model") / "model.safetensors").exists()
    assert read_json(proj, "08_reporting/synthetic/quality.json")
    assert n_versions(proj, "04_feature/alphaformer/alphas.json") == 2


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
    # report_figures: every method's backtest figures, the very images the HTML embeds
    files = {p.name: p.read_bytes() for p in (project / "data/08_reporting/figures").iterdir()}
    assert {f"{m}__{k}.png" for m in ALL_METHODS for k in FIGURE_KEYS} <= set(files)
    assert all(base64.b64encode(png).decode() in html for png in files.values())
    # conf/test's reporting.dpi (60) reaches every PNG: 9 x 3.4 inches -> 540 x 204 pixels
    # (the IHDR chunk: width and height as big-endian uint32 at bytes 16-24)
    sizes = {(int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big"))
             for png in files.values()}
    assert (540, 204) in sizes and all(w <= 540 for w, _ in sizes), sizes


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
