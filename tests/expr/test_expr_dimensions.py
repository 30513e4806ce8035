"""Dimension rules (docs/operators.md): units as exponent vectors over (currency, shares)."""

from __future__ import annotations

import pytest

from alphaminer.expr import (
    AMOUNT,
    NONE,
    OPERATORS,
    PRICE,
    VOLUME,
    Dim,
    DimensionError,
    DimRule,
    dimension_of,
    is_dimension_valid,
)
from alphaminer.expr.dimensions import RULES


@pytest.mark.parametrize("text, dim", [
    ("Sub(close,open)", PRICE),
    ("Mul(close,volume)", AMOUNT),
    ("Div(amount,volume)", PRICE),
    ("Corr(close,volume,10d)", NONE),
    ("Cov(close,volume,10d)", AMOUNT),
    ("Var(close,10d)", Dim(2, -2)),
    ("Std(close,10d)", PRICE),
    ("Mean(close,10d)", PRICE),
    ("Div(Sub(close,open),Sub(high,low))", NONE),
    ("Mul(close,2.0)", PRICE),
    ("Div(1.0,close)", Dim(-1, 1)),
    ("Sign(Sub(close,open))", NONE),
    ("CSRank(volume)", NONE),
    ("TsRank(volume,5d)", NONE),
    ("TsZScore(amount,5d)", NONE),
    ("TsReturn(close,5d)", NONE),
    ("Skew(volume,10d)", NONE),
    ("ArgMax(close,10d)", NONE),
    ("Greater(close,vwap)", PRICE),
    ("Log(Div(close,open))", NONE),
    ("Sub(Log(close),Log(open))", NONE),
    ("Delta(Log(close),5d)", NONE),
    ("Std(Log(close),20d)", NONE),
    ("Var(Log(volume),20d)", NONE),
    ("Mean(Log(close),5d)", Dim(1, -1, log=True)),
    ("Mul(Log(close),0.5)", Dim(1, -1, log=True)),
    ("Ref(close,-20d)", PRICE),
])
def test_valid_dimensions(text: str, dim: Dim) -> None:
    assert dimension_of(text) == dim


@pytest.mark.parametrize("text, culprit", [
    ("Add(close,volume)", "Add(close,volume)"),
    ("Add(close,1.0)", "Add(close,1.0)"),
    ("Mean(Greater(volume,amount),5d)", "Greater(volume,amount)"),
    ("Corr(Add(close,volume),open,5d)", "Add(close,volume)"),
    ("Sub(Log(close),Log(volume))", "Sub(Log(close),Log(volume))"),
    ("Sub(Log(close),close)", "Sub(Log(close),close)"),
    ("Log(Log(close))", "Log(Log(close))"),
    ("Mul(Log(close),volume)", "Mul(Log(close),volume)"),
    ("Div(close,Log(close))", "Div(close,Log(close))"),
])
def test_invalid_dimensions_name_the_subexpression(text: str, culprit: str) -> None:
    with pytest.raises(DimensionError) as info:
        dimension_of(text)
    assert str(info.value.expr) == culprit
    assert culprit in str(info.value)
    assert not is_dimension_valid(text)


def test_feature_dims_and_unknown_features() -> None:
    with pytest.raises(DimensionError, match="turnover"):
        dimension_of("Mean(turnover,5d)")
    assert dimension_of("Mul(turnover,close)", {"turnover": NONE}) == PRICE
    assert dimension_of("volume") == VOLUME


def test_rules_are_data_in_the_operator_table() -> None:
    assert set(RULES) == set(DimRule)
    assert all(op.dim_rule in RULES for op in OPERATORS.values())
    assert str(PRICE) == "currency·shares^-1" and str(NONE) == "dimensionless"
