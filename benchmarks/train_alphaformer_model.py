"""Train the shipped AlphaFormer model (``models/alphaformer/``) and measure its learning signal.

Pre-trains on the markets of ``synthetic_generation`` (``data/05_model_input/synthetic_markets``,
one parquet Panel per market) with the conf/base architecture and a longer budget, resumable
(checkpoints under ``--checkpoints``; rerun the same command after a kill), then writes
``model.safetensors`` + ``config.json``, ``learning_curve.csv`` and ``learning_curve.png`` to
``--out``, with the first-10 % vs last-10 % mean-reward comparison (Welch t-test) in the config
meta and printed as JSON.

    OMP_NUM_THREADS=1 python benchmarks/train_alphaformer_model.py --updates 200
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import pandas as pd
import torch
import yaml

from alphaminer.expr.vocab import Vocabulary
from alphaminer.mining.alphaformer import (
    AlphaFormerConfig,
    PretrainConfig,
    Pretrainer,
    prepare_markets,
    save_model,
)
from alphaminer.mining.alphaformer.signal import learning_signals, paired_signal
from alphaminer.panel import Panel

REPO = Path(__file__).resolve().parents[1]


def plot(hist: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = [("mean_reward", "mean reward"), ("entropy", "entropy"), ("approx_kl", "approx. KL"),
            ("value_loss", "value loss"), ("valid_share", "valid share"),
            ("mean_pool_ic", "mean pool IC (episodes)")]
    fig, axes = plt.subplots(2, 3, figsize=(12, 6))
    for ax, (c, title) in zip(axes.ravel(), cols):
        ax.plot(hist["iteration"], hist[c], lw=0.8, alpha=0.5)
        ax.plot(hist["iteration"], hist[c].rolling(10, min_periods=1).mean(), lw=1.5)
        if c == "mean_pool_ic" and "mean_holdout_pool_ic" in hist:  # the held-out reward
            h = hist["mean_holdout_pool_ic"]
            ax.plot(hist["iteration"], h.rolling(10, min_periods=1).mean(), lw=1.5,
                    label="held-out days")
            ax.legend(fontsize=7)
        ax.set_title(title)
        ax.set_xlabel("PPO update")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def load_markets(folder: Path) -> dict[str, Panel]:
    files = sorted(folder.glob("*.parquet"))
    if not files:
        raise SystemExit(f"no markets in {folder}: run `kedro run --pipelines=ingestion,"
                         "synthetic_generation` first")
    return {f.stem: Panel.load(f) for f in files}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markets", default=str(REPO / "data/05_model_input/synthetic_markets"))
    ap.add_argument("--out", default=str(REPO / "models/alphaformer"))
    ap.add_argument("--checkpoints", default=str(REPO / "data/06_models/alphaformer/shipped"))
    ap.add_argument("--updates", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reward-holdout", type=float, default=None,
                    help="PretrainConfig.reward_holdout (default: conf/base's)")
    ap.add_argument("--invalid-reward", default=None,
                    help="PretrainConfig.invalid_reward: a number or 'unchanged' "
                         "(default: conf/base's)")
    ap.add_argument("--warmup", type=int, default=None,
                    help="PretrainConfig.warmup_iterations: iterations without learning before "
                         "update 0 (default: conf/base's)")
    ap.add_argument("--paired-with", default=None,
                    help="a frozen-policy control's model folder (same markets and seed, "
                         "--lr 1e-12): the learning signal net of it goes in the meta too")
    ap.add_argument("--lr", type=float, default=None,
                    help="PPO learning rate (default: conf/base's). 1e-12 is the frozen-policy "
                         "control: its learning curve is what the pools' fill state alone does")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    params = yaml.safe_load((REPO / "conf/base/parameters/alphaformer.yml").read_text())
    pp = params["alphaformer"]["pretraining"]
    vocab = Vocabulary.from_config(pp["vocabulary"])
    mcfg = AlphaFormerConfig.from_dict(pp["model"])
    run = {**pp["run"], "updates": args.updates, "seed": args.seed}
    if args.reward_holdout is not None:
        run["reward_holdout"] = args.reward_holdout
    if args.invalid_reward is not None:
        v = args.invalid_reward
        run["invalid_reward"] = v if v == "unchanged" else float(v)
    if args.warmup is not None:
        run["warmup_iterations"] = args.warmup
    if args.lr is not None:
        run["ppo"] = {**run.get("ppo", {}), "lr": args.lr}
    cfg = PretrainConfig.from_dict(run)
    markets = prepare_markets(load_markets(Path(args.markets)), vocab, mcfg, cfg.horizon,
                              cfg.label_kind, cfg.reward_holdout)
    t0 = time.time()
    res = Pretrainer(markets, vocab, mcfg, cfg).run(checkpoint_dir=args.checkpoints)
    hist = pd.DataFrame(res.history)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot(hist, out / "learning_curve.png")
    signal = learning_signals(hist)
    if args.paired_with:
        control = pd.read_csv(Path(args.paired_with) / "learning_curve.csv")
        signal["mean_reward_net_of_frozen_control"] = paired_signal(hist, control)
    meta = {**res.meta, "trained_with": "benchmarks/train_alphaformer_model.py",
            "hardware": f"CPU only ({torch.get_num_threads()} torch threads), no GPU",
            "wall_seconds_this_session": time.time() - t0, "learning_signal": signal,
            "torch": torch.__version__}
    save_model(res.model, out, meta, history=hist)  # + learning_curve.csv
    print(json.dumps({"signal": signal, "updates_per_minute": res.meta["updates_per_minute"],
                      "markets": res.meta["market_shapes"]}, indent=2))


if __name__ == "__main__":
    main()
