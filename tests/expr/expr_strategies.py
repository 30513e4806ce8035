"""Hypothesis strategies for random, valid expressions (shared by the property tests).

They draw a seed and shape parameters and build with the library's typed generator
(:class:`alphaminer.expr.trees.TreeGenerator`) over a vocabulary holding every operator of the
table, so the tests exercise exactly what the miners generate. Constants are then replaced by
hypothesis floats (awkward ``repr``s for the codec tests) and, on request, ``Ref`` windows by
negative ones (look-ahead labels).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from hypothesis import strategies as st

from alphaminer.expr import OPERATORS, Call, Constant, ExprError, Feature, Node, Window
from alphaminer.expr.trees import TreeGenerator
from alphaminer.expr.vocab import Vocabulary

FEATURES = ("open", "high", "low", "close", "volume", "vwap", "amount")
CONSTANTS = (-0.5, 0.0, 1.0, 1e-5, 0.25, 2.0)
constants = st.floats(min_value=-30, max_value=30, allow_nan=False, allow_infinity=False,
                      width=32).map(Constant) | st.sampled_from(list(CONSTANTS)).map(Constant)
features = st.sampled_from(FEATURES).map(Feature)


@lru_cache(maxsize=16)
def generator(max_window: int = 8) -> TreeGenerator:
    """Typed generator over every table operator, windows ``1..max_window``."""
    vocab = Vocabulary.from_config({"operators": list(OPERATORS), "features": list(FEATURES),
                                    "constants": list(CONSTANTS),
                                    "windows": list(range(1, max_window + 1))})
    return TreeGenerator(vocab, reject_degenerate=False)


def _n_leaves(e: Node) -> int:
    return sum(map(_n_leaves, e.args)) if isinstance(e, Call) else int(not isinstance(e, Window))


def _rebuild(e: Node, draw: st.DrawFn, negative_ref: bool) -> Node:
    """Swap constants for drawn floats and (optionally) Ref windows for negative ones."""
    if isinstance(e, Constant):
        return draw(constants)
    if not isinstance(e, Call):
        return e
    args = [_rebuild(a, draw, negative_ref) for a in e.args]
    if negative_ref and e.spec.allow_negative_window and draw(st.booleans()):
        args = [Window(-draw(st.integers(1, 3))) if isinstance(a, Window) else a for a in args]
    try:
        return Call(e.op, args)
    except ExprError:  # e.g. a drawn constant outside an operator's domain: keep the original
        return e


def expressions(max_leaves: int = 6, max_window: int = 8, negative_ref: bool = False
                ) -> st.SearchStrategy:
    """Random series expressions (features at the leaves, constants where allowed)."""

    @st.composite
    def build(draw: st.DrawFn) -> Node:
        gen = generator(max_window)
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        max_depth = draw(st.integers(1, 4))
        full = draw(st.booleans())
        for _ in range(20):
            e = gen.full(rng, max_depth) if full else gen.grow(rng, max_depth)
            if _n_leaves(e) <= max_leaves:
                break
            max_depth = max(0, max_depth - 1)
        else:
            e = draw(features)
        return _rebuild(e, draw, negative_ref)

    return build()
