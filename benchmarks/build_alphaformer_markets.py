"""Build longer synthetic markets for the shipped AlphaFormer model with the trained
``synthetic_generation`` models (evaluator selection among all generators, Algorithm 2).

The default ``synthetic_generation`` markets are 100–200 days long: too short for formulas that
nest the vocabulary's 10–50-day windows (they come out "too few valid days"), so a model
pre-trained on them learns to avoid windowed operators. The paper's markets are 500–1000 days
(Table 7); this builds ``--n`` markets of ``--days`` days (CPU-sized) into ``--out``.

    OMP_NUM_THREADS=1 python benchmarks/build_alphaformer_markets.py --n 6 --days 400 600

A market depends only on its index and ``--seed``: ``--first 0 --n 3`` and ``--first 3 --n 3``
in two processes build the same six markets.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from alphaminer.data import Splits
from alphaminer.panel import Panel
from alphaminer.synthetic import MarketConfig, RealSequences, SyntheticModels, assemble_market

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=6)
    ap.add_argument("--first", type=int, default=0,
                    help="index of the first market (each market depends only on its index and "
                         "--seed, so processes with disjoint ranges build the same markets)")
    ap.add_argument("--days", type=int, nargs=2, default=[400, 600])
    ap.add_argument("--stocks", type=int, nargs=2, default=[50, 80])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=str(REPO / "data/05_model_input/alphaformer_markets"))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    root = REPO / "data/06_models/synthetic/models"
    models = SyntheticModels.load(sorted(p for p in root.iterdir() if p.is_dir())[-1] / "models")
    d = REPO / "data/03_primary"
    panel = Panel.load(d / "market_panel.parquet")
    splits = Splits.from_dict(json.loads((d / "splits.json").read_text()))
    real = RealSequences.from_panel(splits.slice(panel, "train"))
    cfg = MarketConfig(n_markets=args.n, stocks=tuple(args.stocks), days=tuple(args.days))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for i in range(args.first, args.first + args.n):
        t = time.time()
        m = assemble_market(i, real, models.scaler, models.generators, models.evaluator,
                            models.context, cfg, args.seed)
        m.panel.save(out / f"market_{i:04d}.parquet")
        print(f"market {i}: {m.panel.S} stocks x {m.panel.T} days, wins {m.wins}, "
              f"{time.time() - t:.0f}s", flush=True)


if __name__ == "__main__":
    main()
