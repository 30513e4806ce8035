"""Run the Kedro project in a scratch copy (so tests never touch the repo's data/)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

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
