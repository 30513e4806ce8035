"""Does pre-training help at inference? The frozen shipped AlphaFormer vs the same architecture
with random weights, same N, same pool, on the default simulator panel (train split), 3 seeds.

Reports per seed the pool IC on the train split (the quantity the pool maximises) and the IC of
the pool's combined factor (train weights) on the test split, then the means and a one-sided
Welch t-test of pre-trained > random on the train pool IC.

    OMP_NUM_THREADS=1 python benchmarks/alphaformer_vs_random.py --n 300

``--model`` takes several model folders (the generator ablation: one model per generator's
markets), all compared with the same random-weights runs. ``--panel us`` (or ``cnall``) mines a
shared real panel instead (the paper's Table 3 transfer: no further training), with its splits
as in ``benchmarks/alphanet_real.py``. ``--out FILE`` writes every run and the summary as JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from alphaminer.evaluation.pool import PoolConfig
from alphaminer.evaluation.scorer import CandidateScorer
from alphaminer.mining.alphaformer import AlphaFormer, AlphaFormerMiner, load_model

REPO = Path(__file__).resolve().parents[1]


def target_panel(name: str = "default"):  # noqa: ANN201
    """The default ingested panel (data/03_primary) or, if absent, the same simulator run; or
    a shared real panel (``us``, ``cnall``) with the project's 20-day close label."""
    import pandas as pd

    from alphaminer.data import Splits, clean, load_source, make_splits
    from alphaminer.panel import Panel
    from alphaminer.pipelines._common import labels_tensor

    if name != "default":
        import sys

        sys.path.insert(0, str(REPO / "benchmarks"))
        from alphanet_real import HORIZON, load_panel

        from alphaminer.data import make_labels

        panel, splits = load_panel(name)
        return panel, make_labels(panel, HORIZON, "close"), splits
    d = REPO / "data/03_primary"
    if (d / "market_panel.parquet").exists():
        panel = Panel.load(d / "market_panel.parquet")
        y = labels_tensor(panel, pd.read_parquet(d / "labels.parquet"))
        splits = Splits.from_dict(json.loads((d / "splits.json").read_text()))
        return panel, y, splits
    from alphaminer.data import make_labels

    panel = clean(load_source({"kind": "simulator", "simulator": {
        "n_stocks": 300, "n_days": 2520, "seed": 0}})).to_panel()
    return panel, make_labels(panel, 20), make_splits(
        panel.dates, {"fractions": [0.6, 0.2, 0.2], "horizon": 20})


def split_values(scorer: CandidateScorer, formula: str) -> torch.Tensor:
    """A pool member's values on the scorer's split; all NaN (so a zero z-score: it adds
    nothing to the combined factor there) when it cannot be scored on that split, e.g. a
    formula valid on train with too few valid days on test."""
    try:
        return scorer.values(formula)
    except ValueError:
        return torch.full((scorer.T, scorer.S), float("nan"))


def run_one(model: AlphaFormer, panel, y, splits, n: int, capacity: int, seed: int,  # noqa: ANN001
            temperature: float = 1.0) -> dict[str, float]:
    sc = CandidateScorer(panel, y, days=splits.ranges["train"], pool=PoolConfig(
        capacity=capacity, min_stocks=10, compute_rank_ic=False), min_stocks=10,
        compute_rank_ic=False)
    cpu = time.process_time()
    cfg = {"n_candidates": n, "batch_size": 100, "seed": seed, "temperature": temperature}
    res = AlphaFormerMiner(sc, model, cfg).run(progress=False)
    cpu = time.process_time() - cpu
    test = CandidateScorer(panel, y, days=splits.ranges["test"], min_stocks=10,
                           compute_rank_ic=False)
    test_ic = float("nan")
    if res.formulas:
        from alphaminer.evaluation.metrics import daily_ic

        vals = torch.stack([split_values(test, f) for f in res.formulas])
        z = test.cells.standardise(vals)
        comb = (z * torch.tensor(res.weights, dtype=z.dtype).view(-1, 1, 1)).sum(0)
        test_ic = float(torch.nanmean(daily_ic(comb.unsqueeze(0), test.target, 10)))
    return {"seed": seed, "pool_ic_train": res.meta["pool_ic_train"], "pool_ic_test": test_ic,
            "pool_size": len(res.formulas), "unique": res.meta["unique_candidates"],
            "candidates_per_second": res.meta["candidates_per_second"],
            "seconds": res.meta["seconds"], "cpu_seconds": cpu,
            "phase_seconds": res.meta["phase_seconds"], "pool_skipped": res.meta["pool_skipped"]}


def _shown(path: str) -> str:
    """A model path relative to the repository when it is inside it (portable JSON)."""
    p = Path(path).resolve()
    return str(p.relative_to(REPO)) if p.is_relative_to(REPO) else str(p)


def summarise(pre: list[dict], rnd: list[dict]) -> dict:
    """Means of both arms and the one-sided Welch test of pre-trained > random (train pool IC)."""
    from scipy import stats

    a = np.array([r["pool_ic_train"] for r in pre])
    b = np.array([r["pool_ic_train"] for r in rnd])
    t, p = stats.ttest_ind(a, b, equal_var=False, alternative="greater")
    summary = {k: {m: float(np.mean([r[m] for r in v])) for m in
                   ("pool_ic_train", "pool_ic_test", "candidates_per_second", "unique")}
               for k, v in (("pretrained", pre), ("random", rnd))}
    return {"summary": summary, "welch_t": float(t), "p_one_sided": float(p),
            "pretrained_wins": int((a > b).sum())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", nargs="+", default=[str(REPO / "models/alphaformer")])
    ap.add_argument("--panel", default="default", choices=["default", "us", "cnall", "cn300"])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--capacity", type=int, default=10)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--temperature", type=float, default=1.0,
                    help="sampling temperature of the pre-trained model")
    ap.add_argument("--random-temperature", type=float, default=1.0,
                    help="sampling temperature of the random-weights model")
    ap.add_argument("--labels", nargs="+", default=None,
                    help="a table label per --model (default: the folder names)")
    ap.add_argument("--title", default=None, help="the table's title in the report")
    ap.add_argument("--out", default=None, help="write the runs and summaries here (JSON); "
                    "files in models/alphaformer/evaluations/ are tabled by the report")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    panel, y, splits = target_panel(args.panel)
    labels = args.labels or [Path(m).name for m in args.model]
    if len(labels) != len(args.model) or len(set(labels)) != len(labels) or "random" in labels:
        raise SystemExit("--labels needs one distinct label per --model, none of them 'random'")
    models = {lab: load_model(m)[0] for lab, m in zip(labels, args.model)}
    first = next(iter(models.values()))
    rows: dict[str, list[dict]] = {m: [] for m in models}
    rows["random"] = []
    for seed in args.seeds:
        for name, trained in models.items():
            rows[name].append(run_one(trained, panel, y, splits, args.n, args.capacity,
                                      seed, args.temperature))
        torch.manual_seed(seed)
        rnd = AlphaFormer(first.vocab, first.config)
        rows["random"].append(run_one(rnd, panel, y, splits, args.n, args.capacity, seed,
                                      args.random_temperature))
        print(json.dumps({"seed": seed, **{k: v[-1] for k, v in rows.items()}}), flush=True)
    result = {"title": args.title, "panel": args.panel, "n": args.n, "seeds": args.seeds,
              "model_paths": {lab: _shown(m) for lab, m in zip(labels, args.model)},
              "capacity": args.capacity, "temperature": args.temperature,
              "random_temperature": args.random_temperature,
              "models": {m: summarise(rows[m], rows["random"]) for m in models}}
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({**result, "runs": rows}, indent=2, default=float))


if __name__ == "__main__":
    main()
