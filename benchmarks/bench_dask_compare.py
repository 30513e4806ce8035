"""Wall time of ``kedro compare`` with the pairs run one after another vs as Dask tasks.

Each repeat runs the comparison from scratch (a fresh copy of the project's conf, empty
``data/``) twice: ``kedro compare --env test`` and ``kedro compare --env test --dask
--dask-workers N``, and checks that both give the same Table 1. Prints wall seconds, CPU
seconds of the children and the 1-minute load average before each run, then the medians.

    .venv/bin/python benchmarks/bench_dask_compare.py --methods oracle,xgb --seeds 0,1 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def scratch(tmp: Path) -> Path:
    """A scratch copy of the project (the test suite's helper: conf, empty data/)."""
    sys.path.insert(0, str(REPO / "tests" / "pipelines"))
    from project_utils import scratch_project

    return scratch_project(tmp)


def table(project: Path) -> str:
    """Every CSV table of the comparison (versioned: ``<name>.csv/<ts>/<name>.csv``)."""
    folder = project / "data/08_reporting/comparison"
    files = sorted(f for f in folder.rglob("*.csv") if f.is_file())
    if not files:
        raise SystemExit(f"no tables under {folder}")
    return "\n".join(f"{f.name}\n{f.read_text()}" for f in files)


def run(project: Path, args: list[str]) -> tuple[float, float]:
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "kedro", "compare", "--env", "test", *args],
                         cwd=project, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0 or "FAILED" in out.stdout:
        raise SystemExit(f"kedro compare {' '.join(args)} failed:\n{out.stdout[-3000:]}"
                         f"\n{out.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="oracle,xgb")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    a = ap.parse_args()
    common = ["--methods", a.methods, "--seeds", a.seeds]
    times: dict[str, list[float]] = {"sequential": [], "dask": []}
    for r in range(a.repeats):
        for mode, extra in (("sequential", []), ("dask", ["--dask", "--dask-workers",
                                                          str(a.workers)])):
            with tempfile.TemporaryDirectory(prefix=f"bench-compare-{mode}-") as tmp:
                proj = scratch(Path(tmp))
                load = os.getloadavg()[0]
                wall, cpu = run(proj, common + extra)
                times[mode].append(wall)
                print(f"repeat {r + 1} {mode:10s}: wall {wall:6.1f} s, children CPU "
                      f"{cpu:6.1f} s, load before {load:.2f}", flush=True)
                tab = table(proj)
                if mode == "sequential":
                    want = tab
                elif tab != want:
                    raise SystemExit("the Dask comparison's tables differ from the sequential")
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"median wall: sequential {med['sequential']:.1f} s, dask ({a.workers} workers) "
          f"{med['dask']:.1f} s, speed-up {med['sequential'] / med['dask']:.2f}x; "
          f"tables identical; load now {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
