"""qlib 0.9.7 compatibility: the qlib-semantic operators, the partial-window mode and Alpha158.

References are written here from qlib's published definitions in plain pandas / numpy (pandas
``rolling(N, min_periods=1)``, ``ewm(span=N, min_periods=1)``, ``argmax() + 1`` on raw windows,
``np.polyfit`` for the regressions, ``np.nanquantile``) and share no code with ``src/``.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from expr_testutils import assert_close

from alphaminer.expr import Evaluator, ParseError, max_lookback, parse, parse_qlib
from alphaminer.expr.alpha158 import WINDOWS, alpha158_alphas, alpha158_qlib
from alphaminer.panel import BASE_FEATURES, Panel


def tick_panel(T: int = 90, S: int = 5, seed: int = 7, nan_frac: float = 0.05,
               late_listing: bool = True) -> Panel:
    """0.01-tick prices (many ties), integer volumes, a frozen stretch, NaNs, a late listing."""
    rng = np.random.default_rng(seed)
    close = np.round(10 * np.exp(np.cumsum(rng.normal(0, 0.01, (T, S)), axis=0)), 2)
    open_ = np.round(close * np.exp(rng.normal(0, 0.005, (T, S))), 2)
    high = np.round(np.maximum(open_, close) + rng.integers(0, 4, (T, S)) * 0.01, 2)
    low = np.round(np.minimum(open_, close) - rng.integers(0, 4, (T, S)) * 0.01, 2)
    volume = np.round(rng.lognormal(8, 0.4, (T, S)))
    vwap = np.round((high + low + close) / 3, 2)
    vals = np.stack([open_, high, low, close, volume, vwap, vwap * volume], axis=-1)
    vals[30:42, 1, :] = vals[30, 1, :]  # suspension: everything frozen
    vals[rng.random((T, S)) < nan_frac] = np.nan
    if late_listing:
        vals[:8, S - 1, :] = np.nan
    return Panel(values=torch.from_numpy(vals.astype(np.float32)),
                 dates=pd.bdate_range("2021-01-01", periods=T),
                 instruments=[f"S{i}" for i in range(S)], features=BASE_FEATURES,
                 observed=torch.ones(T, S, dtype=torch.bool),
                 universe=torch.ones(T, S, dtype=torch.bool),
                 tradable=torch.ones(T, S, dtype=torch.bool))


PANEL = tick_panel()
CLEAN = tick_panel(nan_frac=0.0, late_listing=False)


def frame(panel: Panel, name: str) -> pd.DataFrame:
    return pd.DataFrame(panel.feature(name).numpy().astype(np.float64))


def ours(text: str, panel: Panel = PANEL, min_periods: int | None = None) -> torch.Tensor:
    return Evaluator(panel, cache_bytes=0, min_periods=min_periods).evaluate(
        text, mask_universe=False)


# ----------------------------------------------------------------------------- reference
def _windows(df: pd.DataFrame, n: int) -> np.ndarray:
    """``[T, S, n]`` trailing windows, days before the first padded with NaN."""
    a = df.to_numpy(dtype=np.float64)
    pad = np.vstack([np.full((n - 1, a.shape[1]), np.nan), a])
    return np.lib.stride_tricks.sliding_window_view(pad, n, axis=0)


def _nan_reduce(df: pd.DataFrame, n: int, fn, need: int = 1) -> pd.DataFrame:  # noqa: ANN001
    w = _windows(df, n)
    cnt = np.isfinite(w).sum(-1)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        out = fn(w)
    return pd.DataFrame(np.where(cnt >= need, out, np.nan))


def _apply(df: pd.DataFrame, n: int, fn) -> pd.DataFrame:  # noqa: ANN001
    """``rolling(n, min_periods=1).apply(fn, raw=True)`` column by column (qlib's own form)."""
    return df.apply(lambda col: col.rolling(n, min_periods=1).apply(fn, raw=True))


def ref_std(df: pd.DataFrame, n: int) -> pd.DataFrame:
    return _nan_reduce(df, n, lambda w: np.nanstd(w, -1, ddof=1), need=2)


def _regress(w: np.ndarray) -> tuple[float, float, float]:
    """Slope, R² and today's residual of the valid points of one window on positions 1..n."""
    t = np.arange(1, len(w) + 1, dtype=np.float64)
    ok = np.isfinite(w)
    if ok.sum() < 2:
        return np.nan, np.nan, np.nan
    slope, icpt = np.polyfit(t[ok], w[ok], 1)
    fit = slope * t[ok] + icpt
    ss_tot = ((w[ok] - w[ok].mean()) ** 2).sum()
    r2 = 1 - ((w[ok] - fit) ** 2).sum() / ss_tot if ss_tot > 0 else np.nan
    return slope, r2, w[-1] - (slope * len(w) + icpt)


def ref_regression(df: pd.DataFrame, n: int, which: int) -> pd.DataFrame:
    w = _windows(df, n)
    out = np.array([[_regress(w[t, s])[which] for s in range(w.shape[1])]
                    for t in range(w.shape[0])])
    if which == 1:  # qlib: NaN where the rolling std of x is np.isclose(., 0, atol=2e-5)
        out = np.where(np.isclose(ref_std(df, n).to_numpy(), 0, atol=2e-5), np.nan, out)
    return pd.DataFrame(out)


def ref_corr(a: pd.DataFrame, b: pd.DataFrame, n: int) -> pd.DataFrame:
    wa, wb = _windows(a, n), _windows(b, n)
    both = np.isfinite(wa) & np.isfinite(wb)
    wa, wb = np.where(both, wa, np.nan), np.where(both, wb, np.nan)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        da = wa - np.nanmean(wa, -1, keepdims=True)
        db = wb - np.nanmean(wb, -1, keepdims=True)
        r = np.nansum(da * db, -1) / np.sqrt(np.nansum(da * da, -1) * np.nansum(db * db, -1))
    r = np.where(both.sum(-1) >= 2, r, np.nan)
    flat = np.isclose(ref_std(a, n), 0, atol=2e-5) | np.isclose(ref_std(b, n), 0, atol=2e-5)
    return pd.DataFrame(np.where(flat, np.nan, r))


class Q:
    """A value of the tiny qlib interpreter: a dates × stocks frame, pandas arithmetic."""

    def __init__(self, df: pd.DataFrame) -> None:
        self.df = df

    @staticmethod
    def lift(v) -> pd.DataFrame | float:  # noqa: ANN001
        return v.df if isinstance(v, Q) else float(v)

    def _bin(self, other, fn, swap: bool = False) -> Q:  # noqa: ANN001
        a, b = self.df, Q.lift(other)
        return Q(fn(b, a) if swap else fn(a, b))

    def __add__(self, o): return self._bin(o, lambda a, b: a + b)  # noqa: ANN001, E704
    def __radd__(self, o): return self._bin(o, lambda a, b: a + b, True)  # noqa: ANN001, E704
    def __sub__(self, o): return self._bin(o, lambda a, b: a - b)  # noqa: ANN001, E704
    def __rsub__(self, o): return self._bin(o, lambda a, b: a - b, True)  # noqa: ANN001, E704
    def __mul__(self, o): return self._bin(o, lambda a, b: a * b)  # noqa: ANN001, E704
    def __rmul__(self, o): return self._bin(o, lambda a, b: a * b, True)  # noqa: ANN001, E704
    def __truediv__(self, o): return self._bin(o, lambda a, b: a / b)  # noqa: ANN001, E704
    def __rtruediv__(self, o): return self._bin(o, lambda a, b: a / b, True)  # noqa: ANN001, E704
    # pandas comparisons: NaN compares False
    def __gt__(self, o): return self._bin(o, lambda a, b: (a > b).astype(float))  # noqa: ANN001, E704
    def __lt__(self, o): return self._bin(o, lambda a, b: (a < b).astype(float))  # noqa: ANN001, E704
    def __neg__(self): return Q(-self.df)  # noqa: E704


def _q_namespace(panel: Panel) -> dict:
    def roll(fn, need: int = 1):  # noqa: ANN001, ANN202
        return lambda x, n: Q(_nan_reduce(x.df, n, fn, need))

    def idx(arg: str):  # noqa: ANN202
        return lambda x, n: Q(_apply(x.df, n, lambda w: getattr(w, arg)() + 1))

    return {
        "F": lambda name: Q(frame(panel, name)),
        "Ref": lambda x, n: Q(x.df.shift(n)),
        "Mean": roll(lambda w: np.nanmean(w, -1)),
        "Sum": roll(lambda w: np.nansum(w, -1)),
        "Std": lambda x, n: Q(ref_std(x.df, n)),
        "Max": roll(lambda w: np.nanmax(w, -1)),
        "Min": roll(lambda w: np.nanmin(w, -1)),
        "Quantile": lambda x, n, q: Q(_nan_reduce(x.df, n, lambda w: np.nanquantile(w, q, -1))),
        "Rank": lambda x, n: Q(x.df.rolling(n, min_periods=1).rank(pct=True)),
        "IdxMax": idx("argmax"),
        "IdxMin": idx("argmin"),
        "Slope": lambda x, n: Q(ref_regression(x.df, n, 0)),
        "Rsquare": lambda x, n: Q(ref_regression(x.df, n, 1)),
        "Resi": lambda x, n: Q(ref_regression(x.df, n, 2)),
        "Corr": lambda a, b, n: Q(ref_corr(a.df, b.df, n)),
        "Greater": lambda a, b: Q(np.maximum(Q.lift(a), Q.lift(b))),
        "Less": lambda a, b: Q(np.minimum(Q.lift(a), Q.lift(b))),
        "Abs": lambda x: Q(x.df.abs()),
        "Log": lambda x: Q(np.log(x.df)),
    }


def qlib_reference(text: str, panel: Panel) -> np.ndarray:
    """Evaluate a qlib expression string the way qlib does (Python eval over operator objects)."""
    code = re.sub(r"\$(\w+)", r'F("\1")', text)
    with np.errstate(all="ignore"):
        out = eval(code, {"__builtins__": {}}, _q_namespace(panel)).df.to_numpy()  # noqa: S307
    return np.where(np.isfinite(out), out, np.nan)


# ----------------------------------------------------------------------------- Alpha158
def test_every_alpha158_field_imports() -> None:
    fields = alpha158_qlib()
    assert len(fields) == 158
    names = [n for n, _ in fields]
    assert len(set(names)) == 158
    assert names[:9] == ["KMID", "KLEN", "KMID2", "KUP", "KUP2", "KLOW", "KLOW2", "KSFT",
                         "KSFT2"]
    assert names[9:13] == ["OPEN0", "HIGH0", "LOW0", "VWAP0"]
    assert len(WINDOWS) * 29 == 158 - 13
    for name, text in fields:
        e = parse_qlib(text)
        assert parse(str(e)) == e, name
    alphas = alpha158_alphas()
    assert [a["name"] for a in alphas] == names
    assert all(parse(a["formula"]) == parse_qlib(t) for a, (_, t) in zip(alphas, fields))


@pytest.mark.parametrize("name, text", alpha158_qlib())
def test_alpha158_equals_qlib_definition(name: str, text: str) -> None:
    e = parse_qlib(text)
    # CORD correlates float32 ratios close/Ref(close,1) ≈ 1 ± 0.01: their deviations carry
    # ~1e-5 relative float32 rounding, so correlations near 0 get ~1e-5 absolute error
    atol = 2e-5 if name.startswith("CORD") else 1e-6
    # qlib's partial windows (min_periods=1) everywhere: warm-up, NaNs, ties, a frozen stretch
    assert_close(ours(e, PANEL, min_periods=1), qlib_reference(text, PANEL), rtol=1e-4,
                 atol=atol, what=f"{name} min_periods=1")
    # the default full-window evaluation equals qlib wherever the window is full (no NaN data)
    got = ours(e, CLEAN).numpy()
    ref = qlib_reference(text, CLEAN)
    lb = max_lookback(e)
    assert not np.isnan(got[lb:]).all(), name
    if "FillNaN" not in str(e):  # a qlib comparison turns the missing Ref(x,1) of day 0 into 0
        assert np.isnan(got[:lb]).all(), name
    assert_close(got[lb:], ref[lb:], rtol=1e-4, atol=atol, what=f"{name} full windows")


# ----------------------------------------------------------------------------- operators
def _full_only(ref: pd.DataFrame | np.ndarray, x: pd.DataFrame, n: int) -> np.ndarray:
    """The reference where the n-day window is complete and NaN-free, NaN elsewhere."""
    full = x.rolling(n).count().to_numpy() == n
    return np.where(full, np.asarray(ref, dtype=np.float64), np.nan)


@pytest.mark.parametrize("n", [1, 3, 6])
@pytest.mark.parametrize("feat", ["high", "low", "volume"])
def test_idxmax_idxmin_vs_qlib(n: int, feat: str) -> None:
    x = frame(PANEL, feat)
    for op, arg in (("IdxMax", "argmax"), ("IdxMin", "argmin")):
        ref = _apply(x, n, lambda w, a=arg: getattr(w, a)() + 1)
        assert_close(ours(f"{op}({feat},{n}d)", min_periods=1), ref, rtol=0, atol=0, what=op)
        assert_close(ours(f"{op}({feat},{n}d)"), _full_only(ref, x, n), rtol=0, atol=0,
                     what=f"{op} full")
    # ties: the oldest occurrence wins (ArgMax keeps our most-recent rule)
    t = torch.tensor([[1.0], [3.0], [3.0], [2.0]])
    assert ours_kernel("IdxMax", t, 3)[-1, 0] == 1.0 and ours_kernel("IdxMax", t, 4)[-1, 0] == 2.0


def ours_kernel(op: str, x: torch.Tensor, n: int, **kw) -> torch.Tensor:
    from alphaminer.expr import OPERATORS

    return OPERATORS[op].kernel(x, n, **kw)


@pytest.mark.parametrize("n", [2, 5, 12])
def test_slope_rsquare_resi_vs_polyfit(n: int) -> None:
    for feat in ("close", "volume"):
        x = frame(PANEL, feat)
        for op, which in (("Slope", 0), ("Rsquare", 1), ("Resi", 2)):
            ref = ref_regression(x, n, which)
            tol = {"rtol": 1e-4, "atol": 1e-6 * (1e3 if feat == "volume" else 1)}
            assert_close(ours(f"{op}({feat},{n}d)", min_periods=1), ref, **tol, what=op)
            assert_close(ours(f"{op}({feat},{n}d)"), _full_only(ref, x, n), **tol,
                         what=f"{op} full")


def test_regression_is_stable_on_price_levels() -> None:
    # a level of 1e4 with small moves: centring inside each window keeps full precision
    rng = np.random.default_rng(1)
    a = 1e4 + np.cumsum(rng.normal(0, 1, (300, 2)), axis=0)
    x = torch.from_numpy(a)
    ref = ref_regression(pd.DataFrame(a), 20, 0)
    assert_close(ours_kernel("Slope", x, 20), _full_only(ref, pd.DataFrame(a), 20), rtol=1e-9,
                 atol=1e-9, what="slope float64")


@pytest.mark.parametrize("q", [0.0, 0.2, 0.5, 0.8, 1.0])
@pytest.mark.parametrize("n", [1, 4, 7])
def test_quantile_vs_pandas(q: float, n: int) -> None:
    x = frame(PANEL, "close")
    ref = x.rolling(n, min_periods=1).quantile(q)
    assert_close(ours(f"Quantile(close,{n}d,{q!r})", min_periods=1), ref, rtol=1e-6,
                 what="Quantile")
    assert_close(ours(f"Quantile(close,{n}d,{q!r})"), _full_only(ref, x, n), rtol=1e-6,
                 what="Quantile full")


@pytest.mark.parametrize("n", [1, 3, 10, 30])
def test_ewm_vs_pandas(n: int) -> None:
    for feat in ("close", "volume"):
        x = frame(PANEL, feat)
        assert_close(ours(f"EWM({feat},{n}d)", min_periods=1),
                     x.ewm(span=n, min_periods=1).mean(), rtol=1e-6, what="EWM mp=1")
        assert_close(ours(f"EWM({feat},{n}d)"), x.ewm(span=n, min_periods=n).mean(),
                     rtol=1e-6, what="EWM default")


def test_ewm_long_history_blocks() -> None:
    # several scan blocks (span 2 → short blocks) over 3000 days, NaN gaps included
    rng = np.random.default_rng(2)
    a = rng.normal(5, 1, (3000, 3))
    a[rng.random(a.shape) < 0.1] = np.nan
    for n in (2, 5, 60):
        got = ours_kernel("EWM", torch.from_numpy(a), n, min_periods=1)
        ref = pd.DataFrame(a).ewm(span=n, min_periods=1).mean()
        assert_close(got, ref, rtol=1e-10, what=f"EWM span {n}")


@pytest.mark.parametrize("n", [1, 4, 9])
def test_qlib_wma_vs_definition(n: int) -> None:
    def wmean(w: np.ndarray) -> float:
        k = np.arange(len(w)) + 1
        return np.nanmean(k / k.sum() * w)

    x = frame(PANEL, "close")
    ref = _apply(x, n, wmean)
    assert_close(ours(f"QlibWMA(close,{n}d)", min_periods=1), ref, rtol=1e-6, what="QlibWMA")
    assert_close(ours(f"QlibWMA(close,{n}d)"), _full_only(ref, x, n), rtol=1e-6)
    # qlib's WMA is our WMA divided by the window on full windows
    assert_close(ours(parse_qlib(f"WMA($close, {n})")), ours(f"Div(WMA(close,{n}d),{n}.0)"),
                 rtol=1e-6)


PARTIAL_REFS = {
    "Mean": lambda r: r.mean(), "Sum": lambda r: r.sum(), "Std": lambda r: r.std(),
    "Var": lambda r: r.var(), "Max": lambda r: r.max(), "Min": lambda r: r.min(),
    "Med": lambda r: r.median(), "Skew": lambda r: r.skew(), "Kurt": lambda r: r.kurt(),
    "TsRank": lambda r: r.rank(pct=True),
    "Mad": lambda r: r.apply(lambda w: np.mean(np.abs(w[np.isfinite(w)]
                                                      - np.nanmean(w))), raw=True),
}


@pytest.mark.parametrize("op", sorted(PARTIAL_REFS))
@pytest.mark.parametrize("n", [4, 9])
def test_partial_windows_vs_pandas(op: str, n: int) -> None:
    for feat in ("close", "volume"):
        x = frame(PANEL, feat)
        ref = PARTIAL_REFS[op](x.rolling(n, min_periods=1)).to_numpy()
        # our contract on constant windows (pandas leaves float residue): Std/Var 0, Skew/Kurt NaN
        const = (x.rolling(n, min_periods=1).max() == x.rolling(n, min_periods=1).min())
        const = const.to_numpy() & np.isfinite(ref)
        if op in ("Std", "Var"):
            ref = np.where(const, 0.0, ref)
        if op in ("Skew", "Kurt"):
            ref = np.where(const, np.nan, ref)
        got = ours(f"{op}({feat},{n}d)", min_periods=1)
        assert_close(got, np.where(np.isfinite(ref), ref, np.nan), rtol=1e-4, atol=1e-6,
                     what=f"{op}({feat},{n}) mp=1")


@pytest.mark.parametrize("n", [3, 8])
def test_partial_cov_corr_vs_pandas(n: int) -> None:
    a, b = frame(PANEL, "close"), frame(PANEL, "volume")
    cov = a.rolling(n, min_periods=1).cov(b)
    assert_close(ours(f"Cov(close,volume,{n}d)", min_periods=1), cov, rtol=1e-5, atol=1e-6)
    corr = a.rolling(n, min_periods=1).corr(b).to_numpy()
    flat = np.isclose(a.rolling(n, min_periods=1).std(), 0, atol=2e-5) | np.isclose(
        b.rolling(n, min_periods=1).std(), 0, atol=2e-5)
    corr = np.where(flat | ~np.isfinite(corr), np.nan, corr)
    assert_close(ours(f"Corr(close,volume,{n}d)", min_periods=1), corr, rtol=1e-4, atol=1e-6)


ROLLING = ["Mean", "Sum", "Std", "Var", "Max", "Min", "Med", "Mad", "Skew", "Kurt", "TsRank",
           "IdxMax", "IdxMin", "Slope", "Rsquare", "Resi", "QlibWMA", "EWM"]


@pytest.mark.parametrize("op", ROLLING + ["Cov", "Corr", "Quantile"])
def test_partial_mode_equals_default_on_full_clean_windows(op: str) -> None:
    n = 6
    text = {"Cov": f"Cov(close,volume,{n}d)", "Corr": f"Corr(close,volume,{n}d)",
            "Quantile": f"Quantile(close,{n}d,0.3)"}.get(op, f"{op}(close,{n}d)")
    default = ours(text, CLEAN)
    partial = ours(text, CLEAN, min_periods=1)
    assert torch.isnan(default[:n - 1]).all()
    if op != "EWM":  # EWM's default starts after n observations, its partial value earlier
        assert not torch.isnan(partial[:n - 1]).all()
    assert_close(partial[n - 1:], default[n - 1:].numpy(), rtol=1e-5, atol=1e-6, what=op)
    # min_periods equal to the window is the default rule
    assert_close(ours(text, CLEAN, min_periods=n), default.numpy(), rtol=1e-5, atol=1e-6)


def test_operators_without_partial_kernel_ignore_min_periods() -> None:
    for text in ("WMA(close,5d)", "EMA(close,5d)", "ArgMax(close,5d)", "Delta(close,3d)",
                 "TsZScore(close,5d)"):
        assert torch.equal(torch.isnan(ours(text)), torch.isnan(ours(text, min_periods=1)))
    with pytest.raises(ValueError, match="min_periods"):
        Evaluator(PANEL, min_periods=0)


def test_comparisons_if_power_fillnan() -> None:
    c, o = frame(PANEL, "close").to_numpy(), frame(PANEL, "open").to_numpy()
    nan = np.isnan(c) | np.isnan(o)
    cases = {"Gt": c > o, "Ge": c >= o, "Lt": c < o, "Le": c <= o, "Eq": c == o, "Ne": c != o}
    for op, ref in cases.items():
        assert (ref & ~nan).any() and (~ref & ~nan).any()  # both outcomes occur (ties too)
        # our operators propagate NaN ...
        assert_close(ours(f"{op}(close,open)"), np.where(nan, np.nan, ref.astype(float)),
                     what=op)
    # ... qlib's infix comparisons follow pandas: NaN compares False
    for sym, ref in (("<", c < o), (">=", c >= o), ("==", c == o), ("!=", c != o)):
        got = ours(parse_qlib(f"$close {sym} $open"))
        assert_close(got, ref.astype(float), what=sym)
    assert_close(ours("If(Gt(close,open),close,Neg(open))"),
                 np.where(nan, np.nan, np.where(c > o, c, -o)), what="If")
    # numpy's where() takes a NaN condition as true
    assert_close(ours(parse_qlib("If($close-$open, $close, 0)")),
                 np.where(np.isnan(c - o) | (c - o != 0), c, 0.0), what="qlib If")
    with np.errstate(all="ignore"):
        p = np.power(c - o, 2.0)
        q = np.power(c / o, -1.5)
    assert_close(ours("Power(Sub(close,open),2.0)"), p, rtol=1e-5, what="Power")
    assert_close(ours(parse_qlib("($close/$open)**-1.5")), q, rtol=1e-5, what="**")
    assert_close(ours("FillNaN(close,-1.0)"), np.where(np.isnan(c), -1.0, c), what="FillNaN")


def test_qlib_name_mapping() -> None:
    assert parse_qlib("EMA($close, 10)") == parse("EWM(close,10d)")
    assert parse_qlib("WMA($close, 10)") == parse("QlibWMA(close,10d)")
    assert parse_qlib("IdxMax($high, 30)") == parse("IdxMax(high,30d)")
    assert parse_qlib("$close>Ref($close, 1)") == parse(
        "FillNaN(Gt(close,Ref(close,1d)),0.0)")
    assert parse_qlib("Gt($close, 1)") == parse("FillNaN(Gt(close,1.0),0.0)")
    assert parse_qlib("-$close**2") == parse("Neg(Power(close,2.0))")
    assert parse_qlib("$close*2 > $open+1") == parse(
        "FillNaN(Gt(Mul(close,2.0),Add(open,1.0)),0.0)")
    assert parse_qlib("Quantile($close, 20, 0.8)") == parse("Quantile(close,20d,0.8)")
    # qlib's EMA is the whole-history ewm: it differs from our finite-window EMA
    a, b = ours(parse_qlib("EMA($close, 10)")), ours("EMA(close,10d)")
    ok = ~torch.isnan(a) & ~torch.isnan(b)
    assert ok.any() and not torch.allclose(a[ok], b[ok], rtol=1e-6)


@pytest.mark.parametrize("text, col, fragment", [
    ("$close & $open", 8, "'&' (qlib And)"),
    ("$close | $open", 8, "'|' (qlib Or)"),
    ("~$close", 1, "'~' (qlib Not)"),
    ("Mean($close % 2, 5)", 13, "'%' (modulo)"),
    ("Not($close)", 1, "qlib operator 'Not'"),
    ("Count($close, 5)", 1, "qlib operator 'Count'"),
    ("Mask($close, 'sh')", 1, "qlib operator 'Mask'"),
    ("$close > $open > $low", 16, "chained comparison"),
    ("Mean($close, 0)", 14, "expanding window"),
    ("Ref($close, 0)", 13, "first day's value"),
    ("Quantile($close, 5, 1.5)", 21, "outside [0.0, 1.0]"),
    ("Foo($close)", 1, "unknown qlib operator 'Foo'"),
])
def test_qlib_errors_name_the_construct(text: str, col: int, fragment: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_qlib(text)
    assert fragment in info.value.message
    assert info.value.pos + 1 == col


@pytest.mark.parametrize("text, col, fragment", [
    ("close > open", 7, "infix '>' is not canonical syntax; write Gt(x,y)"),
    ("Add(close >= open,1.0)", 11, "write Ge(x,y)"),
    ("Quantile(close,5d,close)", 19, "must be a constant number"),
    ("Quantile(close,5d,2.0)", 19, "outside [0.0, 1.0]"),
])
def test_canonical_errors_name_the_construct(text: str, col: int, fragment: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(text)
    assert fragment in info.value.message
    assert info.value.pos + 1 == col
