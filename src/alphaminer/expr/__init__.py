"""The alpha expression language: operators, AST, codecs, dimensions and the evaluator.

>>> from alphaminer.expr import parse, Evaluator
>>> e = parse("Div(Sub(close,open),Sub(high,low))")
>>> str(e)
'Div(Sub(close,open),Sub(high,low))'
"""

from alphaminer.expr import kernels, qlib_kernels
from alphaminer.expr.alpha158 import alpha158_alphas, alpha158_exprs, alpha158_qlib
from alphaminer.expr.ast import (
    Call,
    Constant,
    Expr,
    ExprError,
    Feature,
    Node,
    Window,
    depth,
    features_used,
    max_lookahead,
    max_lookback,
    n_nodes,
    size,
    subexpressions,
)
from alphaminer.expr.dimensions import (
    AMOUNT,
    FEATURE_DIMS,
    NONE,
    PRICE,
    VOLUME,
    Dim,
    DimensionError,
    dimension_of,
    is_dimension_valid,
)
from alphaminer.expr.evaluator import Evaluator, evaluate, evaluate_many
from alphaminer.expr.kernels import cs_rank, cs_zscore
from alphaminer.expr.operators import OPERATORS, ArgType, DimRule, Operator, OpKind, get_operator
from alphaminer.expr.parser import (
    ParseError,
    RPNError,
    from_rpn,
    parse,
    parse_alphagen,
    parse_qlib,
    to_rpn,
)

__all__ = [
    "AMOUNT", "FEATURE_DIMS", "NONE", "OPERATORS", "PRICE", "VOLUME", "ArgType", "Call",
    "Constant", "Dim", "DimRule", "DimensionError", "Evaluator", "Expr", "ExprError", "Feature",
    "Node", "OpKind", "Operator", "ParseError", "RPNError", "Window", "alpha158_alphas",
    "alpha158_exprs", "alpha158_qlib", "cs_rank", "cs_zscore", "depth", "dimension_of",
    "evaluate", "evaluate_many", "features_used", "from_rpn",
    "get_operator", "is_dimension_valid", "kernels", "max_lookahead", "max_lookback", "n_nodes",
    "parse", "parse_alphagen", "parse_qlib", "qlib_kernels", "size", "subexpressions",
    "to_rpn",
]
