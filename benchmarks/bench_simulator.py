"""Benchmark: the embedded market simulator at its default size (300 stocks × 2520 days).

Target (issue): ≤ 30 s on 2 CPU cores. Reports the median wall and CPU time over ``--repeat``
runs (CPU time is the honest figure on a shared, loaded machine; the load average is printed), the
peak traced Python/numpy memory of one extra run (tracemalloc) and the process peak RSS.

    python benchmarks/bench_simulator.py [--n-stocks 300] [--n-days 2520] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
import tracemalloc

import torch

from alphaminer.data.simulator import SimulatorConfig, simulate_market


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-stocks", type=int, default=300)
    ap.add_argument("--n-days", type=int, default=2520)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-planted", action="store_true", help="market model only")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = SimulatorConfig(n_stocks=args.n_stocks, n_days=args.n_days, progress=False,
                          planted=[] if args.no_planted else None)
    times, cpu = [], []
    for k in range(args.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        market = simulate_market(cfg)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        print(f"run {k + 1}: {times[-1]:.2f} s wall, {cpu[-1]:.2f} s cpu", file=sys.stderr)
    # memory from one extra run under tracemalloc (its overhead would distort the timings)
    tracemalloc.start()
    simulate_market(cfg)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {
        "benchmark": "simulate_market",
        "n_stocks": args.n_stocks,
        "n_days": args.n_days,
        "threads": args.threads,
        "planted": len(market.planted),
        "rows": len(market.raw),
        "times_s": [round(t, 3) for t in times],
        "median_s": round(statistics.median(times), 3),
        "cpu_times_s": [round(t, 3) for t in cpu],
        "median_cpu_s": round(statistics.median(cpu), 3),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "peak_traced_mib": round(peak / 2**20, 1),
        "peak_rss_mib": round(rss_kib / 1024, 1),
        "target_s": 30.0,
        "realised_ic_1d": dict(zip(market.planted["name"],
                                   market.planted["realised_ic_1d"].round(4))),
        "realised_ic_20d": dict(zip(market.planted["name"],
                                    market.planted["realised_ic_20d"].round(4))),
        "alpha_horizon": cfg.alpha_horizon,
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
