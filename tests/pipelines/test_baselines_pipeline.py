"""`kedro run --pipelines=baselines`: GP and AlphaGen write their pools as alpha sets, and a run
killed with SIGKILL mid-way resumes to exactly the alpha sets of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from project_utils import latest, run_project, scratch_project

pytestmark = pytest.mark.slow

# long enough that the kill lands between checkpoints; still seconds on conf/test sizes
PARAMS = ("gp.mining.miner.generations=6,gp.mining.checkpoint_dir=data/06_models/gp/ckpt,"
          "alphagen.mining.miner.iterations=6,"
          "alphagen.mining.checkpoint_dir=data/06_models/alphagen/ckpt")


def _kedro(project: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}
    return subprocess.Popen([sys.executable, "-m", "kedro", "run", "--env", "test", *args],
                            cwd=project, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _alphas(project: Path, method: str) -> dict:
    return json.loads(latest(project / f"data/04_feature/{method}/alphas.json").read_text())


@pytest.fixture(scope="module")
def ingested(tmp_path_factory) -> Path:
    proj = scratch_project(tmp_path_factory.mktemp("baselines"))
    run_project(proj, "ingestion")
    return proj


@pytest.fixture(scope="module")
def reference(ingested: Path) -> dict:
    """One uninterrupted ``kedro run --pipelines=baselines`` (a subprocess, as the killed run
    is): the alpha sets the resumed run must reproduce, and what the first test checks."""
    ref = _kedro(ingested, "--pipelines=baselines", "--params", PARAMS.replace("ckpt", "ref"))
    err, _ = ref.communicate(timeout=600)
    assert ref.returncode == 0, err[-3000:]
    return {m: _alphas(ingested, m) for m in ("gp", "alphagen")}


def test_baselines_write_pools_as_alpha_sets(reference: dict) -> None:
    for m in ("gp", "alphagen"):
        a = reference[m]
        assert a["method"] == m and 0 < len(a["alphas"]) <= 5
        assert all(x["weight"] is not None for x in a["alphas"])
        assert a["meta"]["n_candidates"] > 0


def test_kill_9_mid_run_resumes_to_identical_alpha_sets(ingested: Path, reference: dict
                                                        ) -> None:
    want = {m: reference[m]["alphas"] for m in ("gp", "alphagen")}
    ckpt = ingested / "data/06_models"
    proc = _kedro(ingested, "--pipelines=baselines", "--params", PARAMS)
    deadline = time.time() + 300
    # kill as soon as the first miner has written a checkpoint (and before it finished)
    while time.time() < deadline and not list(ckpt.glob("*/ckpt/*/ckpt-00000002.json")):
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    again = _kedro(ingested, "--pipelines=baselines", "--params", PARAMS)
    err, _ = again.communicate(timeout=600)
    assert again.returncode == 0, err[-3000:]
    assert "resumed" in err
    for m in ("gp", "alphagen"):
        assert _alphas(ingested, m)["alphas"] == want[m], m
