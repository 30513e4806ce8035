"""The representation's inverse is exact on real bars and always yields valid OHLCV."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from alphaminer.synthetic.representation import (
    EPS,
    RAW_FEATURES,
    RealSequences,
    Scaler,
    decode,
    encode,
    panel_from_bars,
)

I = {f: i for i, f in enumerate(RAW_FEATURES)}


def _assert_valid(bars: np.ndarray) -> None:
    o, h, lo, c, v, w = (bars[..., i] for i in range(6))
    assert np.isfinite(bars).all()
    assert (lo <= o).all() and (lo <= c).all()
    assert (o <= h).all() and (c <= h).all()
    assert (lo <= w).all() and (w <= h).all()
    assert (v > 0).all() and (lo > 0).all()


@settings(max_examples=200, deadline=None)
@given(rep=arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(1, 40), st.just(6)),
                  elements=st.floats(-1e3, 1e3, allow_nan=False)),
       c0=st.floats(1e-2, 1e5), v0=st.floats(1.0, 1e9))
def test_any_generated_array_decodes_to_valid_ohlcv(rep, c0, v0) -> None:
    n = rep.shape[0]
    bars = decode(torch.from_numpy(rep), torch.full((n,), c0), torch.full((n,), v0))
    _assert_valid(bars.numpy())
    # and still valid after the panel's float32 cast (rounding is monotone)
    p = panel_from_bars(bars, np.arange(rep.shape[1]).astype("datetime64[D]"),
                        [f"S{i}" for i in range(n)])
    _assert_valid(np.stack([p.feature(f).numpy() for f in RAW_FEATURES], -1))
    assert np.allclose(p.feature("amount").numpy(), (p.feature("vwap") * p.feature("volume"))
                       .numpy(), rtol=1e-5)


def _random_bars(rng: np.random.Generator, S: int, L: int) -> np.ndarray:
    """Valid bars built by hand (independently of the codec), some with open == high etc."""
    close = 10 * np.exp(np.cumsum(rng.normal(0, 0.02, (S, L)), 1))
    open_ = close * np.exp(rng.normal(0, 0.01, (S, L)))
    top = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.01, (S, L))))
    bot = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.01, (S, L))))
    flat = rng.random((S, L)) < 0.2
    top = np.where(flat, np.maximum(open_, close), top)
    bot = np.where(rng.random((S, L)) < 0.2, np.minimum(open_, close), bot)
    vwap = bot + rng.random((S, L)) * (top - bot)
    vol = np.exp(rng.normal(12, 1, (S, L)))
    return np.stack([open_, top, bot, close, vol, vwap], -1)


def test_inverse_is_exact_on_valid_bars() -> None:
    bars = _random_bars(np.random.default_rng(0), 5, 50)
    x = torch.from_numpy(bars)
    rep = encode(x)
    back = decode(rep, x[:, 0, I["close"]], x[:, 0, I["volume"]]).numpy()
    np.testing.assert_allclose(back, bars[:, 1:], rtol=1e-10)
    # hand check of two coordinates
    np.testing.assert_allclose(rep[..., 0].numpy(), np.log(bars[:, 1:, 3] / bars[:, :-1, 3]))
    gap = np.log(bars[:, 1:, 1] / np.maximum(bars[:, 1:, 0], bars[:, 1:, 3]))
    np.testing.assert_allclose(rep[..., 2].numpy(), np.log(gap + EPS))


def test_real_sequences_and_window_ends(train_panel) -> None:
    real = RealSequences.from_panel(train_panel)
    raw = np.stack([train_panel.feature(f).numpy() for f in RAW_FEATURES], -1).astype(float)
    ok = (train_panel.observed & train_panel.tradable).numpy() & np.isfinite(raw).all(-1) & \
        (raw > 0).all(-1)
    want = np.zeros_like(ok)
    want[1:] = ok[1:] & ok[:-1]
    assert (real.valid.numpy() == want).all()
    ends = real.window_ends(10).numpy()
    # reference: a plain loop over every (day, stock)
    v = real.valid.numpy()
    ref = np.zeros_like(v)
    for t in range(9, v.shape[0]):
        ref[t] = v[t - 9:t + 1].all(0)
    assert (ends == ref).all()
    sc = Scaler.fit(real.rep, real.valid)
    z = sc.transform(real.rep)[real.valid]
    np.testing.assert_allclose(z.mean(0).numpy(), 0, atol=1e-4)
    np.testing.assert_allclose(sc.inverse(sc.transform(real.rep))[real.valid].numpy(),
                               real.rep[real.valid].numpy(), rtol=1e-5, atol=1e-6)
