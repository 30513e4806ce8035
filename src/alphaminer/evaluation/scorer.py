"""The candidate scorer: the mining kit's one way to score formulas (``docs/metrics.md``).

Every miner (GP, AlphaGen-style RL, Alpha2, AlphaFormer) scores its candidates here, so IC,
RankIC, correlation to a set and pool gain are computed once, the same way, for all methods.

A :class:`CandidateScorer` is bound to a panel, a target (e.g. the 20-day forward return) and a
half-open day range ``[t0, t1)`` (a split). Per formula it reports:

- ``ic`` / ``rank_ic`` (and their IRs): exactly :func:`~alphaminer.evaluation.metrics.daily_ic` /
  :func:`~alphaminer.evaluation.metrics.daily_rank_ic` + :func:`ic_stats` of the formula's values
  on the split against the target on the split, batched over the formulas of one
  :meth:`~CandidateScorer.score` call;
- ``max_corr``: ``max_g |mean_t corr_t(z, g)|`` over a reference set ``G``, for Alpha2's
  ``Perf = (1 − MaxCorr(z, G))·IC``. The correlation is the pool's: per day, Pearson over the
  target's *sample cells* of the factors z-scored there with missing values set to 0
  (:func:`~alphaminer.evaluation.pool.mean_daily_corr`). Why this one and not
  :func:`~alphaminer.evaluation.metrics.max_correlation` (Pearson on the cells valid on both
  sides): it is the correlation the linear pool sees (the pool combines exactly these z-scores,
  NaN → 0), so "diverse" means the same thing for Alpha2's Perf and for the pool's duplicate
  rule; it is measured on the cells where the IC is measured; and the reference set is z-scored
  once, so a candidate costs one batched per-day matrix product instead of a masked pass per
  member. Both definitions agree when both factors are finite on every sample cell;
- ``pool_ic`` / ``pool_gain``: a dry run of the alpha pool (what its IC would be after
  ``try_add``, minus its current IC; a duplicate or a self-evicting candidate gains 0).

Evaluation goes through one :class:`~alphaminer.expr.Evaluator` (sub-expression cache) on the
panel **up to t1** — never beyond, so no data after the split can reach a score — and with all
history before ``t0`` (or ``warmup`` days of it): slicing the panel at ``t0`` first would start
every rolling window afresh at the split and differ from evaluating on the whole panel. Formulas
that read the future (``Ref(x, -d)``) are rejected.

Results, failures included, are cached by canonical formula text. A failure never raises inside
:meth:`~CandidateScorer.score`: it comes back with ``ok=False`` and a ``reason`` (parse error,
unknown feature, look-ahead, evaluation error, all NaN, no cross-sectional variation, too few
valid stocks per day, too few valid days); ``KeyboardInterrupt`` and ``MemoryError`` propagate.
"""

from __future__ import annotations

import math
import time
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from alphaminer.evaluation.metrics import (
    PreparedTarget,
    _run_blocks,
    daily_ic,
    daily_rank_ic,
    ic_stats,
    serial_torch,
)
from alphaminer.evaluation.pool import (
    AddResult,
    AlphaPool,
    PoolConfig,
    SampleCells,
    cross_sums,
    mean_daily_corr,
)
from alphaminer.expr import Evaluator, Node, features_used, max_lookahead, parse
from alphaminer.panel import Panel
from alphaminer.runtime import release_free_memory

__all__ = ["FAILURE_KINDS", "STAGES", "CandidateScorer", "Score"]

_NAN = float("nan")

#: Failure categories, in the order they are checked; ``Score.reason`` starts with one of them.
FAILURE_KINDS: tuple[str, ...] = (
    "parse error",
    "unknown feature",
    "look-ahead",
    "evaluation error",
    "all NaN",
    "no cross-sectional variation",
    "too few valid stocks per day",
    "too few valid days",
)


@dataclass(frozen=True)
class Score:
    """The scorer's verdict on one formula (metrics are NaN when ``ok`` is False).

    ``formula`` is the canonical text (the input text when it does not parse); ``n_days`` the
    days with a finite daily IC; ``pool_*`` are NaN/None without a pool, ``max_corr`` is 0.0 for
    an empty reference set.
    """

    formula: str
    ok: bool
    reason: str | None
    ic: float = _NAN
    rank_ic: float = _NAN
    icir: float = _NAN
    rank_icir: float = _NAN
    max_corr: float = _NAN
    pool_ic: float = _NAN
    pool_gain: float = _NAN
    pool_accepted: bool | None = None
    pool_reason: str | None = None
    n_days: int = 0


@dataclass
class _Entry:
    """A cached result: pool-independent metrics plus the versioned set/pool parts."""

    score: Score
    kind: str | None  # failure category
    ref_version: int = -1
    pool_version: int = -1


def _any_finite(v: torch.Tensor) -> bool:
    """``torch.isfinite(v).any()`` without the boolean temporary on CPU float32."""
    if v.device.type == "cpu" and v.dtype == torch.float32 and not v.requires_grad:
        from alphaminer.evaluation._jit_rank import any_finite32

        return bool(any_finite32(v.detach().contiguous().view(-1).numpy().view(np.uint32)))
    return bool(torch.isfinite(v).any())


#: Stages of :meth:`CandidateScorer.score` timed in :meth:`CandidateScorer.stats`.
STAGES: tuple[str, ...] = ("evaluate", "stack", "ic", "rank_ic", "zscore", "max_corr", "pool")


class _StageClock:
    """Process CPU seconds (all threads) and wall seconds spent in each scoring stage, so a
    throughput figure can be broken down on the host where it was measured."""

    def __init__(self) -> None:
        self.cpu: Counter[str] = Counter()
        self.wall: Counter[str] = Counter()
        self.active = False  # only inside score(): values()/commit() are not candidates

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if not self.active:
            yield
            return
        c, w = time.process_time(), time.perf_counter()
        try:
            yield
        finally:
            self.cpu[name] += time.process_time() - c
            self.wall[name] += time.perf_counter() - w


class CandidateScorer:
    """Score formulas on one split of one panel against one target (module docstring).

    Args:
        panel: the data (``[T, S]`` grid of the target).
        target: ``[T, S]`` label on the panel's grid (the scorer keeps only ``[t0, t1)``).
        days: half-open day range ``(t0, t1)`` of the split (default: the whole panel); see
            :meth:`from_splits` for a segment of a :class:`~alphaminer.data.Splits`.
        pool: None, an :class:`AlphaPool` (empty, or fitted on this split's target), or a
            :class:`PoolConfig` to create one on the split's target.
        reference: initial reference set for ``max_corr`` (see :meth:`set_reference`).
        min_stocks: fewest valid pairs for a day to count (as in ``daily_ic``).
        min_days: fewest days with a finite IC for a formula to be ``ok``: an int, or a fraction
            of the split's days on which the target itself has ``min_stocks`` values.
        warmup: days of history before ``t0`` the evaluator sees (None: all of it; values are
            then exactly the whole-panel values, sliced).
        cache_size: formulas kept in the result cache (LRU).
        eval_cache_bytes: the evaluator's sub-expression cache.
        batch_size: formulas whose values are stacked for one batched IC / RankIC / pool pass.
        compute_rank_ic: skip RankIC (NaN) when only IC and pool metrics are needed.
    """

    def __init__(self, panel: Panel, target: torch.Tensor, days: tuple[int, int] | None = None,
                 pool: AlphaPool | PoolConfig | None = None,
                 reference: torch.Tensor | Sequence[torch.Tensor] | Sequence[str] | None = None,
                 min_stocks: int = 10, *, min_days: int | float = 0.5,
                 warmup: int | None = None, cache_size: int = 200_000,
                 eval_cache_bytes: int = 1 << 30, batch_size: int = 32,
                 compute_rank_ic: bool = True) -> None:
        if not isinstance(panel, Panel):
            raise TypeError(f"CandidateScorer needs a Panel, got {type(panel).__name__}")
        y = torch.as_tensor(target)
        if tuple(y.shape) != (panel.T, panel.S):
            raise ValueError(f"target must be [T, S] = {(panel.T, panel.S)} (the panel's grid), "
                             f"got {tuple(y.shape)}")
        t0, t1 = (0, panel.T) if days is None else (int(days[0]), int(days[1]))
        if not 0 <= t0 < t1 <= panel.T:
            raise ValueError(f"days must satisfy 0 <= t0 < t1 <= {panel.T}, got {(t0, t1)}")
        if not isinstance(min_stocks, int) or min_stocks < 2:
            raise ValueError(f"min_stocks must be an int >= 2, got {min_stocks!r}")
        if warmup is not None and (not isinstance(warmup, int) or warmup < 0):
            raise ValueError(f"warmup must be None or a non-negative int, got {warmup!r}")
        if batch_size < 1 or cache_size < 1:
            raise ValueError("batch_size and cache_size must be >= 1")
        self.days = (t0, t1)
        self.min_stocks = min_stocks
        self.batch_size = int(batch_size)
        self.cache_size = int(cache_size)
        self.compute_rank_ic = bool(compute_rank_ic)
        start = 0 if warmup is None else max(0, t0 - warmup)
        self._offset = t0 - start
        # views: the evaluator never sees a day at or after t1
        self.evaluator = Evaluator(panel.slice_dates(start, t1), cache_bytes=eval_cache_bytes)
        self._features = set(panel.features)
        self.target = y[t0:t1].to(device=panel.device, dtype=torch.float32)
        self._prepared = PreparedTarget(self.target)
        self.cells = SampleCells(self.target, min_stocks)
        ydays = int((torch.isfinite(self.target).sum(dim=-1) >= min_stocks).sum())
        if isinstance(min_days, float):
            if not 0 < min_days <= 1:
                raise ValueError(f"a fractional min_days must be in (0, 1], got {min_days}")
            self.min_days = max(1, math.ceil(min_days * ydays))
        elif isinstance(min_days, int) and min_days >= 1:
            self.min_days = min_days
        else:
            raise ValueError(f"min_days must be an int >= 1 or a fraction, got {min_days!r}")
        self.pool = self._bind_pool(pool)
        self._pool_version = 0
        self._ref_version = 0
        self._ref_names: list[str] = []
        self._ref_buf = torch.zeros((self.T, 0, self.S), dtype=torch.float32,
                                    device=self.cells.device)
        self._ref_s = np.zeros((self.T, 0))
        self._ref_dd = np.zeros((self.T, 0))
        self._cache: OrderedDict[str, _Entry] = OrderedDict()
        self._n_scored = 0
        self._n_hits = 0
        self._failures: Counter[str] = Counter()
        self._wall = 0.0
        self._cpu = 0.0
        self._clock = _StageClock()
        self._vbuf: torch.Tensor | None = None  # the batch's values (CPU, see _stack)
        if reference is not None:
            self.set_reference(reference)

    @classmethod
    def from_splits(cls, panel: Panel, target: torch.Tensor, splits: Any, segment: str = "train",
                    **kwargs: Any) -> CandidateScorer:
        """Scorer on one segment of a :class:`~alphaminer.data.Splits` (``splits.ranges``)."""
        if segment not in splits.ranges:
            raise KeyError(f"no split {segment!r}; have {list(splits.ranges)}")
        return cls(panel, target, tuple(splits.ranges[segment]), **kwargs)

    def _bind_pool(self, pool: AlphaPool | PoolConfig | None) -> AlphaPool | None:
        if pool is None:
            return None
        if isinstance(pool, PoolConfig):
            pool = AlphaPool.from_config(pool)
        if not isinstance(pool, AlphaPool):
            raise TypeError(f"pool must be None, an AlphaPool or a PoolConfig, got "
                            f"{type(pool).__name__}")
        if pool.config.min_stocks != self.min_stocks:
            raise ValueError(f"the pool's min_stocks ({pool.config.min_stocks}) must equal the "
                             f"scorer's ({self.min_stocks}): they share the sample cells")
        if pool.cells is None:
            if pool.members:
                raise ValueError("the pool has members but no values: refit it on this split "
                                 "(pool.refit(target, values)) before binding it")
            pool.set_target(self.target)
        elif not pool.cells.same_as(self.cells):
            raise ValueError("the pool was fitted on another target or split than the scorer's")
        self.cells = pool.cells  # equal: share one object, so the pool reuses our z-scores
        return pool

    # ------------------------------------------------------------------ shape
    @property
    def T(self) -> int:
        return self.target.shape[0]

    @property
    def S(self) -> int:
        return self.target.shape[1]

    # ------------------------------------------------------------------ reference set
    @property
    def reference_names(self) -> list[str]:
        return list(self._ref_names)

    def set_reference(self, values: torch.Tensor | Sequence[torch.Tensor] | Sequence[str],
                      names: Sequence[str] | None = None) -> None:
        """Replace the reference set ``G`` of ``max_corr`` (formulas, or ``[T, S]`` values on
        the split's grid / a ``[G, T, S]`` stack)."""
        self._ref_names = []
        self._ref_buf = self._ref_buf[:, :0]
        self._ref_s = np.zeros((self.T, 0))
        self._ref_dd = np.zeros((self.T, 0))
        self._ref_version += 1
        self.add_reference(values, names)

    def add_reference(self, values: torch.Tensor | Sequence[torch.Tensor] | Sequence[str] | str,
                      names: Sequence[str] | None = None) -> None:
        """Append to the reference set (a formula that fails raises ``ValueError``)."""
        if isinstance(values, str | Node):
            values = [values]
        if isinstance(values, torch.Tensor) and values.ndim == 2:
            values = values.unsqueeze(0)
        items = list(values)
        if not items:
            return
        if names is None:
            names = [str(v) if isinstance(v, str | Node) else f"ref_{len(self._ref_names) + i}"
                     for i, v in enumerate(items)]
        names = [str(n) for n in names]
        if len(names) != len(items):
            raise ValueError(f"{len(names)} names for {len(items)} reference factors")
        vals = torch.stack([self.values(v) if isinstance(v, str | Node)
                            else self._check_values(v, n) for v, n in zip(items, names)])
        z, s, dd, _ = self.cells.standardise_sums(vals, names[0])
        self._ref_buf = torch.cat([self._ref_buf, z.transpose(0, 1)], dim=1).contiguous()
        self._ref_s = np.concatenate([self._ref_s, s.T], axis=1)
        self._ref_dd = np.concatenate([self._ref_dd, dd.T], axis=1)
        self._ref_names.extend(names)
        self._ref_version += 1

    def _check_values(self, v: torch.Tensor, name: str) -> torch.Tensor:
        t = torch.as_tensor(v)
        if tuple(t.shape) != (self.T, self.S):
            raise ValueError(f"reference {name!r} has shape {tuple(t.shape)}, expected the "
                             f"split's [T, S] = {(self.T, self.S)}")
        return t.to(device=self.cells.device, dtype=torch.float32)

    # ------------------------------------------------------------------ scoring
    def score(self, formulas: Iterable[str | Node]) -> list[Score]:
        """Score a batch of formulas (strings or ASTs); one :class:`Score` per input, in order."""
        t_start, c_start = time.perf_counter(), time.process_time()
        self._clock.active = True
        try:
            return self._score(list(formulas), count=True)
        finally:
            self._clock.active = False
            release_free_memory()  # the batch's freed temporaries (runtime docstring: why)
            self._wall += time.perf_counter() - t_start
            self._cpu += time.process_time() - c_start

    def score_one(self, formula: str | Node) -> Score:
        return self.score([formula])[0]

    def _score(self, formulas: list[str | Node], count: bool) -> list[Score]:
        keys, todo, stale = self._walk_cache(formulas, count)
        self._score_misses(todo, stale, count)
        return [self._cache[k].score for k in keys]

    def _walk_cache(self, formulas: list[str | Node], count: bool
                    ) -> tuple[list[str], dict[str, Node], dict[str, Node]]:
        """Canonical keys in input order, the formulas not cached (``todo``) and the cached
        ok ones whose pool or reference set changed since (``stale``); counts when ``count``."""
        keys: list[str] = []
        todo: dict[str, Node] = {}  # canonical text → node, for formulas not in the cache
        stale: dict[str, Node] = {}  # cached, but the pool or reference set changed since
        hits = 0
        for f in formulas:
            key, node, failed_now = self._resolve(f)
            keys.append(key)
            entry = self._cache.get(key)
            if failed_now or key in todo:
                continue
            if entry is None:
                todo[key] = node
                continue
            hits += 1
            self._cache.move_to_end(key)
            if entry.score.ok and (entry.ref_version != self._ref_version
                                   or entry.pool_version != self._pool_version):
                stale[key] = node
        if count:
            self._n_scored += len(formulas)
            self._n_hits += hits
        return keys, todo, stale

    def _score_misses(self, todo: dict[str, Node], stale: dict[str, Node],
                      count: bool) -> None:
        """Score ``todo`` and re-price ``stale`` into the cache, in batches (a subclass may
        score them elsewhere, e.g. :class:`~alphaminer.evaluation.distributed.DaskScorer`)."""
        items = list(todo.items()) + list(stale.items())
        for i in range(0, len(items), self.batch_size):
            self._score_batch(items[i:i + self.batch_size], fresh=set(todo))

    def _resolve(self, formula: str | Node) -> tuple[str, Node | None, bool]:
        """Cache key, AST and "failed to parse just now" of a formula; a parse failure is cached
        under the input text."""
        if isinstance(formula, Node):
            return str(formula), formula, False
        text = str(formula)
        entry = self._cache.get(text)
        if entry is not None and entry.kind == "parse error":
            return text, None, False
        try:
            node = parse(text)
        except (KeyboardInterrupt, MemoryError):
            raise
        except Exception as exc:  # noqa: BLE001 - any parse failure is a result, not a crash
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self._store(text, Score(text, False, f"parse error: {msg}"), "parse error")
            return text, None, True
        return str(node), node, False

    def _store(self, key: str, score: Score, kind: str | None,
               ref_version: int = -1, pool_version: int = -1) -> None:
        if key not in self._cache and kind is not None:
            self._failures[kind] += 1
        self._cache[key] = _Entry(score, kind, ref_version, pool_version)
        self._cache.move_to_end(key)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def _precheck(self, key: str, node: Node) -> tuple[str, str] | None:
        unknown = sorted(features_used(node) - self._features)
        if unknown:
            return "unknown feature", (f"unknown feature: {', '.join(unknown)} (panel has "
                                       f"{', '.join(sorted(self._features))})")
        ahead = max_lookahead(node)
        if ahead > 0:
            return "look-ahead", f"look-ahead: reads {ahead} days of future data"
        return None

    def _split_values(self, node: Node) -> torch.Tensor:
        """``[T_split, S]`` values (a view into the evaluator's output)."""
        return self.evaluator.evaluate(node)[self._offset:]

    def _evaluate_checked(self, key: str, node: Node
                          ) -> tuple[torch.Tensor | None, tuple[str, str] | None]:
        """``(values on the split, None)`` or ``(None, (failure kind, reason))``."""
        bad = self._precheck(key, node)
        if bad is not None:
            return None, bad
        try:
            v = self._split_values(node)
        except (KeyboardInterrupt, MemoryError):
            raise
        except Exception as exc:  # noqa: BLE001 - reported per formula, never raised
            return None, ("evaluation error", f"evaluation error: {type(exc).__name__}: {exc}")
        if not _any_finite(v):
            return None, ("all NaN", "all NaN on the split")
        return v, None

    def _score_batch(self, items: list[tuple[str, Node | None]], fresh: set[str]) -> None:
        # several formulas on CPU: the batch parallelises by formulas and blocks on worker
        # threads, so torch itself runs single-threaded throughout (no OpenMP spin-waits; see
        # metrics.serial_torch); one formula keeps torch's own threads
        serial = self.cells.device.type == "cpu" and sum(n is not None for _, n in items) > 1
        with serial_torch() if serial else nullcontext():
            self._score_batch_inner(items, fresh)

    def _score_batch_inner(self, items: list[tuple[str, Node | None]], fresh: set[str]) -> None:
        ok_keys: list[str] = []
        ok_vals: list[torch.Tensor] = []
        todo = [(k, n) for k, n in items if n is not None]  # None: a parse failure, stored
        # evaluation, one formula per worker thread (each running single-threaded torch ops:
        # on CPU, formulas side by side keep both cores busier than 2-thread ops on ~450k
        # elements); results and failures are recorded in input order
        evaluated: list[tuple[torch.Tensor | None, tuple[str, str] | None]] = [(None, None)] * \
            len(todo)

        def run(i: int) -> None:
            evaluated[i] = self._evaluate_checked(*todo[i])

        with self._clock("evaluate"):
            _run_blocks(run, list(range(len(todo))), self.cells.device)
        for (key, _), (v, bad) in zip(todo, evaluated):
            if bad is not None:
                self._store(key, Score(key, False, bad[1]), bad[0])
                continue
            ok_keys.append(key)
            ok_vals.append(v)
        if not ok_keys:
            return
        with self._clock("stack"):
            V = self._stack(ok_vals)
        del ok_vals
        # the pool-independent part: only for formulas not scored before
        new = [i for i, k in enumerate(ok_keys) if k in fresh]
        base: dict[str, Score] = {}
        if new:
            with self._clock("stack"):
                Vn = V[new] if len(new) < len(ok_keys) else V
            with self._clock("ic"):
                ic_d = daily_ic(Vn, self._prepared, self.min_stocks)
                ic, _, icir, n_days = ic_stats(ic_d)
            if self.compute_rank_ic:
                with self._clock("rank_ic"):
                    ric, _, ricir, _ = ic_stats(daily_rank_ic(Vn, self._prepared,
                                                              self.min_stocks))
            else:
                ric = ricir = torch.full_like(ic, _NAN)
            for j, i in enumerate(new):
                key, nd = ok_keys[i], int(n_days[j])
                bad = None if nd >= self.min_days else self._classify(Vn[j], nd)
                if bad is not None:
                    self._store(key, Score(key, False, bad[1], n_days=nd), bad[0])
                    continue
                base[key] = Score(key, True, None, ic=float(ic[j]), rank_ic=float(ric[j]),
                                  icir=float(icir[j]), rank_icir=float(ricir[j]), n_days=nd)
        for k in ok_keys:
            if k not in base and k in self._cache and self._cache[k].score.ok:
                base[k] = self._cache[k].score
        keep = [i for i, k in enumerate(ok_keys) if k in base]
        if not keep:
            return
        keys = [ok_keys[i] for i in keep]
        rows = keep if len(keep) < len(ok_keys) else None  # z-scored in place, not copied
        with self._clock("zscore"):
            z, zs, zdd, zb = self.cells.standardise_sums(V, rows=rows)
        with self._clock("max_corr"):
            max_corr = self._max_corr(z, zs, zdd)
        pool_res: list[AddResult | None] = [None] * len(keys)
        cur = _NAN
        if self.pool is not None:
            with self._clock("pool"):
                cur = self.pool.pool_ic()
                if self.pool.cells is self.cells:  # the z-scores above are the pool's
                    pool_res = list(self.pool.evaluate_many(keys, z, standardised=True,
                                                            sums=(zs, zdd, zb)))
                else:  # re-targeted after binding: the pool z-scores on its own cells
                    pool_res = list(self.pool.evaluate_many(keys, V if rows is None
                                                            else V[rows]))
        for j, key in enumerate(keys):
            b, pr = base[key], pool_res[j]
            s = Score(key, True, None, ic=b.ic, rank_ic=b.rank_ic, icir=b.icir,
                      rank_icir=b.rank_icir, max_corr=float(max_corr[j]),
                      pool_ic=_NAN if pr is None else pr.pool_ic,
                      pool_gain=_NAN if pr is None else pr.pool_ic - cur,
                      pool_accepted=None if pr is None else pr.accepted,
                      pool_reason=None if pr is None else pr.reason, n_days=b.n_days)
            self._store(key, s, None, self._ref_version, self._pool_version)

    def _stack(self, vals: list[torch.Tensor]) -> torch.Tensor:
        """``[C, T, S]`` copy of a batch's values. On CPU, into a buffer kept across batches
        (a fresh ~2 MB-per-formula stack costs page faults every batch) by worker threads."""
        if self.cells.device.type != "cpu" or len(vals) < 2:
            return torch.stack(vals)
        C = len(vals)
        buf = self._vbuf
        if buf is None or buf.shape[0] < C:
            buf = self._vbuf = torch.empty((max(C, self.batch_size), self.T, self.S),
                                           dtype=torch.float32)
        V = buf[:C]

        def copy(j: int) -> None:
            V[j].copy_(vals[j])

        _run_blocks(copy, list(range(C)), self.cells.device)
        return V

    def _classify(self, v: torch.Tensor, n_days: int) -> tuple[str, str]:
        """Why a formula with fewer than ``min_days`` finite daily ICs fails."""
        if n_days > 0:
            return "too few valid days", (f"too few valid days: {n_days} < {self.min_days}")
        pairs = torch.isfinite(v) & torch.isfinite(self.target)
        enough = pairs.sum(dim=-1) >= self.min_stocks
        if not bool(enough.any()):
            return ("too few valid stocks per day",
                    f"too few valid stocks per day: no day has {self.min_stocks} valid pairs")
        return ("no cross-sectional variation",
                "no cross-sectional variation: constant across stocks on every usable day")

    def _max_corr(self, z: torch.Tensor, s: np.ndarray, dd: np.ndarray) -> np.ndarray:
        """``max_g |mean_t corr_t|`` of z-scored candidates ``[C, T, S]`` (per-day ``Σ z``,
        ``Σ z²``: ``s``, ``dd``) with the reference set."""
        C = z.shape[0]
        if not self._ref_names:
            return np.zeros(C)
        cross = cross_sums(z, self._ref_buf)
        corr = mean_daily_corr(self.cells.n, s, dd, self._ref_s, self._ref_dd, cross,
                               self.min_stocks)
        return np.abs(corr).max(axis=1)

    # ------------------------------------------------------------------ values and commits
    def _checked(self, formula: str | Node) -> tuple[str, torch.Tensor]:
        """Canonical text and ``[T, S]`` split values (a view) of a formula that scores ok.

        Only the pool-independent verdict matters here, so a cached ``ok`` entry is used as is:
        re-pricing it against a changed pool or reference set (a dry run whose result nobody
        reads) would cost a whole scoring pass per commit. Uncached formulas are scored first.
        """
        key, node, _ = self._resolve(formula)
        entry = self._cache.get(key)
        if entry is not None:
            self._cache.move_to_end(key)
            sc = entry.score
        else:
            sc = self._score([formula], count=False)[0]
        if not sc.ok or node is None:
            raise ValueError(f"{sc.formula}: {sc.reason}")
        return key, self._split_values(node)

    def values(self, formula: str | Node) -> torch.Tensor:
        """``[T, S]`` values of ``formula`` on the split (a copy). Raises ``ValueError`` with the
        reason when the formula fails."""
        return self._checked(formula)[1].clone()

    def commit(self, formula: str | Node) -> AddResult:
        """``pool.try_add`` of the formula's values under its canonical text."""
        if self.pool is None:
            raise RuntimeError("this scorer has no pool: pass pool=AlphaPool(...)/PoolConfig")
        key, v = self._checked(formula)
        res = self.pool.try_add(key, v.clone())
        if res.accepted:
            self._pool_version += 1
        return res

    # ------------------------------------------------------------------ bookkeeping
    def stats(self) -> dict[str, Any]:
        """Counters: candidates scored (cache hits included), hits, failures by kind, wall and
        process CPU seconds inside :meth:`score`, candidates per second, the seconds of each of
        :data:`STAGES` (``stages``: ``{stage: {"cpu": s, "wall": s}}``; ``other`` is the rest:
        parsing, result cache, bookkeeping), and the evaluator's sub-expression cache."""
        ci = self.evaluator.cache_info()
        clock = self._clock
        stages = {k: {"cpu": clock.cpu[k], "wall": clock.wall[k]} for k in STAGES}
        stages["other"] = {"cpu": self._cpu - sum(clock.cpu.values()),
                           "wall": self._wall - sum(clock.wall.values())}
        return {
            "scored": self._n_scored,
            "cache_hits": self._n_hits,
            "cached_entries": len(self._cache),
            "failures": dict(self._failures),
            "seconds": self._wall,
            "cpu_seconds": self._cpu,
            "candidates_per_second": self._n_scored / self._wall if self._wall > 0 else _NAN,
            "stages": stages,
            "subexpr_cache": {"hits": ci.hits, "misses": ci.misses, "entries": ci.entries,
                              "bytes": ci.bytes},
        }

    def clear_cache(self) -> None:
        """Forget cached results and sub-expressions (counters are kept)."""
        self._cache.clear()
        self.evaluator.clear_cache()
