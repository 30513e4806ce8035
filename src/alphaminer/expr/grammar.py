"""Grammar of mined formulas: an incremental RPN builder with *exact* valid-token masks.

A token sequence (END not counted) is a **valid formula** under a vocabulary and options when

1. every token is in the vocabulary and :func:`~alphaminer.expr.parser.from_rpn` accepts it
   (arity, argument types, minimum windows, at least one series operand: :class:`Call`'s rules);
2. the result is a series (a feature or an operator call, not a bare constant);
3. it has at most ``max_len`` tokens;
4. with dimension rules on, :func:`~alphaminer.expr.dimensions.dimension_of` accepts it;
5. with ``reject_degenerate``, no sub-expression applies an operator of
   :data:`DEGENERATE_PAIRS` to two identical arguments at the listed positions (``Sub(x,x)``,
   ``Div(x,x)``, ``Greater(x,x)``, ``Corr(x,x,d)``, ``Cov(x,x,d)`` ...): they are constant,
   equal to ``x`` or a duplicate of a simpler operator whatever ``x`` is.

:meth:`RPNBuilder.valid_mask` marks exactly the tokens after which the sequence can still be
completed into a valid formula (END exactly when the sequence already is one). How it stays
exact and fast:

- The stack is abstracted to *items*: a series with its dimension, a constant class, a window
  class (classes group leaves the operator table treats alike). A dimension-free,
  degeneracy-free minimal completion length of the abstract stack is computed exactly by
  decomposing any completion into steps that each consume the current top (memoised); it
  prunes every search below.
- Feasibility with dimensions is a depth-first search over abstract moves bounded by the
  remaining length and memoised per (stack, length) with monotone bounds.
- Degeneracy depends on *which* sub-expressions are equal, which abstract items forget. A
  *strict* search that never applies a degenerate-prone operator to two equal abstract items
  (so to two equal trees) is a sufficient condition; the plain search a necessary one. Only when
  they disagree does an exact search over the concrete stack decide (pruned by both).

:func:`check_formula` states the same definition for a finished tree.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

import numpy as np

from alphaminer.expr.ast import Call, ExprError, Feature, Node
from alphaminer.expr.dimensions import FEATURE_DIMS, NONE, RULES, Dim, DimensionError
from alphaminer.expr.operators import OPERATORS
from alphaminer.expr.parser import to_rpn
from alphaminer.expr.vocab import TokenKind, Vocabulary

#: operator → argument positions whose equality makes the call degenerate (only operators that
#: exist in the table are kept): differences/ratios/comparisons of a thing with itself are
#: constant, Greater/Less(x, x) = x, Corr(x, x) = 1, Cov(x, x) = Var(x), If(c, x, x) = x.
DEGENERATE_PAIRS: dict[str, tuple[tuple[int, int], ...]] = {
    name: (pair,) for name, pair in {
        "Sub": (0, 1), "Div": (0, 1), "Greater": (0, 1), "Less": (0, 1), "Cov": (0, 1),
        "Corr": (0, 1), "Gt": (0, 1), "Ge": (0, 1), "Lt": (0, 1), "Le": (0, 1), "Eq": (0, 1),
        "Ne": (0, 1), "If": (1, 2),
    }.items() if name in OPERATORS and OPERATORS[name].arity > max(pair)}

_S, _C, _W = 0, 1, 2
_INF = 1 << 30
_MEMO_LIMIT = 2_000_000
_CONCRETE_LIMIT = 200_000


class GrammarError(ValueError):
    """A token that cannot follow the current sequence, or an unfinished formula."""


DimsOption = bool | Mapping[str, Dim] | None


def feature_dims_for(vocab: Vocabulary, dims: DimsOption) -> dict[str, Dim] | None:
    """The feature → Dim table the options ask for (``None``: dimension rules off).

    ``True`` uses :data:`FEATURE_DIMS`; a mapping extends/overrides it. Every vocabulary feature
    needs a dimension.
    """
    if dims is None or dims is False:
        return None
    table = dict(FEATURE_DIMS)
    if dims is not True:
        table.update(dict(dims))
    missing = [f for f in vocab.features if f not in table]
    if missing:
        raise ValueError(f"no dimension for features {missing}; pass dims={{name: Dim}}")
    return {f: table[f] for f in vocab.features}


def degenerate_reason(node: Node) -> str | None:
    """Why ``node`` is degenerate (first offending sub-expression), else ``None``."""
    if not isinstance(node, Call):
        return None
    for a in node.args:
        reason = degenerate_reason(a)
        if reason:
            return reason
    for i, j in DEGENERATE_PAIRS.get(node.op, ()):
        if node.args[i] == node.args[j]:
            return f"degenerate: {node} has identical arguments {i + 1} and {j + 1}"
    return None


def check_formula(node: Node, vocab: Vocabulary | None = None, *, max_len: int | None = None,
                  dims: DimsOption = None, reject_degenerate: bool = True) -> str | None:
    """The reason ``node`` is not a valid finished formula under the options, else ``None``.

    Same definition as the builder's masks (module docstring); ``vocab=None`` skips the
    vocabulary check.
    """
    from alphaminer.expr.dimensions import dimension_of

    if not isinstance(node, Feature | Call):
        return f"{node} is not a series (a formula needs a feature or an operator)"
    tokens = to_rpn(node)
    if vocab is not None:
        for t in tokens:
            if t not in vocab:
                return f"token {t!r} is not in the vocabulary"
    if max_len is not None and len(tokens) > max_len:
        return f"{len(tokens)} tokens exceed max_len={max_len}"
    if dims is not None and dims is not False:
        table = dict(FEATURE_DIMS)
        if dims is not True:
            table.update(dict(dims))
        try:
            dimension_of(node, table)
        except DimensionError as exc:
            return f"dimension: {exc}"
    if reject_degenerate:
        return degenerate_reason(node)
    return None


class Grammar:
    """Memoised completion oracle for one (vocabulary, dimensions, degeneracy) setting.

    Shared by every builder with those options (:meth:`get`), so tree search and batched RL
    reuse each other's work. Independent of ``max_len``: feasibility is asked per budget.
    """

    def __init__(self, vocab: Vocabulary, dims: DimsOption = None,
                 reject_degenerate: bool = True) -> None:
        self.vocab = vocab
        self.feature_dims = feature_dims_for(vocab, dims)
        self.use_dims = self.feature_dims is not None
        self.reject_degenerate = bool(reject_degenerate)
        self.V = len(vocab)
        self._items: dict[tuple, int] = {}
        self._item_kind: list[int] = []
        self._item_rep: list[int] = []  # representative leaf token (constants/windows)
        self._item_dim: list[Dim | None] = []
        self._kind_item: list[int] = []
        self._leaf_item: list[int] = []
        self._build_leaves()
        self._ops: list[tuple[int, str, int, tuple[tuple[int, int], ...]]] = [
            (t, vocab.token(t), OPERATORS[vocab.token(t)].arity,
             DEGENERATE_PAIRS.get(vocab.token(t), ()) if self.reject_degenerate else ())
            for t in vocab.ids_of_kind(TokenKind.OPERATOR)]
        self._apply_memo: dict[tuple, int] = {}
        self._call_memo: dict[tuple, bool] = {}
        self._need_memo: dict[tuple, int] = {}
        self._feas_memo: dict[tuple, tuple[int, int]] = {}
        self._conc_memo: dict[tuple, tuple[int, int]] = {}
        self._fresh_memo: dict[tuple[int, int], tuple[int, ...]] = {}
        self._series_kind = self._intern(_S, -1, None)

    @classmethod
    def get(cls, vocab: Vocabulary, dims: DimsOption = None,
            reject_degenerate: bool = True) -> Grammar:
        table = feature_dims_for(vocab, dims)
        key = None if table is None else tuple(sorted(table.items(), key=lambda kv: kv[0]))
        return _cached_grammar(vocab, key, bool(reject_degenerate))

    # ------------------------------------------------------------------ items
    def _intern(self, kind: int, rep: int, dim: Dim | None) -> int:
        key = (kind, rep, dim)
        i = self._items.get(key)
        if i is None:
            i = len(self._item_kind)
            self._items[key] = i
            self._item_kind.append(kind)
            self._item_rep.append(rep)
            self._item_dim.append(dim)
            self._kind_item.append(i if dim is None else self._intern(kind, rep, None))
        return i

    def _build_leaves(self) -> None:
        v = self.vocab
        slots = [(op, p) for op in v.operators for p in range(OPERATORS[op].arity)]
        reps: dict[tuple, int] = {}
        for t in range(v.n_leaves):
            kind = v.kind(t)
            if kind is TokenKind.FEATURE:
                dim = self.feature_dims[v.features[t]] if self.use_dims else None
                self._leaf_item.append(self._intern(_S, -1, dim))
                continue
            # constants/windows the table treats alike at every slot share one class
            sig = (kind, tuple(t in v.accepted_leaves(op, p) for op, p in slots))
            rep = reps.setdefault(sig, t)
            k = _C if kind is TokenKind.CONSTANT else _W
            dim = NONE if (k == _C and self.use_dims) else None
            self._leaf_item.append(self._intern(k, rep, dim))
        groups: dict[int, list[int]] = {}
        for t, it in enumerate(self._leaf_item):
            groups.setdefault(it, []).append(t)
        self._leaf_groups = [(it, np.asarray(ts)) for it, ts in groups.items()]
        self._leaf_items = tuple(groups)

    def leaf_item(self, token: int) -> int:
        return self._leaf_item[token]

    def is_series(self, item: int) -> bool:
        return self._item_kind[item] == _S

    # ------------------------------------------------------------------ operator application
    def apply(self, k: int, args: tuple[int, ...]) -> int:
        """Result item of operator ``k`` (index into the vocabulary's operators) or -1."""
        key = (k, args)
        res = self._apply_memo.get(key)
        if res is not None:
            return res
        res = self._apply_uncached(k, args)
        self._apply_memo[key] = res
        return res

    def _apply_uncached(self, k: int, args: tuple[int, ...]) -> int:
        _, name, _, _ = self._ops[k]
        v = self.vocab
        for p, it in enumerate(args):
            if self._item_kind[it] == _S:
                if not v.accepts_series(name, p):
                    return -1
            elif self._item_rep[it] not in v.accepted_leaves(name, p):
                return -1
        kinds = tuple(self._kind_item[a] for a in args)
        ok = self._call_memo.get((k, kinds))
        if ok is None:
            nodes = [Feature(v.features[0]) if self._item_kind[a] == _S
                     else v.leaf(self._item_rep[a]) for a in kinds]
            try:
                Call(name, nodes)
                ok = True
            except ExprError:
                ok = False
            self._call_memo[(k, kinds)] = ok
        if not ok:
            return -1
        dim = None
        arg_dims = [self._item_dim[a] for a in args if self._item_kind[a] != _W]
        if self.use_dims and all(d is not None for d in arg_dims):  # else: a kind-level query
            try:
                dim = RULES[OPERATORS[name].dim_rule](*arg_dims)
            except DimensionError:
                return -1
        return self._intern(_S, -1, dim)

    def _kinds(self, A: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(self._kind_item[i] for i in A) if self.use_dims else A

    # ------------------------------------------------------------------ exact lower bound
    def _fresh_kinds(self, k: int, p: int) -> tuple[int, ...]:
        key = (k, p)
        out = self._fresh_memo.get(key)
        if out is None:
            name = self._ops[k][1]
            cands = {self._kind_item[it] for it in self._leaf_items}
            out = tuple(c for c in sorted(cands)
                        if (self._item_kind[c] == _S and self.vocab.accepts_series(name, p))
                        or (self._item_kind[c] != _S
                            and self._item_rep[c] in self.vocab.accepted_leaves(name, p)))
            self._fresh_memo[key] = out
        return out

    def need(self, K: tuple[int, ...]) -> int:
        """Exact minimal completion length of a dimension-free, degeneracy-free kind stack.

        Any completion consumes the current top T by some operator with T at position j; the
        j arguments before it are the items right below T (nothing else can sit there) and the
        ones after it are fresh sub-formulas, at best one leaf each. So the minimum over those
        steps, recursing on the shorter stack, is exact.
        """
        if len(K) == 1 and self._item_kind[K[0]] == _S:
            return 0
        got = self._need_memo.get(K)
        if got is not None:
            return got
        self._need_memo[K] = _INF  # a step back to this very state never helps
        best = _INF
        n = len(K)
        T = K[-1]
        S = self._series_kind
        for k, (_, _, arity, _) in enumerate(self._ops):
            for j in range(min(arity, n)):
                if j == 0 and T == S:
                    continue  # S -> S costs and changes nothing
                before = K[n - 1 - j:n - 1]
                fresh_opts = [self._fresh_kinds(k, p) for p in range(j + 1, arity)]
                cost = 1 + (arity - 1 - j)
                if cost >= best:
                    continue
                rest = K[:n - 1 - j] + (S,)
                for fresh in itertools.product(*fresh_opts):
                    if self.apply(k, (*before, T, *fresh)) >= 0:
                        best = min(best, cost + self.need(rest))
                        break
        self._need_memo[K] = best
        return best

    # ------------------------------------------------------------------ feasibility
    def feasible(self, A: tuple[int, ...], r: int, strict: bool = False) -> bool:
        """Can the abstract stack ``A`` become a valid formula within ``r`` more tokens?

        ``strict`` forbids degenerate-prone operators on two equal items, which makes a found
        completion non-degenerate for every concrete stack with these items.
        """
        if len(A) == 1 and self._item_kind[A[0]] == _S:
            return True
        if r <= 0 or self.need(self._kinds(A)) > r:
            return False
        if not self.use_dims and not strict:
            return True  # need() is exact then
        key = (A, strict)
        bad, good = self._feas_memo.get(key, (-1, _INF))
        if r >= good:
            return True
        if r <= bad:
            return False
        ok = False
        n = len(A)
        for k, (_, _, arity, pairs) in enumerate(self._ops):
            if arity > n:
                continue
            args = A[n - arity:]
            res = self.apply(k, args)
            if res < 0 or (strict and any(args[i] == args[j] for i, j in pairs)):
                continue
            if self.feasible(A[:n - arity] + (res,), r - 1, strict):
                ok = True
                break
        if not ok:
            for it in self._leaf_items:
                if self.feasible((*A, it), r - 1, strict):
                    ok = True
                    break
        if len(self._feas_memo) > _MEMO_LIMIT:
            self._feas_memo.clear()
        self._feas_memo[key] = (bad, min(good, r)) if ok else (max(bad, r), good)
        return ok

    def _make_call(self, k: int, args: Sequence[Node]) -> Node | None:
        try:
            return Call(self._ops[k][1], list(args))
        except ExprError:
            return None

    def feasible_concrete(self, nodes: tuple[Node, ...], A: tuple[int, ...], r: int) -> bool:
        """Exact feasibility of a concrete stack (degeneracy judged on the actual trees)."""
        if len(A) == 1 and self._item_kind[A[0]] == _S:
            return True
        if not self.feasible(A, r):
            return False
        if not self.reject_degenerate or self.feasible(A, r, strict=True):
            return True
        key = nodes
        bad, good = self._conc_memo.get(key, (-1, _INF))
        if r >= good:
            return True
        if r <= bad:
            return False
        ok = False
        n = len(A)
        for k, (_, _, arity, pairs) in enumerate(self._ops):
            if arity > n:
                continue
            top = nodes[n - arity:]
            res = self.apply(k, A[n - arity:])
            if res < 0 or any(top[i] == top[j] for i, j in pairs):
                continue
            node = self._make_call(k, top)
            if node is not None and self.feasible_concrete(
                    (*nodes[:n - arity], node), (*A[:n - arity], res), r - 1):
                ok = True
                break
        if not ok:
            for t in range(self.vocab.n_leaves):
                if self.feasible_concrete((*nodes, self.vocab.leaves[t]),
                                          (*A, self._leaf_item[t]), r - 1):
                    ok = True
                    break
        if len(self._conc_memo) > _CONCRETE_LIMIT:
            self._conc_memo.clear()
        self._conc_memo[key] = (bad, min(good, r)) if ok else (max(bad, r), good)
        return ok

    # ------------------------------------------------------------------ masks
    def mask(self, nodes: tuple[Node, ...], A: tuple[int, ...], r: int) -> np.ndarray:
        """Valid next tokens for a concrete stack with ``r`` formula tokens left."""
        m = np.zeros(self.V, dtype=bool)
        if len(A) == 1 and self._item_kind[A[0]] == _S:
            m[self.vocab.end_id] = True
        if r <= 0:
            return m
        strict_needed = self.reject_degenerate
        for it, toks in self._leaf_groups:
            child = (*A, it)
            if not self.feasible(child, r - 1):
                continue
            if not strict_needed or self.feasible(child, r - 1, strict=True):
                m[toks] = True
                continue
            for t in toks:
                m[t] = self.feasible_concrete((*nodes, self.vocab.leaves[t]), child, r - 1)
        n = len(A)
        for k, (tok, arity, pairs) in enumerate((o[0], o[2], o[3]) for o in self._ops):
            if arity > n:
                continue
            res = self.apply(k, A[n - arity:])
            if res < 0:
                continue
            top = nodes[n - arity:]
            if any(top[i] == top[j] for i, j in pairs):
                continue
            child = (*A[:n - arity], res)
            if not self.feasible(child, r - 1):
                continue
            if strict_needed and not self.feasible(child, r - 1, strict=True):
                node = self._make_call(k, top)
                if node is None or not self.feasible_concrete(
                        (*nodes[:n - arity], node), child, r - 1):
                    continue
            m[tok] = True
        return m


@lru_cache(maxsize=64)
def _cached_grammar(vocab: Vocabulary, dims_key: tuple | None,
                    reject_degenerate: bool) -> Grammar:
    return Grammar(vocab, None if dims_key is None else dict(dims_key), reject_degenerate)


class RPNBuilder:
    """Build one formula token by token under the grammar; ``valid_mask()`` is exact.

    >>> b = RPNBuilder(Vocabulary.default(), max_len=20)
    >>> for t in ["close", "20d", "Mean", "END"]:
    ...     b.push(t)
    >>> str(b.finish())
    'Mean(close,20d)'
    """

    __slots__ = ("_done", "_items", "_mask", "_nodes", "_tokens", "grammar", "max_len",
                 "vocab")

    def __init__(self, vocab: Vocabulary, max_len: int = 20, dims: DimsOption = None,
                 reject_degenerate: bool = True, *, grammar: Grammar | None = None) -> None:
        if max_len < 1:
            raise ValueError(f"max_len must be >= 1, got {max_len}")
        self.vocab = vocab
        self.max_len = int(max_len)
        self.grammar = grammar or Grammar.get(vocab, dims, reject_degenerate)
        self._nodes: tuple[Node, ...] = ()
        self._items: tuple[int, ...] = ()
        self._tokens: list[int] = []
        self._done = False
        self._mask: np.ndarray | None = None

    # ------------------------------------------------------------------ state
    @property
    def tokens(self) -> tuple[int, ...]:
        """Formula token ids pushed so far (END excluded)."""
        return tuple(self._tokens)

    @property
    def texts(self) -> list[str]:
        return [self.vocab.token(t) for t in self._tokens]

    @property
    def stack(self) -> tuple[Node, ...]:
        return self._nodes

    @property
    def done(self) -> bool:
        """END has been pushed."""
        return self._done

    @property
    def remaining(self) -> int:
        """Formula tokens still allowed."""
        return self.max_len - len(self._tokens)

    def copy(self) -> RPNBuilder:
        """Independent clone (shares the immutable nodes and the memoised grammar)."""
        b = RPNBuilder.__new__(RPNBuilder)
        b.vocab, b.max_len, b.grammar = self.vocab, self.max_len, self.grammar
        b._nodes, b._items, b._tokens = self._nodes, self._items, list(self._tokens)
        b._done, b._mask = self._done, self._mask
        return b

    __copy__ = copy

    # ------------------------------------------------------------------ masks
    def valid_mask(self) -> np.ndarray:
        """Bool ``[len(vocab)]`` (read-only, cached until the next push): tokens after which a
        valid formula is still reachable within ``max_len``."""
        if self._mask is None:
            if self._done:
                self._mask = np.zeros(self.grammar.V, dtype=bool)
            else:
                self._mask = self.grammar.mask(self._nodes, self._items, self.remaining)
            self._mask.flags.writeable = False
        return self._mask

    def valid_tokens(self) -> list[int]:
        return np.flatnonzero(self.valid_mask()).tolist()

    # ------------------------------------------------------------------ building
    def push(self, token: int | str) -> None:
        """Append a token (id or RPN text); raises :class:`GrammarError` if it is invalid."""
        t = self.vocab.id(token) if isinstance(token, str) else int(token)
        if not 0 <= t < self.grammar.V:
            raise GrammarError(f"token id {t} out of range 0..{self.grammar.V - 1}")
        if not self.valid_mask()[t]:
            raise GrammarError(self._why(t))
        g = self.grammar
        if t == self.vocab.end_id:
            self._done = True
        elif t < self.vocab.n_leaves:
            self._nodes = (*self._nodes, self.vocab.leaves[t])
            self._items = (*self._items, g.leaf_item(t))
            self._tokens.append(t)
        else:
            k = t - self.vocab.first_operator_id
            arity = g._ops[k][2]
            n = len(self._items)
            node = g._make_call(k, self._nodes[n - arity:])
            if node is None:  # the mask said valid: the probe and Call disagree
                raise GrammarError(f"{self.vocab.token(t)} could not be built on "
                                   f"{list(map(str, self._nodes[n - arity:]))}")
            self._nodes = (*self._nodes[:n - arity], node)
            self._items = (*self._items[:n - arity], g.apply(k, self._items[n - arity:]))
            self._tokens.append(t)
        self._mask = None

    def extend(self, tokens: Iterable[int | str]) -> None:
        for t in tokens:
            self.push(t)

    def _why(self, t: int) -> str:
        where = f"token {self.vocab.token(t)!r} (id {t}) after {self.texts}"
        if self._done:
            return f"{where}: the formula is finished (END was pushed)"
        if t == self.vocab.end_id:
            return f"{where}: END needs exactly one series on the stack, not " \
                   f"{[str(n) for n in self._nodes]}"
        if self.remaining <= 0:
            return f"{where}: max_len={self.max_len} reached, only END may follow"
        if t >= self.vocab.n_leaves:
            k = t - self.vocab.first_operator_id
            arity, pairs = self.grammar._ops[k][2], self.grammar._ops[k][3]
            n = len(self._nodes)
            if arity > n:
                return f"{where}: needs {arity} operands, the stack has {n}"
            top = self._nodes[n - arity:]
            if self._mask_apply(k) < 0:
                return f"{where}: cannot apply to {[str(x) for x in top]} " \
                       "(argument types, windows or dimensions)"
            if any(top[i] == top[j] for i, j in pairs):
                return f"{where}: degenerate, identical arguments {[str(x) for x in top]}"
        return f"{where}: no valid formula can be completed within max_len={self.max_len}"

    def _mask_apply(self, k: int) -> int:
        arity = self.grammar._ops[k][2]
        return self.grammar.apply(k, self._items[len(self._items) - arity:])

    def finish(self) -> Node:
        """The finished formula (pushes END if it is valid now; raises otherwise)."""
        if not self._done:
            self.push(self.vocab.end_id)
        return self._nodes[0]


def valid_masks(builders: Sequence[RPNBuilder]) -> np.ndarray:
    """Stacked masks ``[B, V]`` of a batch of builders (RL action masking)."""
    if not builders:
        raise ValueError("valid_masks needs at least one builder")
    return np.stack([b.valid_mask() for b in builders])


__all__ = ["DEGENERATE_PAIRS", "Grammar", "GrammarError", "RPNBuilder", "check_formula",
           "degenerate_reason", "feature_dims_for", "random_formulas", "valid_masks"]


def random_formulas(vocab: Vocabulary, n: int, max_len: int = 20, dims: bool = False,
                    seed: int = 0) -> list[str]:
    """``n`` formulas from uniform random walks under the grammar mask (the random baseline
    that GP and AlphaGen must beat with the same candidate budget)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        b = RPNBuilder(vocab, max_len=max_len, dims=True if dims else None)
        while not b.done:
            b.push(int(rng.choice(np.flatnonzero(b.valid_mask()))))
        out.append(str(b.finish()))
    return out
