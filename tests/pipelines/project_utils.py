"""Run the Kedro project in a scratch copy (so tests never touch the repo's data/)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from filelock import FileLock

REPO = Path(__file__).resolve().parents[2]


def scratch_project(tmp: Path) -> Path:
    """Copy pyproject + conf into ``tmp`` (the package itself is installed), with empty data/."""
    shutil.copy(REPO / "pyproject.toml", tmp / "pyproject.toml")
    shutil.copytree(REPO / "conf", tmp / "conf", ignore=shutil.ignore_patterns("local"))
    (tmp / "conf" / "local").mkdir(exist_ok=True)
    (tmp / ".telemetry").write_text("consent: false\n")
    (tmp / "src").mkdir(exist_ok=True)
    for layer in ("01_raw", "02_intermediate", "03_primary", "04_feature", "05_model_input",
                  "06_models", "07_model_output", "08_reporting"):
        (tmp / "data" / layer).mkdir(parents=True, exist_ok=True)
    return tmp


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


def shared_default_run(tmp_path_factory) -> Path:
    """One ``kedro run --env test`` (CLI, :data:`ONE_THREAD`) for the whole session, made by
    whichever pytest-xdist worker asks first while the others wait on a file lock (pytest-xdist's
    documented recipe for session data). Read only: copy it before running anything on top."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    proj, done = root / "shared-default-run", root / "shared-default-run.done"
    with FileLock(str(root / "shared-default-run.lock")):
        if not done.exists():
            if proj.exists():  # a run that failed part-way under another worker
                shutil.rmtree(proj)
            proj.mkdir()
            kedro_run(scratch_project(proj))
            done.touch()
    return proj


def run_project(project: Path, pipeline: str | None = None, env: str = "test",
                extra_params: dict | None = None) -> None:
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    os.environ["KEDRO_DISABLE_TELEMETRY"] = "1"
    old = Path.cwd()
    os.chdir(project)
    try:
        bootstrap_project(project)
        with KedroSession.create(project_path=project, env=env,
                                 runtime_params=extra_params or {}) as session:
            session.run(pipeline_names=[pipeline] if pipeline else None)
    finally:
        os.chdir(old)


def latest(path: Path) -> Path:
    """The newest version of a versioned dataset at ``path`` (``path/<ts>/<name>``)."""
    versions = sorted(p for p in path.iterdir() if p.is_dir())
    if not versions:
        raise FileNotFoundError(f"no versions under {path}")
    return versions[-1] / path.name
