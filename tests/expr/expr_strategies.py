"""Hypothesis strategies for random, valid expressions (shared by the property tests)."""

from __future__ import annotations

from hypothesis import strategies as st

from alphaminer.expr import OPERATORS, ArgType, Call, Constant, Feature, Window

FEATURES = ("open", "high", "low", "close", "volume", "vwap", "amount")
constants = st.floats(min_value=-30, max_value=30, allow_nan=False, allow_infinity=False,
                      width=32).map(Constant) | st.sampled_from([-0.5, 0.0, 1.0, 1e-5]).map(
                          Constant)
features = st.sampled_from(FEATURES).map(Feature)


def _call(children: st.SearchStrategy, max_window: int, negative_ref: bool
          ) -> st.SearchStrategy:
    @st.composite
    def build(draw: st.DrawFn) -> Call:
        op = draw(st.sampled_from(sorted(OPERATORS)))
        spec = OPERATORS[op]
        args = []
        for kind in spec.args:
            if kind is ArgType.WINDOW:
                lo = spec.min_window if not (negative_ref and spec.allow_negative_window) \
                    else -3
                args.append(Window(draw(st.integers(max(lo, spec.min_window if lo >= 0 else lo),
                                                    max_window))))
            elif kind is ArgType.OPERAND:
                args.append(draw(children | constants))
            else:
                args.append(draw(children))
        if all(isinstance(a, Constant) for a in args):
            args[0] = draw(features)
        return Call(op, args)

    return build()


def expressions(max_leaves: int = 6, max_window: int = 8, negative_ref: bool = False
                ) -> st.SearchStrategy:
    """Random series expressions (features at the leaves, constants where allowed)."""
    return st.recursive(features, lambda ch: _call(ch, max_window, negative_ref),
                        max_leaves=max_leaves)
