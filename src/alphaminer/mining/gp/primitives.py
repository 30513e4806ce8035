"""DEAP's strongly typed primitive set, generated from the operator table and a vocabulary.

Types: one ``Series`` type (features and operator results) and one type per distinct set of
non-series leaves an argument slot accepts (e.g. "any vocabulary window", "any constant", "a
constant in (0, 1)"), found from :meth:`Vocabulary.accepted_leaves` — so DEAP's typed
crossover and mutation can only build calls the operator table accepts. An operator slot that
takes a series or a constant (``Add``'s operands) becomes one primitive per combination, named
``Add``, ``Add__sc``, ``Add__cs`` (``s`` series, ``c`` other); the all-constant combination is
never registered (a call needs a series operand).

Individuals are converted to and from the project's AST (:func:`to_node`, :func:`from_node`),
which is what the scorer evaluates; DEAP never compiles or runs a formula.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from deap import gp

from alphaminer.expr.ast import Call, Feature, Node
from alphaminer.expr.operators import OPERATORS
from alphaminer.expr.vocab import Vocabulary


class _StableType(type):
    """Metaclass of the DEAP types: a fixed small-integer hash.

    DEAP's typed crossover picks from a ``set`` of types; with the default identity hash the
    set's order (hence the draw) depends on memory addresses, so the same seed gave different
    runs in different processes. Equality stays identity.
    """

    _order: int

    def __hash__(cls) -> int:
        return cls._order

    def __eq__(cls, other: object) -> bool:
        return cls is other


class Series(metaclass=_StableType):
    """DEAP type of a series (feature or operator result)."""

    _order = 0


def _formula(*args: object) -> None:  # DEAP needs a callable per primitive; never called
    raise RuntimeError("GP individuals are converted to formulas, not compiled")


@dataclass
class PrimitiveSet:
    """A DEAP ``PrimitiveSetTyped`` plus the maps between its names and our AST."""

    pset: gp.PrimitiveSetTyped
    vocab: Vocabulary
    #: primitive name → operator name
    op_of: dict[str, str] = field(default_factory=dict)
    #: terminal name → leaf node
    leaf_of: dict[str, Node] = field(default_factory=dict)
    #: (operator, pattern) → primitive name, pattern a tuple of "s"/"c" per argument
    prim_name: dict[tuple[str, tuple[str, ...]], str] = field(default_factory=dict)
    #: (type, leaf text) → terminal name
    term_name: dict[tuple[type, str], str] = field(default_factory=dict)
    #: non-series leaf set → its DEAP type
    leaf_types: dict[frozenset[int], type] = field(default_factory=dict)


def build_primitive_set(vocab: Vocabulary) -> PrimitiveSet:
    """The typed primitive set of ``vocab`` (see module docstring)."""
    pset = gp.PrimitiveSetTyped("formula", [], Series)
    out = PrimitiveSet(pset, vocab)
    n_f = len(vocab.features)

    def leaf_type(ids: frozenset[int]) -> type:
        if ids not in out.leaf_types:
            t = _StableType(f"Leaves{len(out.leaf_types)}", (),
                            {"__doc__": "DEAP leaf-set type", "_order": 1 + len(out.leaf_types)})
            out.leaf_types[ids] = t
            for i in sorted(ids):
                node = vocab.leaves[i]
                name = f"t{len(out.leaf_of)}"
                pset.addTerminal(str(node), t, name=name)
                out.leaf_of[name] = node
                out.term_name[(t, str(node))] = name
        return out.leaf_types[ids]

    for f in range(n_f):
        name = vocab.features[f]
        pset.addTerminal(name, Series, name=name)
        out.leaf_of[name] = vocab.leaves[f]
        out.term_name[(Series, name)] = name
    for op in vocab.operators:
        spec = OPERATORS[op]
        options: list[list[tuple[str, type]]] = []
        for p in range(spec.arity):
            acc = vocab.accepted_leaves(op, p)
            other = frozenset(i for i in acc if i >= n_f)
            opts = []
            if vocab.accepts_series(op, p):
                opts.append(("s", Series))
            if other:
                opts.append(("c", leaf_type(other)))
            options.append(opts)
        if not all(options):
            continue
        series_pattern = tuple("s" if any(k == "s" for k, _ in o) else "c" for o in options)
        for combo in itertools.product(*options):
            pattern = tuple(k for k, _ in combo)
            if "s" not in pattern:
                continue
            name = op if pattern == series_pattern else f"{op}__{''.join(pattern)}"
            pset.addPrimitive(_formula, [t for _, t in combo], Series, name=name)
            out.op_of[name] = op
            out.prim_name[(op, pattern)] = name
    return out


def to_node(ind: gp.PrimitiveTree, ps: PrimitiveSet) -> Node:
    """A DEAP individual (prefix list) → our AST."""
    stack: list[tuple[str, list[Node]]] = []
    result: Node | None = None
    for item in ind:
        if isinstance(item, gp.Primitive):
            stack.append((item.name, []))
            continue
        node: Node = ps.leaf_of[item.name]
        while stack:
            name, args = stack[-1]
            args.append(node)
            if len(args) < len(ps.pset.mapping[name].args):
                break
            stack.pop()
            node = Call(ps.op_of[name], args)
        else:
            result = node
    if result is None or stack:
        raise ValueError(f"incomplete individual {ind}")
    return result


def from_node(node: Node, ps: PrimitiveSet) -> gp.PrimitiveTree:
    """Our AST → a DEAP individual; raises ``KeyError`` for tokens outside the primitive set."""
    items: list[gp.Primitive | gp.Terminal] = []

    def visit(n: Node, t: type) -> None:
        if isinstance(n, Call):
            pattern = tuple("s" if _is_series(a) else "c" for a in n.args)
            name = ps.prim_name[(n.op, pattern)]
            prim = ps.pset.mapping[name]
            items.append(prim)
            for a, at in zip(n.args, prim.args):
                visit(a, at)
            return
        items.append(ps.pset.mapping[ps.term_name[(t, str(n))]])

    visit(node, Series)
    return gp.PrimitiveTree(items)


def _is_series(n: Node) -> bool:
    return isinstance(n, Feature | Call)
