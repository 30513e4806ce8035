"""Does a market carry cross-sectional signal that holds out of sample?

For each market (a folder of synthetic market parquets, and the default panel's train split as
the reference) the classic library formulas (conf/base ``alpha_library``) are scored against the
20-day close label on the first and on the second half of the market's labelled days (20 days
purged between them). A market whose formulas' ICs are persistent has ``corr(IC first half,
IC second half)`` across formulas well above 0 and a sign agreement above 50 %; a market whose
ICs are noise has both at chance. That is what AlphaFormer's pre-training can learn from: a
formula that scores on the first days of a synthetic market should score on later days too.

    python benchmarks/synthetic_signal_probe.py --markets data/05_model_input/alphaformer_markets_*

Results: printed table and ``benchmarks/out/synthetic_signal_probe.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
HORIZON = 20


def half_ics(panel, formulas: list[str]) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    """Mean daily IC of every formula on the first and on the second half of the labelled
    days, ``HORIZON`` days purged between the halves (no label of the first reads the second)."""
    from alphaminer.data import make_labels
    from alphaminer.evaluation.metrics import daily_ic
    from alphaminer.expr import Evaluator

    y = make_labels(panel, HORIZON, "close")
    vals = Evaluator(panel).evaluate_many(formulas)
    n = panel.T - HORIZON                      # days with a label
    mid = n // 2
    a = daily_ic(vals[:, : mid - HORIZON], y[: mid - HORIZON], 10)
    b = daily_ic(vals[:, mid:n], y[mid:n], 10)
    return torch.nanmean(a, 1).numpy(), torch.nanmean(b, 1).numpy()


def probe(panels: list, formulas: list[str], target: np.ndarray | None = None  # noqa: ANN001
          ) -> dict[str, float]:
    """Pooled over the panels: corr of first- vs second-half ICs and their sign agreement;
    with ``target`` (the formulas' ICs on the target panel), the corr of each market's
    whole-market ICs with the target's, averaged over markets: do the formulas that score here
    score there?"""
    first, second, to_target = [], [], []
    for p in panels:
        a, b = half_ics(p, formulas)
        ok = np.isfinite(a) & np.isfinite(b)
        first.append(a[ok])
        second.append(b[ok])
        if target is not None:
            ok &= np.isfinite(target)
            to_target.append(float(np.corrcoef((a[ok] + b[ok]) / 2, target[ok])[0, 1]))
    a, b = np.concatenate(first), np.concatenate(second)
    extra = {"ic_corr_to_target": float(np.mean(to_target))} if to_target else {}
    return {"markets": len(panels), "pairs": int(a.size), **extra,
            "ic_corr_first_second": float(np.corrcoef(a, b)[0, 1]),
            "sign_agreement": float(np.mean(np.sign(a) == np.sign(b))),
            "mean_abs_ic_first": float(np.mean(np.abs(a))),
            "mean_abs_ic_second": float(np.mean(np.abs(b)))}


def main() -> None:
    from alphaminer.data import Splits
    from alphaminer.panel import Panel
    from alphaminer.pipelines.alpha_library.nodes import collect_formulas

    ap = argparse.ArgumentParser()
    ap.add_argument("--markets", nargs="+", default=[], help="folders of market parquets")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--window-days", type=int, default=490,
                    help="length of the size-matched real windows (the markets' typical T)")
    ap.add_argument("--window-stocks", type=int, default=66)
    ap.add_argument("--out", default=str(REPO / "benchmarks/out/synthetic_signal_probe.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    lib = yaml.safe_load((REPO / "conf/base/parameters/alpha_library.yml").read_text())
    formulas = collect_formulas(lib["alpha_library"]).formulas
    d = REPO / "data/03_primary"
    panel = Panel.load(d / "market_panel.parquet")
    train = Splits.from_dict(json.loads((d / "splits.json").read_text())).slice(panel, "train")
    a, b = half_ics(train, formulas)
    target = (a + b) / 2                      # the formulas' ICs on the target's train split
    rows = {"default panel, train split": probe([train], formulas)}
    # size-matched reference: real windows as long and as wide as the synthetic markets, so
    # shorter, narrower markets' noisier ICs are not mistaken for missing signal
    rng = np.random.default_rng(0)
    size_matched = []
    for k in range(3):
        start = k * (train.T // 3)
        w = train.slice_dates(start, start + args.window_days)
        live = np.flatnonzero(w.universe.to(torch.bool).all(0).numpy())
        pick = rng.choice(live, size=min(args.window_stocks, live.size), replace=False)
        size_matched.append(w.select_instruments([w.instruments[i] for i in sorted(pick)]))
    rows[f"default panel, 3 x {args.window_stocks} stocks x {args.window_days} days"] = probe(
        size_matched, formulas, target)
    for folder in args.markets:
        files = sorted(Path(folder).glob("*.parquet"))
        if files:
            rows[Path(folder).name] = probe([Panel.load(f) for f in files], formulas, target)
    print(f"{'source':40s} {'mkts':>4s} {'pairs':>5s} {'corr':>7s} {'sign':>6s} "
          f"{'|IC| 1st':>8s} {'|IC| 2nd':>8s} {'to target':>9s}")
    for k, r in rows.items():
        print(f"{k:40s} {r['markets']:4d} {r['pairs']:5d} {r['ic_corr_first_second']:7.3f} "
              f"{r['sign_agreement']:6.2f} {r['mean_abs_ic_first']:8.4f} "
              f"{r['mean_abs_ic_second']:8.4f} {r.get('ic_corr_to_target', float('nan')):9.3f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"formulas": len(formulas), "horizon": HORIZON,
                                          "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
