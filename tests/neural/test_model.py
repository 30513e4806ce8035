"""AlphaNet operator layer vs pandas rolling references, shapes, names, NaN guards."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from alphaminer.neural.alphanet.model import (
    AlphaNet,
    AlphaNetConfig,
    operator_layer,
    operator_names,
    pooled_names,
)

ROWS = ("open", "high", "low", "close", "vwap", "volume", "amount", "return1")


def pandas_reference(x: np.ndarray, d: int = 10) -> dict[str, np.ndarray]:
    """Rolling-window references (pandas), sampled at days d-1, 2d-1, ... of one image [R, W]."""
    R, W = x.shape
    at = list(range(d - 1, W, d))
    s = [pd.Series(x[r]) for r in range(R)]
    w = np.arange(1, d + 1, dtype=float)
    out = {}
    for r in range(R):
        roll = s[r].rolling(d)
        out[f"ts_stddev({ROWS[r]},{d})"] = roll.std().to_numpy()[at]
        out[f"ts_mean({ROWS[r]},{d})"] = roll.mean().to_numpy()[at]
        out[f"ts_zscore({ROWS[r]},{d})"] = ((s[r] - roll.mean()) / roll.std()).to_numpy()[at]
        out[f"ts_return({ROWS[r]},{d})"] = s[r].pct_change(d - 1).to_numpy()[at]
        out[f"decay_linear({ROWS[r]},{d})"] = roll.apply(
            lambda v: float(np.dot(v, w) / w.sum()), raw=True).to_numpy()[at]
        for q in range(r + 1, R):
            key = f"{ROWS[r]},{ROWS[q]},{d}"
            out[f"ts_corr({key})"] = roll.corr(s[q]).to_numpy()[at]
            out[f"ts_cov({key})"] = roll.cov(s[q]).to_numpy()[at]
    return out


def test_operator_layer_matches_pandas_rolling():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 8, 30, generator=g, dtype=torch.float64) + 0.5
    out = operator_layer(x, 10, 10)
    cfg = AlphaNetConfig()
    names = operator_names(cfg)
    assert out.shape == (3, 96, 3) and len(names) == 96
    for b in range(3):
        ref = pandas_reference(x[b].numpy())
        assert set(ref) == set(names)
        for c, name in enumerate(names):
            np.testing.assert_allclose(out[b, c].numpy(), ref[name], rtol=1e-9, atol=1e-12,
                                       err_msg=name)


def test_operator_layer_matches_expression_language():
    expr = pytest.importorskip("alphaminer.expr")
    if not hasattr(expr, "Evaluator"):
        pytest.skip("alphaminer.expr.Evaluator not available yet")
    from alphaminer.panel import Panel

    g = torch.Generator().manual_seed(1)
    x = torch.rand(4, 8, 30, generator=g) + 0.5  # [B=stocks, R, W]
    vals = x.permute(2, 0, 1).contiguous()  # panel [T=30, S=4, F=8]
    feats = ("open", "high", "low", "close", "vwap", "volume", "amount", "ret")
    ones = torch.ones(30, 4, dtype=torch.bool)
    panel = Panel(values=vals, dates=pd.bdate_range("2021-01-01", periods=30),
                  instruments=list("ABCD"), features=feats, observed=ones, universe=ones,
                  tradable=ones)
    ev = expr.Evaluator(panel)
    out = operator_layer(x, 10, 10)
    at = [9, 19, 29]
    a, b = feats[0], feats[2]
    checks = {
        0 * 28 + 1: f"Corr({a},{b},10d)", 28 + 1: f"Cov({a},{b},10d)",
        56 + 5: "Std(volume,10d)", 64 + 3: "TsZScore(close,10d)",
        72 + 7: "TsReturn(ret,9d)", 80 + 4: "WMA(vwap,10d)", 88 + 6: "Mean(amount,10d)",
    }
    for ch, formula in checks.items():
        ref = ev.evaluate(formula)[at].T  # [S, 3]
        torch.testing.assert_close(out[:, ch], ref, rtol=2e-4, atol=1e-5, msg=formula)


def test_constant_windows_are_guarded_and_differentiable():
    x = torch.rand(2, 8, 30, dtype=torch.float64) + 0.5
    x[0, 2, :10] = 3.0  # constant block: corr with row 2, zscore of row 2 -> 0
    x[1, 5, 10:20] = 0.0  # zero first value: ts_return -> 0
    x.requires_grad_(True)
    out = operator_layer(x)
    assert torch.isfinite(out).all()
    names = operator_names(AlphaNetConfig())
    assert out[0, names.index("ts_corr(open,low,10)"), 0] == 0
    assert out[0, names.index("ts_zscore(low,10)"), 0] == 0
    assert out[0, names.index("ts_stddev(low,10)"), 0] == 0
    assert out[1, names.index("ts_return(volume,10)"), 1] == 0
    out.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_shapes_and_names():
    cfg = AlphaNetConfig()
    assert (cfg.n_channels, cfg.n_columns, cfg.n_pooled, cfg.fc_input) == (96, 3, 288, 576)
    model = AlphaNet(cfg)
    assert model.fc1.in_features == 576
    x = torch.rand(7, 8, 30) + 0.5
    ops = model.operator_features(x)
    assert ops.shape == (7, 96, 3)
    assert model.pooled_features(ops).shape == (7, 288)
    assert model(x).shape == (7,)
    names = pooled_names(cfg)
    assert len(names) == 288 == len(set(names))
    assert names[0] == "BN(ts_max(BN(ts_corr(open,high,10)),3))"
    assert "BN(ts_max(BN(ts_corr(open,low,10)),3))" in names
    assert names[-1] == "BN(ts_mean(BN(ts_mean(return1,10)),3))"
    with pytest.raises(ValueError, match=r"\[B, 8, 30\]"):
        model(torch.rand(2, 8, 20))


def test_pooled_names_point_at_the_right_values():
    model = AlphaNet().eval()  # fresh BN in eval: identity up to 1/sqrt(1 + eps)
    x = torch.rand(5, 8, 30, dtype=torch.float32) + 0.5
    raw = operator_layer(x)
    with torch.no_grad():
        pooled = model.pooled_features(model.operator_features(x))
    names = pooled_names(model.config)
    ch = operator_names(model.config).index("ts_cov(close,volume,10)")
    k = 1 / np.sqrt(1 + 1e-5)
    for op, red in (("ts_max", raw[:, ch].amax(-1)), ("ts_min", raw[:, ch].amin(-1)),
                    ("ts_mean", raw[:, ch].mean(-1))):
        i = names.index(f"BN({op}(BN(ts_cov(close,volume,10)),3))")
        torch.testing.assert_close(pooled[:, i], red * k * k, rtol=1e-5, atol=1e-6)


def test_config_roundtrip_and_generic_sizes():
    cfg = AlphaNetConfig(rows=("a", "b", "c"), window=20, op_window=5, op_stride=5,
                         pool_window=2, pool_stride=2)
    assert AlphaNetConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.n_columns == 4 and cfg.n_pool_columns == 2
    m = AlphaNet(cfg)
    assert m(torch.rand(4, 3, 20) + 1).shape == (4,)
    assert len(m.feature_names()) == cfg.n_pooled
