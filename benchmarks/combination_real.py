"""The default combination on the shared real panels (issue 15 item 2).

For each panel: the library alpha set of ``conf/base`` (its two user formulas + the classic
set), every candidate combiner of the default ``auto`` combiner, which one ``auto`` keeps on the
validation RankIC, and the benchmark the issue names: the best single library factor chosen on
validation (largest |valid RankIC|, signed), judged on test. The label is the project's 20-day
close-to-close return. Results go to ``benchmarks/out/combination_real/<panel>.json`` and a
printed table.

Usage::

    python benchmarks/combination_real.py --panel cnall us

Panels and splits are loaded exactly as ``benchmarks/alphanet_real.py`` does (the project's
``parquet`` source and cleaning; CN: train ≤ 2018-12, valid 2019-01..06, test 2019-07..11; US:
time-ordered 60/20/20; 20 days purged).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
OUT = ROOT / "benchmarks" / "out" / "combination_real"


def library_values(panel):  # noqa: ANN001, ANN201
    from alphaminer.expr import Evaluator
    from alphaminer.pipelines.alpha_library.nodes import collect_formulas

    params = yaml.safe_load((ROOT / "conf/base/parameters/alpha_library.yml").read_text())
    aset = collect_formulas(params["alpha_library"])
    return aset, aset.values(panel, Evaluator(panel))


def run(name: str) -> dict:
    from alphanet_real import DATA, load_panel

    from alphaminer.combination import combine
    from alphaminer.data.labels import make_labels
    from alphaminer.parameters import CombinationParams

    if not DATA.exists():
        raise SystemExit(f"no shared data at {DATA}")
    t0 = time.perf_counter()
    panel, splits = load_panel(name)
    y = make_labels(panel, 20, "close")
    aset, values = library_values(panel)
    combo = yaml.safe_load((ROOT / "conf/base/parameters/combination.yml").read_text())
    p = CombinationParams.coerce(combo["library"]["combination"])
    cfg = p.combiner_config()
    ranges = dict(splits.ranges)
    res = combine(p.model, values, aset.formulas, y, ranges, splits.horizon, cfg)
    single = combine("rank_average", values, aset.formulas, y, ranges, splits.horizon,
                     {"top_k": 1, "n_trials": 0})
    out = {"panel": name, "stocks": panel.S, "days": panel.T, "factors": len(aset),
           "splits": {k: [str(panel.dates[a].date()), str(panel.dates[b - 1].date())]
                      for k, (a, b) in ranges.items()},
           "model": p.model, "chosen": res.model.get("auto", {}).get("chosen", p.model),
           "candidates": res.model.get("auto", {}).get("candidates", {}),
           "default": res.metrics, "best_single": {"formula": single.selected[0],
                                                   **single.metrics},
           "wall_seconds": time.perf_counter() - t0}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps(out, indent=2, default=float))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--panel", nargs="+", default=["cnall", "us"])
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    for name in args.panel:
        r = run(name)
        print(f"\n{name}: {r['stocks']} stocks x {r['days']} days, {r['factors']} factors, "
              f"{r['wall_seconds']:.0f} s; auto chose {r['chosen']}")
        print(f"{'candidate':16s} {'valid RankIC':>12s} {'test RankIC':>12s} {'test IC':>9s}")
        for c, m in r["candidates"].items():
            if "error" in m:
                print(f"{c:16s} failed: {m['error']}")
                continue
            print(f"{c:16s} {m['valid_rank_ic']:12.4f} {m['test_rank_ic']:12.4f} "
                  f"{m['test_ic']:9.4f}")
        b = r["best_single"]
        print(f"{'best single':16s} {b['valid_rank_ic']:12.4f} {b['test_rank_ic']:12.4f} "
              f"{b['test_ic']:9.4f}  ({b['formula']})")
        d = r["default"]
        print(f"{'DEFAULT':16s} {d['valid_rank_ic']:12.4f} {d['test_rank_ic']:12.4f} "
              f"{d['test_ic']:9.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
