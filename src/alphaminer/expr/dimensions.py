"""Dimensional analysis of expressions, used by Alpha2's pruning and available to all.

The rules are documented in docs/operators.md, "Dimensions".

A :class:`Dim` is a vector of integer exponents over the base units (currency, shares):
price = currency/share, volume = shares, amount = currency, constants and windows are
dimensionless. ``Log`` of a dimensional series gives a *log-unit* of that dimension; only
differences of the same log-unit (``Sub(Log(close),Log(open))``, ``Delta(Log(close),5d)``,
``Std(Log(close),20d)``) become dimensionless again.

The rule applied to each operator is data: the operator table names a :class:`DimRule` and
:data:`RULES` maps it to a function over the argument dimensions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from alphaminer.expr.ast import Call, Constant, Feature, Node, Window
from alphaminer.expr.operators import DimRule


class DimensionError(ValueError):
    """An expression combines incompatible units; the message names the sub-expression."""

    def __init__(self, message: str, expr: Node | None = None) -> None:
        self.expr = expr
        super().__init__(message if expr is None else f"{message} in {expr}")


@dataclass(frozen=True)
class Dim:
    """Exponents of (currency, shares); ``log=True`` marks the log-unit of that dimension."""

    currency: int = 0
    shares: int = 0
    log: bool = False

    @property
    def is_dimensionless(self) -> bool:
        return self.currency == 0 and self.shares == 0 and not self.log

    def __mul__(self, other: Dim) -> Dim:
        return Dim(self.currency + other.currency, self.shares + other.shares)

    def __truediv__(self, other: Dim) -> Dim:
        return Dim(self.currency - other.currency, self.shares - other.shares)

    def scale(self, k: int) -> Dim:
        return Dim(self.currency * k, self.shares * k)

    def __str__(self) -> str:
        if self.currency == 0 and self.shares == 0:
            return "dimensionless"
        parts = []
        for name, e in (("currency", self.currency), ("shares", self.shares)):
            if e:
                parts.append(name if e == 1 else f"{name}^{e}")
        unit = "·".join(parts)
        return f"log({unit})" if self.log else unit


NONE = Dim()
PRICE = Dim(1, -1)
VOLUME = Dim(0, 1)
AMOUNT = Dim(1, 0)

#: Dimensions of the standard features; pass ``feature_dims`` for others.
FEATURE_DIMS: dict[str, Dim] = {
    "open": PRICE, "high": PRICE, "low": PRICE, "close": PRICE, "vwap": PRICE,
    "volume": VOLUME, "amount": AMOUNT,
}


def _plain(d: Dim, what: str) -> Dim:
    if d.log:
        raise DimensionError(f"{what} of a log-unit {d} is not defined")
    return d


def _centred(d: Dim) -> Dim:
    """Deviations of a log-unit are dimensionless (log-ratios); others keep their unit."""
    return NONE if d.log else d


def _same(a: Dim) -> Dim:
    return a


def _match(a: Dim, b: Dim) -> Dim:
    if a != b:
        raise DimensionError(f"operands have different dimensions ({a} vs {b})")
    return a


def _difference(a: Dim, b: Dim) -> Dim:
    return NONE if _match(a, b).log else a


def _product(a: Dim, b: Dim) -> Dim:
    if a.log or b.log:
        other = b if a.log else a
        if other.is_dimensionless:  # scaling a log-unit keeps it a log-unit
            return a if a.log else b
        raise DimensionError(f"cannot multiply a log-unit by {other}")
    return a * b


def _quotient(a: Dim, b: Dim) -> Dim:
    if b.log and a == b:
        return NONE  # ratio of the same log-unit
    if b.log:
        raise DimensionError(f"cannot divide by a log-unit {b}")
    if a.log:
        if b.is_dimensionless:
            return a
        raise DimensionError(f"cannot divide a log-unit by {b}")
    return a / b


def _square(a: Dim) -> Dim:
    return _centred(a).scale(2)


def _covariance(a: Dim, b: Dim) -> Dim:
    return _centred(a) * _centred(b)


def _log(a: Dim) -> Dim:
    _plain(a, "Log")
    return NONE if a.is_dimensionless else Dim(a.currency, a.shares, log=True)


def _dimensionless(*_: Dim) -> Dim:
    return NONE


def _first(a: Dim, *_params: Dim) -> Dim:
    """Unit of the series; the later constant parameters (a quantile level, a fill) are numbers."""
    return a


def _compare(a: Dim, b: Dim) -> Dim:
    _match(a, b)  # comparing a price with a volume is meaningless
    return NONE


def _branch(_cond: Dim, a: Dim, b: Dim) -> Dim:
    """``If``: the condition may have any unit (only its sign matters); branches must match."""
    return _match(a, b)


def _power(a: Dim, b: Dim) -> Dim:
    """Only dimensionless ``x ** y`` is defined: a fractional power of a price has no unit here."""
    if not (a.is_dimensionless and b.is_dimensionless):
        raise DimensionError(f"Power needs dimensionless operands ({a} ** {b})")
    return NONE


#: rule name → function of the (non-window) argument dimensions.
RULES: dict[DimRule, Callable[..., Dim]] = {
    DimRule.SAME: _same,
    DimRule.CENTRED: _centred,
    DimRule.MATCH: _match,
    DimRule.DIFFERENCE: _difference,
    DimRule.PRODUCT: _product,
    DimRule.QUOTIENT: _quotient,
    DimRule.SQUARE: _square,
    DimRule.COVARIANCE: _covariance,
    DimRule.LOG: _log,
    DimRule.DIMENSIONLESS: _dimensionless,
    DimRule.FIRST: _first,
    DimRule.COMPARE: _compare,
    DimRule.BRANCH: _branch,
    DimRule.POWER: _power,
}


def dimension_of(expr: Node | str, feature_dims: Mapping[str, Dim] | None = None) -> Dim:
    """Dimension of ``expr``; raises :class:`DimensionError` naming the offending sub-expression.

    ``feature_dims`` extends/overrides :data:`FEATURE_DIMS` (e.g. ``{"turnover": NONE}``).
    """
    if isinstance(expr, str):
        from alphaminer.expr.parser import parse

        expr = parse(expr)
    dims = {**FEATURE_DIMS, **(feature_dims or {})}
    memo: dict[Node, Dim] = {}

    def visit(e: Node) -> Dim:
        if e in memo:
            return memo[e]
        if isinstance(e, Constant | Window):
            out = NONE
        elif isinstance(e, Feature):
            if e.name not in dims:
                raise DimensionError(
                    f"unknown dimension of feature {e.name!r}; pass feature_dims", e)
            out = dims[e.name]
        elif isinstance(e, Call):
            arg_dims = [visit(a) for a in e.args if not isinstance(a, Window)]
            try:
                out = RULES[e.spec.dim_rule](*arg_dims)
            except DimensionError as exc:
                if exc.expr is not None:
                    raise
                raise DimensionError(str(exc), e) from None
        else:
            raise TypeError(f"not an expression node: {e!r}")
        memo[e] = out
        return out

    return visit(expr)


def is_dimension_valid(expr: Node | str, feature_dims: Mapping[str, Dim] | None = None) -> bool:
    """``True`` when :func:`dimension_of` succeeds."""
    try:
        dimension_of(expr, feature_dims)
    except DimensionError:
        return False
    return True
