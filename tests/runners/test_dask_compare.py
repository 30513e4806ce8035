"""``kedro compare --dask``: pairs as Dask tasks, a seed's pairs in order, seeds in parallel.

The pairs' children are stand-ins (a Python one-liner that records when it ran and writes the
pair's record), so the test checks the scheduling and bookkeeping, not the pipelines (those
are covered by tests/pipelines/test_comparison.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from distributed import LocalCluster

from alphaminer.pipelines.comparison.driver import BASE, RECORD, latest_record, run_pairs
from alphaminer.reporting.multiseed import make_record, pair_root

SLEEP_S = 1.5


def _pair(method: str, seed: int, root: str) -> list[str]:
    """A child that sleeps, logs its start/end and thread setting, then writes an ok record
    (method 'bad' exits 3)."""
    if method == "bad":
        return [sys.executable, "-c", "import sys; print('it went wrong'); sys.exit(3)"]
    rec = json.dumps(make_record(method, seed, "h", {"ic": 0.01 * (seed + 1)}))
    # stdlib only (a fast child): the record where write_record puts it, one version
    out = f"{root}/07_model_output/{method}/{RECORD}/2026-01-01T00.00.00.000Z/{RECORD}"
    code = (
        "import json, os, time; from pathlib import Path; "
        f"t0 = time.time(); time.sleep({SLEEP_S}); "
        f"Path({root!r}, {method + '.ran'!r}).write_text(json.dumps("
        "[t0, time.time(), os.environ.get('OMP_NUM_THREADS')])); "
        f"p = Path({out!r}); p.parent.mkdir(parents=True); p.write_text({rec!r})")
    return [sys.executable, "-c", code]


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as lc:
        yield lc


def _ran(project: Path, seed: int, method: str) -> list:
    return json.loads((project / pair_root(BASE, "h", seed) / f"{method}.ran").read_text())


def test_pairs_of_a_seed_in_order_seeds_in_parallel(cluster, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the workers' nanny sets 1
    seen: list[str] = []
    out = run_pairs(tmp_path, ["a", "b", "bad"], [0, 1], "h", command=_pair,
                    progress=seen.append, dask=cluster.scheduler_address)
    # the same outcomes, in the same order, as the sequential driver reports them
    assert [(o.method, o.seed, o.status) for o in out] == [
        ("a", 0, "ok"), ("b", 0, "ok"), ("bad", 0, "failed"),
        ("a", 1, "ok"), ("b", 1, "ok"), ("bad", 1, "failed")]
    assert "exit code 3" in latest_record(tmp_path, pair_root(BASE, "h", 1), "bad")["error"]
    for s in (0, 1):
        a, b = _ran(tmp_path, s, "a"), _ran(tmp_path, s, "b")
        assert a[1] <= b[0], f"seed {s}: pair b started before pair a (ingestion) ended"
        assert a[2] == b[2] == "2"  # children run with the driver's thread settings
    # the two seeds' chains overlapped in time
    s0 = (_ran(tmp_path, 0, "a")[0], _ran(tmp_path, 0, "b")[1])
    s1 = (_ran(tmp_path, 1, "a")[0], _ran(tmp_path, 1, "b")[1])
    assert min(s0[1], s1[1]) - max(s0[0], s1[0]) > SLEEP_S / 2
    assert any("Dask tasks" in m for m in seen)
    # a rerun skips the finished pairs without starting any task
    again = run_pairs(tmp_path, ["a", "b"], [0, 1], "h", command=_pair,
                      progress=seen.append, dask=cluster.scheduler_address)
    assert {o.status for o in again} == {"finished earlier"}
