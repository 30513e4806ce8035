"""Benchmark: candidate scoring in-process vs on Dask workers (evaluation.distributed).

Data as ``bench_mining.py`` (the default simulator, 300 stocks x 2520 days, cleaned, 20-day
label, train split). Each repeat scores one batch of ``--formulas`` grammar formulas (seeded
random walk, max 20 tokens) with a *fresh* scorer (empty result and sub-expression caches),
against a pool of capacity 10 filled through ``commit`` (untimed) and a reference set of 10
formulas: the in-process ``CandidateScorer`` vs a ``DaskScorer`` on a LocalCluster of
``--workers`` one-thread processes. ``--gp`` also times GP runs (population ``--population``,
``--generations``; one fresh scorer each, same seed) and checks that both find the same alphas.

Reported: the cluster's start and the first scorer's preparation (for Dask: data scattered to
every worker, replicas built, each worker's first JIT compiles) apart, then the median of the
timed batches; and whether the scores agree (ok/reason/accept equal, floats to 1e-7).

    python benchmarks/bench_dask_scoring.py [--formulas 500] [--repeats 3] [--workers 2] [--gp]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_mining import build_data, random_formulas  # noqa: E402

FLOATS = ("ic", "rank_ic", "icir", "rank_icir", "max_corr", "pool_ic", "pool_gain")


def _same(a: list, b: list) -> bool:
    for x, y in zip(a, b, strict=True):
        if (x.formula, x.ok, x.reason, x.pool_accepted) != (y.formula, y.ok, y.reason,
                                                           y.pool_accepted):
            return False
        for f in FLOATS:
            u, v = getattr(x, f), getattr(y, f)
            if not (math.isnan(u) and math.isnan(v)) and abs(u - v) > 1e-7 * max(1, abs(u)):
                return False
    return True


def _prepared(make, prefill: list[str], refs: list[str]):  # noqa: ANN001, ANN202
    s = make()
    s.set_reference(refs)
    for f in prefill:
        if len(s.pool) == s.pool.config.capacity:
            break
        if s.score_one(f).ok:
            s.commit(f)
    return s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--formulas", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=64)
    ap.add_argument("--gp", action="store_true")
    ap.add_argument("--population", type=int, default=200)
    ap.add_argument("--generations", type=int, default=1)
    ap.add_argument("--stocks", type=int, default=300)
    ap.add_argument("--days", type=int, default=2520)
    args = ap.parse_args()

    from alphaminer.evaluation.distributed import ScoringBackend
    from alphaminer.evaluation.pool import PoolConfig
    from alphaminer.evaluation.scorer import CandidateScorer

    panel, labels, days = build_data(args.stocks, args.days, 0)
    batch = random_formulas(args.formulas, seed=1)
    prefill = random_formulas(200, seed=2)
    probe = CandidateScorer(panel, labels, days)
    refs = [s.formula for s in probe.score(random_formulas(40, seed=3)) if s.ok][:10]
    del probe
    print(f"panel {panel.T} days x {panel.S} stocks, train {days}, {len(batch)} formulas, "
          f"{os.cpu_count()} cpus, torch threads {__import__('torch').get_num_threads()}")
    kw = {"pool": PoolConfig(capacity=10, min_stocks=10), "min_stocks": 10}

    local_t, ref_scores = [], None
    for r in range(args.repeats):
        t = time.perf_counter()
        s = _prepared(lambda: CandidateScorer(panel, labels, days, **kw), prefill, refs)
        if r == 0:
            print(f"in-process first scorer prepared (reference set, pool filled): "
                  f"{time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        ref_scores = s.score(batch)
        local_t.append(time.perf_counter() - t)
    print(f"in-process: {' '.join(f'{x:.1f}' for x in local_t)} s, median "
          f"{statistics.median(local_t):.1f} s ({len(batch) / statistics.median(local_t):.0f} "
          "formulas/s)")

    t = time.perf_counter()
    backend = ScoringBackend({"backend": "dask", "n_workers": args.workers,
                              "chunk": args.chunk, "address": None})
    client = backend.client
    start = time.perf_counter() - t
    with backend:
        dask_t, same = [], True
        for r in range(args.repeats):
            t = time.perf_counter()
            s = _prepared(lambda: backend.scorer(panel, labels, days, **kw), prefill, refs)
            if r == 0:
                print(f"dask first scorer prepared (data scattered, replicas built, workers' "
                      f"first compiles, pool filled): {time.perf_counter() - t:.1f} s")
            t = time.perf_counter()
            got = s.score(batch)
            dask_t.append(time.perf_counter() - t)
            same &= _same(ref_scores, got)
            s.close()
        print(f"dask ({len(client.nthreads())} workers, chunk {args.chunk}; cluster start "
              f"{start:.1f} s): {' '.join(f'{x:.1f}' for x in dask_t)} s, median "
              f"{statistics.median(dask_t):.1f} s ({len(batch) / statistics.median(dask_t):.0f} "
              f"formulas/s); speed-up x{statistics.median(local_t) / statistics.median(dask_t):.2f}"
              f"; scores equal: {same}")
        if args.gp:
            from alphaminer.mining.gp.miner import GPMiner

            cfg = {"population": args.population, "generations": args.generations,
                   "pool_every": 1, "seed": 0}
            runs = {}
            for name, make in (("in-process", lambda: CandidateScorer(panel, labels, days, **kw)),
                               ("dask", lambda: backend.scorer(panel, labels, days, **kw))):
                t = time.perf_counter()
                res = GPMiner(make(), config=cfg).run(progress=False)
                runs[name] = (time.perf_counter() - t, res)
            (ta, a), (tb, b) = runs["in-process"], runs["dask"]
            print(f"GP population {args.population} x {args.generations} generation(s): "
                  f"in-process {ta:.1f} s, dask {tb:.1f} s (x{ta / tb:.2f}); same alphas: "
                  f"{a.formulas == b.formulas}")


if __name__ == "__main__":
    main()
