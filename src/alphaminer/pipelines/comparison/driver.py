"""``kedro compare``: run every (method, seed) pair as its own ``kedro run``, then summarise.

Why a driver around Kedro rather than one big pipeline: each pair must be able to fail without
sinking the others, must not be recomputed once finished (also after a ``kill -9`` of the whole
comparison), and must keep its outputs apart from every other pair's. So each pair is one
``kedro run --to-outputs=<m>.comparison_record --only-missing-outputs`` in a child process,
with ``seed`` and ``data_root`` set by runtime parameters:

- data root ``data/comparison/<hash>/seed_<s>``, ``<hash>`` = the parameters shared by all
  pairs (:func:`~alphaminer.reporting.multiseed.comparison_hash`); the first pair of a seed runs
  ingestion there, later pairs of that seed reuse it (``--only-missing-outputs``);
- a pair is finished when its latest ``<m>.comparison_record`` says ``ok``; a failed or killed
  pair gets a ``failed`` record (with the end of its log) and is retried by the next run;
- children die with the driver (``PR_SET_PDEATHSIG``), so a killed comparison leaves no run
  holding the project's run lock.

Finally ``summarise_comparison`` (pipeline ``comparison``) writes Table 1, Table 4 and the page.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alphaminer.pipelines._methods import ALL_METHODS
from alphaminer.reporting.multiseed import (
    comparison_hash,
    failed_record,
    is_finished,
    pair_root,
)

log = logging.getLogger(__name__)

#: where every comparison's pair trees live, relative to the project
BASE = "data/comparison"
RECORD = "comparison_record.json"


def parse_params(text: str | None) -> dict[str, Any]:
    """``"a.b=1,c=x"`` → ``{"a": {"b": 1}, "c": "x"}``, exactly as ``kedro run --params``
    reads it (comma-separated ``key=value`` items, OmegaConf dot-list values)."""
    from omegaconf import OmegaConf

    items = [p.strip() for p in (text or "").split(",") if p.strip()]
    for item in items:
        if "=" not in item or not item.partition("=")[0].strip():
            raise ValueError(f"--params item {item!r} is not key=value")
    return OmegaConf.to_container(OmegaConf.from_dotlist(items)) if items else {}


def _deep_update(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _deep_update(out.get(k, {}), v) if isinstance(v, Mapping) and isinstance(
            out.get(k), Mapping) else v
    return out


def project_parameters(project: Path, env: str | None, extra: Mapping[str, Any]
                       ) -> dict[str, Any]:
    """The parameters a ``kedro run --env env --params extra`` would see."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    with KedroSession.create(project_path=project, env=env, runtime_params=dict(extra)) as s:
        params = s.load_context().params
    return _deep_update(dict(params), extra)


def latest_record(project: Path, root: str, method: str) -> dict[str, Any] | None:
    """The newest ``<method>.comparison_record`` under a pair's data root, if any."""
    from alphaminer.kedro_io import ComparisonRecordsDataset

    return ComparisonRecordsDataset.latest(project / root / "07_model_output" / method / RECORD)


def write_record(project: Path, root: str, method: str, record: Mapping[str, Any]) -> Path:
    """Save a record as a new version of the pair's dataset (same layout Kedro writes)."""
    from kedro.io.core import generate_timestamp

    path = project / root / "07_model_output" / method / RECORD / generate_timestamp() / RECORD
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, allow_nan=False))
    return path


def _load_prctl() -> Any:
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except OSError:
        return None


#: resolved in the parent: a child between fork and exec must not import or load libraries
#: (another thread of a Dask worker may hold the import lock at fork time)
_PRCTL = _load_prctl()


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    os.setsid()


def pair_command(method: str, seed: int, root: str, env: str | None,
                 params: str | None = None) -> list[str]:
    """The child ``kedro run`` of one pair: the user's ``--params`` string, then the pair's
    seed and data root."""
    cmd = [sys.executable, "-m", "kedro", "run", "--pipelines=__default__",
           f"--to-outputs={method}.comparison_record", "--only-missing-outputs"]
    if env:
        cmd += ["--env", env]
    items = [p for p in (params or "").split(",") if p.strip()]
    return cmd + ["--params", ",".join([*items, f"seed={int(seed)}", f"data_root={root}"])]


def summarise_in_process(project: Path, env: str | None, runtime_params: Mapping[str, Any]
                         ) -> None:
    """Run ``summarise_comparison`` (light; in this process, so lists pass as lists)."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    with KedroSession.create(project_path=project, env=env,
                             runtime_params=dict(runtime_params)) as session:
        session.run(pipeline_names=["comparison"], node_names=["summarise_comparison"])


@dataclass
class PairOutcome:
    method: str
    seed: int
    status: str  # "finished earlier" | "ok" | "failed"
    seconds: float
    error: str | None = None


def _tail(path: Path, n: int = 25) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


#: thread variables a pair's child takes from the driver, not from a Dask worker (whose nanny
#: sets them to 1): the same seed then gives the same floats whichever way pairs run
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _child_env(threads: Mapping[str, str | None] | None = None) -> dict[str, str]:
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}
    for k, v in (threads or {}).items():
        env.pop(k, None)
        if v is not None:
            env[k] = v
    return env


def run_one_pair(project: Path, method: str, seed: int, root: str, cmd: Sequence[str],
                 digest: str, timeout_s: float | None = None,
                 threads: Mapping[str, str | None] | None = None, *after: Any) -> PairOutcome:
    """One pair's child ``kedro run`` (log in ``<root>/logs/<method>.log``); a failure or
    timeout is recorded as a ``failed`` record, never raised. ``after``: results of pairs that
    had to finish first (Dask passes them once they have)."""
    logs = project / root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{method}.log"
    t0 = time.perf_counter()
    error = None
    with open(log_path, "ab") as fh:
        proc = subprocess.Popen(list(cmd), cwd=project, stdout=fh, stderr=subprocess.STDOUT,
                                env=_child_env(threads),
                                preexec_fn=_die_with_parent)  # noqa: PLW1509 (see there)
        try:
            rc = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            rc, error = -9, f"stopped after the pair timeout of {timeout_s} s"
    seconds = time.perf_counter() - t0
    if rc == 0 and is_finished(latest_record(project, root, method)):
        return PairOutcome(method, seed, "ok", seconds)
    if error is None:
        error = (f"exit code {rc}" if rc != 0 else "the run left no ok record") + \
                "; end of its log:\n" + _tail(log_path)
    write_record(project, root, method, failed_record(method, seed, digest, error))
    return PairOutcome(method, seed, "failed", seconds, error)


def _report(progress: Callable[[str], None], label: str, log_dir: Path, o: PairOutcome
            ) -> None:
    if o.status == "ok":
        progress(f"{label} {o.method} seed {o.seed}: ok in {o.seconds:.0f} s")
    else:
        progress(f"{label} {o.method} seed {o.seed}: FAILED in {o.seconds:.0f} s "
                 f"({(o.error or '').splitlines()[0]}); see {log_dir / (o.method + '.log')}")


def run_pairs(project: Path, methods: Sequence[str], seeds: Sequence[int], digest: str,
              env: str | None = None, params: str | None = None,
              timeout_s: float | None = None,
              command: Callable[[str, int, str], list[str]] | None = None,
              progress: Callable[[str], None] = log.info,
              dask: str | bool | None = None, n_workers: int | None = None
              ) -> list[PairOutcome]:
    """Run every unfinished pair; never raises for a failing pair.

    ``command(method, seed, root)`` builds a pair's child command (default: :func:`pair_command`);
    the child must leave an ``ok`` record in ``root``, or the pair is marked failed.

    Without ``dask`` the pairs run one after another, seed by seed. With ``dask`` (``True``: the
    scheduler at ``$DASK_SCHEDULER_ADDRESS``, else a local cluster of ``n_workers`` processes on
    127.0.0.1; a string: that scheduler's address) each pair is one Dask task. The pairs of a
    seed share a data root, whose run lock admits one run at a time and whose first pair runs
    the seed's ingestion, so they are chained in order (each waits for the one before); the
    chains of different seeds run in parallel. The workers must see the project folder.
    """
    build = command or (lambda m, s, r: pair_command(m, s, r, env, params))
    pairs = [(m, int(s)) for s in seeds for m in methods]
    outcomes: dict[tuple[str, int], PairOutcome] = {}
    todo = []
    for i, (m, s) in enumerate(pairs, 1):
        root = pair_root(BASE, digest, s)
        if is_finished(latest_record(project, root, m)):
            progress(f"[{i}/{len(pairs)}] {m} seed {s}: finished earlier, skipped")
            outcomes[(m, s)] = PairOutcome(m, s, "finished earlier", 0.0)
        else:
            todo.append((f"[{i}/{len(pairs)}]", m, s, root, build(m, s, root)))
    if not dask:
        for label, m, s, root, cmd in todo:
            progress(f"{label} {m} seed {s}: running (log {project / root / 'logs' / m}.log)")
            o = run_one_pair(project, m, s, root, cmd, digest, timeout_s)
            _report(progress, label, project / root / "logs", o)
            outcomes[(m, s)] = o
    elif todo:
        _run_pairs_on_dask(project, todo, digest, timeout_s, progress, outcomes,
                           dask if isinstance(dask, str) else None, n_workers)
    return [outcomes[p] for p in pairs]


def _run_pairs_on_dask(project: Path, todo: list[tuple[str, str, int, str, list[str]]],
                       digest: str, timeout_s: float | None, progress: Callable[[str], None],
                       outcomes: dict[tuple[str, int], PairOutcome], address: str | None,
                       n_workers: int | None) -> None:
    from distributed import Client, as_completed

    from alphaminer import available_cpus
    from alphaminer.evaluation.distributed import local_cluster

    address = address or os.environ.get("DASK_SCHEDULER_ADDRESS") or None
    cluster = None
    if address:
        client = Client(address, set_as_default=False)
    else:
        n_seeds = len({s for _, _, s, _, _ in todo})
        n = n_workers or max(1, min(n_seeds, available_cpus()))
        cluster = local_cluster(n)
        client = Client(cluster, set_as_default=False)
    threads = {k: os.environ.get(k) for k in THREAD_VARS}
    try:
        progress(f"{len(todo)} pairs as Dask tasks on {client.scheduler.address} (the pairs "
                 "of a seed in order, seeds in parallel)")
        last: dict[int, Any] = {}
        meta = {}
        for label, m, s, root, cmd in todo:
            after = (last[s],) if s in last else ()
            fut = client.submit(run_one_pair, project, m, s, root, cmd, digest, timeout_s,
                                threads, *after, pure=False, key=f"pair-{digest}-{m}-{s}")
            last[s] = fut
            meta[fut] = (label, root)
        with client.as_current():
            finished = as_completed(list(meta))
        for fut in finished:
            o = fut.result()
            _report(progress, meta[fut][0], project / meta[fut][1] / "logs", o)
            outcomes[(o.method, o.seed)] = o
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_comparison(project: str | Path, env: str | None = None,
                   methods: Sequence[str] | None = None, seeds: Sequence[int] | None = None,
                   params: str | None = None, timeout_s: float | None = None,
                   progress: Callable[[str], None] = log.info,
                   dask: str | bool | None = None, n_workers: int | None = None
                   ) -> list[PairOutcome]:
    """``kedro compare``: every unfinished (method, seed) pair, then ``summarise_comparison``.

    ``methods``/``seeds`` default to the ``comparison`` parameters; ``params`` is a
    ``kedro run --params`` string applied to every pair (and so part of the comparison's hash).
    ``dask``/``n_workers``: run the pairs as Dask tasks (:func:`run_pairs`).
    """
    project = Path(project).resolve()
    extra = parse_params(params)
    params_now = project_parameters(project, env, extra)
    cfg = params_now.get("comparison", {}) or {}
    methods = list(methods or cfg.get("methods") or ALL_METHODS)
    unknown = sorted(set(methods) - set(ALL_METHODS))
    if unknown:
        raise ValueError(f"unknown methods {unknown}; known: {list(ALL_METHODS)}")
    seeds = [int(s) for s in (seeds if seeds is not None else cfg.get("seeds", [0]))]
    if not seeds:
        raise ValueError("no seeds to run")
    timeout_s = timeout_s if timeout_s is not None else cfg.get("timeout_s")
    digest = comparison_hash(params_now)
    progress(f"comparison {digest}: {len(methods)} methods x {len(seeds)} seeds "
             f"under {BASE}/{digest}/")
    outcomes = run_pairs(project, methods, seeds, digest, env, params, timeout_s,
                         progress=progress, dask=dask, n_workers=n_workers)
    summarise_in_process(project, env, _deep_update(
        extra, {"comparison": {"methods": methods, "seeds": seeds}}))
    n_bad = sum(o.status == "failed" for o in outcomes)
    progress(f"comparison {digest}: {len(outcomes) - n_bad} pairs ok, {n_bad} failed; tables "
             "in data/08_reporting/comparison/")
    return outcomes
