"""Synthetic-market generation throughput (stock-days per second), 2 threads.

Per generator (GRU, causal Transformer, CSDI diffusion) and for the full Algorithm-2 selection
(every generator samples + the LSTM evaluator scores + decoding to a Panel), at the
architectures of ``conf/base/parameters/synthetic.yml``. Throughput does not depend on how well
the models are trained, so each is trained for a handful of steps only.

Usage::

    python benchmarks/bench_synthetic.py                    # S=50, T=200, c=40, 3 repeats
    python benchmarks/bench_synthetic.py --stocks 100 --days 250 --threads 2 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import yaml

from alphaminer.data import CleanConfig, SourceConfig, clean, load_source
from alphaminer.synthetic import (
    MarketConfig,
    RealSequences,
    assemble_market,
    train_synthetic_models,
)

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stocks", type=int, default=50)
    ap.add_argument("--days", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    params = yaml.safe_load((ROOT / "conf/base/parameters/synthetic.yml").read_text())["synthetic"]
    raw = load_source(SourceConfig.from_dict(
        {"kind": "simulator", "simulator": {"n_stocks": 120, "n_days": 500, "seed": 0}}))
    panel = clean(raw, CleanConfig()).to_panel().slice_dates(0, 400)
    cfg = {"generators": "all", "context": params["context"], "device": "cpu",
           "train": {"steps": 5, "batch_size": 16}, "models": params["models"]}
    models, _ = train_synthetic_models(panel, cfg)
    real = RealSequences.from_panel(panel)
    c, S, T = models.context, args.stocks, args.days
    ends = torch.nonzero(real.window_ends(c))[:S]
    days = ends[:, :1] - torch.arange(c - 1, -1, -1)
    ctx = models.scaler.transform(real.rep[days, ends[:, 1:]])
    results = {}
    for name, gen in models.generators.items():
        times = []
        for r in range(args.repeats):
            t0 = time.perf_counter()
            gen.sample(ctx, T, torch.Generator().manual_seed(r))
            times.append(time.perf_counter() - t0)
        results[name] = statistics.median(times)
    cand = models.generators["gru"].sample(ctx, T, torch.Generator().manual_seed(0))
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        models.evaluator.log_likelihood(ctx, cand)
        times.append(time.perf_counter() - t0)
    results["evaluator (scoring one candidate set)"] = statistics.median(times)
    mcfg = MarketConfig(n_markets=1, stocks=(S, S), days=(T, T))
    times = []
    for r in range(args.repeats):
        t0 = time.perf_counter()
        assemble_market(r, real, models.scaler, models.generators, models.evaluator, c, mcfg,
                        seed=0)
        times.append(time.perf_counter() - t0)
    results["full selection (3 generators + evaluator + decode)"] = statistics.median(times)
    print(f"S={S} stocks x T={T} days, c={c}, {args.threads} threads, "
          f"median of {args.repeats}")
    print("| what | seconds | stock-days/s |\n|---|---:|---:|")
    out = {}
    for k, sec in results.items():
        out[k] = {"seconds": sec, "stock_days_per_s": S * T / sec}
        print(f"| {k} | {sec:.2f} | {S * T / sec:,.0f} |")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
