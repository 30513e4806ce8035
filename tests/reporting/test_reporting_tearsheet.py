"""The factor tear sheet against independent pandas/numpy references, and its causality."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from alphaminer.panel import Panel
from alphaminer.reporting.tearsheet import (
    excess_with_without_cost,
    factor_tearsheet,
    ic_decay,
    monthly_ic,
    quantile_cumulative,
    quantile_spread,
    rank_autocorr_summary,
)

T, S, MIN_STOCKS = 150, 30, 5


def _panel(seed: int = 0, T: int = T, S: int = S) -> Panel:
    """Random-walk close / vwap / open with holes and a universe that changes over time."""
    rng = np.random.default_rng(seed)
    close = 10.0 * np.cumprod(1.0 + rng.normal(0.0, 0.02, (T, S)), axis=0)
    vwap = close * (1.0 + rng.normal(0.0, 0.003, (T, S)))
    open_ = close * (1.0 + rng.normal(0.0, 0.005, (T, S)))
    observed = rng.random((T, S)) > 0.05
    universe = observed & (rng.random((T, S)) > 0.1)
    universe[:, :3] &= np.arange(T)[:, None] > 60  # three names join the universe later
    vals = np.stack([open_, close, vwap], -1)
    vals = np.where(observed[..., None], vals, np.nan)
    return Panel(values=torch.from_numpy(vals.astype(np.float32)),
                 dates=pd.bdate_range("2021-01-04", periods=T),
                 instruments=[f"S{i:02d}" for i in range(S)], features=("open", "close", "vwap"),
                 observed=torch.from_numpy(observed), universe=torch.from_numpy(universe),
                 tradable=torch.from_numpy(observed))


def _momentum(panel: Panel, w: int = 5) -> np.ndarray:
    """A causal signal: the w-day return up to day t (reads close at t and t - w only)."""
    c = pd.DataFrame(panel.feature("close").numpy().astype(np.float64))
    return (c / c.shift(w) - 1.0).to_numpy()


def _wide(panel: Panel, name: str) -> pd.DataFrame:
    return pd.DataFrame(panel.feature(name).numpy().astype(np.float64))


def _uni(panel: Panel) -> pd.DataFrame:
    return pd.DataFrame(panel.universe.numpy())


def _ref_daily_corr(x: pd.DataFrame, y: pd.DataFrame, rank: bool) -> np.ndarray:
    """Per-day Pearson (or Spearman: ranks among the pair-valid names) by hand."""
    out = np.full(len(x), np.nan)
    for t in range(len(x)):
        ok = x.iloc[t].notna() & y.iloc[t].notna()
        if ok.sum() < MIN_STOCKS:
            continue
        a, b = x.iloc[t][ok], y.iloc[t][ok]
        if rank:
            a, b = a.rank(), b.rank()
        if a.std() == 0 or b.std() == 0:
            continue
        out[t] = np.corrcoef(a.to_numpy(), b.to_numpy())[0, 1]
    return out


@pytest.fixture(scope="module")
def panel() -> Panel:
    return _panel()


@pytest.fixture(scope="module")
def sheet(panel: Panel) -> pd.DataFrame:
    return factor_tearsheet(_momentum(panel), panel, (40, 130), horizons=(1, 5, 10, 20),
                            lags=(1, 5), kind="close", min_stocks=MIN_STOCKS)


def test_ic_decay_equals_pandas_corr_with_pandas_forward_returns(panel, sheet):
    uni = _uni(panel)
    sig = pd.DataFrame(_momentum(panel)).where(uni)
    close = _wide(panel, "close")
    assert list(sheet["date"]) == list(panel.dates[40:130])
    for h in (1, 5, 10, 20):
        fwd = (close.shift(-h) / close - 1.0).where(uni)  # the label: Ref(close,-h)/close-1
        ic = _ref_daily_corr(sig.iloc[40:130], fwd.iloc[40:130], rank=False)
        ric = _ref_daily_corr(sig.iloc[40:130], fwd.iloc[40:130], rank=True)
        assert np.isfinite(ic).sum() > 60
        np.testing.assert_allclose(sheet[f"ic_{h}d"], ic, atol=2e-5, equal_nan=True)
        np.testing.assert_allclose(sheet[f"rank_ic_{h}d"], ric, atol=1e-9, equal_nan=True)
    decay = ic_decay(sheet)
    assert list(decay.index) == [1, 5, 10, 20]
    np.testing.assert_allclose(decay["ic"], [np.nanmean(sheet[f"ic_{h}d"]) for h in decay.index])
    assert list(decay["n_days"]) == [float(sheet[f"ic_{h}d"].notna().sum()) for h in decay.index]


def test_ic_decay_of_vwap_lag_label(panel):
    sheet = factor_tearsheet(_momentum(panel), panel, (40, 130), horizons=(5,), lags=(),
                             kind="vwap_lag", min_stocks=MIN_STOCKS)
    uni = _uni(panel)
    vwap = _wide(panel, "vwap")
    fwd = (vwap.shift(-6) / vwap.shift(-1) - 1.0).where(uni)  # Ref(vwap,-(h+1))/Ref(vwap,-1)-1
    sig = pd.DataFrame(_momentum(panel)).where(uni)
    ref = _ref_daily_corr(sig.iloc[40:130], fwd.iloc[40:130], rank=False)
    np.testing.assert_allclose(sheet["ic_5d"], ref, atol=2e-5, equal_nan=True)
    assert [c for c in sheet.columns if c.startswith("rank_autocorr")] == []


def test_rank_autocorrelation_equals_pandas_rank_corr(panel, sheet):
    sig = pd.DataFrame(_momentum(panel)).where(_uni(panel))
    for lag in (1, 5):
        ref = np.full(90, np.nan)
        for k, t in enumerate(range(40, 130)):
            a, b = sig.iloc[t], sig.iloc[t - lag]  # the segment's first days read earlier days
            ok = a.notna() & b.notna()
            if ok.sum() >= MIN_STOCKS:
                ref[k] = np.corrcoef(a[ok].rank(), b[ok].rank())[0, 1]
        assert np.isfinite(ref).sum() == 90
        np.testing.assert_allclose(sheet[f"rank_autocorr_{lag}d"], ref, atol=1e-9)
    summ = rank_autocorr_summary(sheet)
    assert list(summ.index) == [1, 5]
    assert summ[1] == pytest.approx(sheet["rank_autocorr_1d"].mean())
    # 5-day momentum: windows a day apart overlap 4 days in 5, windows 5 days apart not at all
    assert summ[1] > 0.5 > summ[5]


def test_monthly_ic_is_a_year_month_groupby():
    rng = np.random.default_rng(3)
    dates = pd.bdate_range("2020-11-02", periods=160)
    ic = pd.DataFrame({"date": dates[::-1], "ic": rng.normal(0.03, 0.1, 160)[::-1]})
    ic.loc[5, "ic"] = np.nan
    table = monthly_ic(ic)
    assert list(table.columns) == list(range(1, 13)) and list(table.index) == [2020, 2021]
    sums: dict[tuple[int, int], list[float]] = {}
    for d, v in zip(ic["date"], ic["ic"]):
        if np.isfinite(v):
            sums.setdefault((d.year, d.month), []).append(v)
    for (y, mth), vals in sums.items():
        assert table.loc[y, mth] == pytest.approx(sum(vals) / len(vals))
    assert np.isnan(table.loc[2020, 1]) and np.isnan(table.loc[2021, 12])
    assert int(np.isfinite(table.to_numpy()).sum()) == len(sums)


def test_quantile_cumulative_and_spread_by_hand():
    rng = np.random.default_rng(4)
    n = 60
    q = pd.DataFrame({"date": pd.bdate_range("2022-01-03", periods=n),
                      "Q1": rng.normal(0, 0.01, n), "Q2": rng.normal(0, 0.01, n)})
    q.loc[7, "Q2"] = np.nan
    cum = quantile_cumulative(q.iloc[::-1], ["Q1", "Q2"], horizon=2)
    acc = 0.0
    for t in range(n):
        acc += 0.0 if np.isnan(q["Q2"][t]) else q["Q2"][t]
        assert cum["Q2"][t] == pytest.approx(acc / 2)
    sp = quantile_spread(q, "Q2", "Q1", window=10)
    s = (q["Q2"] - q["Q1"]).to_numpy()
    for t in range(n):
        win = s[max(0, t - 9):t + 1]
        win = win[np.isfinite(win)]
        if win.size >= 5:
            assert sp["rolling_mean"][t] == pytest.approx(win.mean())
            assert sp["rolling_std"][t] == pytest.approx(win.std(ddof=1))
        else:
            assert np.isnan(sp["rolling_mean"][t])


def test_excess_before_cost_recovers_the_gross_return():
    """An equity path that pays known costs: adding cost / previous equity back gives the
    gross return the path was built from."""
    rng = np.random.default_rng(5)
    n = 50
    gross = rng.normal(0.001, 0.01, n)
    bench = rng.normal(0.0, 0.01, n)
    cost = rng.uniform(0, 300, n)
    eq, prev, rets = [], 1e6, []
    for g, c in zip(gross, cost):
        e = prev * (1 + g) - c
        rets.append(e / prev - 1)
        eq.append(e)
        prev = e
    daily = pd.DataFrame({"date": pd.bdate_range("2022-01-03", periods=n), "equity": eq,
                          "return": rets, "benchmark_return": bench,
                          "excess_return": np.array(rets) - bench, "cost": cost})
    ex = excess_with_without_cost(daily)
    np.testing.assert_allclose(ex["excess_gross"], gross - bench, atol=1e-12)
    np.testing.assert_allclose(ex["excess_net"], np.array(rets) - bench)
    assert (ex["excess_gross"] >= ex["excess_net"]).all()
    bare = excess_with_without_cost(daily.drop(columns=["cost", "excess_return"]))
    assert list(bare.columns) == ["date", "excess_net"]
    np.testing.assert_allclose(bare["excess_net"], np.array(rets) - bench)


def test_no_look_ahead_perturbing_the_future():
    """Changing prices from day t0 on leaves every tear-sheet value of the days before it
    unchanged, apart from ICs whose forward return reaches t0 (h days ahead)."""
    base = _panel(seed=7)
    t0 = 100
    vals = base.values.clone()
    rng = np.random.default_rng(8)
    vals[t0:] *= torch.from_numpy(rng.uniform(0.5, 1.5, tuple(vals[t0:].shape)).astype(np.float32))
    moved = Panel(values=vals, dates=base.dates, instruments=base.instruments,
                  features=base.features, observed=base.observed, universe=base.universe,
                  tradable=base.tradable)
    kw = dict(horizons=(1, 5, 20), lags=(1, 5), kind="close", min_stocks=MIN_STOCKS)
    a = factor_tearsheet(_momentum(base), base, (30, 150), **kw)
    b = factor_tearsheet(_momentum(moved), moved, (30, 150), **kw)
    k0 = t0 - 30  # row of day t0
    for lag in (1, 5):
        col = f"rank_autocorr_{lag}d"
        np.testing.assert_array_equal(a[col][:k0], b[col][:k0])
        assert not np.allclose(a[col][k0:], b[col][k0:])  # the perturbation is seen after t0
    for h in (1, 5, 20):
        np.testing.assert_array_equal(a[f"ic_{h}d"][:k0 - h], b[f"ic_{h}d"][:k0 - h])
        assert not np.allclose(a[f"ic_{h}d"][k0 - h:k0], b[f"ic_{h}d"][k0 - h:k0],
                               equal_nan=True)
    # the monthly IC of months that end before t0 - 20 does not change
    end = base.dates[t0 - 20]
    ma = monthly_ic(a.rename(columns={"ic_20d": "ic"})[["date", "ic"]])
    mb = monthly_ic(b.rename(columns={"ic_20d": "ic"})[["date", "ic"]])
    done = [(y, mth) for y in ma.index for mth in ma.columns
            if pd.Timestamp(y, mth, 1) + pd.offsets.MonthEnd(0) < end and np.isfinite(
                ma.loc[y, mth])]
    assert done
    for y, mth in done:
        assert ma.loc[y, mth] == mb.loc[y, mth]


def test_factor_tearsheet_rejects_bad_input(panel):
    sig = _momentum(panel)
    with pytest.raises(ValueError, match="segment"):
        factor_tearsheet(sig, panel, (10, T + 1))
    with pytest.raises(ValueError, match="shape"):
        factor_tearsheet(sig[:, :5], panel, (10, 20))
    with pytest.raises(ValueError, match="positive"):
        factor_tearsheet(sig, panel, (10, 20), horizons=(0,))


def test_tearsheet_figures_plot_the_hand_computed_values(make_method):
    from alphaminer.reporting import TEARSHEET_KEYS, FigureConfig, tearsheet_figures

    m = make_method("ts", seed=12, n_days=90)
    m.quantile_horizon = 2
    figs = tearsheet_figures(m, FigureConfig(rolling_window=10))
    assert tuple(figs) == TEARSHEET_KEYS
    q = m.quantiles[[f"q{i}" for i in range(1, 6)]].to_numpy()
    for i, line in enumerate(figs["quantile_cumulative"].axes[0].lines[:5]):
        np.testing.assert_allclose(line.get_ydata(), np.cumsum(q[:, i]) / 2, atol=1e-15)
    spread_lines = figs["quantile_spread"].axes[0].lines
    np.testing.assert_allclose(spread_lines[0].get_ydata(), q[:, 4] - q[:, 0])
    assert spread_lines[1].get_ydata()[20] == pytest.approx((q[11:21, 4] - q[11:21, 0]).mean())
    d = m.daily
    prev = d["equity"] / (1 + d["return"])
    net, gross = figs["excess_cost"].axes[0].lines[:2]
    np.testing.assert_allclose(net.get_ydata(), np.cumsum(d["return"] - d["benchmark_return"]))
    np.testing.assert_allclose(gross.get_ydata(), np.cumsum(
        d["return"] - d["benchmark_return"] + d["cost"] / prev))
    heat = figs["monthly_ic"].axes[0].images[0].get_array()
    months = m.ic_series.groupby(m.ic_series["date"].dt.to_period("M"))["ic"].mean()
    np.testing.assert_allclose(np.ma.filled(heat, np.nan)[~np.ma.getmaskarray(heat)],
                               months.to_numpy())
    ic_line = figs["ic_decay"].axes[0].lines[0]
    np.testing.assert_array_equal(ic_line.get_xdata(), [1, 5, 10, 20])
    np.testing.assert_allclose(ic_line.get_ydata(),
                               [m.tearsheet[f"ic_{h}d"].mean() for h in (1, 5, 10, 20)])
    ac = figs["rank_autocorr"].axes[0].lines[0]
    np.testing.assert_allclose(ac.get_ydata(), m.tearsheet["rank_autocorr_1d"])
    qq = figs["ic_distribution"].axes[1].collections[0].get_offsets()
    np.testing.assert_allclose(np.asarray(qq)[:, 1], np.sort(m.ic_series["ic"]))
    for key, fig in figs.items():  # every figure names its horizon (or has no horizon)
        title = (fig._suptitle.get_text() if fig._suptitle else fig.axes[0].get_title())
        if key in ("ic_distribution", "monthly_ic", "ic_decay"):
            assert "20-day label" in title, (key, title)
        if key in ("quantile_cumulative", "quantile_spread"):
            assert "2-day returns" in title, (key, title)


def test_signal_tearsheet_node_is_the_library_call(panel):
    from alphaminer.pipelines.backtest.nodes import signal_tearsheet

    sig = torch.from_numpy(_momentum(panel).astype(np.float32))
    frame = panel.frame(sig, name="signal")
    from alphaminer.data import Splits

    n = panel.T
    splits = Splits(dates=panel.dates, ranges={"train": (0, 60), "valid": (60, 90),
                                               "test": (110, n)}, horizon=20).to_dict()
    out = signal_tearsheet(frame, panel, splits, {"segment": "test"},
                           {"horizon": 15, "kind": "close"}, MIN_STOCKS)
    ref = factor_tearsheet(sig, panel, (110, n), (1, 5, 10, 15, 20), (1, 5, 20), "close",
                           MIN_STOCKS)
    pd.testing.assert_frame_equal(out, ref)
    assert "ic_15d" in out  # the label's own horizon is always in the decay
    assert signal_tearsheet(frame.iloc[:0], panel, splits, {"segment": "test"},
                            {"horizon": 15}, MIN_STOCKS).empty
