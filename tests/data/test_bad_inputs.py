"""Bad input never passes silently: each case raises a clear error or quarantines rows with a
reason, and the row accounting (in = kept + rejected) always balances."""

from __future__ import annotations

import sys
import types

import numpy as np
import pandas as pd
import pytest
from data_testutils import make_raw

from alphaminer.data import (
    CleanConfig,
    DataValidationError,
    RawData,
    SourceConfig,
    SplitConfig,
    clean,
    load_source,
    make_splits,
    write_qlib_store,
)


def _set(i: int, col: str, val):
    def f(df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        if isinstance(val, str) and pd.api.types.is_numeric_dtype(df[col]):
            df[col] = df[col].astype(object)
        df.loc[i, col] = val
        return df
    return f


def _dup(i: int, **change):
    def f(df: pd.DataFrame) -> pd.DataFrame:
        return pd.concat([df, df.iloc[[i]].assign(**change)], ignore_index=True)
    return f


# (id, mutation, clean config, expected {reason: count}, expected detail of the first rejected)
ROW_CASES = [
    ("negative_price", _set(3, "close", -1.0), {}, {"non_positive_price": 1}, "close"),
    ("zero_price", _set(4, "open", 0.0), {}, {"non_positive_price": 1}, "open"),
    ("nan_close", _set(5, "close", np.nan), {}, {"missing_value": 1}, "close"),
    ("nan_volume", _set(6, "volume", np.nan), {}, {"missing_value": 1}, "volume"),
    ("inf_high", _set(7, "high", np.inf), {}, {"non_finite": 1}, "high"),
    ("neg_inf_vwap", _set(8, "vwap", -np.inf), {}, {"non_finite": 1}, "vwap"),
    ("text_in_close", _set(9, "close", "abc"), {}, {"non_numeric": 1}, "close"),
    ("text_in_volume", _set(10, "volume", "1,2e"), {}, {"non_numeric": 1}, "volume"),
    ("negative_volume", _set(11, "volume", -5.0), {}, {"negative_volume": 1}, "volume"),
    ("negative_amount", _set(12, "amount", -5.0), {}, {"negative_amount": 1}, "amount"),
    ("zero_adj_factor", _set(13, "adj_factor", 0.0), {}, {"bad_adj_factor": 1}, "adj_factor"),
    ("nan_adj_factor", _set(14, "adj_factor", np.nan), {}, {"bad_adj_factor": 1},
     "adj_factor"),
    ("high_below_low", lambda d: d.assign(high=np.where(d.index == 15, d.low * 0.9, d.high)),
     {}, {"ohlc_inconsistent": 1}, "high<low"),
    ("high_below_close",
     lambda d: d.assign(high=np.where(d.index == 16, d[["open", "close"]].max(axis=1) * 0.999,
                                      d.high)),
     {}, {"ohlc_inconsistent": 1}, "high<max(open,close)"),
    ("low_above_open",
     lambda d: d.assign(low=np.where(d.index == 17, d[["open", "close"]].min(axis=1) * 1.001,
                                     d.low)),
     {}, {"ohlc_inconsistent": 1}, "low>min(open,close)"),
    ("zero_volume_reject", _set(18, "volume", 0.0), {"zero_volume": "reject"},
     {"zero_volume": 1}, "volume"),
    ("exact_duplicate", _dup(19), {}, {"duplicate_row": 1}, "exact copy"),
    ("conflicting_duplicate", _dup(20, volume=1.0), {}, {"duplicate_conflict": 2},
     "different values"),
    ("empty_instrument", _set(21, "instrument", ""), {}, {"missing_instrument": 1},
     "instrument"),
]


@pytest.mark.parametrize("mutate,cfg,expected,detail", [c[1:] for c in ROW_CASES],
                         ids=[c[0] for c in ROW_CASES])
def test_bad_rows_are_quarantined(mutate, cfg, expected, detail):
    bad = mutate(make_raw())
    res = clean(RawData(bad, "bad.parquet"), CleanConfig(**cfg))
    assert len(res.panel_long) + len(res.rejected_rows) == len(bad)
    assert res.report["rows"]["in"] == len(bad)
    assert res.report["rejected_by_reason"] == expected
    rej = res.rejected_rows
    assert set(rej["reason"]) == set(expected)
    assert detail in rej["reason_detail"].iloc[0]
    # original columns are preserved in the quarantine
    assert set(bad.columns) <= set(rej.columns)
    # nothing bad reached the panel
    out = res.panel_long
    num = out[["open", "high", "low", "close", "volume", "vwap", "amount"]].to_numpy()
    assert np.isfinite(num).all() and (out[["open", "high", "low", "close"]] > 0).all().all()


def test_bad_rows_in_csv_are_quarantined_from_file(tmp_path):
    df = make_raw()
    df["close"] = df["close"].astype(object)
    df.loc[2, "close"] = "n/a?"
    df.loc[3, "volume"] = -1
    path = tmp_path / "p.csv"
    df.to_csv(path, index=False)
    raw = load_source(SourceConfig(kind="csv", path=str(path)))
    res = clean(raw)
    assert res.report["rejected_by_reason"] == {"non_numeric": 1, "negative_volume": 1}
    assert len(res.panel_long) + len(res.rejected_rows) == len(df)
    assert "p.csv" in res.report["source"]


# ------------------------------------------------------------------------- fatal errors
def _write(tmp_path, df, name="data.parquet"):
    p = tmp_path / name
    if name.endswith(".parquet"):
        df.to_parquet(p)
    else:
        df.to_csv(p, index=False)
    return p


def test_missing_column_names_file_and_column(tmp_path):
    p = _write(tmp_path, make_raw().drop(columns=["close"]))
    with pytest.raises(DataValidationError, match=r"data\.parquet.*'close'.*found columns"):
        load_source(SourceConfig(kind="parquet", path=str(p)))


def test_renamed_column_suggests_mapping(tmp_path):
    p = _write(tmp_path, make_raw().rename(columns={"close": "Close", "datetime": "date"}),
               "x.csv")
    with pytest.raises(DataValidationError, match=r"x\.csv.*'datetime'.*did you mean"):
        load_source(SourceConfig(kind="csv", path=str(p)))
    with pytest.raises(DataValidationError, match=r"'close'.*did you mean \['Close'\]\?"):
        load_source(SourceConfig(kind="csv", path=str(p), columns={"datetime": "date"}))


def test_mapping_to_absent_column(tmp_path):
    p = _write(tmp_path, make_raw())
    with pytest.raises(DataValidationError, match=r"'in_csi300'.*mapped to 'in_universe'"):
        load_source(SourceConfig(kind="parquet", path=str(p),
                                 columns={"in_universe": "in_csi300"}))


def test_mapping_with_unknown_target_name():
    with pytest.raises(ValueError, match=r"unknown target name.*'closing'"):
        SourceConfig(kind="csv", path="x.csv", columns={"closing": "Close"})


def test_wrong_dtype_column_raises(tmp_path):
    df = make_raw()
    df["close"] = "price"
    p = _write(tmp_path, df, "w.parquet")
    raw = load_source(SourceConfig(kind="parquet", path=str(p)))
    with pytest.raises(DataValidationError, match=r"w\.parquet.*'close' should be numeric"):
        clean(raw)


def test_boolean_price_column_raises():
    df = make_raw().assign(open=True)
    with pytest.raises(DataValidationError, match="'open' is boolean"):
        clean(df)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.csv"
    p.write_text("")
    with pytest.raises(DataValidationError, match=r"empty\.csv.*empty file"):
        load_source(SourceConfig(kind="csv", path=str(p)))


def test_header_only_file(tmp_path):
    p = _write(tmp_path, make_raw().iloc[:0], "h.csv")
    with pytest.raises(DataValidationError, match=r"h\.csv.*no rows"):
        load_source(SourceConfig(kind="csv", path=str(p)))


def test_unparseable_dates_name_file_column_and_rows(tmp_path):
    df = make_raw()
    df["datetime"] = df["datetime"].dt.strftime("%Y-%m-%d").astype(object)
    df.loc[5, "datetime"] = "2020-02-30"
    p = _write(tmp_path, df, "d.csv")
    with pytest.raises(DataValidationError, match=r"(?s)d\.csv.*'datetime'.*1 unparseable.*"
                                                  r"2020-02-30"):
        load_source(SourceConfig(kind="csv", path=str(p)))


def test_wrong_date_format(tmp_path):
    p = _write(tmp_path, make_raw(), "f.csv")
    with pytest.raises(DataValidationError, match="format '%d/%m/%Y'"):
        load_source(SourceConfig(kind="csv", path=str(p), date_format="%d/%m/%Y"))


def test_unknown_source_kind():
    with pytest.raises(ValueError, match=r"unknown source kind 'excel'.*simulator, parquet, csv,"
                                         r" qlib, baostock, yfinance"):
        load_source({"kind": "excel", "path": "x"})


def test_unknown_config_key():
    with pytest.raises(ValueError, match=r"unknown SourceConfig key.*'colums'"):
        SourceConfig.from_dict({"kind": "csv", "path": "x", "colums": {}})


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(DataValidationError, match="does not exist"):
        load_source(SourceConfig(kind="parquet", path=str(tmp_path / "nope.parquet")))
    with pytest.raises(DataValidationError, match=r"no files matching '\*\.csv'"):
        load_source(SourceConfig(kind="csv", path=str(tmp_path)))


def test_all_rows_rejected_raises():
    df = make_raw().assign(close=-1.0)
    with pytest.raises(DataValidationError, match=r"no usable rows.*non_positive_price"):
        clean(RawData(df, "neg.parquet"))


def test_raw_frame_missing_required_column():
    with pytest.raises(DataValidationError, match=r"src.*lacks required column.*'volume'"):
        RawData(make_raw().drop(columns=["volume"]), "src")


def test_bad_clean_config():
    with pytest.raises(ValueError, match="ohlc_policy"):
        CleanConfig(ohlc_policy="ignore")
    with pytest.raises(ValueError, match="limit_pct"):
        CleanConfig(limit_pct=9.9)


def test_filter_leaves_no_rows(tmp_path):
    p = _write(tmp_path, make_raw())
    with pytest.raises(DataValidationError, match="no rows left after the start/end"):
        load_source(SourceConfig(kind="parquet", path=str(p), start="2030-01-01"))


# ------------------------------------------------------------------------- splits
DATES = pd.bdate_range("2020-01-01", periods=200)


@pytest.mark.parametrize("segments,message", [
    ({"train": ["2020-01-01", "2020-04-01"], "valid": ["2020-03-15", "2020-06-01"]}, "overlap"),
    ({"train": ["2020-04-01", "2020-01-01"]}, "reversed"),
    ({"train": ["2020-01-01", "2020-03-01"], "valid": ["2021-01-01", "2021-06-01"]},
     "no trading day.*after the data"),
    ({"train": ["2019-01-01", "2019-06-01"]}, "no trading day.*before the data"),
    ({"train": ["2020-01-04", "2020-01-05"]}, "no trading day.*between trading days"),
    ({"train": ["2020-01-01", "2020-01-20"], "valid": ["2020-01-21", "2020-06-01"]},
     "'train' is empty after purging 20 days"),
    ({"train": ["2020-13-01", "2020-04-01"]}, "bad date"),
    ({"train": ["2020-01-01"]}, r"must be \[start, end\]"),
], ids=["overlapping", "reversed", "outside_after", "outside_before", "weekend_only",
        "empty_after_purge", "bad_date", "malformed"])
def test_bad_splits(segments, message):
    with pytest.raises(ValueError, match=message):
        make_splits(DATES, SplitConfig(segments=segments, horizon=20))


def test_bad_fractions():
    with pytest.raises(ValueError, match="fractions"):
        SplitConfig(fractions=(0.7, 0.5))
    with pytest.raises(ValueError, match="empty"):
        make_splits(DATES[:3], SplitConfig(fractions=(0.2, 0.2, 0.2), horizon=0))


# ------------------------------------------------------------------------- qlib store
@pytest.fixture
def qlib_store(tmp_path):
    res = clean(make_raw(n_days=20, n_inst=3))
    return write_qlib_store(res.panel_long, tmp_path / "store")


def test_qlib_missing_calendar(qlib_store):
    (qlib_store / "calendars" / "day.txt").unlink()
    with pytest.raises(DataValidationError, match=r"calendar file .*day\.txt is missing"):
        load_source(SourceConfig(kind="qlib", path=str(qlib_store)))


def test_qlib_bad_bin_size(qlib_store):
    f = qlib_store / "features" / "s001" / "close.day.bin"
    f.write_bytes(f.read_bytes()[:-2])
    with pytest.raises(DataValidationError, match=r"close\.day\.bin: corrupt qlib bin file"):
        load_source(SourceConfig(kind="qlib", path=str(qlib_store)))


def test_qlib_bin_start_index_out_of_range(qlib_store):
    f = qlib_store / "features" / "s002" / "open.day.bin"
    a = np.fromfile(f, dtype="<f4")
    a[0] = 999
    a.tofile(f)
    with pytest.raises(DataValidationError, match="not a valid calendar index"):
        load_source(SourceConfig(kind="qlib", path=str(qlib_store)))


def test_qlib_bin_runs_past_calendar(qlib_store):
    f = qlib_store / "features" / "s000" / "high.day.bin"
    a = np.fromfile(f, dtype="<f4")
    a[0] = 5
    a.tofile(f)
    with pytest.raises(DataValidationError, match="run past the calendar"):
        load_source(SourceConfig(kind="qlib", path=str(qlib_store)))


def test_qlib_missing_universe_and_field(qlib_store):
    with pytest.raises(DataValidationError, match=r"csi300\.txt is missing.*\['all'\]"):
        load_source(SourceConfig(kind="qlib", path=str(qlib_store), universe="csi300"))
    (qlib_store / "features" / "s000" / "volume.day.bin").unlink()
    with pytest.raises(DataValidationError, match=r"volume\.day\.bin is missing"):
        load_source(SourceConfig(kind="qlib", path=str(qlib_store)))


# ------------------------------------------------------------------------- optional packages
@pytest.mark.parametrize("kind", ["baostock", "yfinance"])
def test_missing_optional_package(kind, monkeypatch):
    monkeypatch.setitem(sys.modules, kind, None)  # import raises ImportError
    with pytest.raises(ImportError, match=rf"pip install alphaminer\[{kind}\]"):
        load_source(SourceConfig(kind=kind, instruments=["AAPL"]))


def test_baostock_error_response(monkeypatch):
    fake = types.SimpleNamespace(
        login=lambda: types.SimpleNamespace(error_code="10001", error_msg="bad user"),
        logout=lambda: None)
    monkeypatch.setitem(sys.modules, "baostock", fake)
    with pytest.raises(DataValidationError, match="baostock login failed: bad user"):
        load_source(SourceConfig(kind="baostock", instruments=["SH600000"]))
