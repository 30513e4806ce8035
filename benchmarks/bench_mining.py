"""Benchmark: the mining kit — candidates scored per second (the candidate scorer section).

Data as the ingestion pipeline builds it: the default simulator (300 stocks x 2520 days, seed
0), cleaned, 20-day close-to-close label, 60/20/20 splits with a 20-day purge; scored on the
train split. Formulas: a seeded random walk under the grammar's ``valid_mask()`` over the default
vocabulary (AlphaFormer's tokens), max 20 tokens. Pool: capacity 20, pre-filled (untimed) with 20
members from a separate draw, so every candidate is priced against a full pool; reference set:
10 more formulas. torch on 2 threads.

- scorer: ``CandidateScorer.score`` in batches of ``--batch`` (IC, RankIC, max-corr to the
  reference set, pool dry run, result and sub-expression caches);
- naive: per formula ``alphaminer.expr.evaluate`` (no cache), ``daily_ic`` and ``daily_rank_ic``
  alone, ``max_correlation`` to the reference set, and a fresh ``AlphaPool`` with the current
  members re-added before ``try_add`` of the candidate. Run on the first ``--naive`` formulas; the
  ratio compares a fresh scorer on the same formulas.

    python benchmarks/bench_mining.py [--formulas 1000] [--naive 50] [--batch 50] [--stages]
"""

from __future__ import annotations

import argparse
import os
import time

import torch


def build_data(n_stocks: int, n_days: int, seed: int):  # noqa: ANN201 - (panel, labels, days)
    """Panel, labels and the train range exactly as the ingestion pipeline's nodes build them."""
    from alphaminer.data import (
        CleanConfig,
        SourceConfig,
        SplitConfig,
        clean,
        label_lookahead,
        load_source,
        make_labels,
        make_splits,
    )

    raw = load_source(SourceConfig(kind="simulator",
                                   simulator={"n_stocks": n_stocks, "n_days": n_days,
                                              "seed": seed}))
    panel = clean(raw, CleanConfig.from_dict({"ohlc_policy": "reject", "zero_volume": "suspend",
                                              "limit_pct": None})).to_panel()
    labels = make_labels(panel, 20, "close")
    splits = make_splits(panel.dates, SplitConfig(fractions=(0.6, 0.2, 0.2),
                                                  horizon=label_lookahead(20, "close")))
    return panel, labels, splits.ranges["train"]


def random_formulas(n: int, seed: int, max_len: int = 20) -> list[str]:
    """``n`` formulas from the kit's seeded random walk under the grammar mask."""
    from alphaminer.expr.grammar import random_formulas as walk
    from alphaminer.expr.vocab import Vocabulary

    return walk(Vocabulary.default(), n, max_len=max_len, seed=seed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--formulas", type=int, default=1000)
    ap.add_argument("--naive", type=int, default=50,
                    help="formulas for the naive path (0: skip it)")
    ap.add_argument("--batch", type=int, default=50, help="formulas per score() call")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--stocks", type=int, default=300)
    ap.add_argument("--days", type=int, default=2520)
    ap.add_argument("--no-rank-ic", action="store_true", help="scorer without RankIC")
    ap.add_argument("--stages", action="store_true",
                    help="also print the scorer's CPU and wall ms per candidate by stage")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from alphaminer.evaluation import (
        AlphaPool,
        CandidateScorer,
        PoolConfig,
        daily_ic,
        daily_rank_ic,
        max_correlation,
    )
    from alphaminer.expr import evaluate

    t = time.perf_counter()
    panel, y, (t0, t1) = build_data(args.stocks, args.days, 0)
    print(f"data: {panel.S} stocks x {panel.T} days, train days [{t0}, {t1}) "
          f"({time.perf_counter() - t:.1f} s to build); threads={args.threads}; "
          f"load average {os.getloadavg()[0]:.1f}")
    fs = random_formulas(args.formulas, seed=1)
    extra = random_formulas(400, seed=2)
    print(f"formulas: {len(fs)} drawn, {len(set(fs))} distinct; e.g. {fs[:3]}")

    def make_scorer() -> CandidateScorer:
        return CandidateScorer(panel, y, (t0, t1), pool=PoolConfig(capacity=20),
                               compute_rank_ic=not args.no_rank_ic)

    # reference set and a full pool, drawn apart from the timed formulas (untimed)
    probe = make_scorer()
    ok_extra = [s.formula for s in probe.score(extra) if s.ok]
    refs = ok_extra[:10]
    for f in ok_extra[10:]:
        probe.commit(f)
        if len(probe.pool) == 20:
            break
    members = list(probe.pool.names)
    print(f"reference set: {len(refs)} formulas; pool: {len(members)} members, "
          f"pool IC {probe.pool.pool_ic():.4f}")

    def primed_scorer() -> CandidateScorer:
        sc = make_scorer()
        sc.set_reference(refs)
        for f in members:  # (values/commit do not count as scored candidates)
            sc.commit(f)
        return sc

    # ---- scorer on all formulas
    sc = primed_scorer()
    load0 = os.getloadavg()[0]
    t, cpu = time.perf_counter(), time.process_time()
    results = []
    for i in range(0, len(fs), args.batch):
        results += sc.score(fs[i:i + args.batch])
    wall = time.perf_counter() - t
    cpu = time.process_time() - cpu
    st = sc.stats()
    n_ok = sum(r.ok for r in results)
    print(f"\nscorer: {len(fs)} formulas in {wall:.1f} s = {len(fs) / wall:.1f} candidates/s "
          f"({n_ok} ok; result-cache hits {st['cache_hits']}; sub-expression cache hits "
          f"{st['subexpr_cache']['hits']} / misses {st['subexpr_cache']['misses']})")
    print(f"failures: {st['failures']}")
    # CPU seconds (all threads) are the load-robust figure on a shared host: wall time there
    # includes the time other jobs hold the cores
    print(f"CPU: {cpu:.1f} s for {len(fs)} formulas = {len(fs) / cpu:.1f} candidates per "
          f"CPU-second; load average {load0:.1f} -> {os.getloadavg()[0]:.1f}")
    if args.stages:
        print("stages (ms per candidate, CPU of all threads / wall):")
        for name, v in st["stages"].items():
            print(f"  {name:9s} CPU {1e3 * v['cpu'] / len(fs):6.2f}  "
                  f"wall {1e3 * v['wall'] / len(fs):6.2f}")

    # ---- same first N formulas: fresh scorer vs the naive path
    if args.naive <= 0:
        return
    sub = fs[:args.naive]
    sc2 = primed_scorer()
    t = time.perf_counter()
    for i in range(0, len(sub), args.batch):
        sc2.score(sub[i:i + args.batch])
    wall_s = time.perf_counter() - t

    member_vals = [sc2.values(f) for f in members]
    ref_vals = [sc2.values(f) for f in refs]
    p = panel.slice_dates(0, t1)
    yt = y[t0:t1]
    t = time.perf_counter()
    for f in sub:
        try:
            v = evaluate(f, p)[t0:]
        except Exception:  # noqa: BLE001, S112 - the naive loop skips what fails to evaluate
            continue
        if not torch.isfinite(v).any():
            continue
        daily_ic(v, yt)
        if not args.no_rank_ic:
            daily_rank_ic(v, yt)
        max_correlation(v, ref_vals)
        pool = AlphaPool(capacity=20, target=yt)
        for name, mv in zip(members, member_vals):
            pool.try_add(name, mv)
        pool.try_add(f, v)
    wall_n = time.perf_counter() - t
    rs, rn = len(sub) / wall_s, len(sub) / wall_n
    print(f"\nsame {len(sub)} formulas: scorer {rs:.1f} candidates/s, naive {rn:.2f} "
          f"candidates/s -> scorer {rs / rn:.1f}x faster")


if __name__ == "__main__":
    main()
