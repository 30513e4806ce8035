"""AlphaFormer speed on the default simulator (2 threads): candidates generated *and scored* per
second at inference (target ≥ 50/s) and pre-training updates per minute.

- inference: the shipped model (``models/alphaformer``) on the default panel's train split
  (300 stocks × 1492 days), pool capacity 10, ``--n`` candidates in batches of 100; the time
  covers sampling, scoring and the pool updates, reported per phase with the process CPU
  seconds and the 1-minute load (wall time on a shared host is noisy). Also with random weights.
- pre-training: ``--updates`` PPO updates at conf/base sizes (batch 100, 10 epochs) on the
  synthetic markets (``data/05_model_input/synthetic_markets``; simulator stand-ins of the
  default market sizes if absent).

    python benchmarks/bench_alphaformer.py --n 300 --threads 2 --repeats 3 --updates 0
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from alphaminer.mining.alphaformer import (
    AlphaFormer,
    AlphaFormerConfig,
    PretrainConfig,
    Pretrainer,
    load_model,
    prepare_markets,
)

REPO = Path(__file__).resolve().parents[1]


def bench_inference(n: int, seed: int, repeats: int = 1) -> dict[str, Any]:
    """``repeats`` runs of each model on one panel; per run: candidates/s (wall), process CPU
    seconds, the miner's phases (decode / score / pool); the median candidates/s of the runs."""
    from alphaformer_vs_random import run_one, target_panel

    panel, y, splits = target_panel()
    model, _ = load_model(REPO / "models/alphaformer")
    torch.manual_seed(seed)
    rnd = AlphaFormer(model.vocab, model.config)
    out: dict[str, Any] = {"panel": [panel.T, panel.S],
                           "train_days": list(splits.ranges["train"])}
    for name, m in (("shipped", model), ("random_weights", rnd)):
        runs = []
        for _ in range(repeats):
            load = os.getloadavg()[0]
            t = time.perf_counter()
            r = run_one(m, panel, y, splits, n, 10, seed)
            runs.append({**r, "wall_s": time.perf_counter() - t, "load_1min_before": load})
        out[name] = {"runs": runs, "median_candidates_per_second": float(
            statistics.median(r["candidates_per_second"] for r in runs))}
    return out


def bench_pretrain(updates: int) -> dict[str, float]:
    from alphaminer.expr.vocab import Vocabulary
    from alphaminer.panel import Panel

    pp = yaml.safe_load((REPO / "conf/base/parameters/alphaformer.yml").read_text())[
        "alphaformer"]["pretraining"]
    vocab = Vocabulary.from_config(pp["vocabulary"])
    mcfg = AlphaFormerConfig.from_dict(pp["model"])
    cfg = PretrainConfig.from_dict({**pp["run"], "updates": updates})
    files = sorted((REPO / "data/05_model_input/synthetic_markets").glob("*.parquet"))
    if files:
        panels = [Panel.load(f) for f in files]
    else:
        from alphaminer.data import clean, load_source

        panels = [clean(load_source({"kind": "simulator", "simulator": {
            "n_stocks": 45, "n_days": 150, "seed": s}})).to_panel() for s in range(4)]
    markets = prepare_markets(panels, vocab, mcfg, cfg.horizon, cfg.label_kind,
                                  cfg.reward_holdout)
    res = Pretrainer(markets, vocab, mcfg, cfg).run(progress=False)
    return {"updates": updates, "updates_per_minute": res.meta["updates_per_minute"],
            "seconds": res.meta["seconds"], "markets": res.meta["market_shapes"],
            "batch_size": cfg.batch_size, "epochs": cfg.ppo["epochs"]}


def main() -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--updates", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1, help="inference runs per model")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out: dict[str, Any] = {"inference": bench_inference(args.n, args.seed, args.repeats)}
    if args.updates > 0:  # --updates 0: inference only
        out["pretrain"] = bench_pretrain(args.updates)
    out["threads"] = torch.get_num_threads()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
