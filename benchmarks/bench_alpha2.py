"""Alpha2 on the default simulator: MCTS simulations/s, candidates scored/s, and recovery of the
planted alphas (best |mean daily corr| on the TEST split) with the mined set's mean mutual |corr|.

The planted formulas are only used to judge the result, never fed to the search.

    python benchmarks/bench_alpha2.py                      # default configuration
    python benchmarks/bench_alpha2.py --beta 0 --tag beta0 # one ablation: --beta, --no-dims,
                                                           # --no-diversity
    python benchmarks/alpha2_ablations.py                  # all ablations, JSON + CSV table
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from miners_vs_random import OUT, market  # noqa: E402

from alphaminer.evaluation.alphaset import AlphaSet  # noqa: E402
from alphaminer.evaluation.recovery import (  # noqa: E402
    mean_mutual_abs_corr,
    planted_sets,
    recovery_table,
)
from alphaminer.evaluation.scorer import CandidateScorer  # noqa: E402
from alphaminer.expr import Evaluator  # noqa: E402
from alphaminer.mining.alpha2.miner import Alpha2Miner  # noqa: E402


def main() -> None:
    """Defaults are conf/base's CPU configuration."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--stocks", type=int, default=300)
    ap.add_argument("--days", type=int, default=2520)
    ap.add_argument("--horizon", type=int, default=20)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--games", type=int, default=8)
    ap.add_argument("--simulations", type=int, default=32)
    ap.add_argument("--max-len", type=int, default=4)
    ap.add_argument("--beta", type=float, default=0.5)
    ap.add_argument("--fpu", default="parent", choices=["zero", "parent"])
    ap.add_argument("--fpu-reduction", type=float, default=0.0)
    ap.add_argument("--pb-c-init", type=float, default=1.0)
    ap.add_argument("--temperature-moves", type=int, default=1)
    ap.add_argument("--no-end-first", action="store_true")
    ap.add_argument("--leaf-value", default="zero", choices=["zero", "network"])
    ap.add_argument("--move-selection", default="visits", choices=["visits", "value"])
    ap.add_argument("--no-dims", action="store_true")
    ap.add_argument("--no-diversity", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tag", default=None,
                    help="output name: benchmarks/out/alpha2_<tag>.json (default: seed<S>, so runs "
                         "of several seeds do not overwrite each other)")
    ap.add_argument("--alpha-horizon", type=int, default=None,
                    help="the simulator's alpha_horizon (default: its own, 20). A diagnostic: "
                         "with 1 and --horizon 1 the planted formulas are exactly what predicts "
                         "the label")
    args = ap.parse_args()
    sim = {} if args.alpha_horizon is None else {"alpha_horizon": args.alpha_horizon}
    panel, labels, splits, planted = market(args.stocks, args.days, args.horizon, sim)
    scorer = CandidateScorer.from_splits(panel, labels, splits, "train", compute_rank_ic=False)
    cfg = {"iterations": args.iterations, "games": args.games, "max_len": args.max_len,
           "dims": not args.no_dims, "diversity": not args.no_diversity, "seed": args.seed,
           "temperature_moves": args.temperature_moves, "leaf_value": args.leaf_value,
           "move_selection": args.move_selection,
           "search": {"simulations": args.simulations, "beta": args.beta, "fpu": args.fpu,
                      "fpu_reduction": args.fpu_reduction, "pb_c_init": args.pb_c_init,
                      "end_first": not args.no_end_first}}
    t = time.perf_counter()
    res = Alpha2Miner(scorer, config=cfg).run(progress=False)
    wall = time.perf_counter() - t
    t0, t1 = splits.ranges["test"]
    ev = Evaluator(panel)
    aset = AlphaSet("alpha2", res.formulas)
    vals = aset.values(panel, ev)[:, t0:t1]
    pset, eset = planted_sets(planted)
    rec = recovery_table(vals, res.formulas, pset.values(panel, ev)[:, t0:t1], pset.names)
    erec = recovery_table(vals, res.formulas, eset.values(panel, ev)[:, t0:t1], eset.names) \
        if eset is not None else None
    st = res.search_stats
    tag = args.tag or f"seed{args.seed}"
    out = {"tag": tag, "config": cfg, "wall_seconds": round(wall, 1),
           "data": {"stocks": args.stocks, "days": args.days, "horizon": args.horizon,
                    "simulator": sim},
           "n_alphas": len(res.formulas), "recovered": int(rec["recovered"].sum()),
           "planted_abs_corr": dict(zip(rec["planted"], rec["abs_corr"].round(4))),
           "best_alpha": dict(zip(rec["planted"], rec["best_alpha"])),
           # the same against each formula's effect at the label horizon (oracle_formula)
           **({"effect_recovered": int(erec["recovered"].sum()),
               "effect_abs_corr": dict(zip(erec["planted"], erec["abs_corr"].round(4))),
               "effect_best_alpha": dict(zip(erec["planted"], erec["best_alpha"]))}
              if erec is not None else {}),
           "mean_mutual_abs_corr_test": mean_mutual_abs_corr(vals),
           "simulations_per_second": st["simulations_per_second"],
           "candidates_per_second": st["candidates_per_second"],
           "search_stats": st, "formulas": res.formulas}
    print(json.dumps(out, indent=1, default=str), flush=True)
    OUT.mkdir(exist_ok=True)
    (OUT / f"alpha2_{tag}.json").write_text(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
