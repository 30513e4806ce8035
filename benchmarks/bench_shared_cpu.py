"""AlphaNet epoch on a shared CPU: alone, and beside N busy processes.

Why: on 2 cores an epoch took 1.2 s alone but 15-17 s beside 3 busy processes, where a fair
share of the cores would make it ~2.5x slower, not 13x. This benchmark measures the slowdown
against that fair share, with the project's thread defaults (``after``) and without them
(``before``: ``ALPHAMINER_THREAD_DEFAULTS=0``, i.e. libgomp's own spin-waiting defaults).

Fair share: our process runs ``k`` compute threads (torch intra-op), beside ``N`` busy
single-threaded processes on ``C`` usable cores (``os.sched_getaffinity``). With perfect time
slicing every runnable thread gets ``C / (N + k)`` of a core when ``N + k > C``, so the fair
slowdown is ``max(1, (N + k) / C)``. ``slowdown`` is measured against the quiet epoch of the
first variant listed (``before``: the quiet-machine baseline), and ``slowdown / fair`` is 1.0 when
the busy processes cost exactly their fair share; above 1 is time lost to the contention itself.
A run that hits ``--limit`` reports the epochs it finished (marked "timed out").

Usage::

    python benchmarks/bench_shared_cpu.py                      # busy 0 and 3, before and after
    python benchmarks/bench_shared_cpu.py --busy 0 3 6 --epochs 3 --reps 2
    python benchmarks/bench_shared_cpu.py --variants after threads1=ALPHAMINER_BENCH_THREADS=1

A variant is ``NAME`` (``before``/``after``) or ``NAME=K=V[,K=V...]`` (extra environment for
the training process). The images (default simulator size, as ``bench_alphanet.py``) are built
once in a child process and reused. Every training process runs under a wall-clock limit
(``--limit``); busy processes stop by themselves after ``--limit`` seconds and are killed when
their scenario ends.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
THREAD_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
               "ALPHAMINER_THREAD_DEFAULTS")
BUILTIN = {"before": {"ALPHAMINER_THREAD_DEFAULTS": "0"}, "after": {}}
SPIN = "import time\nend = time.monotonic() + {limit}\nwhile time.monotonic() < end:\n    pass\n"


def build(path: Path) -> dict:
    """Child: the default simulator-size images (bench_alphanet's panel and labels), saved."""
    sys.path.insert(0, str(HERE))
    from bench_alphanet import _epoch_panel, _labels_or_none

    from alphaminer.neural.alphanet import ImageConfig, build_feature_images

    panel, src = _epoch_panel()
    y, _ = _labels_or_none(panel)
    n = panel.T
    splits = {"train": (0, int(n * 0.6)), "valid": (int(n * 0.6), int(n * 0.8)),
              "test": (int(n * 0.8), n)}
    imgs = build_feature_images(panel, splits, ImageConfig(), labels=y, progress=False)
    imgs.save(path)
    return {"panel": src, "n_images": len(imgs)}


def epoch(path: Path, epochs: int) -> dict:
    """Child: train ``epochs`` epochs on the saved images; epoch times, CPU time, switches."""
    import resource

    import alphaminer

    applied = alphaminer.apply_thread_defaults()  # a no-op repeat: importing already applied it
    import torch

    torch.set_num_threads(int(os.environ.get("ALPHAMINER_BENCH_THREADS", "2")))
    from alphaminer.neural.alphanet import FeatureImages, TrainConfig, train_alphanet

    imgs = FeatureImages.load(path)
    t0, r0 = os.times(), resource.getrusage(resource.RUSAGE_SELF)
    res = train_alphanet(imgs, TrainConfig(epochs=epochs, patience=epochs, device="cpu",
                                           progress=False),
                         on_epoch_end=lambda e, row: print(f"EPOCH {row['seconds']}", flush=True))
    t1, r1 = os.times(), resource.getrusage(resource.RUSAGE_SELF)
    sec = res.history["seconds"].tolist()
    wall = t1.elapsed - t0.elapsed
    return {"epoch_s": [round(s, 2) for s in sec], "epoch_median_s": statistics.median(sec),
            "cpu_per_wall": round((t1.user - t0.user + t1.system - t0.system) / wall, 2),
            "ctx_voluntary": r1.ru_nvcsw - r0.ru_nvcsw,
            "ctx_involuntary": r1.ru_nivcsw - r0.ru_nivcsw,
            "threads": torch.get_num_threads(),
            "env": {k: os.environ.get(k) for k in THREAD_VARS if os.environ.get(k)},
            "late_defaults": applied}


def _variant(spec: str) -> tuple[str, dict[str, str]]:
    name, _, rest = spec.partition("=")
    if not rest:
        if name not in BUILTIN:
            raise SystemExit(f"unknown variant {name!r}: use before, after or NAME=K=V,...")
        return name, BUILTIN[name]
    env = dict(kv.split("=", 1) for kv in rest.split(","))
    return name, env


def _child_env(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without any thread setting, plus the variant's."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    env.update(extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent / "src"),
                                                      env.get("PYTHONPATH")]))
    return env


def run_scenario(images: Path, busy: int, env: dict[str, str], epochs: int, limit: float
                 ) -> dict:
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN.format(limit=limit)])
                for _ in range(busy)]
    try:
        time.sleep(0.3 if busy else 0.0)
        load = os.getloadavg()[0]
        p = subprocess.run([sys.executable, __file__, "_epoch", str(images), str(epochs)],
                           env=_child_env(env), capture_output=True, text=True, timeout=limit,
                           check=False)
        if p.returncode != 0:
            raise RuntimeError(p.stderr[-2000:])
        out = json.loads(p.stdout.strip().splitlines()[-1])
    except subprocess.TimeoutExpired as exc:  # keep the epochs that did finish
        text = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        done = [float(x.split()[1]) for x in text.splitlines() if x.startswith("EPOCH ")]
        out = {"epoch_s": [round(x, 2) for x in done], "timed_out": limit,
               "epoch_median_s": statistics.median(done) if done else float("inf")}
    finally:
        for s in spinners:
            s.kill()
        for s in spinners:
            s.wait()
    out["load_before"] = round(load, 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--busy", type=int, nargs="+", default=[0, 3])
    ap.add_argument("--variants", nargs="+", default=["before", "after"])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--limit", type=float, default=300.0,
                    help="seconds per training process (and per busy process)")
    ap.add_argument("--json", type=Path, help="also write every raw result here")
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0))
    variants = [_variant(v) for v in args.variants]
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        images = Path(tmp) / "images.safetensors"
        p = subprocess.run([sys.executable, __file__, "_build", str(images)],
                           env=_child_env({}), capture_output=True, text=True, check=True)
        info = json.loads(p.stdout.strip().splitlines()[-1])
        print(f"images: {info['n_images']} ({info['panel']}); usable cores {cores}", flush=True)
        # interleave variants inside each repetition so slow drifts in the host's own load
        # hit every variant alike
        for rep in range(args.reps):
            for busy in args.busy:
                for name, env in variants:
                    r = run_scenario(images, busy, env, args.epochs, args.limit)
                    r.update(variant=name, busy=busy, rep=rep)
                    rows.append(r)
                    print(json.dumps(r), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    ref = statistics.median(r["epoch_median_s"] for r in rows
                            if r["variant"] == variants[0][0] and r["busy"] == 0) \
        if 0 in args.busy else float("nan")
    print(f"\nslowdown = epoch time / the quiet epoch of the first variant "
          f"({variants[0][0]}, {ref:.2f} s); fair = max(1, (N + k) / C), C = {cores}")
    print("| variant | busy N | epoch s | slowdown | vs own quiet | fair | slowdown / fair "
          "| CPU/wall | ctx switches vol/invol |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, _ in variants:
        quiet = float("nan")
        for busy in args.busy:
            rs = [r for r in rows if r["variant"] == name and r["busy"] == busy]
            med = statistics.median(r["epoch_median_s"] for r in rs)
            k = next((r["threads"] for r in rows if r["variant"] == name and "threads" in r), 2)
            if busy == 0:
                quiet = med
            fair = max(1.0, (busy + k) / cores)
            cpu = statistics.median(r.get("cpu_per_wall", float("nan")) for r in rs)
            vol = statistics.median(r.get("ctx_voluntary", 0) for r in rs)
            inv = statistics.median(r.get("ctx_involuntary", 0) for r in rs)
            cut = any("timed_out" in r for r in rs)
            shown = (f"{med:.2f}" if med != float("inf") else f"> {args.limit:.0f} s in all")
            shown += " (timed out)" if cut and med != float("inf") else ""
            print(f"| {name} | {busy} | {shown} | {med / ref:.1f}x | {med / quiet:.1f}x | "
                  f"{fair:.1f}x | {med / ref / fair:.1f} | {cpu:.2f} | {vol:.0f} / {inv:.0f} |")

if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_build":
        print(json.dumps(build(Path(sys.argv[2]))))
    elif len(sys.argv) > 1 and sys.argv[1] == "_epoch":
        print(json.dumps(epoch(Path(sys.argv[2]), int(sys.argv[3]))))
    else:
        main()
