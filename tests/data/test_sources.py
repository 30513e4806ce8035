"""Sources: parquet/csv (single file, per-instrument folder, column mapping), qlib store round
trip, baostock/yfinance from recorded responses (no network), the real shared panels."""

from __future__ import annotations

import sys
import types

import numpy as np
import pandas as pd
import pytest
from data_testutils import make_raw, shared_data_dir

from alphaminer.data import (
    CleanConfig,
    SourceConfig,
    clean,
    load_source,
    read_qlib_store,
    write_qlib_store,
)
from alphaminer.panel import Panel

KEY = ["datetime", "instrument"]


def _canon(df: pd.DataFrame, cols) -> pd.DataFrame:
    out = df[list(cols)].copy()
    out["instrument"] = out["instrument"].astype(str)
    out["datetime"] = out["datetime"].astype("datetime64[ns]")
    return out.sort_values(KEY).reset_index(drop=True)


NUM = ["open", "high", "low", "close", "volume", "vwap", "amount", "adj_factor"]


def test_parquet_single_file_with_mapping(tmp_path):
    df = make_raw()
    theirs = df.rename(columns={"datetime": "date", "instrument": "code", "close": "Close"})
    theirs["unused"] = "x"
    p = tmp_path / "long.parquet"
    theirs.to_parquet(p)
    cfg = SourceConfig(kind="parquet", path=str(p),
                       columns={"datetime": "date", "instrument": "code", "close": "Close"})
    raw = load_source(cfg)
    assert "unused" not in raw.frame.columns  # projection: only mapped/known columns read
    assert isinstance(raw.frame["instrument"].dtype, pd.CategoricalDtype)
    pd.testing.assert_frame_equal(_canon(raw.frame, KEY + NUM), _canon(df, KEY + NUM))


def test_csv_single_file_with_date_format(tmp_path):
    df = make_raw()
    out = df.assign(datetime=df["datetime"].dt.strftime("%d/%m/%Y"))
    p = tmp_path / "long.csv"
    out.to_csv(p, index=False, sep=";")
    raw = load_source(SourceConfig(kind="csv", path=str(p), date_format="%d/%m/%Y",
                                   csv_options={"sep": ";"}))
    got = _canon(raw.frame, KEY + NUM)
    exp = _canon(df, KEY + NUM)
    pd.testing.assert_frame_equal(got, exp, check_exact=False, rtol=1e-12)


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_per_instrument_folder_from_stem(tmp_path, kind):
    df = make_raw()
    for inst, grp in df.groupby("instrument"):
        g = grp.drop(columns=["instrument"])
        if kind == "parquet":
            g.to_parquet(tmp_path / f"{inst}.parquet")
        else:
            g.to_csv(tmp_path / f"{inst}.csv", index=False)
    raw = load_source(SourceConfig(kind=kind, path=str(tmp_path)))
    assert f"{tmp_path}" in raw.source and "5 files" in raw.source
    pd.testing.assert_frame_equal(_canon(raw.frame, KEY + NUM), _canon(df, KEY + NUM),
                                  check_exact=False, rtol=1e-12)


def test_per_instrument_folder_with_column(tmp_path):
    df = make_raw()
    for i, (_, g) in enumerate(df.groupby("instrument")):
        g.rename(columns={"instrument": "ticker"}).to_parquet(tmp_path / f"part{i}.parquet")
    raw = load_source(SourceConfig(kind="parquet", path=str(tmp_path),
                                   columns={"instrument": "ticker"}, instrument_from="column"))
    assert sorted(raw.frame["instrument"].astype(str).unique()) == sorted(df.instrument.unique())
    assert len(raw.frame) == len(df)


def test_start_end_and_instrument_filter(tmp_path):
    df = make_raw()
    p = tmp_path / "x.parquet"
    df.to_parquet(p)
    raw = load_source(SourceConfig(kind="parquet", path=str(p), start="2020-01-10",
                                   end="2020-01-20", instruments=["S001", "S003"]))
    exp = df[(df.datetime >= "2020-01-10") & (df.datetime <= "2020-01-20")
             & df.instrument.isin(["S001", "S003"])]
    assert len(raw.frame) == len(exp) > 0


def test_keep_columns(tmp_path):
    df = make_raw().assign(pct_chg=0.5)
    p = tmp_path / "x.parquet"
    df.to_parquet(p)
    raw = load_source(SourceConfig(kind="parquet", path=str(p), keep_columns=["pct_chg"]))
    assert "pct_chg" in clean(raw).panel_long.columns


# ------------------------------------------------------------------------- qlib
def test_qlib_round_trip(tmp_path):
    raw = make_raw(n_days=30, n_inst=4, seed=5)
    raw = raw.drop(index=[10, 11, 25])  # holes (suspended days without a row)
    raw["in_universe"] = True
    raw.loc[(raw.instrument == "S002") & (raw.datetime > "2020-01-20"), "in_universe"] = False
    res = clean(raw)
    original = res.panel_long
    root = write_qlib_store(original, tmp_path / "qlib")
    assert (root / "calendars" / "day.txt").exists()
    assert (root / "features" / "s000" / "close.day.bin").exists()
    # independent check of the binary layout: first float = calendar index of first day
    cal = pd.to_datetime((root / "calendars" / "day.txt").read_text().split())
    b = np.fromfile(root / "features" / "s003" / "close.day.bin", dtype="<f4")
    first = original[original.instrument == "S003"].datetime.min()
    assert b[0] == cal.get_loc(first)
    back = read_qlib_store(root)
    assert back.adjusted
    cols = KEY + NUM + ["in_universe"]
    got = _canon(back.frame, cols)
    exp = _canon(original, cols)
    for c in NUM:
        got[c] = got[c].astype(np.float32)
        exp[c] = exp[c].astype(np.float32)
    pd.testing.assert_frame_equal(got, exp)
    # cleaning the store output reproduces the same panel (no double adjustment)
    again = clean(back)
    pd.testing.assert_frame_equal(_canon(again.panel_long, cols), _canon(original, cols))


def test_qlib_universe_spans_are_point_in_time(tmp_path):
    res = clean(make_raw(n_days=20, n_inst=2, seed=1))
    root = write_qlib_store(res.panel_long, tmp_path / "q")
    (root / "instruments" / "csi2.txt").write_text(
        "S000\t2020-01-06\t2020-01-10\nS000\t2020-01-20\t2020-01-24\nS001\t2020-01-01\t2020-12-31\n")
    raw = load_source(SourceConfig(kind="qlib", path=str(root), universe="csi2"))
    f = raw.frame
    s0 = f[f.instrument == "S000"]
    d = s0.datetime
    exp = ((d >= "2020-01-06") & (d <= "2020-01-10")) | ((d >= "2020-01-20") & (d <= "2020-01-24"))
    assert len(s0) == 20  # full history is read, membership is only a mask
    np.testing.assert_array_equal(s0["in_universe"].to_numpy(), exp.to_numpy())
    assert f[f.instrument == "S001"]["in_universe"].all()


# ------------------------------------------------------------------------- online (recorded)
class _RS:
    """A recorded baostock ResultSet."""

    def __init__(self, df: pd.DataFrame):
        self.error_code, self.error_msg, self._df = "0", "success", df

    def get_data(self) -> pd.DataFrame:
        return self._df.copy()


BAOSTOCK_RAW = pd.DataFrame({
    "date": ["2020-01-02", "2020-01-03", "2020-01-06", "2020-01-07"],
    "code": ["sh.600000"] * 4,
    "open": ["12.47", "12.57", "12.52", "12.51"],
    "high": ["12.64", "12.63", "12.52", "12.51"],
    "low": ["12.45", "12.44", "12.52", "12.25"],
    "close": ["12.47", "12.60", "12.52", "12.30"],
    "volume": ["89570439", "58532140", "0", "49770580"],
    "amount": ["1125032015.0", "738138440.0", "", "613456080.0"],
    "tradestatus": ["1", "1", "0", "1"],
})
BAOSTOCK_HFQ = pd.DataFrame({"date": BAOSTOCK_RAW["date"],
                             "close": ["24.94", "25.20", "25.04", "25.83"]})


def test_baostock_recorded(monkeypatch):
    calls = []

    def query(code, fields, start_date, end_date, frequency, adjustflag):
        calls.append((code, adjustflag))
        return _RS(BAOSTOCK_RAW if adjustflag == "3" else BAOSTOCK_HFQ)

    ok = types.SimpleNamespace(error_code="0", error_msg="")
    fake = types.SimpleNamespace(login=lambda: ok, logout=lambda: ok,
                                 query_history_k_data_plus=query)
    monkeypatch.setitem(sys.modules, "baostock", fake)
    raw = load_source(SourceConfig(kind="baostock", instruments=["SH600000"],
                                   start="2020-01-01", end="2020-01-31"))
    assert calls == [("sh.600000", "3"), ("sh.600000", "1")]
    f = raw.frame
    assert list(f["instrument"].astype(str).unique()) == ["SH600000"]
    exp_af = np.array([24.94 / 12.47, 25.20 / 12.60, 25.04 / 12.52, 25.83 / 12.30])
    np.testing.assert_allclose(f["adj_factor"], exp_af)
    assert f["is_suspended"].tolist() == [False, False, True, False]
    res = clean(raw)
    assert len(res.panel_long) == 4
    assert res.panel_long["is_tradable"].tolist() == [True, True, False, True]
    np.testing.assert_allclose(res.panel_long["close"], [24.94, 25.20, 25.04, 25.83], rtol=1e-6)
    np.testing.assert_allclose(res.panel_long["vwap"].iloc[0],
                               1125032015.0 / 89570439 * exp_af[0], rtol=1e-6)


def test_yfinance_recorded(monkeypatch):
    idx = pd.DatetimeIndex(["2020-01-02", "2020-01-03", "2020-01-06"], name="Date")
    cols = pd.MultiIndex.from_product(
        [["Adj Close", "Close", "High", "Low", "Open", "Volume"], ["AAPL", "MSFT"]],
        names=["Price", "Ticker"])
    vals = {
        ("Close", "AAPL"): [75.09, 74.36, 74.95], ("Close", "MSFT"): [160.62, 158.62, np.nan],
        ("Adj Close", "AAPL"): [73.06, 72.35, 72.93],
        ("Adj Close", "MSFT"): [154.78, 152.85, np.nan],
        ("High", "AAPL"): [75.15, 75.14, 74.99], ("High", "MSFT"): [160.73, 159.95, np.nan],
        ("Low", "AAPL"): [73.80, 74.13, 73.19], ("Low", "MSFT"): [158.33, 158.06, np.nan],
        ("Open", "AAPL"): [74.06, 74.29, 73.45], ("Open", "MSFT"): [158.78, 158.32, np.nan],
        ("Volume", "AAPL"): [135480400, 146322800, 118387200],
        ("Volume", "MSFT"): [22622100, 21116200, np.nan],
    }
    recorded = pd.DataFrame({c: vals[c] for c in cols}, index=idx)
    recorded.columns = cols
    seen = {}

    def download(tickers, **kw):
        seen.update(kw, tickers=tickers)
        return recorded

    monkeypatch.setitem(sys.modules, "yfinance", types.SimpleNamespace(download=download))
    raw = load_source(SourceConfig(kind="yfinance", instruments=["AAPL", "MSFT"],
                                   start="2020-01-01", end="2020-01-06"))
    assert seen["end"] == "2020-01-07" and seen["auto_adjust"] is False
    f = raw.frame.sort_values(KEY)
    assert len(f) == 5  # MSFT has no bar on 2020-01-06
    aapl = f[f.instrument == "AAPL"]
    np.testing.assert_allclose(aapl["adj_factor"], np.array([73.06, 72.35, 72.93])
                               / np.array([75.09, 74.36, 74.95]))
    res = clean(raw)
    assert res.meta["vwap_fallback"] is True
    got = res.panel_long.set_index(KEY).loc[(pd.Timestamp("2020-01-03"), "MSFT")]
    assert got["close"] == pytest.approx(152.85, rel=1e-6)


# ------------------------------------------------------------------------- simulator
def test_simulator_source():
    raw = load_source(SourceConfig(kind="simulator", simulator={"n_stocks": 30, "n_days": 260,
                                                                "progress": False}))
    res = clean(raw)
    assert len(res.panel_long) + len(res.rejected_rows) == len(raw.frame)
    assert len(res.rejected_rows) == 0  # the simulator writes consistent data
    assert not res.meta["vwap_fallback"]
    assert isinstance(raw.extras["planted_alphas"], pd.DataFrame)
    f = raw.frame
    exp_tradable = int((~f["is_suspended"].astype(bool) & (f["volume"] > 0)).sum())
    assert int(res.panel_long["is_tradable"].sum()) == exp_tradable
    panel = Panel.from_long(res.panel_long, meta=res.meta)
    assert f["datetime"].nunique() == panel.T


# ------------------------------------------------------------------------- real data
SHARED = shared_data_dir()
REAL = [
    ("cn_all_tushare_2017_2019.parquet", {"datetime": "date", "in_universe": "in_csi300_2015"},
     0.099, 2_072_023, 3724, 612),
    ("us_sp500_yahoo_2015_2020.parquet", {"datetime": "date"}, None, 591_311, 478, 1259),
]


@pytest.mark.realdata
@pytest.mark.skipif(SHARED is None, reason="shared data folder absent")
@pytest.mark.parametrize("name,columns,limit,rows,n_inst,n_dates", REAL,
                         ids=["cn", "us"])
def test_real_shared_panels(name, columns, limit, rows, n_inst, n_dates):
    raw = load_source(SourceConfig(kind="parquet", path=str(SHARED / name), columns=columns))
    assert len(raw.frame) == rows
    res = clean(raw, CleanConfig(limit_pct=limit))
    assert res.report["rows"]["in"] == rows
    assert len(res.panel_long) + len(res.rejected_rows) == rows
    assert res.meta["vwap_fallback"] is True and res.report["vwap_fallback_fraction"] == 1.0
    panel = Panel.from_long(res.panel_long, meta=res.meta)
    assert panel.meta["vwap_fallback"] is True
    assert n_inst == panel.S
    assert n_dates == panel.T
    close = panel.feature("close")
    assert bool((close[panel.observed] > 0).all())
