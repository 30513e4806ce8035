"""The operator table: the single source of truth of the expression language (docs/operators.md).

Each :class:`Operator` row states name, argument types (hence arity), kind, dimension rule (a
rule name interpreted by :mod:`alphaminer.expr.dimensions`), the numeric kernel, the minimum
window and how much history it needs. Parsers, the evaluator, the dimension checker and the
miners' vocabularies all read this table; nothing else lists operators.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import torch

from alphaminer.expr import kernels as kn
from alphaminer.expr import qlib_kernels as qk


class OpKind(StrEnum):
    ELEMENTWISE = "elementwise"
    TIME_SERIES = "time_series"
    CROSS_SECTIONAL = "cross_sectional"


class ArgType(StrEnum):
    SERIES = "series"      # a feature or an operator result
    OPERAND = "operand"    # a series or a constant
    WINDOW = "window"      # a number of days, written 20d
    CONSTANT = "constant"  # a literal number fixed in the formula (Quantile's q, FillNaN's c)


class DimRule(StrEnum):
    """Dimension rules (semantics in :mod:`alphaminer.expr.dimensions`)."""

    SAME = "same"                    # unary: keep the unit (Abs, Neg, Mean, Max, Ref, ...)
    CENTRED = "centred"              # unary statistic of deviations: keep unit, log-unit → none
    MATCH = "match"                  # binary: both units equal (Add, Greater, ...)
    DIFFERENCE = "difference"        # Sub: units equal; equal log-units → dimensionless
    PRODUCT = "product"              # Mul: exponents add
    QUOTIENT = "quotient"            # Div: exponents subtract
    SQUARE = "square"                # Var: exponents double
    COVARIANCE = "covariance"        # Cov: product of the centred units
    LOG = "log"                      # Log: dimensional → log-unit
    DIMENSIONLESS = "dimensionless"  # Sign, Corr, ranks, z-scores, returns, arg-extremes
    FIRST = "first"                  # unit of the first argument (Quantile, FillNaN)
    COMPARE = "compare"              # Gt, Eq, ...: both units equal → dimensionless 1/0
    BRANCH = "branch"                # If: the two branches' units equal → that unit
    POWER = "power"                  # Power: dimensionless base and exponent only


@dataclass(frozen=True)
class Operator:
    """One row of the operator table."""

    name: str
    kind: OpKind
    args: tuple[ArgType, ...]
    dim_rule: DimRule
    kernel: Callable[..., torch.Tensor]
    doc: str
    min_window: int = 1
    allow_negative_window: bool = False
    #: "window" → needs d earlier days (Ref, Delta); "span" → d-1 (rolling windows incl. today)
    lookback_rule: str = "span"
    #: kernel(*args, min_periods=m) of the NaN-skipping partial-window mode (pandas
    #: ``rolling(d, min_periods=m)``, used by ``Evaluator(min_periods=m)``); None → the operator
    #: keeps its full-window semantics in that mode.
    partial_kernel: Callable[..., torch.Tensor] | None = None
    #: allowed closed range of CONSTANT arguments (None → any finite number)
    constant_range: tuple[float, float] | None = None

    @property
    def arity(self) -> int:
        return len(self.args)

    @property
    def has_window(self) -> bool:
        return ArgType.WINDOW in self.args

    @property
    def n_series(self) -> int:
        return sum(a is not ArgType.WINDOW for a in self.args)

    def lookback(self, d: int) -> int:
        """History days before today needed by one application with window ``d``."""
        if self.lookback_rule == "window":
            return d
        return d - 1


S_, O_, W_, C_ = ArgType.SERIES, ArgType.OPERAND, ArgType.WINDOW, ArgType.CONSTANT
EW, TS, CS = OpKind.ELEMENTWISE, OpKind.TIME_SERIES, OpKind.CROSS_SECTIONAL
D = DimRule


def _neg(x: torch.Tensor) -> torch.Tensor:
    return -x


def _add(a, b) -> torch.Tensor:  # noqa: ANN001 - tensor or float
    a_t, b_t = kn.scalar_or_tensors(a, b)
    return kn.finite_or_nan(a_t + b_t)


def _sub(a, b) -> torch.Tensor:  # noqa: ANN001
    a_t, b_t = kn.scalar_or_tensors(a, b)
    return kn.finite_or_nan(a_t - b_t)


def _mul(a, b) -> torch.Tensor:  # noqa: ANN001
    a_t, b_t = kn.scalar_or_tensors(a, b)
    return kn.finite_or_nan(a_t * b_t)


_TABLE: tuple[Operator, ...] = (
    # elementwise
    Operator("Abs", EW, (S_,), D.SAME, torch.abs, "absolute value"),
    Operator("Log", EW, (S_,), D.LOG, kn.safe_log, "natural log; x <= 0 → NaN"),
    Operator("Sign", EW, (S_,), D.DIMENSIONLESS, kn.sign, "-1, 0 or 1"),
    Operator("Neg", EW, (S_,), D.SAME, _neg, "negation"),
    Operator("Add", EW, (O_, O_), D.MATCH, _add, "x + y"),
    Operator("Sub", EW, (O_, O_), D.DIFFERENCE, _sub, "x - y"),
    Operator("Mul", EW, (O_, O_), D.PRODUCT, _mul, "x * y"),
    Operator("Div", EW, (O_, O_), D.QUOTIENT, kn.safe_div, "x / y; y == 0 → NaN"),
    Operator("Greater", EW, (O_, O_), D.MATCH, kn.greater, "elementwise max(x, y)"),
    Operator("Less", EW, (O_, O_), D.MATCH, kn.less, "elementwise min(x, y)"),
    Operator("Power", EW, (O_, O_), D.POWER, qk.power, "x ** y; undefined → NaN"),
    Operator("Gt", EW, (O_, O_), D.COMPARE, qk.gt, "1.0 if x > y else 0.0; NaN if either NaN"),
    Operator("Ge", EW, (O_, O_), D.COMPARE, qk.ge, "1.0 if x >= y else 0.0; NaN if either NaN"),
    Operator("Lt", EW, (O_, O_), D.COMPARE, qk.lt, "1.0 if x < y else 0.0; NaN if either NaN"),
    Operator("Le", EW, (O_, O_), D.COMPARE, qk.le, "1.0 if x <= y else 0.0; NaN if either NaN"),
    Operator("Eq", EW, (O_, O_), D.COMPARE, qk.eq, "1.0 if x == y else 0.0; NaN if either NaN"),
    Operator("Ne", EW, (O_, O_), D.COMPARE, qk.ne, "1.0 if x != y else 0.0; NaN if either NaN"),
    Operator("If", EW, (O_, O_, O_), D.BRANCH, qk.if_then_else,
             "a where cond != 0, b where cond == 0; NaN where cond is NaN"),
    Operator("FillNaN", EW, (S_, C_), D.FIRST, qk.fill_nan, "x with NaN replaced by c"),
    # time series
    Operator("Ref", TS, (S_, W_), D.SAME, kn.ts_ref, "x d days ago (d < 0: d days ahead)",
             min_window=0, allow_negative_window=True, lookback_rule="window"),
    Operator("Mean", TS, (S_, W_), D.SAME, kn.ts_mean, "rolling mean",
             partial_kernel=qk.partial_mean),
    Operator("Med", TS, (S_, W_), D.SAME, kn.ts_med, "rolling median",
             partial_kernel=qk.partial_med),
    Operator("Sum", TS, (S_, W_), D.SAME, kn.ts_sum, "rolling sum",
             partial_kernel=qk.partial_sum),
    Operator("Std", TS, (S_, W_), D.CENTRED, kn.ts_std, "rolling std, ddof=1", min_window=2,
             partial_kernel=qk.partial_std),
    Operator("Var", TS, (S_, W_), D.SQUARE, kn.ts_var, "rolling variance, ddof=1",
             min_window=2, partial_kernel=qk.partial_var),
    Operator("Max", TS, (S_, W_), D.SAME, kn.ts_max, "rolling max",
             partial_kernel=qk.partial_max),
    Operator("Min", TS, (S_, W_), D.SAME, kn.ts_min, "rolling min",
             partial_kernel=qk.partial_min),
    Operator("Mad", TS, (S_, W_), D.CENTRED, kn.ts_mad, "mean absolute deviation from mean",
             partial_kernel=qk.partial_mad),
    Operator("Delta", TS, (S_, W_), D.CENTRED, kn.ts_delta, "x - Ref(x, d)",
             lookback_rule="window"),
    Operator("WMA", TS, (S_, W_), D.SAME, kn.ts_wma, "linearly weighted mean (1..d)"),
    Operator("EMA", TS, (S_, W_), D.SAME, kn.ts_ema, "finite-window exponential mean"),
    Operator("Skew", TS, (S_, W_), D.DIMENSIONLESS, kn.ts_skew, "rolling skewness",
             min_window=3, partial_kernel=qk.partial_skew),
    Operator("Kurt", TS, (S_, W_), D.DIMENSIONLESS, kn.ts_kurt, "rolling excess kurtosis",
             min_window=4, partial_kernel=qk.partial_kurt),
    Operator("TsRank", TS, (S_, W_), D.DIMENSIONLESS, kn.ts_rank, "today's rank in window",
             partial_kernel=qk.partial_rank),
    Operator("TsZScore", TS, (S_, W_), D.DIMENSIONLESS, kn.ts_zscore,
             "(x - Mean) / Std", min_window=2),
    Operator("TsReturn", TS, (S_, W_), D.DIMENSIONLESS, kn.ts_return, "x / Ref(x, d) - 1",
             lookback_rule="window"),
    Operator("ArgMax", TS, (S_, W_), D.DIMENSIONLESS, kn.ts_argmax, "days since window max"),
    Operator("ArgMin", TS, (S_, W_), D.DIMENSIONLESS, kn.ts_argmin, "days since window min"),
    Operator("Cov", TS, (S_, S_, W_), D.COVARIANCE, kn.ts_cov, "rolling covariance, ddof=1",
             min_window=2, partial_kernel=qk.partial_cov),
    Operator("Corr", TS, (S_, S_, W_), D.DIMENSIONLESS, kn.ts_corr, "rolling correlation",
             min_window=2, partial_kernel=qk.partial_corr),
    # time series with qlib's names and semantics (alphaminer.expr.qlib_kernels)
    Operator("IdxMax", TS, (S_, W_), D.DIMENSIONLESS, qk.ts_idxmax,
             "1-based position of the window max from the oldest day (ties → oldest)",
             partial_kernel=qk.ts_idxmax),
    Operator("IdxMin", TS, (S_, W_), D.DIMENSIONLESS, qk.ts_idxmin,
             "1-based position of the window min from the oldest day (ties → oldest)",
             partial_kernel=qk.ts_idxmin),
    Operator("Slope", TS, (S_, W_), D.CENTRED, qk.ts_slope,
             "least-squares slope of x on the day index 1..d", min_window=2,
             partial_kernel=qk.ts_slope),
    Operator("Rsquare", TS, (S_, W_), D.DIMENSIONLESS, qk.ts_rsquare,
             "R² of x regressed on the day index", min_window=2, partial_kernel=qk.ts_rsquare),
    Operator("Resi", TS, (S_, W_), D.CENTRED, qk.ts_resi,
             "today's residual of x regressed on the day index", min_window=2,
             partial_kernel=qk.ts_resi),
    Operator("Quantile", TS, (S_, W_, C_), D.FIRST, qk.ts_quantile,
             "rolling q-quantile, linear interpolation", partial_kernel=qk.ts_quantile,
             constant_range=(0.0, 1.0)),
    Operator("EWM", TS, (S_, W_), D.SAME, qk.ts_ewm,
             "whole-history exponential mean, pandas ewm(span=d, adjust=True)",
             partial_kernel=qk.ts_ewm),
    Operator("QlibWMA", TS, (S_, W_), D.SAME, qk.ts_qlib_wma,
             "qlib's WMA: nanmean(w * x), w = (1..d)/sum(1..d) (= WMA / d)",
             partial_kernel=qk.ts_qlib_wma),
    # cross-sectional
    Operator("CSRank", CS, (S_,), D.DIMENSIONLESS, kn.cs_rank, "average rank / count"),
    Operator("CSZScore", CS, (S_,), D.DIMENSIONLESS, kn.cs_zscore, "(x - mean) / std, ddof=1"),
)

#: name → operator, in table order.
OPERATORS: dict[str, Operator] = {op.name: op for op in _TABLE}


def get_operator(name: str) -> Operator:
    """Look an operator up by its exact name; the error lists the valid names."""
    try:
        return OPERATORS[name]
    except KeyError:
        raise ValueError(
            f"unknown operator {name!r}; known: {', '.join(OPERATORS)}") from None


def operators_of_kind(kind: OpKind | str) -> list[Operator]:
    """All operators of one kind, in table order (handy for mining vocabularies)."""
    kind = OpKind(kind)
    return [op for op in _TABLE if op.kind is kind]
