"""GP and AlphaGen against random grammar formulas with the same candidate budget (issue: the
mining kit's "Results" check), mean ± std over seeds, on the default simulator.

Every method mines on the train split through the same CandidateScorer and pool (capacity 10,
L1 0.005); random formulas are uniform walks under the grammar mask, offered to the pool in
order. The figure of merit is the pool's IC on the TEST split (its lasso weights from train,
applied to the members' test values: ``AlphaPool.pool_ic(test_target, test_values)``), plus the
best |corr| of any pool member with each planted formula on test.

    python benchmarks/miners_vs_random.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from alphaminer.data import clean, label_lookahead, load_source, make_labels, make_splits
from alphaminer.evaluation.alphaset import AlphaSet
from alphaminer.evaluation.pool import PoolConfig
from alphaminer.evaluation.recovery import recovery_table
from alphaminer.evaluation.scorer import CandidateScorer
from alphaminer.expr import Evaluator
from alphaminer.expr.vocab import Vocabulary
from alphaminer.mining.alphagen.miner import AlphaGenMiner, random_formulas
from alphaminer.mining.base import MiningResult, offer_to_pool
from alphaminer.mining.gp.miner import GPMiner

OUT = Path(__file__).resolve().parent / "out"


def market(n_stocks: int, n_days: int, horizon: int,  # noqa: ANN201
           simulator: dict | None = None):
    """The default simulator (market seed 0), cleaned, with its label and 60/20/20 splits;
    ``simulator`` overrides keyword arguments of ``simulate_market`` (diagnostics only)."""
    raw = load_source({"kind": "simulator",
                       "simulator": {"n_stocks": n_stocks, "n_days": n_days, "seed": 0,
                                     **(simulator or {})}})
    panel = clean(raw).to_panel()
    labels = make_labels(panel, horizon)
    splits = make_splits(panel.dates, {"fractions": [0.6, 0.2, 0.2],
                                       "horizon": label_lookahead(horizon)})
    return panel, labels, splits, raw.extras["planted_alphas"]


def evaluate(res: MiningResult, scorer: CandidateScorer, panel, labels, splits,  # noqa: ANN001
             planted) -> dict:  # noqa: ANN001
    t0, t1 = splits.ranges["test"]
    pool = scorer.pool
    out = {"n_candidates": res.n_candidates, "pool_size": len(pool),
           "train_pool_ic": float(pool.pool_ic()) if len(pool) else 0.0}
    if not len(pool):
        return {**out, "test_pool_ic": 0.0}
    ev = Evaluator(panel)
    aset = AlphaSet(res.method, res.formulas)
    vals = aset.values(panel, ev)[:, t0:t1]
    out["test_pool_ic"] = float(pool.pool_ic(labels[t0:t1], list(vals)))
    pv = AlphaSet("planted", list(planted["formula"]), list(planted["name"])).values(panel, ev)
    rec = recovery_table(vals, aset.names, pv[:, t0:t1], list(planted["name"]))
    out["planted_abs_corr"] = dict(zip(rec["planted"], rec["abs_corr"].round(4)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--stocks", type=int, default=300)
    ap.add_argument("--days", type=int, default=2520)
    ap.add_argument("--horizon", type=int, default=20)
    ap.add_argument("--capacity", type=int, default=10)
    args = ap.parse_args()
    panel, labels, splits, planted = market(args.stocks, args.days, args.horizon)
    vocab = Vocabulary.default()
    results: dict[str, list[dict]] = {"gp": [], "alphagen": [], "random": []}
    for seed in args.seeds:
        for method, rows in results.items():
            scorer = CandidateScorer.from_splits(panel, labels, splits, "train",
                                                 pool=PoolConfig(capacity=args.capacity))
            t = time.perf_counter()
            if method == "gp":
                res = GPMiner(scorer, vocab, {"seed": seed}).run(progress=False)
            elif method == "alphagen":
                res = AlphaGenMiner(scorer, vocab, {"seed": seed}).run(progress=False)
            else:
                budget = results["gp"][-1]["n_candidates"]
                formulas = random_formulas(vocab, budget, seed=seed)
                ok = [s.formula for s in scorer.score(formulas) if s.ok]
                offer_to_pool(scorer, ok)
                res = MiningResult.from_scorer("random", scorer, n_candidates=budget)
            row = {"seed": seed, "seconds": round(time.perf_counter() - t, 1),
                   **evaluate(res, scorer, panel, labels, splits, planted)}
            rows.append(row)
            print(method, json.dumps(row), flush=True)
    summary = {}
    for method, rows in results.items():
        ic = np.array([r["test_pool_ic"] for r in rows])
        summary[method] = {"test_pool_ic_mean": float(ic.mean()),
                           "test_pool_ic_std": float(ic.std(ddof=1)) if len(ic) > 1 else None,
                           "runs": rows}
        print(f"{method:9s} test pool IC {ic.mean():.4f} ± "
              f"{ic.std(ddof=1) if len(ic) > 1 else float('nan'):.4f}")
    OUT.mkdir(exist_ok=True)
    (OUT / "miners_vs_random.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
