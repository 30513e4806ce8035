"""``kedro compare``: pairs run apart, a failing pair does not sink the others, and a rerun
after ``kill -9`` recomputes only the unfinished pairs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from project_utils import latest, scratch_project

from alphaminer.pipelines.comparison.driver import (
    BASE,
    latest_record,
    pair_command,
    parse_params,
    run_pairs,
)
from alphaminer.reporting.multiseed import make_record, pair_root

KEDRO_ENV = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}


def test_parse_params_reads_like_kedro_run():
    assert parse_params("a.b=1,c=x,d=0.5,e=true") == {"a": {"b": 1}, "c": "x", "d": 0.5,
                                                      "e": True}
    assert parse_params(None) == {}
    with pytest.raises(ValueError, match="key=value"):
        parse_params("novalue")


def test_pair_command_sets_seed_and_root_after_the_users_params():
    cmd = pair_command("gp", 3, "data/comparison/h/seed_3", "test", "backtest.portfolio.topk=5")
    assert "--to-outputs=gp.comparison_record" in cmd and "--only-missing-outputs" in cmd
    assert cmd[cmd.index("--params") + 1] == \
        "backtest.portfolio.topk=5,seed=3,data_root=data/comparison/h/seed_3"
    assert cmd[cmd.index("--env") + 1] == "test"


def _fake_pair(method: str, seed: int, root: str) -> list[str]:
    """A child that writes an ok record, except for method 'bad' (exits 3) and 'silent'
    (exits 0 without a record)."""
    if method == "bad":
        return [sys.executable, "-c", "import sys; print('it went wrong'); sys.exit(3)"]
    if method == "silent":
        return [sys.executable, "-c", "pass"]
    rec = json.dumps(make_record(method, seed, "h", {"ic": 0.01 * (seed + 1)}))
    code = ("import json, sys; from pathlib import Path; "
            "from alphaminer.pipelines.comparison.driver import write_record; "
            f"write_record(Path('.'), {root!r}, {method!r}, json.loads({rec!r}))")
    return [sys.executable, "-c", code]


def test_failing_pairs_are_recorded_and_do_not_sink_the_others(tmp_path: Path):
    seen: list[str] = []
    out = run_pairs(tmp_path, ["good", "bad", "silent"], [0, 1], "h", command=_fake_pair,
                    progress=seen.append)
    status = {(o.method, o.seed): o.status for o in out}
    assert status == {("good", 0): "ok", ("bad", 0): "failed", ("silent", 0): "failed",
                      ("good", 1): "ok", ("bad", 1): "failed", ("silent", 1): "failed"}
    bad = latest_record(tmp_path, pair_root(BASE, "h", 1), "bad")
    assert bad["status"] == "failed" and "exit code 3" in bad["error"]
    assert "it went wrong" in bad["error"]  # the end of the pair's log
    silent = latest_record(tmp_path, pair_root(BASE, "h", 0), "silent")
    assert "no ok record" in silent["error"]
    # a rerun skips the finished pairs and retries the failed ones
    again = run_pairs(tmp_path, ["good", "bad"], [0, 1], "h", command=_fake_pair,
                      progress=seen.append)
    assert {(o.method, o.seed): o.status for o in again} == {
        ("good", 0): "finished earlier", ("bad", 0): "failed",
        ("good", 1): "finished earlier", ("bad", 1): "failed"}


def test_a_pair_over_its_timeout_is_stopped_and_failed(tmp_path: Path):
    slow = lambda m, s, r: [sys.executable, "-c", "import time; time.sleep(60)"]  # noqa: E731
    t0 = time.perf_counter()
    out = run_pairs(tmp_path, ["slow"], [0], "h", timeout_s=1.0, command=slow,
                    progress=lambda _: None)
    assert time.perf_counter() - t0 < 30
    assert out[0].status == "failed" and "timeout" in out[0].error


def _versions(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir()) if path.is_dir() else []


def _compare(project: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "kedro", "compare", "--env", "test"],
                            cwd=project, env=KEDRO_ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def test_kill_minus_9_then_rerun_recomputes_only_unfinished_pairs(tmp_path: Path):
    """conf/test: methods oracle, xgb × seeds 0, 1. Kill the comparison once the first pair
    has finished, rerun the same command, and check the first pair was not touched again."""
    project = scratch_project(tmp_path)
    proc = _compare(project)
    first = None
    deadline = time.time() + 400
    while time.time() < deadline and proc.poll() is None:
        found = sorted(project.glob(f"{BASE}/*/seed_0/07_model_output/oracle/"
                                    "comparison_record.json"))
        if found and _versions(found[0]):
            first = found[0]
            break
        time.sleep(0.5)
    assert first is not None, "the first pair never finished"
    os.kill(proc.pid, signal.SIGKILL)  # the driver only; its child run dies with it
    proc.wait()
    root = first.parents[2]
    signal_before = _versions(root / "07_model_output/oracle/signal.parquet")
    panel_before = _versions(root / "03_primary/market_panel.parquet")
    assert len(_versions(first)) == 1 and signal_before

    rerun = _compare(project)
    out, _ = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, out[-3000:]
    assert "oracle seed 0: finished earlier, skipped" in out
    assert len(_versions(first)) == 1  # not recomputed
    assert _versions(root / "07_model_output/oracle/signal.parquet") == signal_before
    assert _versions(root / "03_primary/market_panel.parquet") == panel_before
    for seed in (0, 1):
        for m in ("oracle", "xgb"):
            rec = latest_record(project, str(root.relative_to(project).parent / f"seed_{seed}"),
                                m)
            assert rec is not None and rec["status"] == "ok", (m, seed, rec)
            assert rec["seed"] == seed
    table = pd.read_csv(latest(project / "data/08_reporting/comparison/table1.csv"))
    assert set(table["method"]) == {"oracle", "xgb"} and (table["seeds"] == 2).all()
    assert table["IC"].str.contains(r"^-?\d\.\d{4} \(\d\.\d{4}\)$").all()  # mean (std)
    oracle = table.set_index("method").loc["oracle"]
    assert oracle["Num Factors"] != "–" and table.set_index("method").loc["xgb",
                                                                          "Num Factors"] == "–"
    html = latest(project / "data/08_reporting/comparison/comparison_report.html").read_text()
    assert "Table 1" in html and "Table 4" in html and "4 of 4" in html
