"""AlphaNet benchmarks: feature images on the CN all-market panel, one training epoch.

Targets (brief): images for the CN panel (3,724 stocks × 612 days) in ≤ 2 min with ≤ 6 GB peak
RSS; one training epoch at the default simulator size (~300 stocks × 2520 days, stride 5 →
~150k images) in ≤ 60 s with ``torch.set_num_threads(2)``.

Usage::

    python benchmarks/bench_alphanet.py            # both, 3 repetitions each, medians
    python benchmarks/bench_alphanet.py images     # one images run (prints JSON)
    python benchmarks/bench_alphanet.py epoch      # one training run (prints JSON)

Each repetition runs in a fresh subprocess so the peak RSS (``ru_maxrss``) is per run; it
includes loading the parquet with pandas.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

CN = Path(__file__).resolve().parents[1].parent / "shared" / "data" / \
    "cn_all_tushare_2017_2019.parquet"
if not CN.exists():
    CN = Path("/work/shared/data/cn_all_tushare_2017_2019.parquet")


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def _labels_or_none(panel):
    """Default (shared) labels when the expression evaluator exists, else a torch shift."""
    try:
        from alphaminer.data import make_labels

        return make_labels(panel, horizon=5), "alphaminer.data.make_labels"
    except (ImportError, AttributeError):
        c = panel.feature("close")
        y = torch.full_like(c, float("nan"))
        y[:-5] = c[5:] / c[:-5] - 1
        return y, "benchmark torch shift (expr.Evaluator not available)"


def load_cn_panel():
    from alphaminer.panel import Panel

    df = pd.read_parquet(CN, columns=["date", "instrument", "open", "high", "low", "close",
                                      "volume", "vwap", "adj_factor"])
    vw = df["vwap"].fillna((df["high"] + df["low"] + df["close"]) / 3)
    adj = df["adj_factor"]
    long = pd.DataFrame({
        "datetime": df["date"], "instrument": df["instrument"],
        **{c: df[c] * adj for c in ("open", "high", "low", "close")},
        "vwap": vw * adj, "volume": df["volume"] / adj,
    })
    long["amount"] = long["vwap"] * long["volume"]
    del df
    return Panel.from_long(long, meta={"vwap_fallback": True})


def run_images() -> dict:
    from alphaminer.neural.alphanet import ImageConfig, build_feature_images

    t0 = time.perf_counter()
    panel = load_cn_panel()
    t_load = time.perf_counter() - t0
    t1 = time.perf_counter()
    y, label_src = _labels_or_none(panel)
    n = panel.T
    splits = {"train": (0, int(n * 0.6)), "valid": (int(n * 0.6), int(n * 0.8)),
              "test": (int(n * 0.8), n)}
    imgs = build_feature_images(panel, splits, ImageConfig(), labels=y, progress=False)
    t_img = time.perf_counter() - t1
    return {"bench": "images_cn", "T": panel.T, "S": panel.S, "n_images": len(imgs),
            "load_s": round(t_load, 2), "images_s": round(t_img, 2),
            "total_s": round(t_load + t_img, 2), "peak_rss_gb": round(_rss_gb(), 3),
            "labels": label_src}


def _epoch_panel():
    """The default simulator market when it runs here, else a random panel of that size."""
    from alphaminer.panel import Panel

    try:
        from alphaminer.data.simulator import simulate_market

        raw = simulate_market(n_stocks=300, n_days=2520, seed=0, progress=False).raw
        adj = raw["adj_factor"]
        long = raw[["datetime", "instrument"]].copy()
        for c in ("open", "high", "low", "close", "vwap"):
            long[c] = raw[c] * adj
        long["volume"] = raw["volume"] / adj
        long["amount"] = raw["amount"]
        return Panel.from_long(long), "simulator"
    except Exception as exc:  # the simulator is optional for this benchmark
        rng = np.random.default_rng(0)
        T, S = 2520, 300
        close = 20 * np.exp(np.cumsum(0.02 * rng.standard_normal((T, S)), axis=0))
        o = close * np.exp(0.005 * rng.standard_normal((T, S)))
        h = np.maximum(o, close) * 1.01
        lo = np.minimum(o, close) * 0.99
        v = np.exp(rng.normal(13, 0.5, (T, S)))
        vw = (h + lo + close) / 3
        vals = np.stack([o, h, lo, close, v, vw, vw * v], -1).astype(np.float32)
        ones = torch.ones(T, S, dtype=torch.bool)
        panel = Panel(torch.from_numpy(vals), pd.bdate_range("2012-01-04", periods=T),
                      [f"S{i}" for i in range(S)],
                      ("open", "high", "low", "close", "volume", "vwap", "amount"),
                      ones, ones.clone(), ones.clone())
        return panel, f"random panel ({type(exc).__name__}: {str(exc)[:80]})"


def run_epoch(epochs: int = 3) -> dict:
    from alphaminer.neural.alphanet import (
        ImageConfig,
        TrainConfig,
        build_feature_images,
        train_alphanet,
    )

    torch.set_num_threads(2)
    panel, src = _epoch_panel()
    y, _ = _labels_or_none(panel)
    n = panel.T
    splits = {"train": (0, int(n * 0.6)), "valid": (int(n * 0.6), int(n * 0.8)),
              "test": (int(n * 0.8), n)}
    imgs = build_feature_images(panel, splits, ImageConfig(), labels=y, progress=False)
    n_train = int((imgs.split == imgs.split_code("train")).sum())
    res = train_alphanet(imgs, TrainConfig(epochs=epochs, patience=epochs, device="cpu",
                                           progress=False))
    sec = res.history["seconds"].tolist()
    return {"bench": "train_epoch", "panel": src, "n_images": len(imgs), "n_train": n_train,
            "epoch_s": [round(s, 2) for s in sec],
            "epoch_median_s": round(statistics.median(sec), 2),
            "threads": torch.get_num_threads(), "peak_rss_gb": round(_rss_gb(), 3)}


def main() -> None:
    if len(sys.argv) > 1:
        out = run_images() if sys.argv[1] == "images" else run_epoch()
        print(json.dumps(out))
        return
    reps = 3
    results: dict[str, list[dict]] = {"images": [], "epoch": []}
    for kind in ("images", "epoch"):
        for _ in range(reps if kind == "images" else 1):
            p = subprocess.run([sys.executable, __file__, kind], capture_output=True, text=True,
                               check=True)
            results[kind].append(json.loads(p.stdout.strip().splitlines()[-1]))
            print(results[kind][-1], flush=True)
    im = results["images"]
    print(f"CN images: median {statistics.median(r['total_s'] for r in im):.1f} s total "
          f"(images {statistics.median(r['images_s'] for r in im):.1f} s), peak RSS median "
          f"{statistics.median(r['peak_rss_gb'] for r in im):.2f} GB, "
          f"{im[0]['n_images']} images")
    ep = results["epoch"][0]
    print(f"training epoch ({ep['panel']}, {ep['n_train']} train images, 2 threads): median "
          f"{ep['epoch_median_s']:.1f} s over {len(ep['epoch_s'])} epochs")


if __name__ == "__main__":
    main()
