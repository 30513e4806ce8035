"""Typed random formula trees and tree edits over a :class:`~alphaminer.expr.vocab.Vocabulary`.

Used by tree-based miners (GP, tree search) and by the property tests. Everything is drawn
from the vocabulary's features, constants, windows and operators, argument slots follow the
operator table (probed through :class:`Call`, so new argument types need no change here), and
randomness comes only from the ``numpy.random.Generator`` passed in (same seed → same trees).
Every result satisfies :func:`~alphaminer.expr.grammar.check_formula` under the generator's
options (vocabulary, ``max_len``, dimension rules, degeneracy) and its depth limits.

Depth is operator nesting (:func:`~alphaminer.expr.ast.depth`): a feature has depth 0.

- :meth:`TreeGenerator.grow`: any shape up to a maximum depth (Koza's *grow*: each series slot
  picks uniformly among features and operators while depth remains).
- :meth:`TreeGenerator.full`: every branch reaches exactly the given depth.
- :meth:`TreeGenerator.ramped_half_and_half`: half grow, half full, depths spread over a range.
- Edits: subtree mutation, point mutation (same-signature operator, feature, window or
  constant swap), hoist mutation, typed subtree crossover. An edit that finds no valid result
  within its attempts returns its input unchanged (still valid).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from alphaminer.expr.ast import Call, Constant, ExprError, Feature, Node, Window, depth
from alphaminer.expr.dimensions import RULES, Dim, DimensionError
from alphaminer.expr.grammar import DEGENERATE_PAIRS, check_formula, feature_dims_for
from alphaminer.expr.operators import OPERATORS
from alphaminer.expr.parser import to_rpn
from alphaminer.expr.vocab import Vocabulary

Path = tuple[int, ...]


@dataclass(frozen=True)
class _Slot:
    """Where a node may go: ``(op, position)`` of its parent, or the root (``op=None``)."""

    op: str | None = None
    position: int = 0


ROOT = _Slot()


class TreeGenerator:
    """Random well-typed trees and edits drawn from ``vocab``.

    ``dims`` (``True`` or a feature → Dim mapping) makes every result dimension-valid;
    ``reject_degenerate`` (default) excludes ``Sub(x,x)``-style calls; ``max_len`` bounds the
    RPN length and ``max_depth`` the depth of every result (edits included).
    """

    def __init__(self, vocab: Vocabulary, *, dims: bool | Mapping[str, Dim] | None = None,
                 reject_degenerate: bool = True, max_len: int | None = None,
                 max_depth: int | None = None, leaf_constant_prob: float = 0.2,
                 attempts: int = 50) -> None:
        self.vocab = vocab
        self.dims = dims
        self.feature_dims = feature_dims_for(vocab, dims)
        self.reject_degenerate = reject_degenerate
        self.max_len = max_len
        self.max_depth = max_depth
        self.leaf_constant_prob = leaf_constant_prob
        self.attempts = attempts
        n_f = len(vocab.features)
        self._features = [vocab.leaves[i] for i in range(n_f)]
        self._slot_leaves: dict[tuple[str, int], tuple[list[Node], list[Node]]] = {}
        for op in vocab.operators:
            for p in range(OPERATORS[op].arity):
                acc = sorted(vocab.accepted_leaves(op, p))
                series = [vocab.leaves[i] for i in acc if i < n_f]
                other = [vocab.leaves[i] for i in acc if i >= n_f]
                self._slot_leaves[(op, p)] = (series, other)
        # operators that can be built at all from this vocabulary's leaves
        self._ops = [op for op in vocab.operators
                     if all(self._slot_leaves[(op, p)][0] or self._slot_leaves[(op, p)][1]
                            for p in range(OPERATORS[op].arity))]
        if not self._ops:
            raise ValueError("no operator of the vocabulary can be built from its leaves")
        self._dim_cache: dict[Node, Dim] = {}

    # ------------------------------------------------------------------ validity
    def check(self, node: Node) -> str | None:
        """Why ``node`` breaks the generator's options (``None`` if it is fine)."""
        reason = check_formula(node, self.vocab, max_len=self.max_len,
                               dims=self.feature_dims, reject_degenerate=self.reject_degenerate)
        if reason is None and self.max_depth is not None and depth(node) > self.max_depth:
            return f"depth {depth(node)} exceeds max_depth={self.max_depth}"
        return reason

    def _dim(self, node: Node) -> Dim:
        """Dimension of a node whose sub-trees are known valid (memoised; raises if invalid)."""
        got = self._dim_cache.get(node)
        if got is not None:
            return got
        if isinstance(node, Constant):
            out = Dim()
        elif isinstance(node, Feature):
            out = self.feature_dims[node.name]  # type: ignore[index]
        else:
            assert isinstance(node, Call)
            out = RULES[node.spec.dim_rule](
                *(self._dim(a) for a in node.args if not isinstance(a, Window)))
        if len(self._dim_cache) > 100_000:
            self._dim_cache.clear()
        self._dim_cache[node] = out
        return out

    def _make(self, op: str, args: list[Node]) -> Node | None:
        """``Call(op, args)`` if it is valid under the options (children already are)."""
        try:
            node = Call(op, args)
        except ExprError:
            return None
        if self.reject_degenerate and any(
                args[i] == args[j] for i, j in DEGENERATE_PAIRS.get(op, ())):
            return None
        if self.feature_dims is not None:
            try:
                self._dim(node)
            except DimensionError:
                return None
        return node

    # ------------------------------------------------------------------ generation
    def _leaf(self, rng: np.random.Generator, slot: _Slot) -> Node | None:
        if slot.op is None:
            return self._features[rng.integers(len(self._features))]
        series, other = self._slot_leaves[(slot.op, slot.position)]
        if other and (not series or rng.random() < self.leaf_constant_prob):
            return other[rng.integers(len(other))]
        if series:
            return series[rng.integers(len(series))]
        return None

    def _accepts_series(self, slot: _Slot) -> bool:
        return slot.op is None or bool(self._slot_leaves[(slot.op, slot.position)][0])

    def _gen(self, rng: np.random.Generator, d: int, full: bool, slot: _Slot) -> Node | None:
        """One sub-tree for ``slot`` of depth <= d (== d for series slots when ``full``)."""
        if not self._accepts_series(slot):
            return self._leaf(rng, slot)  # windows / constant-only slots
        n_terms = len(self._features)
        if d == 0 or (not full and rng.random() < n_terms / (n_terms + len(self._ops))):
            return self._leaf(rng, slot)
        for _ in range(self.attempts):
            op = self._ops[rng.integers(len(self._ops))]
            args: list[Node] = []
            for p in range(OPERATORS[op].arity):
                a = self._gen(rng, d - 1, full, _Slot(op, p))
                if a is None:
                    break
                args.append(a)
            else:
                if full and max(depth(a) for a in args) != d - 1:
                    continue
                node = self._make(op, args)
                if node is not None:
                    return node
        return None

    def _draw(self, rng: np.random.Generator, d: int, full: bool) -> Node:
        for _ in range(self.attempts):
            node = self._gen(rng, d, full, ROOT)
            if node is not None and self.check(node) is None:
                return node
        how = "full" if full else "grow"
        raise RuntimeError(f"could not draw a valid {how} tree of depth {d} in "
                           f"{self.attempts} attempts (vocabulary or limits too tight?)")

    def grow(self, rng: np.random.Generator, max_depth: int) -> Node:
        """A tree of depth <= ``max_depth`` of any shape."""
        return self._draw(rng, max_depth, full=False)

    def full(self, rng: np.random.Generator, depth_: int) -> Node:
        """A tree whose every series branch has depth exactly ``depth_``."""
        return self._draw(rng, depth_, full=True)

    def ramped_half_and_half(self, rng: np.random.Generator, n: int, min_depth: int = 1,
                             max_depth: int = 4) -> list[Node]:
        """``n`` trees: depths cycle over ``min_depth..max_depth``, alternating full/grow."""
        if not 0 <= min_depth <= max_depth:
            raise ValueError(f"need 0 <= min_depth <= max_depth, got {min_depth}, {max_depth}")
        depths = range(min_depth, max_depth + 1)
        out = []
        for i in range(n):
            d = depths[(i // 2) % len(depths)]
            out.append(self.full(rng, d) if i % 2 == 0 else self.grow(rng, d))
        return out

    # ------------------------------------------------------------------ paths
    @staticmethod
    def positions(tree: Node) -> list[tuple[Path, Node, _Slot]]:
        """Every node with its path (argument indices from the root) and slot, pre-order."""
        out: list[tuple[Path, Node, _Slot]] = []

        def visit(node: Node, path: Path, slot: _Slot) -> None:
            out.append((path, node, slot))
            if isinstance(node, Call):
                for i, a in enumerate(node.args):
                    visit(a, (*path, i), _Slot(node.op, i))

        visit(tree, (), ROOT)
        return out

    def replace(self, tree: Node, path: Path, new: Node) -> Node | None:
        """``tree`` with the node at ``path`` replaced, or ``None`` if that is invalid."""
        if not path:
            return new if self.check(new) is None else None

        def rebuild(node: Node, rest: Path) -> Node | None:
            assert isinstance(node, Call)
            args = list(node.args)
            child = new if len(rest) == 1 else rebuild(args[rest[0]], rest[1:])
            if child is None:
                return None
            args[rest[0]] = child
            return self._make(node.op, args)

        out = rebuild(tree, path)
        return out if out is not None and self.check(out) is None else None

    @staticmethod
    def subtree(tree: Node, path: Path) -> Node:
        for i in path:
            assert isinstance(tree, Call)
            tree = tree.args[i]
        return tree

    # ------------------------------------------------------------------ edits
    def subtree_mutation(self, tree: Node, rng: np.random.Generator, max_depth: int = 2
                         ) -> Node:
        """Replace a random sub-tree (not a window) by a fresh grow tree for the same slot."""
        spots = [(p, s) for p, n, s in self.positions(tree) if not isinstance(n, Window)]
        for _ in range(self.attempts):
            path, slot = spots[rng.integers(len(spots))]
            new = self._gen(rng, max_depth, False, slot)
            if new is None or new == self.subtree(tree, path):
                continue
            out = self.replace(tree, path, new)
            if out is not None:
                return out
        return tree

    def _alternatives(self, node: Node, slot: _Slot) -> list[Node | _Pending]:
        """Same-kind replacements of one node: operator by same-signature operator, etc."""
        if isinstance(node, Call):
            sig = OPERATORS[node.op].args
            return [_Pending(op, node.args)
                    for op in self._ops if op != node.op and OPERATORS[op].args == sig]
        pool: list[Node]
        if slot.op is None:
            pool = list(self._features)
        else:
            series, other = self._slot_leaves[(slot.op, slot.position)]
            pool = series + other
        return [x for x in pool if type(x) is type(node) and x != node]  # type: ignore[misc]

    def point_mutation(self, tree: Node, rng: np.random.Generator) -> Node:
        """Change one node in place: an operator for another of the same argument types, a
        feature for a feature, a window for a window, a constant for a constant."""
        spots = self.positions(tree)
        order = rng.permutation(len(spots))
        for idx in order[: self.attempts]:
            path, node, slot = spots[idx]
            alts = self._alternatives(node, slot)
            for j in rng.permutation(len(alts)):
                alt = alts[j]
                new = self._make(alt.op, list(alt.args)) if isinstance(alt, _Pending) else alt
                if new is None:
                    continue
                out = self.replace(tree, path, new)
                if out is not None:
                    return out
        return tree

    def hoist_mutation(self, tree: Node, rng: np.random.Generator) -> Node:
        """Replace the tree by one of its proper series sub-trees (a feature stays itself)."""
        subs = [n for p, n, _ in self.positions(tree) if p and isinstance(n, Feature | Call)]
        if not subs:
            return tree
        for j in rng.permutation(len(subs)):
            if self.check(subs[j]) is None:
                return subs[j]
        return tree

    def crossover(self, a: Node, b: Node, rng: np.random.Generator) -> tuple[Node, Node]:
        """Swap a random sub-tree of ``a`` with one of the same kind in ``b`` (series with
        series, constant with constant, window with window); both children are valid."""
        pa, pb = self.positions(a), self.positions(b)

        def kind(n: Node) -> type:
            return Call if isinstance(n, Feature | Call) else type(n)

        for _ in range(self.attempts):
            path_a, node_a, _ = pa[rng.integers(len(pa))]
            matches = [(p, n) for p, n, _ in pb if kind(n) is kind(node_a) and n != node_a]
            if not matches:
                continue
            path_b, node_b = matches[rng.integers(len(matches))]
            ca = self.replace(a, path_a, node_b)
            cb = self.replace(b, path_b, node_a) if ca is not None else None
            if ca is not None and cb is not None:
                return ca, cb
        return a, b

    def rpn_len(self, tree: Node) -> int:
        return len(to_rpn(tree))


@dataclass(frozen=True)
class _Pending:
    """An operator swap not yet validated (its Call may be invalid for the new operator)."""

    op: str
    args: tuple[Node, ...]


__all__ = ["ROOT", "TreeGenerator"]
