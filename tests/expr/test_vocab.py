"""Vocabulary: token order from the operator table, validation, codecs, argument slots."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pydantic import ValidationError

from alphaminer.expr import OPERATORS, Call, Constant, ExprError, Feature, Window, parse
from alphaminer.expr.trees import TreeGenerator
from alphaminer.expr.vocab import TokenKind, Vocabulary, VocabularyConfig

PAPER_OPS = ["Abs", "Log", "Add", "Sub", "Mul", "Div", "Greater", "Less", "Ref", "Mean", "Med",
             "Sum", "Std", "Var", "Max", "Min", "Mad", "Delta", "WMA", "EMA", "Cov", "Corr"]


def test_default_is_alphaformer_tables() -> None:
    v = Vocabulary.default()
    expected = (["open", "close", "high", "low", "volume", "vwap"]
                + [repr(float(c)) for c in (-30, -10, -5, -2, -1, -0.5, -0.01, 0.01, 0.5, 1, 2,
                                            5, 10, 30)]
                + ["10d", "20d", "30d", "40d", "50d"]
                + [name for name in OPERATORS if name in PAPER_OPS] + ["END"])
    assert list(v.tokens) == expected and len(v) == len(expected) == 48
    assert v.end_id == len(v) - 1 and v.token(v.end_id) == "END"
    kinds = [v.kind(i) for i in range(len(v))]
    assert kinds == ([TokenKind.FEATURE] * 6 + [TokenKind.CONSTANT] * 14
                     + [TokenKind.WINDOW] * 5 + [TokenKind.OPERATOR] * 22 + [TokenKind.END])
    assert all(v.id(t) == i for i, t in enumerate(expected))


def test_operator_ids_follow_table_order_not_config_order() -> None:
    a = Vocabulary.from_config({"operators": ["Corr", "Abs", "Mean"]})
    b = Vocabulary.from_config({"operators": ["Mean", "Corr", "Abs"]})
    table_order = [n for n in OPERATORS if n in {"Corr", "Abs", "Mean"}]
    assert list(a.operators) == list(b.operators) == table_order
    assert a == b and hash(a) == hash(b)


def test_validation_names_valid_choices() -> None:
    with pytest.raises(ValidationError, match="unknown operators.*Foo.*valid:.*Mean"):
        Vocabulary.from_config({"operators": ["Mean", "Foo"]})
    with pytest.raises(ValueError, match="unknown features.*price.*valid:.*close"):
        Vocabulary.from_config({"features": ["close", "price"]})
    with pytest.raises(ValidationError, match="duplicate"):
        Vocabulary.from_config({"windows": [10, "10d"]})
    with pytest.raises(ValidationError, match=">= 1"):
        Vocabulary.from_config({"windows": [-5]})
    with pytest.raises(ValidationError, match="whole number"):
        Vocabulary.from_config({"windows": ["ten"]})
    with pytest.raises(ValidationError, match="finite"):
        Vocabulary.from_config({"constants": [float("inf")]})
    with pytest.raises(ValidationError, match="extra"):
        Vocabulary.from_config({"operator": ["Mean"]})
    v = Vocabulary.from_config({"features": ["close", "turnover"]},
                               known_features=["close", "turnover"])
    assert v.features == ("close", "turnover")


def test_config_model_parses_windows_and_defaults() -> None:
    cfg = VocabularyConfig(windows=["5d", 20, "30"])
    assert cfg.windows == (5, 20, 30)
    assert VocabularyConfig().operators == tuple(PAPER_OPS)
    v = Vocabulary.from_config(cfg)
    assert v.token(v.id("5d")) == "5d" and v.windows == (5, 20, 30)


def test_dict_round_trip_is_json() -> None:
    v = Vocabulary.from_config({"operators": ["Mean", "Corr"], "constants": [0.5, -2.0],
                                "windows": ["3d", 7], "features": ["close", "volume"]})
    d = json.loads(json.dumps(v.to_dict()))
    w = Vocabulary.from_dict(d)
    assert w == v and w.tokens == v.tokens
    assert d["windows"] == [3, 7] and d["constants"] == [0.5, -2.0]


def test_id_spellings_and_unknown_tokens() -> None:
    v = Vocabulary.default()
    assert v.id("-30") == v.id("-30.0") == v.id("Constant(-30)") == 6
    assert v.id(Window(20)) == v.id("20d")
    assert "close" in v and "7d" not in v and "CSRank" not in v
    with pytest.raises(KeyError):
        v.id("7d")
    assert v.leaf(v.id("close")) == Feature("close")
    assert v.leaf(v.id("0.5")) == Constant(0.5)
    assert v.operator(v.id("Mean")).name == "Mean"
    with pytest.raises(ValueError):
        v.leaf(v.id("Mean"))
    assert v.ids_of_kind("window") == [20, 21, 22, 23, 24]


def test_encode_decode_round_trip_random_trees() -> None:
    v = Vocabulary.default()
    gen = TreeGenerator(v, reject_degenerate=False)
    rng = np.random.default_rng(5)
    for _ in range(300):
        e = gen.grow(rng, 4)
        ids = v.encode(e, add_end=True)
        assert ids[-1] == v.end_id
        assert [v.token(i) for i in ids[:-1]] == [str(x) for x in _rpn_nodes(e)]
        assert v.decode(ids) == e and v.decode(ids[:-1]) == e
    with pytest.raises(KeyError, match="not in the vocabulary"):
        v.encode(parse("Mean(close,7d)"))
    with pytest.raises(ValueError, match="after END"):
        v.decode([v.id("close"), v.end_id, v.id("close")])


def _rpn_nodes(e):  # noqa: ANN001, ANN202 - independent post-order walk
    if isinstance(e, Call):
        out = []
        for a in e.args:
            out += _rpn_nodes(a)
        return [*out, e.op]
    return [e]


def test_windows_below_min_window_are_not_usable() -> None:
    v = Vocabulary.from_config({"operators": ["Mean", "Std", "Ref", "Add", "Corr"],
                                "windows": [1, 2, 5], "constants": [0.5]})
    ids = {v.token(i): i for i in range(len(v))}
    std_windows = {v.token(i) for i in v.accepted_leaves("Std", 1)}
    assert std_windows == {"2d", "5d"}  # Std needs >= 2
    assert {v.token(i) for i in v.accepted_leaves("Mean", 1)} == {"1d", "2d", "5d"}
    # the reference: Call itself
    for op in v.operators:
        for pos in range(OPERATORS[op].arity):
            for t in range(v.n_leaves):
                leaf = v.leaves[t]
                args = [Feature("close")] * OPERATORS[op].arity
                if OPERATORS[op].args[-1].value == "window":
                    args[-1] = Window(5)
                args[pos] = leaf
                try:
                    Call(op, args)
                    ok = True
                except ExprError:
                    ok = False
                assert (t in v.accepted_leaves(op, pos)) == ok, (op, pos, leaf)
    assert v.accepts_series("Add", 0) and not v.accepts_series("Mean", 1)
    assert ids["0.5"] in v.accepted_leaves("Add", 1)
    assert ids["0.5"] not in v.accepted_leaves("Mean", 0)


def test_constant_domain_is_probed_from_the_table() -> None:
    if "Quantile" not in OPERATORS:
        pytest.skip("operator table has no Quantile")
    v = Vocabulary.from_config({"operators": ["Quantile"], "constants": [-1.0, 0.25, 0.5, 2.0],
                                "windows": [5]})
    slot = [i for i, k in enumerate(OPERATORS["Quantile"].args) if k.value == "constant"]
    accepted = {v.token(i) for i in v.accepted_leaves("Quantile", slot[0])}
    expected = set()
    for c in v.constants:
        args = [Feature("close"), Window(5), Window(5)]
        for p, k in enumerate(OPERATORS["Quantile"].args):
            args[p] = {"series": Feature("close"), "window": Window(5)}.get(k.value, Constant(c))
        try:
            Call("Quantile", args)
            expected.add(repr(c))
        except ExprError:
            pass
    assert accepted == expected and 0 < len(expected) < 4
