"""Alpha2 ablations on the default simulator: dimension pruning off, β ∈ {0, 0.5, 1}, diversity
off (Perf = IC), against the configured run (``conf/base/parameters/alpha2.yml``).

Each (variant, seed) mines on the train split with a fresh scorer and is judged on the TEST split
(``alphaminer.mining.alpha2.ablations``). Writes ``benchmarks/out/alpha2_ablations/ablations.json``
(the same layout as the pipeline's ``alpha2.ablations`` dataset) and ``ablations.csv`` (one
flat row per run). The planted formulas only judge the result; the search never sees them.

    python benchmarks/alpha2_ablations.py --seeds 0 1 --iterations 20
    python benchmarks/alpha2_ablations.py --variants default no_dims   # a subset
    python benchmarks/alpha2_ablations.py --merge a/ablations.json b/ablations.json
                                          # one table from runs done in parallel processes
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from miners_vs_random import market  # noqa: E402

from alphaminer.evaluation.alphaset import AlphaSet  # noqa: E402
from alphaminer.evaluation.scorer import CandidateScorer  # noqa: E402
from alphaminer.mining.alpha2.ablations import (  # noqa: E402
    DEFAULT_VARIANTS,
    merge_config,
    run_ablations,
    summarise,
)

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out" / "alpha2_ablations"  # apart from the catalog's versioned path

#: flat CSV columns (``corr_<planted>`` columns follow)
CSV_COLUMNS = ["variant", "seed", "same_as", "dims", "diversity", "beta", "n_alphas",
               "candidates", "simulations", "wall_seconds", "simulations_per_second",
               "candidates_per_second", "top_test_ic_mean", "test_ic_mean",
               "mean_mutual_abs_corr", "recovered"]


def flat_rows(rows: list[dict]) -> pd.DataFrame:
    out = []
    for r in rows:
        d = {k: r.get(k) for k in CSV_COLUMNS}
        for p, c in (r.get("planted_abs_corr") or {}).items():
            d[f"corr_{p}"] = c
        out.append(d)
    return pd.DataFrame(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS))
    ap.add_argument("--iterations", type=int, default=None, help="override the base config")
    ap.add_argument("--stocks", type=int, default=300)
    ap.add_argument("--days", type=int, default=2520)
    ap.add_argument("--horizon", type=int, default=20)
    ap.add_argument("--top-k", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--merge", type=Path, nargs="+", default=None,
                    help="combine ablations.json files (rows concatenated, summary redone)")
    args = ap.parse_args()
    if args.merge:
        parts = [json.loads(p.read_text()) for p in args.merge]
        rows = [r for p in parts for r in p["rows"]]
        res = {**parts[0], "rows": rows, "summary": summarise(rows),
               "seeds": sorted({r["seed"] for r in rows}),
               "wall_seconds": sum(p.get("wall_seconds", 0.0) for p in parts)}
        write(res, args.out)
        return
    torch.set_num_threads(args.threads)
    conf = yaml.safe_load((ROOT / "conf/base/parameters/alpha2.yml").read_text())
    base = conf["alpha2"]["mining"]["miner"]
    if args.iterations is not None:
        base = merge_config(base, {"iterations": args.iterations})
    unknown = [v for v in args.variants if v not in DEFAULT_VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {list(DEFAULT_VARIANTS)}")
    panel, labels, splits, planted = market(args.stocks, args.days, args.horizon)
    pset = AlphaSet("planted", list(planted["formula"]), list(planted["name"]))

    def make_scorer() -> CandidateScorer:
        return CandidateScorer.from_splits(panel, labels, splits, "train", compute_rank_ic=False)

    def show(row: dict) -> None:
        print(json.dumps({k: row.get(k) for k in CSV_COLUMNS + ["planted_abs_corr"]},
                         default=str), flush=True)

    t = time.perf_counter()
    res = run_ablations(make_scorer, panel, labels, splits.ranges, pset, base,
                        {v: DEFAULT_VARIANTS[v] for v in args.variants}, args.seeds,
                        top_k=args.top_k, log=show)
    res = {"enabled": True, "base_config": base, "wall_seconds": time.perf_counter() - t,
           "data": {"stocks": args.stocks, "days": args.days, "horizon": args.horizon}, **res}
    write(res, args.out)


def write(res: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "ablations.json").write_text(json.dumps(res, indent=2, default=str))
    flat_rows(res["rows"]).to_csv(out / "ablations.csv", index=False)
    print(pd.DataFrame(res["summary"]).drop(columns=["planted_abs_corr"], errors="ignore")
          .to_string(index=False))


if __name__ == "__main__":
    main()
