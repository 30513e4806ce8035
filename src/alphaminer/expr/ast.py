"""Immutable expression tree: ``Feature``, ``Constant``, ``Window`` and ``Call`` nodes.

Every node carries its canonical infix text (``Div(Sub(close,open),Sub(high,low))``), computed
once at construction. Equality and hashing go through that text, which the printer makes
injective (``parse(str(e)) == e``), so nodes are cheap dictionary / cache keys.
"""

from __future__ import annotations

import math
from typing import Any

from alphaminer.expr.operators import OPERATORS, ArgType, Operator, OpKind, get_operator


class ExprError(ValueError):
    """An expression is structurally invalid (unknown operator, wrong arity or argument)."""


class Node:
    """Base of all nodes; immutable, compared and hashed by canonical text."""

    __slots__ = ("_text",)
    _text: str

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"{type(self).__name__}<{self._text}>"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self._text == other._text  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._text))

    def __reduce__(self) -> tuple:
        from alphaminer.expr.parser import parse

        return (parse, (self._text,))


class Feature(Node):
    """A panel feature (``close``, ``volume``, ...)."""

    __slots__ = ("name",)
    name: str

    def __init__(self, name: str) -> None:
        name = str(name).lstrip("$")
        if not name or not (name[0].isalpha() or name[0] == "_") or not all(
                c.isalnum() or c == "_" for c in name):
            raise ExprError(f"invalid feature name {name!r}")
        if name in OPERATORS:
            raise ExprError(f"feature name {name!r} clashes with an operator")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "_text", name)


class Constant(Node):
    """A finite float constant, printed with ``repr`` so it round-trips exactly."""

    __slots__ = ("value",)
    value: float

    def __init__(self, value: float) -> None:
        v = float(value)
        if not math.isfinite(v):
            raise ExprError(f"constants must be finite, got {value!r}")
        object.__setattr__(self, "value", v)
        object.__setattr__(self, "_text", repr(v))


class Window(Node):
    """A number of trading days, printed ``20d`` (negative only for ``Ref`` labels)."""

    __slots__ = ("days",)
    days: int

    def __init__(self, days: int) -> None:
        if isinstance(days, bool) or int(days) != days:
            raise ExprError(f"window must be an integer number of days, got {days!r}")
        object.__setattr__(self, "days", int(days))
        object.__setattr__(self, "_text", f"{int(days)}d")


class Call(Node):
    """An operator applied to arguments; validated against the operator table."""

    __slots__ = ("args", "op")
    op: str
    args: tuple[Node, ...]

    def __init__(self, op: str, args: tuple[Node, ...] | list[Node]) -> None:
        try:
            spec = get_operator(op)
        except ValueError as exc:
            raise ExprError(str(exc)) from None
        args = tuple(args)
        if len(args) != spec.arity:
            raise ExprError(f"{spec.name} takes {spec.arity} arguments, got {len(args)}")
        n_series = 0
        for i, (a, kind) in enumerate(zip(args, spec.args)):
            where = f"argument {i + 1} of {spec.name}"
            if kind is ArgType.WINDOW:
                if not isinstance(a, Window):
                    raise ExprError(f"{where} must be a window like 20d, got {a}")
                if a.days < spec.min_window and not (spec.allow_negative_window and a.days < 0):
                    raise ExprError(
                        f"{where}: window {a} is below the minimum {spec.min_window}d")
            elif kind is ArgType.SERIES:
                if not isinstance(a, Feature | Call):
                    raise ExprError(f"{where} must be a series (feature or operator), got {a}")
                n_series += 1
            elif kind is ArgType.CONSTANT:
                if not isinstance(a, Constant):
                    raise ExprError(f"{where} must be a constant number, got {a}")
                lo, hi = spec.constant_range or (-math.inf, math.inf)
                if not lo <= a.value <= hi:
                    raise ExprError(f"{where}: {a} is outside [{lo}, {hi}]")
            elif kind is ArgType.OPERAND:
                if isinstance(a, Window) or not isinstance(a, Node):
                    raise ExprError(f"{where} must be a series or a constant, got {a}")
                n_series += not isinstance(a, Constant)
        if n_series == 0:
            raise ExprError(f"{spec.name}({','.join(map(str, args))}) has no series operand")
        object.__setattr__(self, "op", spec.name)
        object.__setattr__(self, "args", args)
        object.__setattr__(self, "_text", f"{spec.name}({','.join(a._text for a in args)})")

    @property
    def spec(self) -> Operator:
        return OPERATORS[self.op]


Expr = Feature | Constant | Window | Call


# ----------------------------------------------------------------------------- helpers
def size(e: Node) -> int:
    """Number of operator applications in ``e``."""
    return (1 + sum(size(a) for a in e.args)) if isinstance(e, Call) else 0


def n_nodes(e: Node) -> int:
    """Number of nodes (operators, features, constants and windows)."""
    return 1 + (sum(n_nodes(a) for a in e.args) if isinstance(e, Call) else 0)


def depth(e: Node) -> int:
    """Operator nesting depth (a bare feature or constant has depth 0)."""
    return (1 + max(depth(a) for a in e.args)) if isinstance(e, Call) else 0


def features_used(e: Node) -> frozenset[str]:
    """Names of the features ``e`` reads."""
    if isinstance(e, Feature):
        return frozenset([e.name])
    if isinstance(e, Call):
        return frozenset().union(*(features_used(a) for a in e.args))
    return frozenset()


def subexpressions(e: Node) -> list[Call]:
    """All ``Call`` nodes in post-order (children before parents), duplicates included."""
    out: list[Call] = []
    if isinstance(e, Call):
        for a in e.args:
            out.extend(subexpressions(a))
        out.append(e)
    return out


def max_lookback(e: Node) -> int:
    """Days of history before today that ``e`` needs for a full-window value today.

    ``Mean(x, 20d)`` needs 19 earlier days, ``Ref(x, 5d)`` 5, and nesting adds up:
    ``Mean(Ref(x, 5d), 20d)`` needs 24. A negative ``Ref`` (look-ahead) needs no history.
    """
    if not isinstance(e, Call):
        return 0
    own = 0
    if e.spec.kind is OpKind.TIME_SERIES:
        d = next(a.days for a in e.args if isinstance(a, Window))
        own = max(0, e.spec.lookback(d))
    return own + max(max_lookback(a) for a in e.args)


def max_lookahead(e: Node) -> int:
    """Days of *future* data ``e`` reads (non-zero only with ``Ref(x, -d)``)."""
    if not isinstance(e, Call):
        return 0
    own = 0
    if e.op == "Ref":
        d = next(a.days for a in e.args if isinstance(a, Window))
        own = max(0, -d)
    return own + max(max_lookahead(a) for a in e.args)
