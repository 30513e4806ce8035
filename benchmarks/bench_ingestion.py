"""Benchmark: ingest the shared real panels end to end (load → clean → Panel).

Target: the CN panel (2.07 M rows) in ≤ 60 s with peak memory ≤ 4 GB on 2 cores. Each run is a
fresh subprocess pinned to ``--threads`` cores, so its peak RSS (``VmHWM``) is the run's own.
Reports per-stage times, the median over ``--repeat`` runs and the largest peak RSS.

    python benchmarks/bench_ingestion.py [--dataset cn|us|both] [--repeat 3] [--json out.json]

The data folder comes from ``$ALPHAMINER_SHARED_DATA`` or ``<repo>/../shared/data``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATASETS = {
    "cn": ("cn_all_tushare_2017_2019.parquet",
           {"datetime": "date", "in_universe": "in_csi300_2015"}, 0.099),
    "us": ("us_sp500_yahoo_2015_2020.parquet", {"datetime": "date"}, None),
}
TARGET_S, TARGET_GB = 60.0, 4.0


def _data_dir() -> Path:
    env = os.environ.get("ALPHAMINER_SHARED_DATA")
    for p in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data"]:
        if p.is_dir():
            return p
    sys.exit("shared data folder not found (set ALPHAMINER_SHARED_DATA)")


def _peak_rss_gb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def worker(name: str, threads: int) -> dict:
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))[:threads]
        os.sched_setaffinity(0, cpus)
    import torch

    torch.set_num_threads(threads)
    from alphaminer.data import CleanConfig, SourceConfig, clean, load_source
    from alphaminer.panel import Panel

    fname, columns, limit = DATASETS[name]
    t0 = time.perf_counter()
    raw = load_source(SourceConfig(kind="parquet", path=str(_data_dir() / fname),
                                   columns=columns))
    t1 = time.perf_counter()
    res = clean(raw, CleanConfig(limit_pct=limit))
    t2 = time.perf_counter()
    panel = Panel.from_long(res.panel_long, meta=res.meta)
    t3 = time.perf_counter()
    return {"rows": len(raw.frame), "kept": len(res.panel_long),
            "rejected": len(res.rejected_rows), "shape": list(panel.values.shape),
            "vwap_fallback": panel.meta["vwap_fallback"],
            "load_s": t1 - t0, "clean_s": t2 - t1, "panel_s": t3 - t2, "total_s": t3 - t0,
            "peak_rss_gb": _peak_rss_gb()}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=["cn", "us", "both"], default="both")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--worker", choices=list(DATASETS), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.threads)))
        return {}
    names = list(DATASETS) if args.dataset == "both" else [args.dataset]
    results = {}
    for name in names:
        runs = []
        for k in range(args.repeat):
            out = subprocess.run(
                [sys.executable, __file__, "--worker", name, "--threads", str(args.threads)],
                check=True, capture_output=True, text=True)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"{name} run {k + 1}: {runs[-1]['total_s']:.2f} s, "
                  f"peak {runs[-1]['peak_rss_gb']:.2f} GB", file=sys.stderr)
        med = {k: round(statistics.median(r[k] for r in runs), 3)
               for k in ("load_s", "clean_s", "panel_s", "total_s")}
        peak = round(max(r["peak_rss_gb"] for r in runs), 3)
        results[name] = {
            "file": DATASETS[name][0], "rows": runs[0]["rows"], "kept": runs[0]["kept"],
            "rejected": runs[0]["rejected"], "panel_shape": runs[0]["shape"],
            "vwap_fallback": runs[0]["vwap_fallback"], "threads": args.threads,
            "repeat": args.repeat, "median": med,
            "times_s": [round(r["total_s"], 3) for r in runs], "peak_rss_gb": peak,
            "target": {"total_s": TARGET_S, "peak_gb": TARGET_GB},
            "meets_target": med["total_s"] <= TARGET_S and peak <= TARGET_GB,
        }
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
    return results


if __name__ == "__main__":
    main()
