"""Every operator against an independent pandas / numpy reference (docs/operators.md semantics)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import torch
from expr_testutils import assert_close, frame, make_panel

from alphaminer.expr import OPERATORS, Evaluator, kernels

PANEL = make_panel()
EV = Evaluator(PANEL, cache_bytes=0)


def ev(text: str) -> torch.Tensor:
    return EV.evaluate(text, mask_universe=False)


def _loop(x: pd.DataFrame, d: int, fn) -> np.ndarray:
    """Explicit per-window loop: fn(window 1-D array, oldest first) for full NaN-free windows."""
    a = x.to_numpy()
    out = np.full(a.shape, np.nan)
    for t in range(d - 1, a.shape[0]):
        for s in range(a.shape[1]):
            w = a[t - d + 1:t + 1, s]
            if np.isfinite(w).all():
                out[t, s] = fn(w)
    return out


def _const(x: pd.DataFrame, d: int) -> pd.DataFrame:
    return x.rolling(d).max() == x.rolling(d).min()


def _wma(w: np.ndarray) -> float:
    k = np.arange(1, len(w) + 1)
    return float((w * k).sum() / k.sum())


def _ema(w: np.ndarray) -> float:
    d = len(w)
    alpha = 2 / (d + 1)
    k = (1 - alpha) ** np.arange(d - 1, -1, -1)  # age d-1 (oldest) ... 0 (today)
    return float((w * k).sum() / k.sum())


ROLLING_REFS = {
    "Mean": lambda x, d: x.rolling(d).mean(),
    "Sum": lambda x, d: x.rolling(d).sum(),
    # pandas' online algorithm leaves ~1e-4 residue on constant windows after large values;
    # the contract is exact there (Std/Var 0, Skew/Kurt NaN), so pin those windows
    "Std": lambda x, d: x.rolling(d).std().mask(_const(x, d), 0.0),
    "Var": lambda x, d: x.rolling(d).var().mask(_const(x, d), 0.0),
    "Max": lambda x, d: x.rolling(d).max(),
    "Min": lambda x, d: x.rolling(d).min(),
    "Med": lambda x, d: x.rolling(d).median(),
    "Skew": lambda x, d: x.rolling(d).skew().mask(_const(x, d)),
    "Kurt": lambda x, d: x.rolling(d).kurt().mask(_const(x, d)),
    "Ref": lambda x, d: x.shift(d),
    "Delta": lambda x, d: x - x.shift(d),
    "TsReturn": lambda x, d: x / x.shift(d) - 1,
    "TsZScore": lambda x, d: ((x - x.rolling(d).mean()) / x.rolling(d).std()).where(
        x.rolling(d).max() != x.rolling(d).min()),  # constant window → NaN (Std is 0)
    "WMA": lambda x, d: _loop(x, d, _wma),
    "EMA": lambda x, d: _loop(x, d, _ema),
    "Mad": lambda x, d: _loop(x, d, lambda w: np.abs(w - w.mean()).mean()),
    "TsRank": lambda x, d: _loop(x, d, lambda w: scipy.stats.rankdata(w)[-1] / len(w)),
    "ArgMax": lambda x, d: _loop(x, d, lambda w: float(np.argmax(w[::-1]))),
    "ArgMin": lambda x, d: _loop(x, d, lambda w: float(np.argmin(w[::-1]))),
}


def _clean(ref) -> np.ndarray:  # noqa: ANN001
    a = np.asarray(ref, dtype=np.float64)
    return np.where(np.isfinite(a), a, np.nan)


def test_every_operator_has_a_reference_test() -> None:
    covered = set(ROLLING_REFS) | {"Cov", "Corr", "CSRank", "CSZScore", "Abs", "Log", "Sign",
                                   "Neg", "Add", "Sub", "Mul", "Div", "Greater", "Less"}
    # the qlib-semantic operators' references live in test_qlib_compat.py
    covered |= {"Power", "Gt", "Ge", "Lt", "Le", "Eq", "Ne", "If", "FillNaN", "IdxMax",
                "IdxMin", "Slope", "Rsquare", "Resi", "Quantile", "EWM", "QlibWMA"}
    assert covered == set(OPERATORS)


@pytest.mark.parametrize("op", sorted(ROLLING_REFS))
@pytest.mark.parametrize("feature", ["close", "volume", "high"])
@pytest.mark.parametrize("d", [5, 12])
def test_time_series_vs_reference(op: str, feature: str, d: int) -> None:
    got = ev(f"{op}({feature},{d}d)")
    ref = _clean(ROLLING_REFS[op](frame(PANEL, feature), d))
    assert_close(got, ref, rtol=1e-5, atol=1e-5, what=f"{op}({feature},{d}d)")


@pytest.mark.parametrize("op", ["Cov", "Corr"])
@pytest.mark.parametrize("pair", [("close", "volume"), ("high", "low"), ("open", "close")])
@pytest.mark.parametrize("d", [5, 12])
def test_pairwise_vs_pandas(op: str, pair: tuple[str, str], d: int) -> None:
    a, b = (frame(PANEL, f) for f in pair)
    ref = a.rolling(d).cov(b) if op == "Cov" else a.rolling(d).corr(b)
    # pandas returns a number (or ±inf) on constant windows; our contract: Corr NaN there
    ref = _clean(ref)
    if op == "Corr":
        const = (a.rolling(d).max() == a.rolling(d).min()) | (
            b.rolling(d).max() == b.rolling(d).min())
        ref = np.where(const.to_numpy(), np.nan, ref)
    got = ev(f"{op}({pair[0]},{pair[1]},{d}d)")
    assert_close(got, ref, rtol=1e-5, atol=1e-5, what=f"{op}{pair}")


def test_elementwise_vs_numpy() -> None:
    c, o, v = (frame(PANEL, f).to_numpy() for f in ("close", "open", "volume"))
    diff = c - o
    with np.errstate(all="ignore"):
        cases = {
            "Abs(Sub(close,open))": np.abs(diff),
            "Log(Sub(close,open))": np.where(diff > 0, np.log(np.where(diff > 0, diff, 1)),
                                             np.nan),
            "Sign(Sub(close,open))": np.sign(diff),
            "Neg(close)": -c,
            "Add(close,1.0)": c + 1,
            "Sub(1.0,close)": 1 - c,
            "Mul(close,volume)": c * v,
            "Div(1.0,close)": 1 / c,
            "Div(close,Sub(close,close))": np.full_like(c, np.nan),
            "Div(Sub(close,open),Sub(high,low))": diff / (frame(PANEL, "high").to_numpy()
                                                          - frame(PANEL, "low").to_numpy()),
            "Greater(close,open)": np.maximum(c, o),
            "Less(close,-0.5)": np.minimum(c, -0.5),
            "Greater(Sub(close,open),0.0)": np.maximum(diff, 0.0),
        }
    for text, ref in cases.items():
        assert_close(ev(text), _clean(ref), rtol=1e-5, atol=1e-6, what=text)


def test_cross_sectional_vs_pandas() -> None:
    uni = PANEL.universe.numpy()
    x = frame(PANEL, "close").where(uni)
    rank = x.rank(axis=1, method="average", pct=True).where(uni)
    z = x.sub(x.mean(axis=1), axis=0).div(x.std(axis=1, ddof=1), axis=0).where(uni)
    assert_close(EV.evaluate("CSRank(close)"), rank, what="CSRank")
    assert_close(EV.evaluate("CSZScore(close)"), z, what="CSZScore")
    # cs_universe=False ranks among every stock with a value
    ev_all = Evaluator(PANEL, cs_universe=False)
    xa = frame(PANEL, "close")
    assert_close(ev_all.evaluate("CSRank(close)", mask_universe=False),
                 xa.rank(axis=1, pct=True), what="CSRank all")


def test_cs_rank_matches_scipy_with_ties_nans_and_batches() -> None:
    rng = np.random.default_rng(3)
    x = np.round(rng.normal(size=(4, 9, 31)), 1).astype(np.float32)
    x[rng.random(x.shape) < 0.2] = np.nan
    x[0, 0] = np.nan
    x[1, 1] = 2.0
    x[2, 2, :4] = [0.0, -0.0, 0.0, -0.0]
    got = kernels.cs_rank(torch.from_numpy(x), chunk_elems=64).numpy()
    ref = np.full(x.shape, np.nan)
    for k in range(4):
        for t in range(9):
            m = np.isfinite(x[k, t])
            if m.any():
                ref[k, t, m] = scipy.stats.rankdata(x[k, t, m]) / m.sum()
    assert_close(got, ref, rtol=1e-6, what="cs_rank")
    got64 = kernels.cs_rank(torch.from_numpy(x.astype(np.float64))).numpy()
    assert_close(got64, ref, rtol=1e-12, what="cs_rank float64")


def test_cs_zscore_matches_numpy() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(3, 2, size=(5, 40)).astype(np.float32)
    x[rng.random(x.shape) < 0.2] = np.nan
    x[1] = 7.0  # constant row → NaN
    x[2, 1:] = np.nan  # single value → NaN
    got = kernels.cs_zscore(torch.from_numpy(x)).numpy()
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        ref = (x - np.nanmean(x, 1, keepdims=True)) / np.nanstd(x, 1, ddof=1, keepdims=True)
    ref[1] = np.nan
    ref[2] = np.nan
    assert_close(got, _clean(ref), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op", sorted(set(ROLLING_REFS) - {"Ref"}) + ["Cov", "Corr"])
def test_window_longer_than_history_is_all_nan(op: str) -> None:
    text = f"{op}(close,volume,200d)" if op in ("Cov", "Corr") else f"{op}(close,200d)"
    assert torch.isnan(ev(text)).all()


def test_constant_windows_are_exact() -> None:
    # stock 1 is frozen on days 20..33 (all features) → exact zeros / NaN
    ev_clean = Evaluator(make_panel(nan_frac=0.0), cache_bytes=0)

    def ev(text: str) -> torch.Tensor:
        return ev_clean.evaluate(text, mask_universe=False)

    for text in ("Std(close,10d)", "Var(close,10d)", "Mad(close,10d)"):
        assert (ev(text)[29:34, 1] == 0).all(), text
    for text in ("Corr(close,volume,10d)", "Corr(volume,close,10d)", "Skew(close,10d)",
                 "Kurt(close,10d)", "TsZScore(close,10d)"):
        assert torch.isnan(ev(text)[29:34, 1]).all(), text
    assert (ev("Cov(close,volume,10d)")[29:34, 1] == 0).all()


def test_late_listing_and_nan_windows() -> None:
    # stock 5 has no data on days 0..4 → any window touching them is NaN
    out = ev("Mean(close,3d)")
    assert torch.isnan(out[:7, 5]).all()
    x = torch.tensor([[1.0], [float("nan")], [3.0], [4.0], [5.0]])
    assert torch.equal(torch.isnan(kernels.ts_std(x, 2)[:, 0]),
                       torch.tensor([True, True, True, False, False]))


def test_large_offset_keeps_precision() -> None:
    # prefix sums are taken after subtracting a per-stock offset: a price level of 1e4 with
    # tiny moves still gives pandas-exact moments
    rng = np.random.default_rng(5)
    a = (1e4 + np.cumsum(rng.normal(0, 1, (400, 3)), axis=0)).astype(np.float32)
    x = torch.from_numpy(a)
    df = pd.DataFrame(a.astype(np.float64))
    assert_close(kernels.ts_std(x, 20), df.rolling(20).std(), rtol=1e-5)
    assert_close(kernels.ts_corr(x[:, :2], x[:, 1:], 20),
                 df[[0, 1]].rolling(20).corr(df[[1, 2]].set_axis([0, 1], axis=1)),
                 rtol=1e-4, atol=1e-5)


def test_inf_becomes_nan() -> None:
    x = torch.tensor([[1.0, 0.0], [2.0, 3.0]])
    assert torch.isnan(kernels.safe_div(x, torch.zeros_like(x))).all()
    assert torch.isnan(kernels.safe_log(torch.tensor([0.0, -1.0]))).all()
    big = torch.tensor([[3e38], [3e38]])
    assert torch.isnan(kernels.ts_sum(big, 2)[1]).all()
