"""Run isolation: one `kedro run` at a time per project data folder, across real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from alphaminer.checkpoint import FolderLock, FolderLockedError
from alphaminer.hooks import RunLockHooks

sys.path.insert(0, str(Path(__file__).resolve().parent / "pipelines"))
from project_utils import run_project, scratch_project  # noqa: E402

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _env() -> dict[str, str]:
    return dict(os.environ, KEDRO_DISABLE_TELEMETRY="1",
                PYTHONPATH=os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")])))


def _hold_data_lock(project: Path) -> subprocess.Popen:
    """A child process that takes the project's data lock as a run would, then sleeps."""
    code = textwrap.dedent(f"""
        import time
        from types import SimpleNamespace
        from alphaminer.hooks import RunLockHooks
        hooks = RunLockHooks()
        hooks.after_context_created(SimpleNamespace(project_path={str(project)!r}))
        hooks.before_pipeline_run({{}}, None, None)
        print("locked", flush=True)
        time.sleep(600)
    """)
    child = subprocess.Popen([sys.executable, "-c", code, "--pretend-run"], env=_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = child.stdout.readline()
    if line.strip() != "locked":
        child.kill()
        raise AssertionError(f"lock holder did not start: {line!r} {child.stderr.read()}")
    return child


def _hooks_for(project: Path) -> RunLockHooks:
    hooks = RunLockHooks()
    hooks.after_context_created(SimpleNamespace(project_path=project))
    return hooks


def test_hook_locks_for_the_run_and_releases_on_success_and_on_error(tmp_path):
    hooks = _hooks_for(tmp_path)
    assert hooks.data_root() == tmp_path / "data"
    for end in ("after_pipeline_run", "on_pipeline_error"):
        hooks.before_pipeline_run({}, None, None)
        with pytest.raises(FolderLockedError, match=f"in use .*PID {os.getpid()}"):
            FolderLock(tmp_path / "data").acquire()
        if end == "after_pipeline_run":
            hooks.after_pipeline_run({}, None, None, None)
        else:
            hooks.on_pipeline_error(RuntimeError("node failed"), {}, None, None)
        FolderLock(tmp_path / "data").acquire().release()  # free again


def test_hook_recovers_its_own_lock_left_by_a_failed_start(tmp_path):
    hooks = _hooks_for(tmp_path)
    hooks.before_pipeline_run({}, None, None)
    # no after/on_error call: another hook raised before the pipeline ran; the next run in
    # this process must not be refused by our own leftover lock
    hooks.before_pipeline_run({}, None, None)
    hooks.after_pipeline_run({}, None, None, None)
    FolderLock(tmp_path / "data").acquire().release()


def test_second_kedro_run_fails_fast_naming_the_holder_then_runs_after_kill(tmp_path):
    proj = scratch_project(tmp_path)
    holder = _hold_data_lock(proj)
    try:
        t0 = time.monotonic()
        second = subprocess.run(
            [sys.executable, "-m", "kedro", "run", "--env", "test", "--pipelines=ingestion"],
            cwd=proj, env=_env(), capture_output=True, text=True, timeout=300, check=False)
        elapsed = time.monotonic() - t0
        out = second.stdout + second.stderr
        assert second.returncode != 0, out[-3000:]
        assert "FolderLockedError" in out and f"PID {holder.pid}" in out, out[-3000:]
        assert "--pretend-run" in out  # the holder's command line
        # it stopped before any node: nothing was written into the data layers
        assert not [p for p in (proj / "data").rglob("*") if p.is_file()
                    and not p.name.startswith(".lock")]
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert elapsed < 120, elapsed  # process start-up only, no pipeline work
    # kill -9 released the lock: a normal run now goes through, and releases it at the end
    run_project(proj, "ingestion")
    assert (proj / "data/03_primary/market_panel.parquet").exists()
    with FolderLock(proj / "data") as lock:
        assert lock.held
