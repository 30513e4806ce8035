"""Tests of the embedded market simulator against independent numpy/pandas references."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from alphaminer.data.simulator import (
    DEFAULT_PLANTED,
    PlantedAlpha,
    SimulatedMarket,
    SimulatorConfig,
    simulate_market,
)

# A small market with busy life-cycle rates so listings, delistings, suspensions and splits occur.
LIFE = dict(late_listing_frac=0.2, listing_horizon_days=200, delisting_rate=0.4,
            suspension_rate=0.004, split_rate=0.6, split_min_price=20.0)


def _wide(raw: pd.DataFrame, col: str) -> pd.DataFrame:
    return raw.pivot(index="datetime", columns="instrument", values=col)


def _adjusted(raw: pd.DataFrame) -> dict[str, pd.DataFrame]:
    adj = _wide(raw, "adj_factor")
    out = {k: _wide(raw, k) * adj for k in ("open", "high", "low", "close", "vwap")}
    out["volume"] = _wide(raw, "volume") / adj
    return out


@pytest.fixture(scope="module")
def small() -> SimulatedMarket:
    return simulate_market(SimulatorConfig(n_stocks=80, n_days=300, seed=3, progress=False,
                                           **LIFE))


@pytest.fixture(scope="module")
def ic_market() -> SimulatedMarket:
    """The one-day model (``alpha_horizon=1``), where ``strength`` is the exact 1-day IC."""
    return simulate_market(SimulatorConfig(n_stocks=250, n_days=1000, seed=11, progress=False,
                                           alpha_horizon=1))


@pytest.fixture(scope="module")
def persistent_market() -> SimulatedMarket:
    """Exponential-kernel effects persisting over 20 days (orthogonalised lagged term)."""
    return simulate_market(SimulatorConfig(n_stocks=250, n_days=1000, seed=11, progress=False,
                                           alpha_horizon=20, alpha_kernel="exponential"))


# --------------------------------------------------------------------------- schema & bars
def test_schema_and_sorting(small: SimulatedMarket) -> None:
    raw = small.raw
    assert list(raw.columns) == ["datetime", "instrument", "open", "high", "low", "close",
                                 "volume", "vwap", "amount", "adj_factor", "is_suspended",
                                 "in_universe"]
    assert raw["is_suspended"].dtype == bool and raw["in_universe"].dtype == bool
    assert not raw.duplicated(["datetime", "instrument"]).any()
    keys = list(zip(raw["datetime"], raw["instrument"]))
    assert keys == sorted(keys)
    days = pd.bdate_range("2012-01-04", periods=300)
    assert set(raw["datetime"]) <= set(days) and raw["datetime"].min() == days[0]
    assert raw["instrument"].str.fullmatch(r"SIM\d{4}").all()
    assert raw[["open", "high", "low", "close", "vwap", "amount", "volume"]].notna().all().all()


def test_ohlc_vwap_amount_consistency(small: SimulatedMarket) -> None:
    r = small.raw
    assert (r["low"] <= r[["open", "close"]].min(axis=1)).all()
    assert (r["high"] >= r[["open", "close"]].max(axis=1)).all()
    assert ((r["vwap"] >= r["low"]) & (r["vwap"] <= r["high"])).all()
    np.testing.assert_allclose(r["amount"], r["vwap"] * r["volume"], rtol=1e-12)
    assert (r["low"] > 0).all() and (r["volume"] >= 0).all()
    assert (r["volume"] == np.round(r["volume"])).all()
    trading = ~r["is_suspended"]
    assert (r.loc[trading, "volume"] > 0).all()


def test_price_and_volume_levels_plausible(ic_market: SimulatedMarket) -> None:
    r = ic_market.raw
    first = r[r["datetime"] == r["datetime"].min()]
    assert first["close"].between(8 * 0.8, 120 * 1.2).all()
    q = r["close"].quantile([0.05, 0.5, 0.95])
    assert q[0.05] > 1.0 and q[0.95] < 1000.0
    med_amt = r.loc[~r["is_suspended"], "amount"].median()
    assert 3e6 < med_amt < 3e8


# --------------------------------------------------------------------------- stylised facts
def test_fat_tails_pearson_kurtosis_above_3(ic_market: SimulatedMarket) -> None:
    """Pooled daily log returns (adjusted close, trading days): Pearson kurtosis > 3."""
    close = _adjusted(ic_market.raw)["close"]
    susp = _wide(ic_market.raw, "is_suspended").astype("boolean").fillna(True).astype(bool)
    r = np.log(close).diff().where(~susp & ~susp.shift(1, fill_value=True))
    x = r.to_numpy().ravel()
    x = x[np.isfinite(x)]
    k = stats.kurtosis(x, fisher=False)
    assert k > 3.0, k
    # also for the idiosyncratic part: residual of a regression on the equal-weight market
    mkt = r.mean(axis=1)
    resid = r.sub(mkt, axis=0).to_numpy().ravel()
    assert stats.kurtosis(resid[np.isfinite(resid)], fisher=False) > 3.0


def test_volatility_clustering(ic_market: SimulatedMarket) -> None:
    close = _adjusted(ic_market.raw)["close"]
    a = np.log(close).diff().abs()
    a = a.sub(a.mean())
    for lag in range(1, 11):
        ac = (a * a.shift(lag)).mean() / (a * a).mean()
        assert ac.mean() > 0.02, (lag, ac.mean())


def test_volume_linked_to_abs_return(ic_market: SimulatedMarket) -> None:
    adj = _adjusted(ic_market.raw)
    a = np.log(adj["close"]).diff().abs()
    lv = np.log(adj["volume"].where(adj["volume"] > 0))
    corr = a.corrwith(lv)  # per stock, over time
    assert corr.mean() > 0.1


# --------------------------------------------------------------------------- planted alphas
def _reference_factors(raw: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The default planted formulas, written directly in pandas (independent of alphaminer).

    ``CSRank`` ranks among the day's universe members (the evaluator's convention).
    """
    p = _adjusted(raw)
    univ = _wide(raw, "in_universe").astype("boolean").fillna(False).astype(bool)
    c, o, h, l, v, vw = (p[k] for k in ("close", "open", "high", "low", "volume", "vwap"))
    loc = ((c - o) / (h - l)).replace([np.inf, -np.inf], np.nan)
    ratio = vw / c
    corr = c.rolling(10).corr(v).replace([np.inf, -np.inf], np.nan)
    return {
        "reversal_5d": -(c / c.shift(5) - 1.0),
        "price_volume_corr_10d": -corr,
        "close_location": loc.where(univ).rank(axis=1, pct=True),
        "vwap_gap_20d": -(ratio - ratio.rolling(20).mean()) / ratio.rolling(20).std(),
    }


def _daily_pearson(f: pd.DataFrame, y: pd.DataFrame) -> np.ndarray:
    out = []
    for d in f.index:
        a, b = f.loc[d].to_numpy(float), y.loc[d].to_numpy(float)
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.sum() >= 10 and a[ok].std() > 0:
            out.append(np.corrcoef(a[ok], b[ok])[0, 1])
    return np.asarray(out)


def test_planted_ground_truth_table(ic_market: SimulatedMarket) -> None:
    pl = ic_market.planted
    assert list(pl["name"]) == [a.name for a in DEFAULT_PLANTED]
    assert list(pl["formula"]) == [a.formula for a in DEFAULT_PLANTED]
    assert list(pl["oracle_formula"]) == list(pl["formula"])  # H = 1: the formula itself
    np.testing.assert_allclose(pl["target_ic"], [a.strength for a in DEFAULT_PLANTED])
    assert list(pl["lookback"]) == [5, 9, 0, 19]
    assert 3 <= len(pl) <= 5


def test_planted_alphas_realised_ic_matches_target(ic_market: SimulatedMarket) -> None:
    """Independent per-day Pearson IC vs next-day adjusted return is within 0.012 of target.

    Standard error of a mean daily IC here is ≈ 0.004 (250 stocks, ~980 days).
    """
    raw = ic_market.raw
    close = _adjusted(raw)["close"]
    susp = _wide(raw, "is_suspended").astype("boolean").fillna(True).astype(bool)
    univ = _wide(raw, "in_universe").astype("boolean").fillna(False).astype(bool)
    trading = close.notna() & ~susp
    nxt = (close.shift(-1) / close - 1.0).where(trading & trading.shift(-1, fill_value=False))
    target = ic_market.planted.set_index("name")["target_ic"]
    realised_sim = ic_market.planted.set_index("name")["realised_ic_1d"]
    for name, f in _reference_factors(raw).items():
        ic = _daily_pearson(f.where(univ & trading), nxt)
        assert len(ic) > 900
        assert abs(ic.mean() - target[name]) < 0.012, (name, ic.mean(), target[name])
        # the simulator's own whole-sample figure agrees with the independent one
        assert abs(ic.mean() - realised_sim[name]) < 2e-3, (name, ic.mean(), realised_sim[name])


def test_no_planted_alphas_gives_no_ic() -> None:
    m = simulate_market(SimulatorConfig(n_stocks=150, n_days=300, seed=5, planted=[],
                                        progress=False))
    assert m.planted.empty
    raw = m.raw
    close = _adjusted(raw)["close"]
    nxt = close.shift(-1) / close - 1.0
    f = _reference_factors(raw)["reversal_5d"]
    ic = _daily_pearson(f, nxt)
    assert abs(ic.mean()) < 0.02


def test_custom_planted_alpha_strength() -> None:
    alpha = PlantedAlpha("Neg(TsReturn(close,3d))", 0.1, name="rev3")
    m = simulate_market(SimulatorConfig(n_stocks=200, n_days=300, seed=2, planted=[alpha],
                                        alpha_horizon=1, progress=False))
    close = _adjusted(m.raw)["close"]
    f = -(close / close.shift(3) - 1.0)
    ic = _daily_pearson(f, close.shift(-1) / close - 1.0)
    assert abs(ic.mean() - 0.1) < 0.025, ic.mean()
    assert m.planted.loc[0, "lookback"] == 3


# --------------------------------------------------------------------------- determinism
def test_same_seed_identical_different_seed_differs() -> None:
    cfg = dict(n_stocks=30, n_days=70, progress=False, **LIFE)
    a = simulate_market(SimulatorConfig(seed=7, **cfg))
    b = simulate_market(SimulatorConfig(seed=7, **cfg))
    c = simulate_market(SimulatorConfig(seed=8, **cfg))
    pd.testing.assert_frame_equal(a.raw, b.raw)
    pd.testing.assert_frame_equal(a.planted, b.planted)
    merged = a.raw.merge(c.raw, on=["datetime", "instrument"])
    assert not np.allclose(merged["close_x"], merged["close_y"])


def test_no_look_ahead_longer_simulation_keeps_the_past() -> None:
    cfg = dict(n_stocks=40, seed=4, progress=False, **LIFE)
    short = simulate_market(SimulatorConfig(n_days=60, **cfg)).raw
    long = simulate_market(SimulatorConfig(n_days=110, **cfg)).raw
    cut = short["datetime"].max()
    pd.testing.assert_frame_equal(short, long[long["datetime"] <= cut].reset_index(drop=True))
    assert long["datetime"].max() > cut


# --------------------------------------------------------------------------- life cycle
def test_splits_adjusted_close_continuous_raw_jumps(small: SimulatedMarket) -> None:
    raw = small.raw
    adj = _wide(raw, "adj_factor")
    close = _wide(raw, "close")
    ratio = adj / adj.shift(1)
    split_days = ratio.stack()
    split_days = split_days[split_days > 1.0 + 1e-12]
    assert len(split_days) >= 2
    assert len(small.meta["splits"]) == len(split_days)
    adj_ret = np.log(close * adj).diff()
    raw_ret = np.log(close).diff()
    typical = adj_ret.abs().stack().quantile(0.999)
    for (d, inst), q in split_days.items():
        assert abs(adj_ret.loc[d, inst]) <= typical, (d, inst, adj_ret.loc[d, inst])
        # the raw close drops by about the split ratio
        assert raw_ret.loc[d, inst] < -np.log(q) + typical
        assert raw_ret.loc[d, inst] < -np.log(2) * 0.6
    # adj_factor never decreases and starts at 1
    assert (adj.diff().stack().dropna() >= 0).all()
    first = raw.groupby("instrument")["adj_factor"].first()
    assert (first == 1.0).all()


def test_listings_delistings_suspensions(small: SimulatedMarket) -> None:
    raw = small.raw
    days = raw["datetime"].drop_duplicates().sort_values().reset_index(drop=True)
    span = raw.groupby("instrument")["datetime"].agg(["min", "max", "count"])
    assert (span["min"] > days.iloc[0]).sum() >= 2  # listed later
    assert (span["max"] < days.iloc[-1]).sum() >= 2  # delisted
    # rows are contiguous between listing and delisting (no gaps)
    pos = days.reset_index().set_index("datetime")["index"]
    assert ((pos[span["max"]].to_numpy() - pos[span["min"]].to_numpy() + 1)
            == span["count"].to_numpy()).all()
    s = raw[raw["is_suspended"]]
    assert len(s) >= 5
    assert (s["volume"] == 0).all() and (s["amount"] == 0).all()
    prev_close = raw.groupby("instrument")["close"].shift(1)
    for col in ("open", "high", "low", "close", "vwap"):
        np.testing.assert_allclose(s[col], prev_close[s.index], rtol=1e-12)
    assert small.meta["n_suspended_rows"] == len(s)


def test_universe_seasoning_and_topn() -> None:
    m = simulate_market(SimulatorConfig(n_stocks=60, n_days=200, seed=9, progress=False,
                                        universe_size=25, universe_rebalance_days=50,
                                        planted=[], **LIFE))
    raw = m.raw
    counts = raw.groupby("datetime")["in_universe"].sum()
    assert counts.max() <= 25 and counts.iloc[0] == 25
    univ = _wide(raw, "in_universe").astype("boolean").fillna(False).astype(bool)
    entered = (univ & ~univ.shift(1, fill_value=False)).any(axis=1)
    entry_pos = np.flatnonzero(entered.to_numpy())
    assert set(entry_pos) <= {0, 50, 100, 150}  # joins only on rebalance days
    # a late lister is never in the universe within its seasoning period
    first = raw.groupby("instrument")["datetime"].transform("min")
    late = first > raw["datetime"].min()
    age = (raw["datetime"] - first).dt.days
    assert not raw.loc[late & (age < 20), "in_universe"].any()


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize(("kw", "match"), [
    ({"n_stocks": 1}, "n_stocks"),
    ({"n_days": 0}, "n_days"),
    ({"tail_df": 2.0}, "tail_df"),
    ({"garch_alpha": 0.5, "garch_persistence": 0.4}, "garch"),
    ({"suspension_rate": 1.5}, "suspension_rate"),
    ({"start_date": "not a date"}, "start_date"),
    ({"universe_size": 1}, "universe_size"),
    ({"alpha_kernel": "gaussian"}, "alpha_kernel"),
    ({"planted": [PlantedAlpha(f, 0.45) for f in ("close", "open", "vwap")]}, "squared"),
])
def test_config_validation(kw: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SimulatorConfig(**kw)


def test_planted_alpha_validation() -> None:
    with pytest.raises(ValueError, match="strength"):
        PlantedAlpha("Neg(close)", 0.7)
    with pytest.raises(ValueError, match="formula"):
        PlantedAlpha("", 0.1)
    cfg = SimulatorConfig(planted=[{"formula": "Neg(close)", "strength": 0.05}])
    assert cfg.planted == [PlantedAlpha("Neg(close)", 0.05, "Neg(close)")]
    with pytest.raises(ValueError, match="unique"):
        SimulatorConfig(planted=[PlantedAlpha("close", 0.1, "a"), PlantedAlpha("open", 0.1, "a")])
    with pytest.raises(ValueError, match="cannot parse"):
        simulate_market(SimulatorConfig(n_stocks=5, n_days=5, progress=False,
                                        planted=[PlantedAlpha("Nope(close", 0.05)]))


def test_overrides_and_meta() -> None:
    m = simulate_market(n_stocks=12, n_days=40, seed=1, planted=[], progress=False)
    assert m.meta["config"]["n_stocks"] == 12
    assert m.raw["instrument"].nunique() <= 12
    assert m.meta["n_rows"] == len(m.raw)
    assert set(m.meta["sector"]) == {f"SIM{i:04d}" for i in range(1, 13)}


# --------------------------------------------------------------------------- persistence
def _fwd(close: pd.DataFrame, h: int, lag: int = 0) -> pd.DataFrame:
    """Simple return from day t+lag to day t+lag+h (adjusted close)."""
    return close.shift(-(lag + h)) / close.shift(-lag) - 1.0


def test_planted_alphas_positive_20d_ic(persistent_market: SimulatedMarket) -> None:
    """With persistence on, every persistent planted formula predicts the 20-day return.

    ``reversal_5d`` is a one-day effect by design (``half_life=0``), so its 20-day IC is ~0 and
    it is only checked against the simulator's own figure. The 20-day ICs use overlapping labels;
    positive means > 0 on ~960 days of 250 stocks (independent IC).
    """
    raw = persistent_market.raw
    close = _adjusted(raw)["close"]
    univ = _wide(raw, "in_universe").astype("boolean").fillna(False).astype(bool)
    y20 = _fwd(close, 20)
    sim = persistent_market.planted.set_index("name")["realised_ic_20d"]
    for name, f in _reference_factors(raw).items():
        ic = _daily_pearson(f.where(univ), y20).mean()
        assert name == "reversal_5d" or ic > 0.0, (name, ic)
        assert abs(ic - sim[name]) < 0.01, (name, ic, sim[name])


@pytest.mark.parametrize("horizon", [1, 20])
def test_alpha_horizon_persistence(horizon: int) -> None:
    """A non-persistent signal (close location) feeds later days only when ``alpha_horizon > 1``.

    Its 1-day IC equals the strength for any horizon; with H = 1 its IC vs the return from t+1 to
    t+2 is ≈ 0 (the signal has no memory); with H = 20 it is positive (≈ 0.1 · w_2 before
    normalisation), and so is the 10-day IC.
    """
    alpha = PlantedAlpha("CSRank(Div(Sub(close,open),Sub(high,low)))", 0.1, "loc")
    m = simulate_market(SimulatorConfig(n_stocks=200, n_days=400, seed=6, planted=[alpha],
                                        alpha_horizon=horizon, alpha_half_life=5.0,
                                        alpha_kernel="exponential", progress=False))
    p = _adjusted(m.raw)
    univ = _wide(m.raw, "in_universe").astype("boolean").fillna(False).astype(bool)
    f = ((p["close"] - p["open"]) / (p["high"] - p["low"])).where(univ).rank(axis=1, pct=True)
    ic1 = _daily_pearson(f, _fwd(p["close"], 1)).mean()
    ic_next = _daily_pearson(f, _fwd(p["close"], 1, lag=1)).mean()
    ic10 = _daily_pearson(f, _fwd(p["close"], 10)).mean()
    assert abs(ic1 - 0.1) < 0.025, ic1
    if horizon == 1:
        assert abs(ic_next) < 0.02, ic_next
        assert m.meta["config"]["alpha_horizon"] == 1
    else:
        assert ic_next > 0.04, ic_next
        assert ic10 > 0.1, ic10


def test_alpha_lag_weights() -> None:
    cfg = SimulatorConfig(alpha_horizon=4, alpha_half_life=2.0, alpha_kernel="exponential",
                          planted=[PlantedAlpha("close", 0.05, "a"),
                                   PlantedAlpha("open", 0.05, "b", half_life=0.0),
                                   PlantedAlpha("vwap", 0.05, "c", half_life=1.0)])
    w = cfg.alpha_lag_weights
    np.testing.assert_allclose(w[:, 0], [2 ** -0.5, 2 ** -1.0, 2 ** -1.5])
    np.testing.assert_allclose(w[:, 1], 0.0)
    np.testing.assert_allclose(w[:, 2], [0.5, 0.25, 0.125])
    assert SimulatorConfig(alpha_horizon=1).alpha_lag_weights.shape == (0, 4)
    with pytest.raises(ValueError, match="alpha_horizon"):
        SimulatorConfig(alpha_horizon=0)
    with pytest.raises(ValueError, match="alpha_half_life"):
        SimulatorConfig(alpha_half_life=0.0)
    with pytest.raises(ValueError, match="half_life"):
        PlantedAlpha("close", 0.05, half_life=-1.0)


# --------------------------------------------------------------------------- flat kernel (default)
def test_flat_kernel_is_default_and_oracle_formula_parses() -> None:
    from alphaminer.expr import parse

    cfg = SimulatorConfig()
    assert (cfg.alpha_kernel, cfg.alpha_horizon) == ("flat", 20)
    m = simulate_market(n_stocks=30, n_days=60, seed=1, progress=False)
    pl = m.planted
    assert list(pl["oracle_formula"]) == [f"WMA(CSZScore({a.formula}),20d)"
                                          for a in DEFAULT_PLANTED]
    for f in pl["oracle_formula"]:
        assert str(parse(f)) == f
    assert pl["target_ic"].isna().all()  # flat kernel: realised only
    assert m.meta["calibration"]["alpha_kernel"] == "flat"


def test_flat_kernel_causal_and_deterministic() -> None:
    cfg = dict(n_stocks=40, seed=4, progress=False, alpha_horizon=10, **LIFE)
    short = simulate_market(SimulatorConfig(n_days=60, **cfg)).raw
    again = simulate_market(SimulatorConfig(n_days=60, **cfg)).raw
    long = simulate_market(SimulatorConfig(n_days=110, **cfg)).raw
    pd.testing.assert_frame_equal(short, again)
    cut = short["datetime"].max()
    pd.testing.assert_frame_equal(short, long[long["datetime"] <= cut].reset_index(drop=True))


def test_horizon_one_ignores_kernel() -> None:
    """With H = 1 both kernels are the one-day model, bit for bit."""
    cfg = dict(n_stocks=40, n_days=80, seed=2, progress=False, alpha_horizon=1)
    a = simulate_market(SimulatorConfig(alpha_kernel="flat", **cfg))
    b = simulate_market(SimulatorConfig(alpha_kernel="exponential", **cfg))
    pd.testing.assert_frame_equal(a.raw, b.raw)


def _zscore_wma(f: pd.DataFrame, mask: pd.DataFrame, h: int) -> pd.DataFrame:
    """pandas reference of ``WMA(CSZScore(f), hd)``: weights 1..h, newest largest."""
    x = f.where(mask)
    z = x.sub(x.mean(axis=1), axis=0).div(x.std(axis=1, ddof=1), axis=0)
    acc = sum((h - i) * z.shift(i) for i in range(h))
    return acc / (h * (h + 1) / 2)


@pytest.fixture(scope="module")
def flat_market() -> SimulatedMarket:
    """The default formulas at 2.5× their default strengths, so that on 200 × 600 the oracle-vs-
    raw comparison sits well above sampling noise (sd of a mean daily IC here ≈ 0.004)."""
    strong = [PlantedAlpha(a.formula, 2.5 * a.strength, a.name, half_life=a.half_life)
              for a in DEFAULT_PLANTED]
    return simulate_market(SimulatorConfig(n_stocks=200, n_days=600, seed=5, progress=False,
                                           alpha_horizon=10, planted=strong))


def test_flat_kernel_oracle_beats_raw_formula(flat_market: SimulatedMarket) -> None:
    """The WMA of the z-scored formulas predicts the H-day return better than the raw formulas.

    Marginally for the 5-day reversal (a fast-changing signal); the slow price–volume
    correlation is nearly its own WMA and the other two can have a negative *marginal* WMA IC
    (their past values overlap the reversal's), so the set is compared as a pooled least-squares
    mix (4 weights fitted on the whole sample, the same for both sets).
    """
    raw = flat_market.raw
    h = 10
    close = _adjusted(raw)["close"]
    univ = _wide(raw, "in_universe").astype("boolean").fillna(False).astype(bool)
    susp = _wide(raw, "is_suspended").astype("boolean").fillna(True).astype(bool)
    mask = univ & close.notna() & ~susp
    y = _fwd(close, h)
    ref = {k: v.where(mask) for k, v in _reference_factors(raw).items()}
    orc = {k: _zscore_wma(v, mask, h) for k, v in ref.items()}
    raw_ic = _daily_pearson(ref["reversal_5d"], y).mean()
    oracle_ic = _daily_pearson(orc["reversal_5d"], y).mean()
    assert oracle_ic > raw_ic + 0.02, (oracle_ic, raw_ic)

    def pooled_mix_ic(fs: dict[str, pd.DataFrame]) -> float:
        zs = [f.sub(f.mean(axis=1), axis=0).div(f.std(axis=1), axis=0) for f in fs.values()]
        X = np.stack([z.to_numpy().ravel() for z in zs], axis=1)
        yy = y.sub(y.mean(axis=1), axis=0).to_numpy().ravel()
        ok = np.isfinite(X).all(axis=1) & np.isfinite(yy)
        w = np.linalg.lstsq(X[ok], yy[ok], rcond=None)[0]
        fit = pd.DataFrame(np.nan_to_num(X) @ w, dtype=float).to_numpy().reshape(y.shape)
        fit = pd.DataFrame(np.where(np.isfinite(X).all(axis=1).reshape(y.shape), fit, np.nan),
                           index=y.index, columns=y.columns)
        return float(_daily_pearson(fit, y).mean())

    assert pooled_mix_ic(orc) > pooled_mix_ic(ref) + 0.02


def test_flat_kernel_single_memoryless_signal() -> None:
    """A signal with no memory: only its WMA carries the H-day predictability."""
    alpha = PlantedAlpha("CSRank(Div(Sub(close,open),Sub(high,low)))", 0.1, "loc")
    h = 10
    m = simulate_market(SimulatorConfig(n_stocks=200, n_days=400, seed=6, planted=[alpha],
                                        alpha_horizon=h, progress=False))
    assert m.planted.loc[0, "oracle_formula"] == f"WMA(CSZScore({alpha.formula}),{h}d)"
    p = _adjusted(m.raw)
    univ = _wide(m.raw, "in_universe").astype("boolean").fillna(False).astype(bool)
    f = ((p["close"] - p["open"]) / (p["high"] - p["low"])).where(univ).rank(axis=1, pct=True)
    y = _fwd(p["close"], h)
    raw_ic = _daily_pearson(f, y).mean()
    oracle_ic = _daily_pearson(_zscore_wma(f, univ, h), y).mean()
    assert oracle_ic > raw_ic + 0.05, (oracle_ic, raw_ic)
    assert oracle_ic > 0.1, oracle_ic
