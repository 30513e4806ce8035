"""Typed random trees and tree edits: limits, validity, determinism."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from alphaminer.expr import (
    OPERATORS,
    Call,
    Constant,
    Feature,
    Window,
    depth,
    dimension_of,
    from_rpn,
    subexpressions,
    to_rpn,
)
from alphaminer.expr.dimensions import DimensionError
from alphaminer.expr.trees import TreeGenerator
from alphaminer.expr.vocab import Vocabulary

DEFAULT = Vocabulary.default()
ALL = Vocabulary.from_config({
    "operators": list(OPERATORS), "features": ["open", "high", "low", "close", "volume", "vwap"],
    "constants": [-1.0, 0.0, 0.5, 2.0], "windows": [1, 2, 5, 10]})
DEGENERATE = {"Sub", "Div", "Greater", "Less", "Cov", "Corr"}


def _independently_valid(e, vocab: Vocabulary, dims: bool, degenerate: bool = True) -> bool:  # noqa: ANN001
    """Reference: rebuild from RPN, every token in the vocabulary, dims, no x-op-x."""
    toks = to_rpn(e)
    if from_rpn(toks) != e or any(t not in vocab.tokens for t in toks):
        return False
    if not isinstance(e, Feature | Call):
        return False
    if dims:
        try:
            dimension_of(e)
        except DimensionError:
            return False
    if degenerate:
        for s in subexpressions(e):
            if s.op in DEGENERATE and s.args[0] == s.args[1]:
                return False
    return True


@pytest.mark.parametrize("dims", [None, True])
def test_grow_and_full_respect_depth(dims: bool | None) -> None:
    gen = TreeGenerator(DEFAULT, dims=dims)
    rng = np.random.default_rng(0)
    depths = Counter()
    for d in range(5):
        for _ in range(60):
            g = gen.grow(rng, d)
            assert depth(g) <= d and _independently_valid(g, DEFAULT, bool(dims))
            depths[depth(g)] += 1
            f = gen.full(rng, d)
            assert depth(f) == d and _independently_valid(f, DEFAULT, bool(dims))
            _assert_full(f, d)  # every series branch reaches depth d
    assert len(depths) == 5  # grow really varies its shape


def _assert_full(e, d: int) -> None:  # noqa: ANN001
    if isinstance(e, Call):
        for a in e.args:
            if isinstance(a, Feature | Call):
                _assert_full(a, d - 1)
    elif isinstance(e, Feature):
        assert d == 0, e


def test_ramped_half_and_half() -> None:
    gen = TreeGenerator(DEFAULT)
    trees = gen.ramped_half_and_half(np.random.default_rng(1), 40, 2, 5)
    assert len(trees) == 40
    full = trees[0::2]
    assert sorted({depth(t) for t in full}) == [2, 3, 4, 5]
    assert all(depth(t) <= 5 for t in trees)
    with pytest.raises(ValueError):
        gen.ramped_half_and_half(np.random.default_rng(1), 4, 3, 2)


def test_seeds_are_deterministic() -> None:
    gen = TreeGenerator(DEFAULT, dims=True)

    def draw(seed: int) -> list[str]:
        rng = np.random.default_rng(seed)
        ts = gen.ramped_half_and_half(rng, 10, 1, 3)
        ts.append(gen.point_mutation(ts[0], rng))
        ts.append(gen.subtree_mutation(ts[1], rng))
        ts.extend(gen.crossover(ts[2], ts[3], rng))
        return [str(t) for t in ts]

    assert draw(42) == draw(42)
    assert draw(42) != draw(43)


def test_every_table_operator_is_generated() -> None:
    gen = TreeGenerator(ALL, reject_degenerate=False)
    rng = np.random.default_rng(2)
    seen = Counter()
    for _ in range(1500):
        t = gen.grow(rng, 3)
        assert _independently_valid(t, ALL, False, degenerate=False)
        seen.update(s.op for s in subexpressions(t))
    assert set(seen) == set(OPERATORS)


@pytest.mark.parametrize("dims", [None, True])
def test_edits_give_valid_trees(dims: bool | None) -> None:
    gen = TreeGenerator(DEFAULT, dims=dims, max_depth=6, max_len=30)
    rng = np.random.default_rng(3)
    changed = Counter()
    for _ in range(150):
        a, b = gen.grow(rng, 4), gen.full(rng, 3)
        for name, out in [("subtree", gen.subtree_mutation(a, rng)),
                          ("point", gen.point_mutation(b, rng)),
                          ("hoist", gen.hoist_mutation(b, rng)),
                          ("crossover", gen.crossover(a, b, rng))]:
            outs = out if isinstance(out, tuple) else (out,)
            for o in outs:
                assert _independently_valid(o, DEFAULT, bool(dims)), (name, str(o))
                assert depth(o) <= 6 and len(to_rpn(o)) <= 30
            changed[name] += outs != ((a, b) if name == "crossover" else
                                      (a,) if name == "subtree" else (b,))
    assert all(changed[k] > 100 for k in ("subtree", "point", "hoist", "crossover")), changed


def test_point_mutation_changes_one_node_of_the_same_kind() -> None:
    gen = TreeGenerator(DEFAULT)
    rng = np.random.default_rng(4)
    for _ in range(200):
        t = gen.full(rng, 3)
        m = gen.point_mutation(t, rng)
        a, b = _preorder(t), _preorder(m)
        assert len(a) == len(b)
        diff = [(x, y) for x, y in zip(a, b) if _label(x) != _label(y)]
        assert len(diff) == 1, (str(t), str(m))
        x, y = diff[0]
        assert type(x) is type(y)
        if isinstance(x, Call):
            assert OPERATORS[x.op].args == OPERATORS[y.op].args


def _preorder(e) -> list:  # noqa: ANN001
    return [e] + ([n for a in e.args for n in _preorder(a)] if isinstance(e, Call) else [])


def _label(e) -> str:  # noqa: ANN001
    return e.op if isinstance(e, Call) else str(e)


def test_hoist_and_crossover_use_subtrees() -> None:
    gen = TreeGenerator(DEFAULT)
    rng = np.random.default_rng(5)
    for _ in range(100):
        a, b = gen.full(rng, 3), gen.full(rng, 2)
        h = gen.hoist_mutation(a, rng)
        assert h in set(_preorder(a)[1:])
        ca, cb = gen.crossover(a, b, rng)
        # each child is a parent with one sub-tree taken from the other parent
        assert any(n in set(_preorder(b)) for n in _preorder(ca)[1:] + [ca])
        assert any(n in set(_preorder(a)) for n in _preorder(cb)[1:] + [cb])
    assert gen.hoist_mutation(Feature("close"), rng) == Feature("close")


def test_slots_are_typed() -> None:
    # windows only where windows go, constants only where the table allows them
    gen = TreeGenerator(ALL, reject_degenerate=False)
    rng = np.random.default_rng(6)
    for _ in range(500):
        t = gen.grow(rng, 3)
        for s in subexpressions(t):
            for kind, a in zip(OPERATORS[s.op].args, s.args):
                if kind.value == "window":
                    assert isinstance(a, Window)
                elif kind.value == "series":
                    assert isinstance(a, Feature | Call)
                elif isinstance(a, Window):
                    raise AssertionError(f"window in a {kind} slot: {s}")
        assert not isinstance(t, Constant)


def test_impossible_request_raises() -> None:
    tiny = Vocabulary.from_config({"operators": ["Abs"], "features": ["close"]})
    gen = TreeGenerator(tiny, max_len=2)
    with pytest.raises(RuntimeError, match="could not draw"):
        gen.full(np.random.default_rng(0), 3)
    assert str(gen.full(np.random.default_rng(0), 1)) == "Abs(close)"
