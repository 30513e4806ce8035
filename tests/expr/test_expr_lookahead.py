"""No look-ahead: changing data after day t never changes any output at days <= t."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from expr_strategies import expressions
from expr_testutils import make_panel
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alphaminer.expr import (
    OPERATORS,
    ArgType,
    Call,
    Constant,
    Evaluator,
    Feature,
    Window,
    max_lookahead,
)

BASE = make_panel(T=48, S=7, seed=11)


def _perturbed(t: int, seed: int):  # noqa: ANN202
    """Copy of BASE whose values and universe after day t are replaced (NaNs included)."""
    rng = np.random.default_rng(seed)
    p = make_panel(T=48, S=7, seed=11)
    vals = p.values.clone()
    tail = vals[t + 1:]
    noise = torch.from_numpy(rng.lognormal(0, 1, tuple(tail.shape)).astype(np.float32))
    noise[torch.from_numpy(rng.random(tuple(tail.shape)) < 0.2)] = float("nan")
    vals[t + 1:] = noise * 10
    p.values = vals
    uni = p.universe.clone()
    uni[t + 1:] = torch.from_numpy(rng.random(tuple(uni[t + 1:].shape)) < 0.5)
    p.universe = uni
    return p


def _same_until(a: torch.Tensor, b: torch.Tensor, t: int) -> bool:
    a, b = a[: t + 1], b[: t + 1]
    return bool(((a == b) | (torch.isnan(a) & torch.isnan(b))).all())


def _one_per_operator() -> list[str]:
    out = []
    for op in OPERATORS.values():
        args = []
        for i, kind in enumerate(op.args):
            if kind is ArgType.WINDOW:
                args.append(Window(max(op.min_window, 5)))
            elif kind is ArgType.CONSTANT:  # Quantile's level, FillNaN's fill value
                args.append(Constant(0.5))
            else:
                args.append(Feature(("close", "volume")[i % 2]))
        out.append(str(Call(op.name, args)))
    return out


EXPRS = _one_per_operator()
EV_BASE = Evaluator(BASE)
BASE_OUT = EV_BASE.evaluate_many(EXPRS)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(t=st.integers(0, 46), seed=st.integers(0, 2**31 - 1))
def test_every_operator_is_causal(t: int, seed: int) -> None:
    changed = Evaluator(_perturbed(t, seed)).evaluate_many(EXPRS)
    for k, text in enumerate(EXPRS):
        assert _same_until(BASE_OUT[k], changed[k], t), f"{text} changed at or before day {t}"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(e=expressions(max_leaves=5, max_window=6), t=st.integers(0, 46),
       seed=st.integers(0, 2**31 - 1))
def test_random_expressions_are_causal(e, t: int, seed: int) -> None:  # noqa: ANN001
    assert max_lookahead(e) == 0
    before = EV_BASE.evaluate(e)
    after = Evaluator(_perturbed(t, seed), cache_bytes=0).evaluate(e)
    assert _same_until(before, after, t), str(e)


def test_negative_ref_does_look_ahead() -> None:
    # the only exception, used for labels: it must see the future (so the test above bites)
    t = 20
    before = EV_BASE.evaluate("Ref(close,-3d)", mask_universe=False)
    after = Evaluator(_perturbed(t, 0)).evaluate("Ref(close,-3d)", mask_universe=False)
    assert not _same_until(before, after, t)


@pytest.mark.parametrize("text", ["Mean(close,5d)", "Corr(close,volume,5d)"])
def test_perturbation_is_visible_after_t(text: str) -> None:
    t = 20
    after = Evaluator(_perturbed(t, 1)).evaluate(text)
    before = EV_BASE.evaluate(text)
    assert not _same_until(before, after, BASE.T - 1)
