"""Candidate scoring spread over Dask workers (issue 17): same scores, more cores.

A large batch (a GP generation, a batch of AlphaFormer candidates) is split into chunks that
Dask workers score in parallel. The in-process :class:`~alphaminer.evaluation.scorer.
CandidateScorer` stays the default and the reference: :class:`DaskScorer` *is* one (a subclass,
so miners, ``commit``, ``values``, ``pool`` and ``stats`` work unchanged) whose :meth:`score`
sends the formulas it has not cached to the workers instead of evaluating them itself.

How the work is split, and why:

- **The data goes to each worker once.** A scorer's panel rows ``[start, t1)`` (the history the
  in-process evaluator sees, copied so that no later day is pickled with it) and its target go
  out in one ``client.scatter(..., broadcast=True)``; every task names that future, so Dask
  hands each task the worker's resident copy. A worker builds one *replica* scorer per client
  scorer from it (same options, same split), on first use, and keeps it with its result and
  sub-expression caches. Scorers of one :class:`ScoringBackend` on the same panel, target and
  rows share one scattered copy. Dask's Active Memory Manager would undo the broadcast: its
  ``ReduceReplicas`` policy drops every replica but one of a key no queued task waits on (every
  2 s), so an idle pause between batches (a GP generation's bookkeeping, a PPO update) made the
  next batch fetch the panel again. Clusters this project starts (:func:`local_cluster`) run
  without that policy; on an external scheduler, start it with
  ``DASK_DISTRIBUTED__SCHEDULER__ACTIVE_MEMORY_MANAGER__START=False`` for the same guarantee
  (otherwise a re-fetch costs a transfer, never a wrong score).
- **Workers return the whole verdict, pool-dependent parts included.** Evaluation is the
  expensive part and ``max_corr`` / the pool dry run need the values, so computing those in the
  client would mean evaluating every passing formula twice. Instead each task carries the
  client's reference set and pool *by formula names*: the reference entries in order, and the
  log of commits the client's pool accepted (in order, with the torch thread count each ran
  with). A replica that is behind replays the missing ones (``add_reference`` / ``commit``: the
  worker evaluates them itself), so its pool takes the same sequence of exact refits, with the
  same warm starts, as the client's. It then checks that its members and weights are the
  client's (sent with the task) and raises if not, rather than return scores against another
  pool. Results are small (:class:`~alphaminer.evaluation.scorer.Score` objects); no ``[T, S]``
  array travels back. Reference factors given as values (not formulas) are scattered once.
- **Equal results.** The replica runs the scorer's own code on the same rows, and the scores'
  torch thread count is the client's (one thread for a batch, as in-process): the Score objects
  equal the in-process ones (floats to ~1e-7: a batched reduction may round differently when a
  chunk groups other formulas than an in-process batch would; ok/reason/accept decisions the
  same), so the same seed gives the same alphas with either backend.
- **What stays in the client**: parsing, the result cache (a repeat is never sent), and
  ``values`` / ``commit`` (one formula; the client evaluates it, as in-process). A pool changed
  other than through :meth:`DaskScorer.commit` (``pool.try_add`` / ``remove`` called directly)
  cannot be replayed by name: the scorer notices (members or weights differ from the last
  commit's), logs a warning and scores in-process from then on.

Workers hold one lock for replica work, so a worker runs one chunk at a time (start them with
``--nthreads 1``; a chunk is parallelised inside by the scorer's own threads). Inside a Dask
task (a node under ``alphaminer.runners.DaskRunner``) the backend uses ``worker_client()``: the
node's thread leaves the worker's pool while its chunks run, so it cannot deadlock the cluster.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import torch

from alphaminer.evaluation.pool import AddResult, AlphaPool, PoolConfig
from alphaminer.evaluation.scorer import FAILURE_KINDS, CandidateScorer, Score
from alphaminer.expr import Node
from alphaminer.panel import Panel

__all__ = ["DaskScorer", "ScoringBackend", "ScoringConfig", "open_scorer", "worker_counters"]

log = logging.getLogger(__name__)

#: environment variable naming the scheduler to connect to when ``address`` is null
SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"


@dataclass(frozen=True)
class ScoringConfig:
    """Where candidate scoring runs (the ``scoring`` parameter block).

    backend: ``local`` (in-process, the default) or ``dask``.
    address: scheduler address for ``dask``; null → ``$DASK_SCHEDULER_ADDRESS`` if set (inside a
        Dask task: the task's own scheduler), else a LocalCluster of ``n_workers`` one-thread
        processes on 127.0.0.1 (dashboard off), closed with the backend.
    n_workers: the LocalCluster's worker processes (unused with an address).
    chunk: most formulas in one task; a batch is split into at most this many per task and at
        least one task per worker thread, so a 32-formula batch still uses every worker.
    """

    backend: Literal["local", "dask"] = "local"
    address: str | None = None
    n_workers: int = 2
    chunk: int = 64

    def __post_init__(self) -> None:
        if self.backend not in ("local", "dask"):
            raise ValueError(f"backend must be 'local' or 'dask', got {self.backend!r}")
        if not isinstance(self.n_workers, int) or self.n_workers < 1:
            raise ValueError(f"n_workers must be an int >= 1, got {self.n_workers!r}")
        if not isinstance(self.chunk, int) or self.chunk < 1:
            raise ValueError(f"chunk must be an int >= 1, got {self.chunk!r}")

    @classmethod
    def coerce(cls, value: Any) -> ScoringConfig:
        """A config from None (local), a mapping, a pydantic ``ScoringParams`` or a config."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if hasattr(value, "to_config"):
            return value.to_config()
        return cls(**dict(value))


def local_cluster(n_workers: int, threads_per_worker: int = 1, **kwargs: Any) -> Any:
    """A ``distributed.LocalCluster`` of worker processes on 127.0.0.1 (dashboard off) whose
    scheduler keeps replicas: the Active Memory Manager is off, so a scattered panel stays on
    every worker between batches (module docstring). ``kwargs`` go to LocalCluster."""
    import dask
    from distributed import LocalCluster

    kwargs = {"processes": True, "host": "127.0.0.1", "dashboard_address": None, **kwargs}
    with dask.config.set({"distributed.scheduler.active-memory-manager.start": False}):
        return LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                            **kwargs)


# ============================================================================ worker side
_LOCK = threading.Lock()  # one replica operation at a time per worker process
_REPLICAS: dict[str, _Replica] = {}
_COUNTERS: dict[str, Counter[str]] = {"loads": Counter(), "builds": Counter(),
                                      "tasks": Counter(), "formulas": Counter()}


class _Shared:
    """What a worker keeps of a scorer's data: the panel rows ``[start, t1)`` and the target
    on them. Unpickling counts a load (:func:`worker_counters`): the panel should arrive once
    per worker however many tasks and scorers use it."""

    def __init__(self, uid: str, panel: Panel, target: torch.Tensor) -> None:
        self.uid, self.panel, self.target = uid, panel, target

    def __getstate__(self) -> dict[str, Any]:
        return {"uid": self.uid, "panel": self.panel, "target": self.target}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        _COUNTERS["loads"][self.uid] += 1

    def __sizeof__(self) -> int:  # Dask's memory accounting
        p = self.panel
        return int(sum(t.element_size() * t.nelement() for t in
                       (p.values, p.observed, p.universe, p.tradable, self.target)))


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    prev = torch.get_num_threads()
    if n != prev:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != prev:
            torch.set_num_threads(prev)


class _Replica:
    """A worker's copy of one client scorer, synced to the client's reference set and pool by
    formula names before each chunk."""

    def __init__(self, shared: _Shared, options: dict[str, Any]) -> None:
        opts = dict(options)
        self.pool_config: PoolConfig | None = opts.pop("pool")
        self.scorer = CandidateScorer(shared.panel, shared.target, pool=self.pool_config,
                                      **opts)
        self.refs: tuple[Any, ...] = ()
        self.commits: tuple[tuple[str, int], ...] = ()

    def sync(self, refs: tuple[Any, ...], ref_data: dict[str, torch.Tensor],
             pool_state: tuple[Any, ...] | None) -> None:
        sc = self.scorer
        if refs != self.refs:
            known = len(self.refs)
            if refs[:known] == self.refs:
                new = refs[known:]
            else:  # replaced (set_reference): rebuild
                sc.set_reference([])
                new = refs
            for kind, a, b, name, threads in new:  # one by one, as the client added them
                with _torch_threads(threads):
                    sc.add_reference([ref_data[a][b] if kind == "v" else a], [name])
            self.refs = refs
        if pool_state is None:
            return
        commits, names, weights = pool_state
        if commits != self.commits:
            known = len(self.commits)
            if commits[:known] != self.commits:  # cannot happen through commit(); be safe
                assert self.pool_config is not None
                sc.pool = sc._bind_pool(self.pool_config)
                sc._pool_version += 1
                known = 0
            for name, threads in commits[known:]:
                with _torch_threads(threads):
                    res = sc.commit(name)
                if not res.accepted:
                    raise RuntimeError(f"replica pool diverged: it rejected {name!r} "
                                       f"({res.reason}) that the client's pool accepted")
            self.commits = commits
        pool = sc.pool
        assert pool is not None
        if tuple(pool.names) != tuple(names) or not np.allclose(
                pool.weights, np.asarray(weights, dtype=np.float64), rtol=1e-6, atol=1e-9):
            raise RuntimeError(f"replica pool diverged: members {pool.names} weights "
                               f"{pool.weights.tolist()}, the client's {list(names)} "
                               f"{list(weights)}")


def _score_chunk(shared: _Shared, sid: str, options: dict[str, Any], texts: list[str],
                 refs: tuple[Any, ...], ref_data: dict[str, torch.Tensor],
                 pool_state: tuple[Any, ...] | None, threads: int) -> list[Score]:
    """The Dask task: sync the replica of scorer ``sid`` and score ``texts`` (canonical)."""
    with _LOCK:
        rep = _REPLICAS.get(sid)
        if rep is None:
            rep = _REPLICAS[sid] = _Replica(shared, options)
            _COUNTERS["builds"][sid] += 1
        with _torch_threads(threads):
            rep.sync(refs, ref_data, pool_state)
            scores = rep.scorer.score(texts)
        _COUNTERS["tasks"][sid] += 1
        _COUNTERS["formulas"][sid] += len(texts)
        return scores


def _drop_replica(sid: str) -> bool:
    """Forget scorer ``sid``'s replica in this worker (``client.run`` on close)."""
    with _LOCK:
        return _REPLICAS.pop(sid, None) is not None


def worker_counters() -> dict[str, dict[str, int]]:
    """This worker process's counters (run it with ``client.run``): ``loads`` (data copies
    unpickled, by scattered object), ``builds`` (replicas built), ``tasks`` and ``formulas``
    (by scorer)."""
    with _LOCK:
        return {k: dict(v) for k, v in _COUNTERS.items()}


# ============================================================================ client side
def _failure_kind(reason: str | None) -> str | None:
    if reason is None:
        return None
    return next((k for k in FAILURE_KINDS if reason.startswith(k)), "evaluation error")


def _pool_mark(pool: AlphaPool | None) -> tuple[Any, ...] | None:
    return None if pool is None else (tuple(pool.names), pool.weights.tobytes())


def _shipped_rows(panel: Panel, target: torch.Tensor, start: int, t1: int
                  ) -> tuple[Panel, torch.Tensor]:
    """Copies of rows ``[start, t1)``: a sliced view would pickle its whole storage (every later
    day with it)."""
    p = panel.slice_dates(start, t1)
    p = replace(p, values=p.values.clone(), observed=p.observed.clone(),
                universe=p.universe.clone(), tradable=p.tradable.clone())
    y = torch.as_tensor(target)[start:t1].to(dtype=torch.float32).clone()
    return p, y


class DaskScorer(CandidateScorer):
    """A :class:`CandidateScorer` whose :meth:`score` runs on Dask workers (module docstring).

    Takes the in-process scorer's arguments, plus ``client`` (a ``distributed.Client``),
    ``chunk`` (most formulas per task) and ``shared`` (a future of the scattered data, from a
    :class:`ScoringBackend`; None: scatter it here). ``pool`` must start empty (a
    :class:`PoolConfig` or an empty :class:`AlphaPool`): the workers rebuild it from the
    commits. Use it through :class:`ScoringBackend` / :func:`open_scorer`, or call
    :meth:`close` to free the workers' replicas.
    """

    def __init__(self, panel: Panel, target: torch.Tensor, days: tuple[int, int] | None = None,
                 pool: AlphaPool | PoolConfig | None = None,
                 reference: torch.Tensor | Sequence[torch.Tensor] | Sequence[str] | None = None,
                 min_stocks: int = 10, *, client: Any, chunk: int = 64, shared: Any = None,
                 min_days: int | float = 0.5, warmup: int | None = None,
                 cache_size: int = 200_000, eval_cache_bytes: int = 1 << 30,
                 batch_size: int = 32, compute_rank_ic: bool = True) -> None:
        if isinstance(pool, AlphaPool) and pool.members:
            raise ValueError("a DaskScorer's pool must start empty (the workers rebuild it from "
                             "the commits); pass a PoolConfig or an empty AlphaPool")
        if not isinstance(chunk, int) or chunk < 1:
            raise ValueError(f"chunk must be an int >= 1, got {chunk!r}")
        super().__init__(panel, target, days, pool=pool, min_stocks=min_stocks,
                         min_days=min_days, warmup=warmup, cache_size=cache_size,
                         eval_cache_bytes=eval_cache_bytes, batch_size=batch_size,
                         compute_rank_ic=compute_rank_ic)
        t0, t1 = self.days
        start = t0 - self._offset
        self.client = client
        self.chunk = chunk
        self._id = f"scorer-{uuid.uuid4().hex}"
        if shared is None:
            p, y = _shipped_rows(panel, target, start, t1)
            shared = client.scatter(_Shared(f"data-{uuid.uuid4().hex}", p, y),
                                    broadcast=True, hash=False)
        self._shared = shared
        self._options: dict[str, Any] = {
            "days": (t0 - start, t1 - start), "min_stocks": min_stocks, "min_days": min_days,
            "warmup": None, "cache_size": cache_size, "eval_cache_bytes": eval_cache_bytes,
            "batch_size": batch_size, "compute_rank_ic": compute_rank_ic,
            "pool": None if self.pool is None else self.pool.config}
        # (kind, formula | key, index, name, torch threads): "f" a formula, "v" values
        self._refs: list[tuple[str, Any, Any, str, int]] = []
        self._ref_data: dict[str, Any] = {}  # key → future of a [G, T, S] stack
        self._commits: list[tuple[str, int]] = []
        self._mark = _pool_mark(self.pool)
        self._local_reason: str | None = None
        self._closed = False
        self._remote = Counter({"tasks": 0, "formulas": 0})
        self._remote_wall = 0.0
        if reference is not None:
            self.set_reference(reference)

    # ------------------------------------------------------------------ reference set
    def set_reference(self, values: torch.Tensor | Sequence[torch.Tensor] | Sequence[str],
                      names: Sequence[str] | None = None) -> None:
        self._refs, self._ref_data = [], {}
        super().set_reference(values, names)  # → add_reference

    def add_reference(self, values: torch.Tensor | Sequence[torch.Tensor] | Sequence[str] | str,
                      names: Sequence[str] | None = None) -> None:
        if isinstance(values, str | Node):
            values = [values]
        if isinstance(values, torch.Tensor) and values.ndim == 2:
            values = values.unsqueeze(0)
        items = list(values)
        n0 = len(self._ref_names)
        threads = torch.get_num_threads()
        super().add_reference(items, names)
        new_names = self._ref_names[n0:]
        tensors = [i for i, v in enumerate(items) if not isinstance(v, str | Node)]
        key = None
        if tensors and not self._closed:
            stack = torch.stack([torch.as_tensor(items[i]).to(torch.float32).cpu()
                                 for i in tensors])
            fut = self.client.scatter(stack, broadcast=True, hash=False)
            key = fut.key
            self._ref_data[key] = fut
        pos = {i: j for j, i in enumerate(tensors)}
        for i, (v, n) in enumerate(zip(items, new_names)):
            self._refs.append(("v", key, pos[i], n, threads) if i in pos
                              else ("f", str(v), None, n, threads))

    # ------------------------------------------------------------------ scoring
    def _score_misses(self, todo: dict[str, Node], stale: dict[str, Node],
                      count: bool) -> None:
        # count=False: values()/commit() scoring one formula they evaluate here anyway
        if not count or self._closed or not self._remote_ok():
            super()._score_misses(todo, stale, count)
            return
        texts = list(todo) + list(stale)
        if texts:
            self._score_remote(texts)

    def _remote_ok(self) -> bool:
        if self._local_reason is None and _pool_mark(self.pool) != self._mark:
            self._local_reason = ("the pool changed other than through commit(): the workers "
                                  "cannot replay it, so this scorer scores in-process")
            log.warning("DaskScorer: %s", self._local_reason)
        return self._local_reason is None

    def _score_remote(self, texts: list[str]) -> None:
        t = time.perf_counter()
        slots = max(1, sum(self.client.nthreads().values()))
        size = max(1, min(self.chunk, math.ceil(len(texts) / slots)))
        pool_state = None if self.pool is None else (
            tuple(self._commits), tuple(self.pool.names), tuple(self.pool.weights.tolist()))
        refs = tuple(self._refs)
        # in-process, a batch of several formulas runs single-threaded (_score_batch), one
        # formula with torch's threads: the replica does the same
        threads = 1 if len(texts) > 1 else torch.get_num_threads()
        futures = [self.client.submit(_score_chunk, self._shared, self._id, self._options,
                                      texts[i:i + size], refs, self._ref_data, pool_state,
                                      threads, pure=False)
                   for i in range(0, len(texts), size)]
        results = self.client.gather(futures)
        for key, s in zip(texts, (s for part in results for s in part)):
            if s.formula != key:
                raise RuntimeError(f"a worker scored {s.formula!r} for {key!r}")
            if s.ok:
                self._store(key, s, None, self._ref_version, self._pool_version)
            else:
                self._store(key, s, _failure_kind(s.reason))
        self._remote["tasks"] += len(futures)
        self._remote["formulas"] += len(texts)
        self._remote_wall += time.perf_counter() - t

    # ------------------------------------------------------------------ commits
    def commit(self, formula: str | Node) -> AddResult:
        """``pool.try_add`` here, logged by name (with this thread count) for the workers."""
        threads = torch.get_num_threads()
        res = super().commit(formula)
        if res.accepted:
            self._commits.append((res.name, threads))
        self._mark = _pool_mark(self.pool) if self._local_reason is None else self._mark
        return res

    # ------------------------------------------------------------------ bookkeeping
    def stats(self) -> dict[str, Any]:
        """:meth:`CandidateScorer.stats` plus ``backend``: tasks, formulas sent and the wall
        seconds waiting on workers (the stage times cover in-process work only)."""
        out = super().stats()
        out["backend"] = {"kind": "dask", "tasks": self._remote["tasks"],
                          "remote_formulas": self._remote["formulas"],
                          "remote_seconds": self._remote_wall,
                          "in_process_reason": self._local_reason}
        return out

    def close(self) -> None:
        """Free the workers' replicas of this scorer; it scores in-process afterwards."""
        if self._closed:
            return
        self._closed = True
        try:
            self.client.run(_drop_replica, self._id)
        except Exception as exc:  # noqa: BLE001 - a gone cluster has nothing left to free
            log.debug("DaskScorer.close: %s", exc)
        self._ref_data.clear()

    def __enter__(self) -> DaskScorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _inside_worker() -> Any:
    try:
        from distributed import get_worker

        return get_worker()
    except (ImportError, ValueError):
        return None


class ScoringBackend:
    """Makes the scorers of a node: in-process, or :class:`DaskScorer` on one Dask client.

    ``ScoringBackend(config)`` with a :class:`ScoringConfig` (or its mapping / pydantic model;
    None → local). The client is opened on the first Dask scorer (see ``ScoringConfig.address``)
    and closed, with a LocalCluster it started, by :meth:`close` / the ``with`` block. Pass
    ``client=`` to use one you manage (it is left open).
    """

    def __init__(self, config: Any = None, *, client: Any = None) -> None:
        self.config = ScoringConfig.coerce(config)
        self._client = client
        self._own = client is None
        self._cluster: Any = None
        self._ctx: Any = None
        self._scorers: list[DaskScorer] = []
        self._shared: dict[tuple[int, int, int, int], tuple[Any, Panel, torch.Tensor]] = {}

    @property
    def client(self) -> Any:
        """The Dask client (opened on first use)."""
        if self._client is None:
            self._open()
        return self._client

    def _open(self) -> None:
        from distributed import Client, worker_client

        address = self.config.address or os.environ.get(SCHEDULER_ENV) or None
        worker = _inside_worker()
        if worker is not None and (address is None or address == worker.scheduler.address):
            # a node running as a Dask task: leave the worker's pool while chunks run
            self._ctx = worker_client(separate_thread=True)
            self._client = self._ctx.__enter__()
        elif address:
            self._client = Client(address, set_as_default=False)
        else:
            self._cluster = local_cluster(self.config.n_workers)
            self._client = Client(self._cluster, set_as_default=False)
        log.info("candidate scoring on Dask (%s, %d worker threads)",
                 self._client.scheduler.address, sum(self._client.nthreads().values()))

    def scorer(self, panel: Panel, target: torch.Tensor, days: tuple[int, int] | None = None,
               **kwargs: Any) -> CandidateScorer:
        """A scorer with :class:`CandidateScorer`'s arguments on this backend."""
        if self.config.backend == "local":
            return CandidateScorer(panel, target, days, **kwargs)
        t0, t1 = (0, panel.T) if days is None else (int(days[0]), int(days[1]))
        warmup = kwargs.get("warmup")
        start = 0 if warmup is None else max(0, t0 - warmup)
        key = (id(panel), id(target), start, t1)
        if key not in self._shared and 0 <= start < t1 <= panel.T:
            p, y = _shipped_rows(panel, target, start, t1)
            fut = self.client.scatter(_Shared(f"data-{uuid.uuid4().hex}", p, y),
                                      broadcast=True, hash=False)
            self._shared[key] = (fut, panel, target)  # the objects keep their ids unique
        shared = self._shared[key][0] if key in self._shared else None
        s = DaskScorer(panel, target, days, client=self.client, chunk=self.config.chunk,
                       shared=shared, **kwargs)
        self._scorers.append(s)
        return s

    def close(self) -> None:
        """Free the replicas and data on the workers; close what this backend opened."""
        for s in self._scorers:
            s.close()
        self._scorers.clear()
        for fut, _, _ in self._shared.values():
            fut.release()
        self._shared.clear()
        if self._client is None or not self._own:
            return
        try:
            if self._ctx is not None:
                self._ctx.__exit__(None, None, None)
            else:
                self._client.close()
        finally:
            if self._cluster is not None:
                self._cluster.close()
            self._client = self._cluster = self._ctx = None

    def __enter__(self) -> ScoringBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def open_scorer(config: Any, panel: Panel, target: torch.Tensor,
                days: tuple[int, int] | None = None, **kwargs: Any
                ) -> Iterator[CandidateScorer]:
    """``with open_scorer(params.scoring, panel, target, days, pool=..., ...) as scorer:`` —
    an in-process :class:`CandidateScorer` (``backend: local``) or a :class:`DaskScorer`
    whose cluster is closed when the block ends."""
    with ScoringBackend(config) as backend:
        yield backend.scorer(panel, target, days, **kwargs)

