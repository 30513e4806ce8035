"""The kedro-viz static build lists every pipeline, with the nodes' tags."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from project_utils import scratch_project

from alphaminer.pipelines._methods import ALL_METHODS


def test_kedro_viz_build_lists_pipelines_and_tags(tmp_path: Path):
    proj = scratch_project(tmp_path)
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}
    out = subprocess.run([sys.executable, "-m", "kedro", "viz", "build"], cwd=proj, env=env,
                         capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    main = json.loads((proj / "build" / "api" / "main").read_text())
    listed = {p["id"] for p in main["pipelines"]}
    assert {"ingestion", "alpha_library", "feature_images", "alphanet_train", "combination",
            "backtest", "reporting", "cpu", "gpu", "__default__"} <= listed
    assert {t["id"] for t in main["tags"]} == {"cpu", "gpu"}
    tasks = [n for n in main["nodes"] if n["type"] == "task"]
    assert tasks and all(len({"cpu", "gpu"} & set(n["tags"])) == 1 for n in tasks)
    by_name = {n["name"]: n for n in tasks}
    assert "gpu" in by_name["train_alphanet"]["tags"]
    # one pipeline file per registered pipeline, and the namespaced datasets are there
    for p in listed:
        assert (proj / "build" / "api" / "pipelines" / p).exists()
    names = {n["name"] for n in main["nodes"]}
    for m in ALL_METHODS:
        assert f"{m}.backtest_metrics" in names
