"""A-share market rules: per-board price limits, limit checks at the time of the trade,
suspension rows with missing values, and status-column conventions."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd
import pytest

from alphaminer.backtest.portfolio import BacktestConfig, _market, run_backtest
from alphaminer.data import CleanConfig, RawData, SourceConfig, clean, load_source
from alphaminer.expr import evaluate


def _market_frame(codes: list[str], dates: pd.DatetimeIndex, seed: int = 0) -> pd.DataFrame:
    """Unadjusted bars on a 0.01 tick with moves up to ±25 % (so every board hits limits)."""
    rng = np.random.default_rng(seed)
    rows = []
    for j, code in enumerate(codes):
        ret = rng.choice([-0.25, -0.2, -0.1, -0.05, 0.0, 0.03, 0.05, 0.1, 0.2, 0.3],
                         size=len(dates))
        close = np.round(10.0 * (j + 1) * np.exp(np.cumsum(np.log1p(ret) * 0.5)), 2)
        open_ = np.round(close * (1 + rng.normal(0, 0.01, len(dates))), 2)
        rows.append(pd.DataFrame({
            "datetime": dates, "instrument": code, "open": open_,
            "high": np.maximum(open_, close) + 0.01, "low": np.minimum(open_, close) - 0.01,
            "close": close, "volume": 1e6,
            "adj_factor": np.where(np.arange(len(dates)) >= len(dates) // 2, 1.25, 1.0)}))
    return pd.concat(rows, ignore_index=True)


def _ref_limits(df: pd.DataFrame, limit_of) -> pd.DataFrame:
    """Limit prices with Decimal half-up rounding of the unadjusted reference price."""
    df = df.sort_values(["instrument", "datetime"]).copy()
    adj = df["close"] * df["adj_factor"]
    prev = adj.groupby(df["instrument"]).shift(1)
    up, down = [], []
    for p, af, (_, r) in zip(prev, df["adj_factor"], df.iterrows()):
        if np.isnan(p):
            up.append(np.nan)
            down.append(np.nan)
            continue
        lim = Decimal(str(limit_of(r)))
        ref = Decimal(repr(p / af))
        q = Decimal("0.01")
        up.append(float((ref * (1 + lim)).quantize(q, ROUND_HALF_UP)) * af)
        down.append(float((ref * (1 - lim)).quantize(q, ROUND_HALF_UP)) * af)
    df["up"], df["down"] = up, down
    return df.set_index(["datetime", "instrument"])


def test_cn_limits_by_board_date_and_st():
    dates = pd.bdate_range("2020-08-17", periods=12)  # spans ChiNext's 2020-08-24 reform
    codes = ["SH600000", "SZ000001", "SZ300750", "SH688981", "BJ830799", "SH600005"]
    raw = _market_frame(codes, dates)
    raw["is_st"] = raw["instrument"] == "SH600005"
    res = clean(raw, {"market": "cn"})

    def limit_of(r) -> float:
        code, day = r["instrument"], r["datetime"]
        if code.startswith("SH688"):
            return 0.2
        if code.startswith("SZ300"):
            return 0.2 if day >= pd.Timestamp("2020-08-24") else 0.1
        if code.startswith("BJ"):
            return 0.3
        return 0.05 if r["is_st"] else 0.1

    ref = _ref_limits(raw, limit_of)
    got = res.panel_long.set_index(["datetime", "instrument"])
    np.testing.assert_allclose(got["limit_up"], ref.loc[got.index, "up"], rtol=2e-7)
    np.testing.assert_allclose(got["limit_down"], ref.loc[got.index, "down"], rtol=2e-7)
    assert got["is_tradable"].all()  # a limit is decided at trade time, not here
    per_limit = pd.Series([limit_of(r) for _, r in raw.iterrows()]).value_counts()
    assert res.report["fixes"]["limit_rows_by_pct"] == {f"{k:g}": int(n)
                                                        for k, n in per_limit.items()}
    assert set(per_limit.index) == {0.05, 0.1, 0.2, 0.3}


def test_limit_rules_from_parameters_and_config_errors():
    dates = pd.bdate_range("2021-01-04", periods=8)
    raw = _market_frame(["AAA1", "BBB2"], dates)
    res = clean(raw, {"limit_rules": [{"pattern": "^AAA", "limit": 0.07}], "price_tick": 0.01})
    got = res.panel_long.set_index(["datetime", "instrument"])
    ref = _ref_limits(raw, lambda r: 0.07)
    a = got.xs("AAA1", level="instrument", drop_level=False)
    np.testing.assert_allclose(a["limit_up"], ref.loc[a.index, "up"], rtol=2e-7)
    assert got.xs("BBB2", level="instrument")["limit_up"].isna().all()  # no rule → no limit
    with pytest.raises(ValueError, match="either limit_pct"):
        CleanConfig(market="cn", limit_pct=0.1)
    with pytest.raises(ValueError, match=r"limit_rules\[0\].*needs 'pattern' and 'limit'"):
        CleanConfig(limit_rules=[{"regex": "^6"}])
    with pytest.raises(ValueError, match="market must be one of"):
        CleanConfig(market="us")
    assert "limit_up" not in clean(raw).panel_long.columns  # default off


def _two_stock_raw(close_b_day3: float) -> pd.DataFrame:
    """B opens flat on day 3 and closes wherever the test puts it; A is the control."""
    dates = pd.bdate_range("2021-03-01", periods=6)
    rows = []
    for code, o_list, c_list in [("SH600001", [10, 10, 10, 10, 10, 10], [10] * 6),
                                 ("SH600002", [10, 10, 10, 10.0, 11, 11],
                                  [10, 10, 10, close_b_day3, 11, 11])]:
        o, c = np.array(o_list, float), np.array(c_list, float)
        rows.append(pd.DataFrame({"datetime": dates, "instrument": code, "open": o,
                                  "high": np.maximum(o, c), "low": np.minimum(o, c),
                                  "close": c, "volume": 1e5}))
    return pd.concat(rows, ignore_index=True)


@pytest.mark.parametrize("close_b", [10.5, 11.0, 9.0])
def test_close_of_the_day_never_blocks_that_days_open(close_b):
    """Whether B closes normal, at limit-up or at limit-down on day 3 cannot change whether an
    open-price order on day 3 is blocked; a close-price order does see that close."""
    base = clean(_two_stock_raw(10.2), {"market": "cn"}).to_panel()
    other = clean(_two_stock_raw(close_b), {"market": "cn"}).to_panel()
    cfg_open = BacktestConfig(deal_price="open", progress=False)
    cfg_close = BacktestConfig(deal_price="close", progress=False)
    a, b = _market(base, cfg_open), _market(other, cfg_open)
    np.testing.assert_array_equal(a.can_buy[3], b.can_buy[3])
    np.testing.assert_array_equal(a.can_sell[3], b.can_sell[3])
    assert a.can_buy[3].all() and a.can_sell[3].all()
    c = _market(other, cfg_close)
    assert c.can_buy[3, 1] == (close_b < 11.0) and c.can_sell[3, 1] == (close_b > 9.0)
    # day 4: B opens at 11; its limit-up is day 3's close · 1.1 on the 0.01 tick
    assert b.can_buy[4, 1] == (round(close_b * 1.1, 2) > 11.0)


def test_backtest_buys_at_the_open_of_a_day_that_closes_limit_up():
    panel = clean(_two_stock_raw(11.0), {"market": "cn"}).to_panel()
    signal = np.zeros((panel.T, panel.S))
    signal[2, 1] = 1.0  # want B on day 3
    res = run_backtest(signal, panel, BacktestConfig(topk=1, n_drop=1, deal_price="open",
                                                     progress=False))
    buys = res.trades[res.trades["side"] == "buy"]
    assert (buys["date"] == panel.dates[3]).any()
    assert "SH600002" in set(buys.loc[buys["date"] == panel.dates[3], "instrument"])
    # at the close, the same order is blocked (B closed at limit-up): A is bought instead
    res_c = run_backtest(signal, panel, BacktestConfig(topk=1, n_drop=1, deal_price="close",
                                                       progress=False))
    day3 = res_c.trades[res_c.trades["date"] == panel.dates[3]]
    assert "SH600002" not in set(day3["instrument"])


def _suspension_raw() -> pd.DataFrame:
    dates = pd.bdate_range("2021-03-01", periods=8)
    c = np.array([10.0, 10.2, 10.4, 10.4, 10.4, 10.6, 10.8, 11.0])
    df = pd.DataFrame({"datetime": dates, "instrument": "SH600010", "open": c, "high": c + 0.1,
                       "low": c - 0.1, "close": c, "volume": 1e5, "adj_factor": 1.0,
                       "is_suspended": False})
    df.loc[3, ["open", "high", "low", "close", "volume"]] = np.nan  # flagged, all NaN
    df.loc[3, "is_suspended"] = True
    df.loc[4, ["open", "high", "low"]] = np.nan  # unflagged: volume NaN, close frozen
    df.loc[4, "volume"] = np.nan
    df.loc[6, "volume"] = np.nan  # volume NaN but the price moved: a real hole
    return df


def test_suspended_rows_with_missing_values_are_kept_and_filled():
    raw = _suspension_raw()
    res = clean(raw, {"min_date_share": None})
    assert res.report["rejected_by_reason"] == {"missing_value": 1}
    assert res.rejected_rows["datetime"].iloc[0] == raw["datetime"][6]
    out = res.panel_long.set_index("datetime")
    for day in raw["datetime"][[3, 4]]:
        row = out.loc[day]
        assert not row["is_tradable"] and row["volume"] == 0
        for c in ("open", "high", "low", "close", "vwap"):
            assert row[c] == pytest.approx(10.4)
    assert res.report["fixes"]["suspended_filled"] == 2
    assert out["is_tradable"].sum() == len(out) - 2
    # windows survive the suspension: a 3-day mean exists on the day after it
    panel = res.to_panel()
    mean3 = evaluate("Mean(close,3d)", panel).numpy()[:, 0]
    closes = out["close"].to_numpy()
    np.testing.assert_allclose(mean3[2:], pd.Series(closes).rolling(3).mean()[2:], rtol=1e-6)


def test_suspended_first_row_without_a_close_is_rejected():
    raw = _suspension_raw()
    raw.loc[0, ["open", "high", "low", "close", "volume"]] = np.nan
    raw.loc[0, "is_suspended"] = True
    res = clean(raw)
    assert res.report["rejected_by_reason"] == {"missing_value": 2}
    assert "no earlier close" in res.rejected_rows["reason_detail"].iloc[0]
    assert len(res.panel_long) + len(res.rejected_rows) == len(raw)


def test_status_columns_with_the_opposite_convention(tmp_path):
    raw = _market_frame(["SH600000", "SZ000002"], pd.bdate_range("2021-01-04", periods=10))
    raw["tradestatus"] = np.where(np.arange(len(raw)) % 4 == 0, 0, 1)
    raw["st_flag"] = np.where(raw["instrument"] == "SZ000002", "Y", "N")
    p = tmp_path / "bs.csv"
    raw.to_csv(p, index=False)
    loaded = load_source(SourceConfig(kind="csv", path=str(p),
                                      columns={"is_trading": "tradestatus", "is_st": "st_flag"}))
    res = clean(loaded, {"market": "cn"})
    got = res.panel_long.set_index(["datetime", "instrument"])
    exp = raw.set_index(["datetime", "instrument"])["tradestatus"] == 1
    assert (got["is_tradable"] == exp.loc[got.index]).all()
    ref = _ref_limits(raw.assign(is_st=raw["st_flag"] == "Y"),
                      lambda r: 0.05 if r["is_st"] else 0.1)
    np.testing.assert_allclose(got["limit_up"], ref.loc[got.index, "up"], rtol=2e-7)


def test_real_panels_keep_every_row_with_cn_rules():
    from data_testutils import shared_data_dir

    data = shared_data_dir()
    if data is None or not (data / "cn_all_tushare_2017_2019.parquet").exists():
        pytest.skip("shared real data not available")
    raw = load_source(SourceConfig(kind="parquet", path=str(data / "cn_all_tushare_2017_2019"
                                                                   ".parquet"),
                                   columns={"datetime": "date"}, keep_columns=["pct_chg"]))
    res = clean(RawData(raw.frame, raw.source), {"market": "cn"})
    assert res.report["rows"]["rejected"] == 0
    assert res.report["jumps"]["count"] == 0
    pl = res.panel_long
    # the source's own pct_chg (vs its ex-rights previous close) at ≥ 9.95 % on a main-board
    # name is a limit-up close; where that previous close agrees with the panel's (the
    # panel's adj_factor misses some small dividends), it sits on the computed limit price
    pl = pl.sort_values(["instrument", "datetime"])
    prev = pl.groupby("instrument", observed=True)["close"].shift(1) / pl["adj_factor"]
    pre_src = pl["close"] / pl["adj_factor"] / (1 + pl["pct_chg"] / 100)
    main = ~pl["instrument"].astype(str).str.match(r"SH68|SZ30")
    at = main & (pl["pct_chg"] >= 9.95) & ((pre_src / prev - 1).abs() < 5e-4)
    hit = pl["close"] >= pl["limit_up"] * (1 - 1e-6)
    assert at.sum() > 10_000 and hit[at].mean() > 0.99  # 99.3 % measured
