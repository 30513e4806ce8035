"""Benchmark: batched IC / RankIC of many factors (docs/metrics.md).

Default problem: 100 factors on 2600 days x 800 stocks, float32, ~5% NaN, torch 2 threads,
median of 3 runs. Compares :func:`daily_rank_ic` with a plain torch double-argsort reference
(written here), and reports ``cs_rank`` on the same factors (the CSRank operator) and peak RSS.

    python benchmarks/bench_metrics.py [--factors 100] [--days 2600] [--stocks 800] [--repeats 3]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import torch

from alphaminer.evaluation import AlphaPool, daily_ic, daily_rank_ic
from alphaminer.expr.kernels import cs_rank


def rss_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reference_rank_ic(f: torch.Tensor, y: torch.Tensor, min_stocks: int = 10,
                      chunk: int = 8) -> torch.Tensor:
    """Double-argsort ranks among pair-valid stocks (no tie averaging), float64 Pearson."""
    out = []
    yv = torch.isfinite(y)
    for i in range(0, f.shape[0], chunk):
        fc = f[i:i + chunk]
        valid = torch.isfinite(fc) & yv
        inf = torch.tensor(float("inf"))
        fr = torch.where(valid, fc, inf).argsort(-1).argsort(-1).double()
        yr = torch.where(valid, y, inf).argsort(-1).argsort(-1).double()
        n = valid.sum(-1, keepdim=True).double()
        fr = torch.where(valid, fr - (n - 1) / 2, 0.0)
        yr = torch.where(valid, yr - (n - 1) / 2, 0.0)
        r = (fr * yr).sum(-1) / torch.sqrt((fr * fr).sum(-1) * (yr * yr).sum(-1))
        out.append(torch.where(n.squeeze(-1) >= min_stocks, r, torch.nan))
    return torch.cat(out)


def timed(fn, repeats: int) -> tuple[float, object]:
    times, res = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--factors", type=int, default=100)
    ap.add_argument("--days", type=int, default=2600)
    ap.add_argument("--stocks", type=int, default=800)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-reference", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    K, T, S = args.factors, args.days, args.stocks
    y = torch.randn(T, S, generator=g)
    f = torch.randn(K, T, S, generator=g).add_(0.05 * y)
    f[torch.rand(K, T, S, generator=g) < 0.05] = float("nan")
    y[torch.rand(T, S, generator=g) < 0.05] = float("nan")
    print(f"problem: K={K} T={T} S={S} float32 (~5% NaN), threads={args.threads}, "
          f"repeats={args.repeats}; "
          f"input {f.numel() * 4 / 2**20:.0f} MB, RSS after data {rss_peak_mb():.0f} MB")

    calib = torch.randn(10, 2600, 800, generator=g)
    t_cal, _ = timed(lambda: (calib * calib).sum(-1), 5)
    calib = None
    print(f"calibration: (x*x).sum(-1) over 20.8M float32 = {t_cal * 1e3:.1f} ms "
          f"(~9 ms on an idle 2-core host; larger = shared/loaded CPU, scale figures by it)")

    t_ic, ic = timed(lambda: daily_ic(f, y), args.repeats)
    print(f"daily_ic          : {t_ic:7.2f} s  ({t_ic / K * 1e3:.1f} ms/factor), "
          f"peak RSS {rss_peak_mb():.0f} MB")
    t_ric, ric = timed(lambda: daily_rank_ic(f, y), args.repeats)
    print(f"daily_rank_ic     : {t_ric:7.2f} s  ({t_ric / K * 1e3:.1f} ms/factor), "
          f"peak RSS {rss_peak_mb():.0f} MB")
    step = 8  # cs_rank chunks of 8 factors (16.6 M values)

    def ranks_only() -> None:
        for i in range(0, K, step):
            cs_rank(f[i:i + step])

    t_rank, _ = timed(ranks_only, args.repeats)
    print(f"cs_rank (CSRank operator) of the same 100 factors, for comparison: {t_rank:7.2f} s")
    if not args.skip_reference:
        t_ref, ref = timed(lambda: reference_rank_ic(f, y), args.repeats)
        diff = float(torch.nan_to_num((ric - ref).abs(), nan=0.0).max())
        print(f"double-argsort ref: {t_ref:7.2f} s  ({t_ref / K * 1e3:.1f} ms/factor), "
              f"max |diff| vs daily_rank_ic {diff:.2e} (the reference uses ordinal ranks, so "
              f"it differs on float32 ties), peak RSS {rss_peak_mb():.0f} MB")
    members = min(10, K - 1)
    pool = AlphaPool(capacity=10, target=y, compute_rank_ic=False)
    for k in range(members):
        pool.try_add(f"f{k}", f[k])
    t_pool, _ = timed(lambda: pool.evaluate_candidate(f[members]), args.repeats)
    print(f"AlphaPool({len(pool)} members).evaluate_candidate: {t_pool * 1e3:.0f} ms")
    print(f"target RankIC <= 3 s: {'met' if t_ric <= 3 else 'NOT met'}")
    assert torch.isfinite(ic).all() and torch.isfinite(ric).all()


if __name__ == "__main__":
    main()
