"""Choose AlphaFormer's sampling temperature on held-out synthetic markets, not on the target.

`alphaformer_vs_random.py --temperature` showed that T changes the frozen model's pool IC on the
simulator panel. Picking T there would be in-sample. This script picks it on synthetic markets the
shipped model was not trained on (by default `alphaformer_markets/market_0003..0005`; the
shipped model saw 0000..0002). Each market's first 60 % of days is the scored split. The pool IC
is reported per T, averaged over markets and seeds, and the T with the highest mean is printed.
Then run `alphaformer_vs_random.py --temperature <that T>` once on the target.

    OMP_NUM_THREADS=1 python benchmarks/alphaformer_temperature_select.py
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from alphaminer.data import make_labels
from alphaminer.evaluation.pool import PoolConfig
from alphaminer.evaluation.scorer import CandidateScorer
from alphaminer.mining.alphaformer import AlphaFormerMiner, load_model
from alphaminer.panel import Panel

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(REPO / "models/alphaformer"))
    ap.add_argument("--markets", nargs="+", default=[
        str(REPO / f"data/05_model_input/alphaformer_markets/market_000{i}.parquet")
        for i in (3, 4, 5)])
    ap.add_argument("--temperatures", type=float, nargs="+", default=[1.0, 1.5, 2.0, 3.0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--capacity", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model, _ = load_model(args.model)
    results: dict[float, list[float]] = {t: [] for t in args.temperatures}
    for path in args.markets:
        panel = Panel.load(path)
        y = make_labels(panel, 20)
        days = (0, int(0.6 * panel.T))
        for t in args.temperatures:
            for seed in args.seeds:
                sc = CandidateScorer(panel, y, days=days, pool=PoolConfig(
                    capacity=args.capacity, min_stocks=10, compute_rank_ic=False),
                    min_stocks=10, compute_rank_ic=False)
                res = AlphaFormerMiner(sc, model, {"n_candidates": args.n, "batch_size": 100,
                                                   "seed": seed, "temperature": t}
                                       ).run(progress=False)
                ic = float(res.meta["pool_ic_train"])
                results[t].append(ic)
                print(json.dumps({"market": Path(path).stem, "shape": [panel.T, panel.S],
                                  "temperature": t, "seed": seed, "pool_ic": ic}), flush=True)
    means = {t: float(np.mean(v)) for t, v in results.items()}
    print(json.dumps({"mean_pool_ic": means, "chosen": max(means, key=means.get)}, indent=2))


if __name__ == "__main__":
    main()
