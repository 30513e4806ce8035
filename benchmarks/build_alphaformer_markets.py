"""Build longer synthetic markets for AlphaFormer pre-training with trained
``synthetic_generation`` models (evaluator selection among the generators, Algorithm 2).

The default ``synthetic_generation`` markets are 100–200 days long: too short for formulas that
nest the vocabulary's 10–50-day windows (they come out "too few valid days"), so a model
pre-trained on them learns to avoid windowed operators. The paper's markets are 500–1000 days
(Table 7); this builds ``--n`` markets of ``--days`` days (CPU-sized) into ``--out``.

    OMP_NUM_THREADS=1 python benchmarks/build_alphaformer_markets.py --n 6 --days 400 600

A market depends only on its index and ``--seed``: ``--first 0 --n 3`` and ``--first 3 --n 3``
in two processes build the same six markets.

``--generators gru`` (or ``transformer``, ``diffusion``) builds the same markets (same contexts,
stocks and lengths) from one generator alone: the pre-training ablation of the paper's Fig. 3.

``--panel cnall`` (or ``us``) conditions the markets on a shared real panel's train split
instead of the ingested default panel, as the paper does with its CN data. The generators and
the evaluator are then trained first, with conf/base's ``synthetic`` parameters, into
``data/06_models/synthetic_<panel>/`` (resumable), unless ``--models`` names a trained bundle.
``--train-steps gru=10000`` trains a fresh bundle with other step counts (any panel).

``--real-windows`` writes no synthetic data: each market slot (same stock count and length as
the generated market of that index) is a window of real days of the train split, with stocks
in the universe on every one of its days. Pre-training on them is the fidelity upper bound of
the generator ablation: a "generator" that reproduces the conditioning panel exactly. It is a
diagnostic, not the paper's method (on the default panel the windows are the target's own
train days, so only the pool's test IC is out of sample).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd
import torch
import yaml

from alphaminer.data import Splits
from alphaminer.panel import Panel
from alphaminer.synthetic import MarketConfig, RealSequences, SyntheticModels, assemble_market
from alphaminer.synthetic.selection import market_rngs

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))


def train_split(panel_name: str) -> Panel:
    """The train segment of the default ingested panel or of a shared real panel."""
    if panel_name == "default":
        d = REPO / "data/03_primary"
        panel = Panel.load(d / "market_panel.parquet")
        splits = Splits.from_dict(json.loads((d / "splits.json").read_text()))
    else:
        from alphanet_real import load_panel

        panel, splits = load_panel(panel_name)
    return splits.slice(panel, "train")


def synthetic_models(panel_name: str, train: Panel, models_dir: str | None,
                     steps: dict[str, int] | None = None,
                     generators: list[str] | None = None) -> SyntheticModels:
    """``--models``, the newest bundle of the default pipeline, or a bundle trained on ``train``
    (shared real panels, or any panel with ``--train-steps``), kept for the next call."""
    if models_dir:
        return SyntheticModels.load(models_dir)
    if panel_name == "default" and not steps:
        root = REPO / "data/06_models/synthetic/models"
        return SyntheticModels.load(sorted(p for p in root.iterdir() if p.is_dir())[-1]
                                    / "models")
    from alphaminer.parameters import SyntheticParams
    from alphaminer.synthetic import train_synthetic_models

    tag = "".join(f"_{k}{v}" for k, v in sorted((steps or {}).items()))
    tag += "_" + "-".join(generators) if steps and generators else ""
    base = REPO / f"data/06_models/synthetic_{panel_name}{tag}"
    if (base / "models" / "config.json").exists():
        return SyntheticModels.load(base / "models")
    raw = yaml.safe_load((REPO / "conf/base/parameters/synthetic.yml").read_text())["synthetic"]
    raw["checkpoint_dir"] = str(base / "checkpoints")
    for name, n in (steps or {}).items():
        raw["train_per_model"][name] = {**raw["train_per_model"].get(name, {}), "steps": n}
    if steps and generators:
        raw["generators"] = list(generators)
    p = SyntheticParams.coerce(raw)
    t = time.time()
    models, _ = train_synthetic_models(train, p.to_config(seed=0), checkpoint_dir=p.checkpoint_dir)
    models.save(base / "models")
    print(f"synthetic models trained on {panel_name} ({train.S} x {train.T}) in "
          f"{time.time() - t:.0f}s -> {base / 'models'}", flush=True)
    return models


def real_window(index: int, train: Panel, cfg: MarketConfig, seed: int) -> Panel:
    """Market slot ``index`` as a window of real train days: ``T`` days from a random start
    and ``S`` stocks in the universe on all of them (``S`` and ``T`` as the generated slot)."""
    rng, _ = market_rngs(seed, index, torch.device("cpu"))
    S = int(rng.integers(cfg.stocks[0], cfg.stocks[1] + 1))
    T = int(rng.integers(cfg.days[0], cfg.days[1] + 1))
    if T > train.T:
        raise SystemExit(f"a {T}-day window does not fit the {train.T}-day train split")
    start = int(rng.integers(0, train.T - T + 1))
    w = train.slice_dates(start, start + T)
    live = torch.nonzero(w.universe.to(torch.bool).all(0)).flatten().numpy()
    if live.size == 0:
        raise SystemExit(f"market {index}: no stock is in the universe on all {T} days")
    pick = sorted(rng.choice(live, size=min(S, live.size), replace=False))
    m = w.select_instruments([w.instruments[i] for i in pick])
    m.meta = {**m.meta, "synthetic": False, "real_window": True, "market": int(index),
              "seed": int(seed), "window_start": str(pd.Timestamp(w.dates[0]).date())}
    return m


def parse_steps(items: list[str]) -> dict[str, int]:
    """``gru=10000`` → ``{"gru": 10000}``."""
    out = {}
    for it in items:
        name, _, n = it.partition("=")
        if not n.isdigit():
            raise SystemExit(f"--train-steps wants MODEL=STEPS, got {it!r}")
        out[name] = int(n)
    return out


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
    ap.add_argument("--generators", nargs="+", default=None,
                    help="a subset of the bundle's generators (default: all of them)")
    ap.add_argument("--panel", default="default", choices=["default", "cnall", "us"])
    ap.add_argument("--models", default=None, help="a trained synthetic model bundle")
    ap.add_argument("--train-steps", nargs="+", default=[], metavar="MODEL=STEPS",
                    help="train a fresh bundle with these step counts (e.g. gru=10000); only "
                         "the --generators, if given, are trained")
    ap.add_argument("--real-windows", action="store_true",
                    help="write windows of real train days instead of generated markets "
                         "(the fidelity upper bound; see the module docstring)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    train = train_split(args.panel)
    cfg = MarketConfig(n_markets=args.n, stocks=tuple(args.stocks), days=tuple(args.days))
    out = Path(args.out)
    if args.real_windows:
        out.mkdir(parents=True, exist_ok=True)
        for i in range(args.first, args.first + args.n):
            m = real_window(i, train, cfg, args.seed)
            m.save(out / f"market_{i:04d}.parquet")
            print(f"market {i}: real window of {m.S} stocks x {m.T} days from "
                  f"{m.meta['window_start']}", flush=True)
        return
    models = synthetic_models(args.panel, train, args.models, parse_steps(args.train_steps),
                              args.generators)
    gens = models.generators
    if args.generators:
        unknown = set(args.generators) - set(gens)
        if unknown:
            raise SystemExit(f"unknown generator(s) {sorted(unknown)}; the bundle has "
                             f"{sorted(gens)}")
        gens = {n: gens[n] for n in args.generators}
    real = RealSequences.from_panel(train)
    out.mkdir(parents=True, exist_ok=True)
    for i in range(args.first, args.first + args.n):
        t = time.time()
        m = assemble_market(i, real, models.scaler, gens, models.evaluator,
                            models.context, cfg, args.seed)
        m.panel.save(out / f"market_{i:04d}.parquet")
        print(f"market {i}: {m.panel.S} stocks x {m.panel.T} days, wins {m.wins}, "
              f"{time.time() - t:.0f}s", flush=True)


if __name__ == "__main__":
    main()
