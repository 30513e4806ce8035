"""Printer/parser/RPN round trips, error positions, alphagen and qlib import."""

from __future__ import annotations

import pytest
from expr_strategies import expressions
from hypothesis import HealthCheck, given, settings

from alphaminer.expr import (
    Call,
    Constant,
    ExprError,
    Feature,
    ParseError,
    RPNError,
    Window,
    depth,
    features_used,
    from_rpn,
    max_lookahead,
    max_lookback,
    parse,
    parse_alphagen,
    parse_qlib,
    size,
    to_rpn,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions(max_leaves=8, negative_ref=True))
def test_print_parse_and_rpn_round_trip(e) -> None:  # noqa: ANN001
    text = str(e)
    assert parse(text) == e
    assert str(parse(text)) == text
    assert from_rpn(to_rpn(e)) == e
    assert hash(parse(text)) == hash(e)


def test_canonical_form_and_equality() -> None:
    e = Call("Div", [Call("Sub", [Feature("close"), Feature("open")]),
                     Call("Sub", [Feature("high"), Feature("low")])])
    assert str(e) == "Div(Sub(close,open),Sub(high,low))"
    assert parse("Div( Sub(close, open), Sub(high,low) )") == e
    assert str(parse("Mean(close,20d)")) == "Mean(close,20d)"
    assert str(parse("Add(close,-0.5)")) == "Add(close,-0.5)"
    assert parse("Ref(close,-20d)").args[1] == Window(-20)
    assert str(Constant(0.1 + 0.2)) == "0.30000000000000004"
    assert parse(str(Call("Mul", [Constant(0.1 + 0.2), Feature("close")]))).args[0].value == \
        0.1 + 0.2
    assert {parse("Mean(close,5d)"), parse("Mean(close, 5d)")} == {parse("Mean(close,5d)")}
    assert parse("Mean(close,5d)") != parse("Mean(close,6d)")
    with pytest.raises(AttributeError):
        e.op = "Mul"  # immutable


def test_tree_helpers() -> None:
    e = parse("Corr(Mean(close,5d),Ref(volume,3d),10d)")
    assert size(e) == 3 and depth(e) == 2
    assert features_used(e) == {"close", "volume"}
    assert max_lookback(e) == 9 + 4  # Corr window 10 → 9 days, plus Mean's 4 (> Ref's 3)
    assert max_lookback(parse("Mean(Ref(close,5d),20d)")) == 24
    assert max_lookback(parse("close")) == 0
    assert max_lookahead(parse("Div(Ref(close,-20d),close)")) == 20
    assert max_lookahead(parse("Mean(close,20d)")) == 0


@pytest.mark.parametrize("text, col, fragment", [
    ("Add(close,", 11, "expected an expression"),
    ("Mean(close,20)", 12, "must be a window"),
    ("Foo(close)", 1, "unknown operator 'Foo'"),
    ("Mean(close,20d))", 16, "unexpected ')'"),
    ("Std(close,1d)", 11, "below the minimum 2d"),
    ("Mean(close,-5d)", 12, "below the minimum"),
    ("Add(close volume)", 11, "expected ')'"),
    ("Mean(close,5d", 14, "expected ')'"),
    ("Abs(close,open)", 1, "takes 1 arguments"),
    ("Add(1.0,2.0)", 1, "no series operand"),
    ("Mean(1.0,5d)", 6, "must be a series"),
    ("close # open", 7, "unexpected character '#'"),
    ("Mean", 1, "needs arguments"),
])
def test_parse_errors_point_at_the_column(text: str, col: int, fragment: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(text)
    err = info.value
    assert fragment in err.message
    assert err.pos + 1 == col
    assert f"column {col}" in str(err)
    lines = str(err).splitlines()
    assert lines[-1].index("^") == lines[-2].index(text[0]) + col - 1


def test_direct_construction_validates() -> None:
    with pytest.raises(ExprError):
        Call("Mean", [Feature("close"), Constant(5.0)])
    with pytest.raises(ExprError):
        Call("Nope", [Feature("close")])
    with pytest.raises(ExprError):
        Constant(float("nan"))
    with pytest.raises(ExprError):
        Feature("Mean")


def test_rpn_errors() -> None:
    assert to_rpn(parse("Mean(close,20d)")) == ["close", "20d", "Mean"]
    assert from_rpn(["close", "-0.5", "Add"]) == parse("Add(close,-0.5)")
    with pytest.raises(RPNError, match="needs 2 operands"):
        from_rpn(["close", "Add"])
    with pytest.raises(RPNError, match="leaves 2 items"):
        from_rpn(["close", "open"])
    with pytest.raises(RPNError, match="token 2 .Mean.: argument 2"):
        from_rpn(["close", "5.0", "Mean"])
    with pytest.raises(RPNError, match="token 0"):
        from_rpn(["cl!ose"])


def test_alphagen_import() -> None:
    assert parse_alphagen("Mean($close,20d)") == parse("Mean(close,20d)")
    assert parse_alphagen("Mul(Constant(-0.5),Rank($volume,10d))") == parse(
        "Mul(-0.5,TsRank(volume,10d))")
    assert parse_alphagen("Corr($open,$volume,10d)") == parse("Corr(open,volume,10d)")
    assert parse_alphagen("CSRank(Div($close,$open))") == parse("CSRank(Div(close,open))")
    with pytest.raises(ParseError, match=r"\$name"):
        parse_alphagen("Mean(close,20d)")
    with pytest.raises(ParseError, match="unknown operator 'Pow'"):
        parse_alphagen("Pow($close,Constant(2.0))")


def test_qlib_import() -> None:
    assert parse_qlib("Mean($close, 20)") == parse("Mean(close,20d)")
    assert parse_qlib("Ref($close, 5)/$close - 1") == parse(
        "Sub(Div(Ref(close,5d),close),1.0)")
    assert parse_qlib("($close-$open)/($high-$low+1e-12)") == parse(
        "Div(Sub(close,open),Add(Sub(high,low),1e-12))")
    assert parse_qlib("Corr($close, Log($volume+1), 10)") == parse(
        "Corr(close,Log(Add(volume,1.0)),10d)")
    assert parse_qlib("-Rank($close, 5)") == parse("Neg(TsRank(close,5d))")
    assert parse_qlib("Std($close, 20)/$close") == parse("Div(Std(close,20d),close)")
    assert parse_qlib("Greater($high, Ref($close, 1))") == parse(
        "Greater(high,Ref(close,1d))")
    assert parse_qlib("2*$close") == parse("Mul(2.0,close)")
    assert parse_qlib("$close*-1") == parse("Mul(close,-1.0)")
    assert parse_qlib("Ref($close, -2)") == parse("Ref(close,-2d)")
    with pytest.raises(ParseError, match="Count"):
        parse_qlib("Count($high, 30)")
    with pytest.raises(ParseError, match="integer window"):
        parse_qlib("Mean($close, 2.5)")
    with pytest.raises(ParseError, match="column 6"):
        parse_qlib("Mean(close, 20)")
