"""Evaluate expressions on a :class:`~alphaminer.panel.Panel` (docs/operators.md).

Operators run on each stock's full history; the universe mask is applied once, to the final
result (compute-then-mask), so windows are never NaN-poisoned by membership gaps. Cross-sectional
operators rank / z-score among the stocks that are in the universe that day (``cs_universe``,
the qlib/alphagen convention) — set ``cs_universe=False`` to use every stock with a value.

Sub-expression results are kept in a byte-bounded LRU cache keyed by canonical text, so a batch
of formulas sharing ``Mean(close,20d)`` computes it once.

``min_periods`` switches rolling operators to pandas' partial windows (qlib's
``rolling(d, min_periods=1)``): a window needs only ``min(min_periods, d)`` valid values, NaNs
inside it are skipped and warm-up days get values. The default (``None``) is the language's
full-window rule and runs the unchanged fast kernels.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from alphaminer.expr import kernels as kn
from alphaminer.expr.ast import Call, Constant, Feature, Node, Window
from alphaminer.expr.operators import OpKind
from alphaminer.expr.parser import parse
from alphaminer.panel import Panel

log = logging.getLogger(__name__)


@dataclass
class CacheInfo:
    hits: int = 0
    misses: int = 0
    entries: int = 0
    bytes: int = 0
    capacity: int = 0


class _LRU:
    """Byte-bounded LRU of tensors; entries larger than the capacity are not kept.

    Thread-safe (one lock around each operation), so formulas can be evaluated concurrently on
    one :class:`Evaluator`; two threads computing the same sub-expression at once both compute
    it and the first ``put`` wins (the values are identical)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = int(capacity)
        self.data: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> torch.Tensor | None:
        with self._lock:
            t = self.data.get(key)
            if t is None:
                self.misses += 1
                return None
            self.hits += 1
            self.data.move_to_end(key)
            return t

    def put(self, key: str, t: torch.Tensor) -> None:
        nbytes = t.element_size() * t.numel()
        with self._lock:
            if nbytes > self.capacity or key in self.data:
                return
            self.data[key] = t
            self.bytes += nbytes
            while self.bytes > self.capacity:
                _, old = self.data.popitem(last=False)
                self.bytes -= old.element_size() * old.numel()

    def clear(self) -> None:
        with self._lock:
            self.data.clear()
            self.bytes = 0


class Evaluator:
    """Evaluate expressions on one panel, sharing sub-expression results.

    Args:
        panel: the data; results live on ``panel.device``.
        cache_bytes: capacity of the sub-expression cache (0 disables caching across calls).
        cs_universe: cross-sectional operators only see stocks in the day's universe.
        min_periods: ``None`` (default): full windows. An integer ``m >= 1``: operators with a
            partial-window kernel (the table's ``partial_kernel``) need only ``min(m, d)`` valid
            values in a window and skip NaNs (pandas ``rolling(d, min_periods=m)``; qlib uses
            ``m = 1``). Operators without one (``Ref Delta TsReturn WMA EMA ArgMax ArgMin
            TsZScore``, elementwise, cross-sectional) are unchanged.
    """

    def __init__(self, panel: Panel, cache_bytes: int = 1 << 30, cs_universe: bool = True,
                 min_periods: int | None = None) -> None:
        if not isinstance(panel, Panel):
            raise TypeError(f"Evaluator needs a Panel, got {type(panel).__name__}")
        if min_periods is not None and (isinstance(min_periods, bool)
                                        or int(min_periods) != min_periods or min_periods < 1):
            raise ValueError(f"min_periods must be None or an integer >= 1, got {min_periods!r}")
        self.panel = panel
        self.cs_universe = cs_universe
        self.min_periods = None if min_periods is None else int(min_periods)
        self._cache = _LRU(cache_bytes)

    # ------------------------------------------------------------------ public API
    def evaluate(self, expr: Node | str, mask_universe: bool = True) -> torch.Tensor:
        """``[T, S]`` float32 values of ``expr``; NaN outside the universe if ``mask_universe``."""
        node = parse(expr) if isinstance(expr, str) else expr
        if not isinstance(node, Feature | Call):
            raise ValueError(f"can only evaluate series expressions, got {node}")
        out = self._eval(node, {})
        out = out.to(torch.float32)
        return self.panel.mask_universe(out) if mask_universe else out

    def evaluate_many(self, exprs: Sequence[Node | str], mask_universe: bool = True
                      ) -> torch.Tensor:
        """``[K, T, S]`` stack of :meth:`evaluate` results (sub-expressions shared)."""
        nodes = [parse(e) if isinstance(e, str) else e for e in exprs]
        out = torch.empty((len(nodes), self.panel.T, self.panel.S), dtype=torch.float32,
                          device=self.panel.device)
        for k, node in enumerate(nodes):
            if not isinstance(node, Feature | Call):
                raise ValueError(f"can only evaluate series expressions, got {node}")
            out[k] = self._eval(node, {})  # across formulas, sharing goes through the LRU
        return self.panel.mask_universe(out) if mask_universe else out

    def cache_info(self) -> CacheInfo:
        c = self._cache
        return CacheInfo(c.hits, c.misses, len(c.data), c.bytes, c.capacity)

    def clear_cache(self) -> None:
        self._cache.clear()

    # ------------------------------------------------------------------ internals
    def _eval(self, node: Node, memo: dict[str, torch.Tensor]) -> torch.Tensor:
        key = str(node)
        hit = memo.get(key)
        if hit is None:
            hit = self._cache.get(key)
        if hit is not None:
            memo[key] = hit
            return hit
        if isinstance(node, Feature):
            out = kn.finite_or_nan(self.panel.feature(node.name))
        elif isinstance(node, Call):
            out = self._call(node, memo)
        else:
            raise ValueError(f"{node} is not a series")
        memo[key] = out
        self._cache.put(key, out)
        return out

    def _arg(self, a: Node, memo: dict[str, torch.Tensor]) -> torch.Tensor | float | int:
        if isinstance(a, Constant):
            return a.value
        if isinstance(a, Window):
            return a.days
        return self._eval(a, memo)

    def _call(self, node: Call, memo: dict[str, torch.Tensor]) -> torch.Tensor:
        spec = node.spec
        args = [self._arg(a, memo) for a in node.args]
        if spec.kind is OpKind.CROSS_SECTIONAL and self.cs_universe:
            args = [self.panel.mask_universe(a) for a in args]
        if self.min_periods is not None and spec.partial_kernel is not None:
            d = next(a.days for a in node.args if isinstance(a, Window))
            out = spec.partial_kernel(*args, min_periods=min(self.min_periods, d))
        else:
            out = spec.kernel(*args)
        return kn.finite_or_nan(out.to(torch.float32))


def evaluate(expr: Node | str, panel: Panel, mask_universe: bool = True,
             min_periods: int | None = None) -> torch.Tensor:
    """One-off evaluation (no cache kept)."""
    return Evaluator(panel, cache_bytes=0, min_periods=min_periods).evaluate(
        expr, mask_universe=mask_universe)


def evaluate_many(exprs: Iterable[Node | str], panel: Panel, mask_universe: bool = True
                  ) -> torch.Tensor:
    """One-off batched evaluation sharing sub-expressions within the batch (256 MiB cache)."""
    return Evaluator(panel, cache_bytes=1 << 28).evaluate_many(list(exprs), mask_universe)
