"""AlphaNet on the shared real panels: why it did not learn, and what fixes it (issue 15 item 1).

Each experiment trains AlphaNet with one set of image / training settings, predicts a daily
stride-1 signal and scores it on the project's 20-day label (the one the report judges), per
split: mean daily IC and RankIC, their Newey–West t (lags 19) and share of positive days
(:mod:`alphaminer.evaluation.robust`). Results go to ``benchmarks/out/alphanet_real/`` as one
JSON per (panel, experiment, seed), plus ``results.csv`` with every run so far.

Panels (loaded with the project's own ``parquet`` source and cleaning, never copied):

- ``cn300`` / ``cn800``: the CN all-A file restricted to the 2015 CSI300 (/ + CSI500) members;
- ``cnall``: the whole CN file (3,724 stocks); split of the issue: train ≤ 2018-12, valid
  2019-01..06, test 2019-07..11 (20 days purged between segments);
- ``us``: the S&P 500 file, time-ordered 60/20/20 (20 days purged).

Usage::

    python benchmarks/alphanet_real.py --panel cn300 --exp baseline h20 --seeds 0 1
    python benchmarks/alphanet_real.py --list

One torch thread (the host is shared); CPU seconds are ``time.process_time``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
if not DATA.exists():
    DATA = Path("/work/shared/data")
OUT = ROOT / "benchmarks" / "out" / "alphanet_real"
HORIZON = 20  # the label the report judges every method on

CN_FILE = DATA / "cn_all_tushare_2017_2019.parquet"
US_FILE = DATA / "us_sp500_yahoo_2015_2020.parquet"
CN_SEGMENTS = {"train": ["2017-05-31", "2018-12-31"], "valid": ["2019-01-01", "2019-06-30"],
               "test": ["2019-07-01", "2019-11-28"]}

#: The defaults before issue 15 (what the CSI300 run of the issue used).
OLD_IMAGE: dict[str, Any] = {"window": 30, "stride": 5, "horizon": 5}
OLD_TRAIN: dict[str, Any] = {"loss": "neg_abs_ic", "lr": 1e-3, "epochs": 50, "patience": 10,
                             "days_per_batch": 1, "label_transform": "none",
                             "shuffle_days": False, "monitor": "ic"}

#: name -> (image overrides, train overrides, note). Each one changes the old defaults.
EXPERIMENTS: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {
    "baseline": ({}, {}, "old defaults: 5-day labels, -|IC|, lr 1e-3, 1 day/batch, patience 10"),
    "h20": ({"horizon": 20}, {}, "train on the 20-day label"),
    "h20_ic": ({"horizon": 20}, {"loss": "neg_ic"}, "+ signed -IC loss"),
    "h20_ic_rank": ({"horizon": 20}, {"loss": "neg_ic", "label_transform": "rank"},
                    "+ ranked labels"),
    "h5_ic_rank": ({}, {"loss": "neg_ic", "label_transform": "rank"},
                   "5-day labels, signed loss, ranked labels"),
    "h20_abs_rank": ({"horizon": 20}, {"label_transform": "rank"},
                     "20-day, -|IC| on ranked labels"),
    "h20_mse_z": ({"horizon": 20}, {"loss": "mse", "label_transform": "zscore"},
                  "20-day, MSE on per-day z-scored labels"),
    "h20_mse_rank": ({"horizon": 20}, {"loss": "mse", "label_transform": "rank"},
                     "20-day, MSE on per-day ranked labels"),
    # batch composition, learning rate and early stopping, on top of h20_ic_rank
    "s2": ({"horizon": 20, "stride": 2}, {"loss": "neg_ic", "label_transform": "rank"},
           "h20_ic_rank with sample days every 2 days (2.5x the training days)"),
    "s1": ({"horizon": 20, "stride": 1}, {"loss": "neg_ic", "label_transform": "rank"},
           "h20_ic_rank with every day a sample day (5x)"),
    "s2_shuf": ({"horizon": 20, "stride": 2},
                {"loss": "neg_ic", "label_transform": "rank", "shuffle_days": True},
                "s2, days visited in random order"),
    "s2_dpb5": ({"horizon": 20, "stride": 2},
                {"loss": "neg_ic", "label_transform": "rank", "shuffle_days": True,
                 "days_per_batch": 5}, "s2_shuf, 5 days per step"),
    "s2_lr1e-4": ({"horizon": 20, "stride": 2},
                  {"loss": "neg_ic", "label_transform": "rank", "lr": 1e-4},
                  "s2 with lr 1e-4"),
    "s2_p3": ({"horizon": 20, "stride": 2}, {"loss": "neg_ic", "label_transform": "rank",
                                              "patience": 3},
              "s2, patience 3 instead of 10"),
    "s2_ric": ({"horizon": 20, "stride": 2},
               {"loss": "neg_ic", "label_transform": "rank", "monitor": "rank_ic"},
               "s2, early stopping on the valid RankIC"),
}


# ---------------------------------------------------------------------- data
def cn_instruments(flags: tuple[str, ...]) -> list[str]:
    """Codes whose 2015 index-membership flag is 1 in any row (a fixed list, no look-ahead)."""
    df = pd.read_parquet(CN_FILE, columns=["instrument", *flags])
    keep = df[list(flags)].max(axis=1) > 0
    return sorted(df.loc[keep, "instrument"].astype(str).unique())


def load_panel(name: str):  # noqa: ANN201 (Panel, Splits)
    """The cleaned, adjusted panel and its purged splits, through the project's own code."""
    from alphaminer.data import SourceConfig, SplitConfig, clean, load_source, make_splits

    if name.startswith("cn"):
        flags = {"cn300": ("in_csi300_2015",), "cn800": ("in_csi300_2015", "in_csi500_2015"),
                 "cnall": ()}[name]
        src = SourceConfig(kind="parquet", path=str(CN_FILE), columns={"datetime": "date"},
                           instruments=cn_instruments(flags) if flags else None)
        panel = clean(load_source(src), {"market": "cn"}).to_panel()
        splits = make_splits(panel.dates, SplitConfig(horizon=HORIZON, segments=CN_SEGMENTS))
    elif name == "us":
        src = SourceConfig(kind="parquet", path=str(US_FILE), columns={"datetime": "date"})
        panel = clean(load_source(src)).to_panel()
        splits = make_splits(panel.dates, SplitConfig(horizon=HORIZON,
                                                      fractions=[0.6, 0.2, 0.2]))
    else:
        raise KeyError(f"unknown panel {name!r}")
    return panel, splits


# ---------------------------------------------------------------------- scoring
def score_signal(signal: torch.Tensor, label: torch.Tensor, splits: Any) -> dict[str, Any]:
    """Per split: IC / RankIC means, Newey–West t (lags h−1), positive share, days."""
    from alphaminer.evaluation import daily_ic, daily_rank_ic
    from alphaminer.evaluation.robust import robust_ic

    out: dict[str, Any] = {}
    for seg, (i0, i1) in splits.ranges.items():
        ic = daily_ic(signal[i0:i1], label[i0:i1], min_stocks=20).numpy()
        ric = daily_rank_ic(signal[i0:i1], label[i0:i1], min_stocks=20).numpy()
        r, rr = robust_ic(ic, horizon=HORIZON), robust_ic(ric, horizon=HORIZON)
        out[seg] = {"ic": r.mean, "ic_t": r.nw_t, "rank_ic": rr.mean, "rank_ic_t": rr.nw_t,
                    "rank_ic_pos": rr.positive_share, "days": rr.n_days}
    return out


def sign_diagnostic(model: Any, images: Any, min_stocks: int) -> dict[str, float]:
    """On the training images: mean |IC|, mean signed IC and the share of days whose IC has the
    sign of the mean. A large |IC| with a small signed IC means the score tracks something
    whose payoff flips sign from day to day."""
    from alphaminer.neural.alphanet.train import daily_ic_of, score_images

    tr = images.subset("train")
    s = score_images(model, tr.images, torch.device("cpu"))
    ic = daily_ic_of(tr, s, min_stocks).numpy()
    ic = ic[np.isfinite(ic)]
    m = float(ic.mean())
    return {"train_abs_ic": float(np.abs(ic).mean()), "train_signed_ic": m,
            "train_sign_agree": float((np.sign(ic) == np.sign(m)).mean())}


def run(panel_name: str, exp: str, seed: int, cache: dict[str, Any],
        extra_image: dict[str, Any] | None = None, extra_train: dict[str, Any] | None = None
        ) -> dict[str, Any]:
    from alphaminer.data import make_labels
    from alphaminer.neural.alphanet import (
        ImageConfig,
        TrainConfig,
        build_feature_images,
        predict,
        train_alphanet,
    )

    if panel_name not in cache:
        t0 = time.perf_counter()
        panel, splits = load_panel(panel_name)
        cache[panel_name] = (panel, splits, make_labels(panel, horizon=HORIZON))
        print(f"[{panel_name}] {panel.S} stocks x {panel.T} days loaded in "
              f"{time.perf_counter() - t0:.0f}s; splits {splits.ranges}", flush=True)
    panel, splits, label = cache[panel_name]
    img_over, train_over, note = EXPERIMENTS[exp]
    icfg = ImageConfig.from_dict({**OLD_IMAGE, **img_over, **(extra_image or {})})
    tcfg = TrainConfig(**{**OLD_TRAIN, **train_over, **(extra_train or {}),
                          "seed": seed, "device": "cpu", "progress": False})
    c0 = time.process_time()
    images = build_feature_images(panel, splits, icfg, progress=False)
    res = train_alphanet(images, tcfg)
    cpu_train = time.process_time() - c0
    signal = predict(res.model, panel, icfg, device="cpu", progress=False)
    hist = res.history
    rec = {
        "panel": panel_name, "exp": exp, "note": note, "seed": seed,
        "image": icfg.to_dict(), "train": tcfg.to_dict(),
        "n_images": {s: int((images.split == images.split_code(s)).sum())
                     for s in images.split_names},
        "best_epoch": res.best_epoch, "epochs_run": len(hist),
        "best_valid_metric": res.best_valid_ic,
        "valid_metric_by_epoch": [round(float(v), 5) for v in hist["valid_ic"]],
        "train_ic_by_epoch": [round(float(v), 5) for v in hist["train_ic"]],
        "cpu_s_train": cpu_train, "cpu_s_total": time.process_time() - c0,
        **sign_diagnostic(res.model, images, tcfg.min_stocks),
        "scores": score_signal(signal, label, splits),
    }
    rec["signal"] = signal
    return rec


def day_ranks(x: torch.Tensor) -> torch.Tensor:
    """Per-day percentile ranks of ``x [T, S]`` (NaN stays NaN), so seeds can be averaged."""
    return torch.from_numpy(pd.DataFrame(x.numpy()).rank(axis=1, pct=True).to_numpy()
                            ).float()


def ensemble(panel_name: str, exp: str, seeds: list[int], tag: str = "") -> dict[str, Any]:
    """Score the per-day rank average of the saved signals of ``seeds`` (no retraining)."""
    from alphaminer.data import make_labels

    panel, splits = load_panel(panel_name)
    label = make_labels(panel, horizon=HORIZON)
    sigs = [day_ranks(torch.load(OUT / "signals" /
                                 f"{panel_name}__{exp}{'__' + tag if tag else ''}__s{k}.pt"))
            for k in seeds]
    avg = torch.stack(sigs).mean(0)  # NaN where any seed has none (they share the image grid)
    return score_signal(avg, label, splits)


def _flat(rec: dict[str, Any]) -> dict[str, Any]:
    row = {k: rec[k] for k in ("panel", "exp", "seed", "best_epoch", "epochs_run",
                                "train_abs_ic", "train_signed_ic", "train_sign_agree",
                                "cpu_s_total")}
    row["tag"] = rec.get("tag", "")
    for seg, d in rec["scores"].items():
        for k, v in d.items():
            row[f"{seg}_{k}"] = v
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--panel", default="cn300", choices=["cn300", "cn800", "cnall", "us"])
    ap.add_argument("--exp", nargs="*", default=["baseline"])
    ap.add_argument("--seeds", nargs="*", type=int, default=[0])
    ap.add_argument("--image", default="{}", help="JSON ImageConfig overrides for every exp")
    ap.add_argument("--train", default="{}", help="JSON TrainConfig overrides for every exp")
    ap.add_argument("--tag", default="", help="suffix of the output names")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--ensemble", action="store_true",
                    help="score the rank average of the saved signals of --seeds per --exp")
    a = ap.parse_args(argv)
    if a.ensemble:
        for exp in a.exp:
            sc = ensemble(a.panel, exp, a.seeds, a.tag)
            rec = {"panel": a.panel, "exp": exp, "seeds": a.seeds, "tag": a.tag, "scores": sc}
            (OUT / f"{a.panel}__{exp}__ensemble{len(a.seeds)}.json").write_text(
                json.dumps(rec, indent=1))
            print(f"{a.panel} {exp} ensemble of {len(a.seeds)}: " + "  ".join(
                f"{s} RIC {d['rank_ic']:+.4f} (t {d['rank_ic_t']:+.2f}) IC {d['ic']:+.4f}"
                for s, d in sc.items()), flush=True)
        return 0
    if a.list:
        for k, (im, tr, note) in EXPERIMENTS.items():
            print(f"{k:16s} {note}  image={im} train={tr}")
        return 0
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    cache: dict[str, Any] = {}
    for exp in a.exp:
        for seed in a.seeds:
            rec = run(a.panel, exp, seed, cache, json.loads(a.image), json.loads(a.train))
            rec["tag"] = a.tag
            name = f"{a.panel}__{exp}{'__' + a.tag if a.tag else ''}__s{seed}.json"
            (OUT / "signals").mkdir(exist_ok=True)
            torch.save(rec.pop("signal"), OUT / "signals" / name.replace(".json", ".pt"))
            (OUT / name).write_text(json.dumps(rec, indent=1))
            row = _flat(rec)
            csv = OUT / "results.csv"
            pd.DataFrame([row]).to_csv(csv, mode="a", header=not csv.exists(), index=False)
            sc = rec["scores"]
            print(f"{a.panel} {exp}{'/' + a.tag if a.tag else ''} s{seed}: best ep "
                  f"{rec['best_epoch']}/{rec['epochs_run']}  "
                  f"|IC|tr {rec['train_abs_ic']:.3f} ICtr {rec['train_signed_ic']:+.3f}  " +
                  "  ".join(f"{s} RIC {d['rank_ic']:+.4f} (t {d['rank_ic_t']:+.2f}) "
                            f"IC {d['ic']:+.4f}" for s, d in sc.items()) +
                  f"  cpu {rec['cpu_s_total']:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
