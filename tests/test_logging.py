"""Log lines off a terminal are not wrapped at 80 columns (alphaminer.progress.widen_log_consoles,
called from settings.py), with the project's conf/logging.yml and with Kedro's default config,
also for handlers made after settings (ParallelRunner's spawned workers reconfigure logging)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
KEDRO_DEFAULT = "kedro_default"

#: a child whose stdout is a pipe: Kedro configures logging at import, then the project's
#: settings are imported (as ``kedro run`` does), one long line is logged, logging is
#: configured again from the same config (as a spawned ParallelRunner worker does), and
#: the line is logged again
CHILD = textwrap.dedent("""
    import logging
    from kedro.framework.project import LOGGING, configure_logging
    import alphaminer.settings  # noqa: F401
    msg = "first " + " ".join(f"w{i:03d}" for i in range(30)) + " end"
    logging.getLogger("alphaminer.demo").warning(msg)
    configure_logging(dict(LOGGING.data))
    logging.getLogger("alphaminer.demo").warning(msg.replace("first", "again"))
""")


def _child_env(**env_extra: str) -> dict[str, str]:
    """This environment without what sets a log width or config, plus ``env_extra``."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("COLUMNS", "ALPHAMINER_LOG_WIDTH", "KEDRO_LOGGING_CONFIG")}
    env.update(KEDRO_DISABLE_TELEMETRY="1", **env_extra)
    return env


def _child_output(config: str, tmp_path: Path, **env_extra: str) -> str:
    env = _child_env(**env_extra)
    if config == KEDRO_DEFAULT:  # no conf/logging.yml in the working directory
        cwd = tmp_path
    else:
        cwd = REPO
        env["KEDRO_LOGGING_CONFIG"] = str(REPO / config)
    out = subprocess.run([sys.executable, "-c", CHILD], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout + out.stderr


@pytest.mark.parametrize("config", ["conf/logging.yml", KEDRO_DEFAULT])
def test_a_long_line_stays_on_one_line_in_a_pipe(config: str, tmp_path: Path) -> None:
    words = " ".join(f"w{i:03d}" for i in range(30))  # 150 characters with the prefix
    log = _child_output(config, tmp_path)
    for first in ("first", "again"):
        whole = f"{first} {words} end"
        lines = [ln for ln in log.splitlines() if first in ln and "w000" in ln]
        assert len(lines) == 1 and whole in lines[0], log[-3000:]
        assert len(lines[0]) > 150  # wider than Rich's default 80 off a terminal
    assert "\r" not in log


def test_width_is_configurable(tmp_path: Path) -> None:
    log = _child_output("conf/logging.yml", tmp_path, ALPHAMINER_LOG_WIDTH="120")
    lines = log.splitlines()
    start = next(i for i, ln in enumerate(lines) if "first w000" in ln)
    # the message is longer than a 120-column line: Rich wraps it, at 120 and not at 80
    assert len(lines[start]) == 120 and "w014" in lines[start] and "end" not in lines[start]
    assert lines[start + 1].split() == [f"w{i:03d}" for i in range(15, 30)] + ["end"]


def test_config_loading_does_not_warn_about_omegaconfs_resolver_api() -> None:
    """Kedro's own resolver registration warns on omegaconf 2.4; settings.py silences only that."""
    child = textwrap.dedent("""
        from pathlib import Path
        from kedro.framework.session import KedroSession
        from kedro.framework.startup import bootstrap_project
        bootstrap_project(Path.cwd())
        with KedroSession.create(project_path=Path.cwd()) as session:
            params = session.load_context().config_loader["parameters"]
        assert params, "no parameters loaded"
        import warnings
        warnings.warn("alphaminer_own_warning", UserWarning)
    """)
    out = subprocess.run([sys.executable, "-c", child], cwd=REPO,
                         env=_child_env(PYTHONWARNINGS="default"), capture_output=True,
                         text=True, timeout=180, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    log = out.stdout + out.stderr
    assert "alphaminer_own_warning" in log  # one token: Rich wraps at $COLUMNS
    assert "register_new_resolver" not in log, log[-3000:]
