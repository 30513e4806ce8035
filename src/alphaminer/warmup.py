"""Compile the numba kernels into their on-disk cache once, after installing.

``python -m alphaminer.warmup`` (scripts/setup_env.sh runs it).

Why: every kernel is compiled lazily, per argument type, on its first call in a process, and
then cached next to its module (``cache=True``). A process that finds no cache spends about
40 s on 2 cores compiling before its first formula is evaluated: a conf/test ``kedro run`` took
87 s cold and 45 s warm. On a fresh install, every process that starts before the first one
has written the cache pays this again. The test suite starts several such processes at once.

This runs every kernel on a small simulator panel, in float32 (the panel's dtype) and in float64
(the kernels' other signature). It goes through the same code paths as the pipelines:

- the expression evaluator, on the classic and Alpha158 formulas;
- every rolling operator of ``expr.kernels``, called directly in both dtypes;
- the metrics;
- the candidate scorer with its pool.

Compiling here changes no result: a cached kernel is the one numba would compile.
"""

from __future__ import annotations

import inspect
import time

import torch

__all__ = ["warm_kernels"]


def _rolling_kernels() -> list[tuple[str, object, int]]:
    """``kernels.ts_*`` functions of ``(x, d)`` or ``(x, y, d)``, with their tensor arity."""
    from alphaminer.expr import kernels

    out = []
    for name, fn in vars(kernels).items():
        if not name.startswith("ts_") or not inspect.isfunction(fn):
            continue
        params = list(inspect.signature(fn).parameters)
        if params in (["x", "d"], ["x", "y", "d"]):
            out.append((name, fn, len(params) - 1))
    return out


def warm_kernels(n_stocks: int = 40, n_days: int = 300) -> dict[str, float]:
    """Call every numba kernel once per dtype. Returns seconds per phase."""
    from alphaminer.data import clean, load_source, make_labels
    from alphaminer.evaluation.metrics import daily_ic, daily_rank_ic
    from alphaminer.evaluation.pool import PoolConfig
    from alphaminer.evaluation.scorer import CandidateScorer
    from alphaminer.expr import alpha158_alphas, evaluate_many
    from alphaminer.expr.classic import classic_alphas

    times: dict[str, float] = {}
    t = time.perf_counter()

    def lap(phase: str) -> None:
        nonlocal t
        now = time.perf_counter()
        times[phase] = now - t
        t = now

    panel = clean(load_source({"kind": "simulator", "simulator": {
        "n_stocks": n_stocks, "n_days": n_days, "seed": 0}})).to_panel()
    y = make_labels(panel, 20)
    lap("simulator")
    formulas = [a["formula"] for a in classic_alphas()] + \
        [a["formula"] for a in alpha158_alphas()]
    values = evaluate_many(formulas, panel)
    lap("evaluator")
    x = panel.feature("close")
    v = panel.feature("volume")
    for dtype in (torch.float32, torch.float64):
        a, b = x.to(dtype), v.to(dtype)
        for _, fn, arity in _rolling_kernels():
            fn(*((a, 5) if arity == 1 else (a, b, 5)))
    lap("rolling kernels")
    daily_ic(values[:8], y)
    daily_rank_ic(values[:8], y)
    lap("metrics")
    scorer = CandidateScorer(panel, y, pool=PoolConfig(capacity=5))
    for formula, score in zip(formulas[:20], scorer.score(formulas[:20])):
        if score.ok:
            scorer.commit(formula)
    lap("scorer and pool")
    return times


def main() -> None:
    start = time.perf_counter()
    times = warm_kernels()
    parts = ", ".join(f"{k} {v:.1f} s" for k, v in times.items())
    print(f"numba kernels compiled and cached in {time.perf_counter() - start:.1f} s ({parts})")


if __name__ == "__main__":
    main()
