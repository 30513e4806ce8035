"""Evaluator behaviour: compute-then-mask, caching, batching, dtype/device, autograd."""

from __future__ import annotations

import numpy as np
import torch
from expr_testutils import assert_close, frame, make_panel

from alphaminer.expr import Evaluator, evaluate, evaluate_many, kernels, parse

PANEL = make_panel(T=60, S=6, seed=1)


def test_output_contract() -> None:
    out = evaluate("Mean(close,5d)", PANEL)
    assert out.shape == (PANEL.T, PANEL.S) and out.dtype == torch.float32
    assert out.device == PANEL.device
    assert torch.isnan(out[~PANEL.universe]).all()


def test_compute_then_mask() -> None:
    # a universe gap must not poison the windows of days inside the universe
    ev = Evaluator(PANEL)
    full = ev.evaluate("Mean(close,5d)", mask_universe=False)
    masked = ev.evaluate("Mean(close,5d)")
    uni = PANEL.universe
    assert torch.equal(torch.nan_to_num(masked[uni], 7.0), torch.nan_to_num(full[uni], 7.0))
    ref = frame(PANEL, "close").rolling(5).mean().where(uni.numpy())
    assert_close(masked, ref)


def test_evaluate_many_matches_single_and_shares_cache() -> None:
    exprs = ["Corr(Mean(close,5d),volume,10d)", "Sub(Mean(close,5d),close)", "Mean(close,5d)",
             "CSRank(Mean(close,5d))"]
    ev = Evaluator(PANEL)
    batch = ev.evaluate_many(exprs)
    info = ev.cache_info()
    assert info.hits >= 3  # Mean(close,5d) computed once (and close / volume reused)
    for k, e in enumerate(exprs):
        assert torch.equal(batch[k].nan_to_num(9.0), evaluate(e, PANEL).nan_to_num(9.0))
    assert torch.equal(evaluate_many(exprs, PANEL).nan_to_num(9.0), batch.nan_to_num(9.0))


def test_cache_is_byte_bounded() -> None:
    one = PANEL.T * PANEL.S * 4
    ev = Evaluator(PANEL, cache_bytes=3 * one)
    for d in range(2, 10):
        ev.evaluate(f"Mean(close,{d}d)")
    info = ev.cache_info()
    assert info.bytes <= 3 * one and info.entries <= 3
    ev.clear_cache()
    assert ev.cache_info().bytes == 0
    assert Evaluator(PANEL, cache_bytes=0).evaluate("Mean(close,3d)").shape == (60, 6)


def test_infinities_become_nan_at_every_operator() -> None:
    vals = PANEL.values.clone()
    vals[10, 0, 3] = float("inf")
    p = make_panel(T=60, S=6, seed=1)
    p.values = vals
    out = evaluate("Mul(close,1e30)", p, mask_universe=False)
    assert not torch.isinf(out).any()
    assert torch.isnan(evaluate("close", p, mask_universe=False)[10, 0])
    assert not torch.isinf(evaluate("Div(close,Sub(close,open))", p)).any()
    assert not torch.isinf(evaluate("Mul(Mul(volume,volume),Mul(volume,volume))", p)).any()


def test_features_accept_parsed_and_text() -> None:
    ev = Evaluator(PANEL)
    assert torch.equal(ev.evaluate(parse("close")).nan_to_num(0),
                       ev.evaluate("close").nan_to_num(0))


def test_kernels_are_autograd_friendly() -> None:
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.normal(size=(30, 4)), dtype=torch.float32, requires_grad=True)
    y = torch.tensor(rng.normal(size=(30, 4)), dtype=torch.float32)
    w = torch.tensor(rng.normal(size=(30, 4)), dtype=torch.float32)
    before = x.detach().clone()
    for fn in (lambda a: kernels.ts_mean(a, 5), lambda a: kernels.ts_std(a, 5),
               lambda a: kernels.ts_corr(a, y, 10), lambda a: kernels.ts_cov(a, y, 10),
               lambda a: kernels.ts_zscore(a, 5), lambda a: kernels.ts_wma(a, 5),
               lambda a: kernels.ts_ema(a, 5), lambda a: kernels.ts_max(a, 5),
               lambda a: kernels.ts_delta(a, 3), lambda a: kernels.ts_return(a, 3),
               kernels.cs_zscore, lambda a: kernels.ts_med(a, 5)):
        out = fn(x)
        loss = (torch.nan_to_num(out) * w).sum()  # random weights: Σ z-scores is constant
        (g,) = torch.autograd.grad(loss, x)
        assert torch.isfinite(g).all() and g.abs().sum() > 0
    assert torch.equal(x.detach(), before)
    # gradient of the rolling mean w.r.t. each input = (#windows containing it) / d
    (g,) = torch.autograd.grad(torch.nan_to_num(kernels.ts_mean(x, 5)).sum(), x)
    expected = np.array([max(0, min(i + 4, 29) - max(i, 4) + 1) for i in range(30)])
    np.testing.assert_allclose(g[:, 0].numpy(), expected / 5, rtol=1e-6)


def test_negative_ref_label() -> None:
    lab = evaluate("Sub(Div(Ref(close,-5d),close),1.0)", PANEL, mask_universe=False)
    c = frame(PANEL, "close")
    assert_close(lab, (c.shift(-5) / c - 1).to_numpy(), rtol=1e-5)
