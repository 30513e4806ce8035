"""Run every benchmark in turn (``make bench``); figures go to stdout and benchmarks/out/.

Run them on a quiet machine: they are wall-clock measurements on 2 cores. Each script prints its
own table; ``benchmarks/README.md`` records the current figures.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ["bench_simulator.py", "bench_ingestion.py", "bench_expr.py", "bench_metrics.py",
           "bench_alphanet.py", "bench_shared_cpu.py", "bench_mining.py", "miners_vs_random.py",
           "bench_alpha2.py", "bench_synthetic.py"]


def main() -> int:
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    failed = []
    for name in SCRIPTS:
        print(f"\n=== {name} ===", flush=True)
        with open(out / f"{Path(name).stem}.txt", "w") as log:
            proc = subprocess.run([sys.executable, str(HERE / name)],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  check=False)
            log.write(proc.stdout)
            print(proc.stdout[-4000:])
        if proc.returncode:
            failed.append(name)
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
