"""Speed and memory of the expression evaluator (targets in benchmarks/README.md).

Compares, on a random ``T × S`` float32 panel with window ``w`` and 2 threads:

- **ours**: :mod:`alphaminer.expr.kernels` through :class:`~alphaminer.expr.Evaluator`;
- **unfold**: a straightforward reference that materialises ``[T, S, w]`` window copies
  (``unfold(...).contiguous()``) for every rolling operator (written below, independent);
- **pandas**: ``groupby(instrument).rolling(w)`` on a long frame of all ``T × S`` rows, in the
  two layouts a user has: date-major (as ``Panel.to_long`` writes it) and sorted by instrument.

Peak extra memory per operator: each operator runs once in a fresh subprocess that first builds
its inputs; the peak RSS (``VmHWM``) is reset through ``/proc/self/clear_refs`` right before the
call and ``VmHWM - VmRSS(before)`` is divided by the bytes of the ``[T, S]`` float32 input(s).
A fresh process has no freed heap to reuse, so this is the high-water mark of the memory the
call needed, its output included.

Usage: ``python benchmarks/bench_expr.py`` (full, ~minutes) or ``--quick`` (smoke run).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from alphaminer.expr import Evaluator, kernels, parse
from alphaminer.panel import BASE_FEATURES, Panel

ROLLING_OPS = ["Mean", "Sum", "Max", "Min", "Std", "Var", "Skew", "Kurt", "Med", "Mad", "WMA",
               "EMA", "TsRank", "TsZScore", "ArgMax", "ArgMin", "Delta", "Ref", "TsReturn"]
PAIR_OPS = ["Cov", "Corr"]
CS_OPS = ["CSRank", "CSZScore"]


# ----------------------------------------------------------------------------- unfold reference
def _win(x: torch.Tensor, d: int) -> torch.Tensor:
    return x.unfold(0, d, 1).contiguous()  # the [T-d+1, S, d] copy this design avoids


def _pad(y: torch.Tensor, T: int) -> torch.Tensor:
    pad = torch.full((T - y.shape[0], *y.shape[1:]), float("nan"), dtype=y.dtype)
    return torch.cat([pad, y])


def _ref_moments(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    m = u.mean(-1, keepdim=True)
    return m, u - m


def ref_kernel(op: str, x: torch.Tensor, d: int, y: torch.Tensor | None = None
               ) -> torch.Tensor:
    T = x.shape[0]
    u = _win(x, d)
    if op == "Mean":
        r = u.mean(-1)
    elif op == "Sum":
        r = u.sum(-1)
    elif op == "Max":
        r = u.amax(-1)
    elif op == "Min":
        r = u.amin(-1)
    elif op in ("Std", "Var"):
        r = u.var(-1, unbiased=True)
        r = r.sqrt() if op == "Std" else r
    elif op in ("Skew", "Kurt"):
        _, c = _ref_moments(u)
        m2 = (c * c).mean(-1)
        if op == "Skew":
            m3 = (c * c * c).mean(-1)
            r = (d * (d - 1)) ** 0.5 / (d - 2) * m3 / m2.pow(1.5)
        else:
            m4 = (c * c).pow(2).mean(-1)
            r = ((d * d - 1) * m4 / (m2 * m2) - 3 * (d - 1) ** 2) / ((d - 2) * (d - 3))
    elif op == "Med":
        s = torch.sort(u, -1).values
        r = (s[..., (d - 1) // 2] + s[..., d // 2]) / 2
    elif op == "Mad":
        _, c = _ref_moments(u)
        r = c.abs().mean(-1)
    elif op in ("WMA", "EMA"):
        if op == "WMA":
            w = torch.arange(1, d + 1, dtype=x.dtype)
        else:
            w = (1 - 2 / (d + 1)) ** torch.arange(d - 1, -1, -1, dtype=x.dtype)
        r = (u * (w / w.sum())).sum(-1)
    elif op == "TsRank":
        today = u[..., -1:]
        r = ((u < today).sum(-1) + ((u == today).sum(-1) + 1) / 2) / d
    elif op == "TsZScore":
        m, c = _ref_moments(u)
        r = c[..., -1] / u.std(-1)
    elif op in ("ArgMax", "ArgMin"):
        f = u.flip(-1)
        r = (f.argmax(-1) if op == "ArgMax" else f.argmin(-1)).to(x.dtype)
    elif op in ("Cov", "Corr"):
        v = _win(y, d)
        _, cx = _ref_moments(u)
        _, cy = _ref_moments(v)
        cov = (cx * cy).sum(-1) / (d - 1)
        if op == "Cov":
            r = cov
        else:
            r = cov / (cx.pow(2).sum(-1).sqrt() * cy.pow(2).sum(-1).sqrt() / (d - 1))
    else:
        raise KeyError(op)
    return _pad(r, T)


class UnfoldEvaluator(Evaluator):
    """Same evaluator (parser, cache, masking), but rolling ops use the unfold-copy kernels."""

    def _call(self, node, memo):  # noqa: ANN001, ANN202
        op = node.op
        args = [self._arg(a, memo) for a in node.args]
        if op in PAIR_OPS:
            return ref_kernel(op, args[0], args[2], args[1])
        if op in ROLLING_OPS and op not in ("Ref", "Delta", "TsReturn"):
            return ref_kernel(op, args[0], args[1])
        return super()._call(node, memo)


# ----------------------------------------------------------------------------- data & formulas
def make_panel(T: int, S: int, seed: int = 0) -> Panel:
    g = torch.Generator().manual_seed(seed)
    ret = torch.randn(T, S, generator=g) * 0.02
    close = 20 * torch.exp(ret.cumsum(0))
    open_ = close * torch.exp(torch.randn(T, S, generator=g) * 0.01)
    high = torch.maximum(open_, close) * (1 + torch.rand(T, S, generator=g) * 0.02)
    low = torch.minimum(open_, close) * (1 - torch.rand(T, S, generator=g) * 0.02)
    volume = torch.exp(13 + 0.5 * torch.randn(T, S, generator=g))
    vwap = (high + low + close) / 3
    vals = torch.stack([open_, high, low, close, volume, vwap, vwap * volume], -1)
    vals[torch.rand(T, S, generator=g) < 0.01] = float("nan")
    ones = torch.ones(T, S, dtype=torch.bool)
    return Panel(vals.float(), pd.bdate_range("2010-01-01", periods=T),
                 [f"S{i:04d}" for i in range(S)], BASE_FEATURES, ones, ones, ones)


FORMULAS = [
    "Div(Sub(close,open),Sub(high,low))",
    "Div(Sub(close,open),open)",
    "Div(Sub(high,low),open)",
    "Div(Sub(high,Greater(open,close)),open)",
    "Div(Sub(Less(open,close),low),open)",
    "Div(Ref(close,5d),close)",
    "Div(Mean(close,{w}d),close)",
    "Div(Std(close,{w}d),close)",
    "Div(Max(high,{w}d),close)",
    "Div(Min(low,{w}d),close)",
    "Div(Sub(close,Min(low,{w}d)),Sub(Max(high,{w}d),Min(low,{w}d)))",
    "TsRank(close,{w}d)",
    "Div(ArgMax(high,{w}d),{w}.0)",
    "Div(ArgMin(low,{w}d),{w}.0)",
    "Sub(ArgMax(high,{w}d),ArgMin(low,{w}d))",
    "Corr(close,Log(volume),{w}d)",
    "Corr(Div(close,Ref(close,1d)),Log(Div(volume,Ref(volume,1d))),{w}d)",
    "Div(Mean(volume,{w}d),volume)",
    "Div(Std(volume,{w}d),volume)",
    "Div(Std(Mul(Abs(TsReturn(close,1d)),volume),{w}d),Mean(Mul(Abs(TsReturn(close,1d)),volume),{w}d))",
    "Div(Sum(Greater(Delta(close,1d),0.0),{w}d),Sum(Abs(Delta(close,1d)),{w}d))",
    "Skew(TsReturn(close,1d),{w}d)",
    "Kurt(TsReturn(close,1d),{w}d)",
    "Var(TsReturn(close,1d),{w}d)",
    "Cov(TsReturn(close,1d),TsReturn(volume,1d),{w}d)",
    "TsZScore(close,{w}d)",
    "TsZScore(volume,{w}d)",
    "Div(WMA(close,{w}d),close)",
    "Div(EMA(close,{w}d),close)",
    "Div(Med(close,{w}d),close)",
    "Div(Mad(close,{w}d),close)",
    "CSRank(Corr(CSRank(volume),CSRank(vwap),{w}d))",
    "Neg(Corr(open,volume,{w}d))",
    "Neg(Corr(high,volume,10d))",
    "Mul(-1.0,Delta(Corr(high,volume,5d),5d))",
    "CSRank(Std(close,{w}d))",
    "CSZScore(Div(Sub(close,vwap),vwap))",
    "Sub(CSRank(Delta(close,3d)),CSRank(Delta(volume,3d)))",
    "Mul(Sign(Delta(volume,1d)),Neg(Delta(close,1d)))",
    "Div(Sub(Mean(close,5d),Mean(close,{w}d)),Mean(close,{w}d))",
    "Div(Sub(EMA(close,12d),EMA(close,26d)),close)",
    "Corr(CSRank(close),CSRank(volume),{w}d)",
    "Div(Mean(Sub(high,low),{w}d),close)",
    "Std(Div(Sub(close,open),open),{w}d)",
    "Div(Cov(close,volume,{w}d),Mul(Std(close,{w}d),Std(volume,{w}d)))",
    "TsRank(Div(volume,Mean(volume,{w}d)),10d)",
    "Skew(Div(volume,Mean(volume,5d)),{w}d)",
    "Kurt(Div(Sub(high,low),close),{w}d)",
    "Mul(CSRank(Delta(Log(volume),2d)),Corr(CSRank(Div(Sub(close,open),open)),CSRank(volume),6d))",
    "Div(Sum(Mul(close,volume),{w}d),Sum(volume,{w}d))",
]


# ----------------------------------------------------------------------------- measurement
def _status(key: str) -> int:
    return int(re.search(key + r":\s+(\d+)", Path("/proc/self/status").read_text()).group(1))


def peak_extra_bytes(fn) -> float:  # noqa: ANN001
    """High-water RSS above the pre-call RSS while ``fn`` runs (bytes)."""
    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return float("nan")
    before = _status("VmRSS")
    out = fn()
    peak = _status("VmHWM")
    del out
    return (peak - before) * 1024.0


def op_callable(op: str, x: torch.Tensor, y: torch.Tensor, w: int):  # noqa: ANN201
    if op in PAIR_OPS:
        return lambda: getattr(kernels, f"ts_{op.lower()}")(x, y, w)
    if op in CS_OPS:
        return lambda: (kernels.cs_rank if op == "CSRank" else kernels.cs_zscore)(x)
    name = {"TsRank": "rank", "TsZScore": "zscore", "TsReturn": "return"}.get(op, op.lower())
    return lambda: getattr(kernels, f"ts_{name}")(x, w)


def memory_in_subprocess(op: str, T: int, S: int, w: int, threads: int) -> float:
    cmd = [sys.executable, __file__, "--mem-op", op, "--T", str(T), "--S", str(S),
           "--window", str(w), "--threads", str(threads)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return float(res.stdout.strip().splitlines()[-1])


def timeit(fn, repeats: int) -> float:  # noqa: ANN001
    fn()  # warm-up
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def long_frames(x: np.ndarray, y: np.ndarray) -> dict[str, pd.DataFrame]:
    """The two long layouts a pandas user has: date-major (as ``Panel.to_long`` and qlib write
    it) and sorted by instrument. Float64 columns (pandas' rolling kernels work in float64)."""
    T, S = x.shape
    inst = np.array([f"S{i:04d}" for i in range(S)], dtype=object)
    date_major = pd.DataFrame({
        "datetime": np.repeat(pd.bdate_range("2010-01-01", periods=T).values, S),
        "instrument": np.tile(inst, T),
        "x": x.reshape(-1).astype(np.float64),
        "y": y.reshape(-1).astype(np.float64),
    })
    by_instrument = date_major.sort_values(["instrument", "datetime"], kind="stable",
                                           ignore_index=True)
    return {"date-major": date_major, "by-instrument": by_instrument}


def pandas_call(op: str, long: pd.DataFrame, w: int):  # noqa: ANN201
    """``groupby(instrument).rolling(w).<stat>()`` on the long frame; Cov/Corr per instrument
    group (pandas' groupby-rolling with ``other`` aligns the whole frame and runs out of
    memory at this size)."""
    g = long.groupby("instrument", sort=False)
    if op in ("Cov", "Corr"):
        return lambda: g[["x", "y"]].apply(
            lambda df: getattr(df["x"].rolling(w), op.lower())(df["y"]))
    name = {"Mean": "mean", "Sum": "sum", "Max": "max", "Min": "min", "Std": "std",
            "Var": "var", "Skew": "skew", "Kurt": "kurt", "Med": "median"}[op]
    return lambda: getattr(g["x"].rolling(w), name)()  # noqa: PLW0108 (time the groupby too)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small smoke run")
    ap.add_argument("--T", type=int, default=2600)
    ap.add_argument("--S", type=int, default=800)
    ap.add_argument("--window", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=41)
    ap.add_argument("--pandas-repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ops", default="", help="comma-separated operators to time (default all); "
                    "with --ops the 50-formula comparison is skipped")
    ap.add_argument("--mem-op", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.mem_op:  # child process of memory_in_subprocess
        torch.set_num_threads(args.threads)
        p = make_panel(args.T, args.S)
        x, y = p.feature("close").contiguous(), p.feature("volume").contiguous()
        del p
        gc.collect()
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed heap back: measure from a clean RSS
        n_in = 2 if args.mem_op in PAIR_OPS else 1
        # warm-up on a slice so one-off library initialisation (thread pools, oneDNN) is
        # not counted as the operator's memory
        op_callable(args.mem_op, x[:, :8].contiguous(), y[:, :8].contiguous(), args.window)()
        gc.collect()
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        extra = peak_extra_bytes(op_callable(args.mem_op, x, y, args.window))
        print(extra / (n_in * x.numel() * x.element_size()))
        return
    if args.quick:
        args.T, args.S, args.repeats, args.pandas_repeats = 300, 100, 2, 1
    torch.set_num_threads(args.threads)
    T, S, w, R = args.T, args.S, args.window, args.repeats
    panel = make_panel(T, S)
    x = panel.feature("close").contiguous()
    y = panel.feature("volume").contiguous()
    xn, yn = x.numpy(), y.numpy()
    print(f"# bench_expr: T={T} S={S} window={w} threads={args.threads} repeats={R} "
          f"(median wall ms); load average before: {os.getloadavg()}\n")
    frames = long_frames(xn, yn)
    print("| operator | ours ms | unfold ms | pandas date-major ms | pandas by-instrument ms "
          "| vs unfold | vs pandas (date-major / by-instrument) | peak extra / input |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    pandas_ops = {"Mean", "Sum", "Max", "Min", "Std", "Var", "Skew", "Kurt", "Med", "Cov", "Corr"}
    wanted = [o for o in args.ops.split(",") if o] or ROLLING_OPS + PAIR_OPS + CS_OPS
    for op in wanted:
        ours = op_callable(op, x, y, w)
        if op in PAIR_OPS:
            ref = lambda op=op: ref_kernel(op, x, w, y)  # noqa: E731
        elif op in CS_OPS or op in ("Delta", "Ref", "TsReturn"):
            ref = None
        else:
            ref = lambda op=op: ref_kernel(op, x, w)  # noqa: E731
        t_ours = timeit(ours, R)
        mem = memory_in_subprocess(op, T, S, w, args.threads)
        t_ref = timeit(ref, min(3, R)) if ref is not None else float("nan")
        t_pd = {k: timeit(pandas_call(op, f, w), args.pandas_repeats)
                if op in pandas_ops else float("nan") for k, f in frames.items()}
        a, b = t_pd["date-major"], t_pd["by-instrument"]
        print(f"| {op} | {t_ours * 1e3:.1f} | {t_ref * 1e3:.1f} | {a * 1e3:.0f} | {b * 1e3:.0f} | "
              f"{t_ref / t_ours:.1f}x | {a / t_ours:.1f}x / {b / t_ours:.1f}x | {mem:.2f} |",
              flush=True)

    if args.ops:
        return
    formulas = [parse(f.format(w=w)) for f in FORMULAS]
    assert len(formulas) == 50

    def run(cls):  # noqa: ANN001, ANN202
        def go():  # noqa: ANN202
            ev = cls(panel, cache_bytes=1 << 30)
            for f in formulas:
                ev.evaluate(f)
        return go

    t_ours = timeit(run(Evaluator), min(5, R))
    t_ref = timeit(run(UnfoldEvaluator), 1)
    ev_a, ev_b = Evaluator(panel), UnfoldEvaluator(panel)
    worst = 0.0
    for f in formulas[:: 5]:
        a, b = ev_a.evaluate(f), ev_b.evaluate(f)
        ok = torch.isfinite(a) & torch.isfinite(b)
        worst = max(worst, float(((a - b).abs()[ok] / (1 + b.abs()[ok])).max()))
    print(f"\n| 50 formulas | ours {t_ours:.2f} s | unfold {t_ref:.2f} s | "
          f"speed-up {t_ref / t_ours:.1f}x | max rel diff (every 5th) {worst:.1e} |")
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
