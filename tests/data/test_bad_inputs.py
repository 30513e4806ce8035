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


def _add_row(i: int, **change):
    """Append a copy of row ``i`` with ``change`` applied (e.g. a new date)."""
    def f(df: pd.DataFrame) -> pd.DataFrame:
        row = df.iloc[[i]].copy()
        for k, val in change.items():
            row[k] = pd.Timestamp(val) if k == "datetime" else val
        return pd.concat([df, row], ignore_index=True)
    return f


def _flag_col(col: str, i: int, val):
    def f(df: pd.DataFrame) -> pd.DataFrame:
        df = df.assign(**{col: np.array(["yes"] * len(df), dtype=object)})
        df.loc[i, col] = val
        return df
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
    ("blank_instrument", _set(22, "instrument", "   "), {}, {"missing_instrument": 1},
     "instrument"),
    ("nan_instrument", _set(23, "instrument", np.nan), {}, {"missing_instrument": 1},
     "instrument"),
    # 1e300 is finite in float64 but inf in the float32 panel
    ("close_beyond_float32", lambda d: _set(24, "high", 2e300)(_set(24, "close", 1e300)(d)),
     {}, {"out_of_range": 1}, "high"),
    ("volume_beyond_float32", _set(25, "volume", 1e300), {}, {"out_of_range": 1}, "volume"),
    ("amount_beyond_float32", _set(26, "amount", -1e39), {}, {"out_of_range": 1}, "amount"),
    ("in_universe_maybe", _flag_col("in_universe", 27, "maybe"), {}, {"bad_flag": 1},
     "in_universe"),
    ("is_suspended_two", lambda d: d.assign(is_suspended=np.where(d.index == 28, 2, 0)), {},
     {"bad_flag": 1}, "is_suspended"),
    # data ends 2020-02; a row dated 2031 is after today …
    ("future_row", _add_row(29, datetime="2031-03-03"), {}, {"future_date": 1}, "today"),
    # … and, with today moved past it, still isolated from the bulk by years
    ("isolated_row", _add_row(29, datetime="2031-03-03"), {"max_date": "2040-01-01"},
     {"isolated_date": 1}, "days after the rest"),
    ("isolated_old_row", _add_row(29, datetime="1990-03-01"), {}, {"isolated_date": 1},
     "days before the rest"),
    # 2020-01-11 is a Saturday: one stock there, five on the neighbouring days
    ("saturday_row", _add_row(30, datetime="2020-01-11"), {}, {"thin_date": 1},
     "1 instruments on this date vs a median of 5"),
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


# ------------------------------------------------------------------------- silent before
def _csv_text(df: pd.DataFrame) -> str:
    return df.to_csv(index=False)


def test_time_of_day_is_dropped_not_a_second_calendar(caplog):
    """16:00 on one stock, 00:00 on the rest: same dates, same panel, valid labels."""
    from alphaminer.data import make_labels

    base = make_raw()
    timed = base.copy()
    one = timed["instrument"] == "S002"
    timed.loc[one, "datetime"] += pd.Timedelta(hours=16)
    with caplog.at_level("WARNING"):
        res = clean(RawData(timed, "timed.parquet"))
    assert "time of day" in caplog.text
    assert res.report["fixes"]["rows_with_time_of_day"] == int(one.sum())
    ref = clean(RawData(base, "base.parquet"))
    pd.testing.assert_frame_equal(res.panel_long, ref.panel_long)
    assert res.report["coverage"]["dates"] == base["datetime"].nunique()
    labels = make_labels(res.to_panel(), horizon=5).numpy()
    assert np.isfinite(labels[:-5]).all()


def test_time_of_day_in_csv_and_tz_aware_timestamps(tmp_path):
    base = make_raw()
    # Shanghai midnight stamps written in UTC are the previous evening in UTC
    utc = base.assign(datetime=base["datetime"].dt.tz_localize("Asia/Shanghai")
                      .dt.tz_convert("UTC"))
    p = tmp_path / "utc.csv"
    p.write_text(_csv_text(utc))
    raw = load_source(SourceConfig(kind="csv", path=str(p), exchange_tz="Asia/Shanghai"))
    assert (raw.frame["datetime"].to_numpy() == base["datetime"].to_numpy()).all()
    # without exchange_tz the UTC wall clock is kept: one day earlier (documented)
    raw_utc = load_source(SourceConfig(kind="csv", path=str(p)))
    exp = (base["datetime"] - pd.Timedelta(days=1)).to_numpy()
    assert (raw_utc.frame["datetime"].to_numpy() == exp).all()
    assert raw_utc.extras["rows_with_time_of_day"] == len(base)
    # offsets that are the exchange's own keep their wall-clock date
    own = base.assign(datetime=base["datetime"].dt.tz_localize("Asia/Shanghai"))
    res = clean(own)
    assert (res.panel_long["datetime"].to_numpy() == np.sort(base["datetime"].to_numpy())).all()
    with pytest.raises(ValueError, match="not an IANA time zone"):
        SourceConfig(kind="csv", path="x.csv", exchange_tz="Mars/Olympus")


def test_instrument_spaces_are_stripped_and_counted():
    raw = make_raw()
    sp = raw["instrument"].astype(object)
    sp[raw.index % 3 == 0] = " " + sp[raw.index % 3 == 0]
    sp[raw.index % 7 == 0] = sp[raw.index % 7 == 0] + "  "
    n_changed = int((sp != raw["instrument"]).sum())
    for inst in (sp, sp.astype("category")):
        res = clean(raw.assign(instrument=inst))
        assert res.report["fixes"]["instrument_whitespace_stripped"] == n_changed
        assert sorted(res.panel_long["instrument"].unique()) == sorted(raw["instrument"].unique())
        assert len(res.panel_long) == len(raw)


def test_empty_instrument_in_csv_is_missing_not_nan_string(tmp_path):
    df = make_raw().astype({"instrument": object})
    df.loc[4, "instrument"] = np.nan
    p = tmp_path / "e.csv"
    df.to_csv(p, index=False)
    res = clean(load_source(SourceConfig(kind="csv", path=str(p))))
    assert res.report["rejected_by_reason"] == {"missing_instrument": 1}
    assert "nan" not in set(res.panel_long["instrument"].astype(str))


def test_numeric_looking_codes_keep_leading_zeros(tmp_path):
    df = make_raw().assign(instrument=lambda d: d["instrument"].str.replace("S", "00"))
    p = tmp_path / "codes.csv"
    df.to_csv(p, index=False)
    raw = load_source(SourceConfig(kind="csv", path=str(p)))
    assert set(raw.frame["instrument"].astype(str)) == set(df["instrument"])


@pytest.mark.parametrize("cut, message", [
    (lambda text: text[: text.rstrip("\n").rfind(",") - 3], "fields"),      # fields missing
    (lambda text: text.rstrip("\n")[:-4], "shorter than in every one"),    # number cut short
], ids=["short_fields", "short_number"])
def test_truncated_csv_names_the_file(tmp_path, cut, message):
    df = make_raw()[["datetime", "instrument", "open", "high", "low", "close", "volume"]]
    df = df.assign(volume=np.round(df["volume"] * 10).astype(np.int64) + 5_000_000)
    full = _csv_text(df)
    folder = tmp_path / "per_stock"
    folder.mkdir()
    (folder / "good.csv").write_text(full)
    (folder / "cut.csv").write_text(cut(full))
    with pytest.raises(DataValidationError, match=rf"cut\.csv.*{message}.*truncated"):
        load_source(SourceConfig(kind="csv", path=str(folder)))
    # the same content with a complete last line and no final newline is fine
    (folder / "cut.csv").write_text(full.rstrip("\n"))
    raw = load_source(SourceConfig(kind="csv", path=str(folder)))
    assert len(raw) == 2 * len(df)


def test_truncated_parquet_names_the_file(tmp_path):
    folder = tmp_path / "pq"
    folder.mkdir()
    make_raw().to_parquet(folder / "a.parquet")
    make_raw(seed=1).to_parquet(folder / "b.parquet")
    data = (folder / "b.parquet").read_bytes()
    (folder / "b.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataValidationError, match=r"b\.parquet: cannot read as parquet"):
        load_source(SourceConfig(kind="parquet", path=str(folder)))


def test_split_without_adj_factor_is_reported_not_rejected(caplog):
    raw = make_raw(split_day=None).drop(columns=["adj_factor"])
    hit = (raw["instrument"] == "S001") & (raw["datetime"] >= raw["datetime"].unique()[20])
    for c in ("open", "high", "low", "close", "vwap"):
        raw.loc[hit, c] /= 20.0  # a 20:1 split the source did not adjust
    with caplog.at_level("WARNING"):
        res = clean(raw)
    assert len(res.rejected_rows) == 0 and len(res.panel_long) == len(raw)
    wide = raw.pivot(index="datetime", columns="instrument", values="close")
    ref = np.log(wide / wide.shift(1)).abs() > np.log(3.0)
    assert res.report["jumps"]["count"] == int(ref.to_numpy().sum()) == 1
    assert res.report["jumps"]["examples"][0].startswith("S001 2020-01-30 -0.9")
    assert "implausible daily moves" in caplog.text and "S001" in caplog.text


def test_boolean_spellings_stay_valid_and_garbage_column_raises():
    raw = make_raw()
    spell = np.array(["true", "False", "YES", "no", "1", "0", "T", "n"], dtype=object)
    vals = spell[np.arange(len(raw)) % len(spell)]
    res = clean(raw.assign(in_universe=vals))
    assert len(res.rejected_rows) == 0
    ref = pd.Series(vals).str.lower().isin(["true", "yes", "1", "t"])
    got = res.panel_long.set_index(["datetime", "instrument"])["in_universe"]
    exp = pd.Series(ref.to_numpy(), index=pd.MultiIndex.from_frame(
        raw[["datetime", "instrument"]]))
    assert (got == exp.loc[got.index]).all()
    with pytest.raises(DataValidationError, match=r"(?s)'in_universe' should be boolean.*maybe"):
        clean(raw.assign(in_universe="maybe"))


def test_misspelled_feature_names_formula_and_suggests():
    from alphaminer.evaluation.alphaset import AlphaSet

    panel = clean(make_raw()).to_panel()
    with pytest.raises(KeyError, match=r"'clsoe'.*available: open, high.*did you mean 'close'"):
        panel.feature("clsoe")
    aset = AlphaSet("t", ["Mean(close,5d)", "Div(Mean(closee,5d),close)"], ["ok", "momentum"])
    with pytest.raises(KeyError, match=r"formula 'momentum'.*'closee'.*did you mean 'close'"):
        aset.values(panel)


def test_window_longer_than_history_warns(caplog):
    from alphaminer.evaluation.alphaset import AlphaSet

    panel = clean(make_raw(n_days=30)).to_panel()
    aset = AlphaSet("t", ["Mean(close,5d)", "Mean(close,60d)"], ["short", "long"])
    with caplog.at_level("WARNING"):
        vals = aset.values(panel)
    assert "'long'" in caplog.text and "60 days of history" in caplog.text \
        and "has 30" in caplog.text and "'short'" not in caplog.text
    assert torch_isnan_all(vals[1]) and not torch_isnan_all(vals[0])


def torch_isnan_all(x) -> bool:
    return bool(np.isnan(x.numpy()).all())


def test_latin1_csv_suggests_encoding(tmp_path):
    df = make_raw().assign(name="Société Générale")
    p = tmp_path / "latin.csv"
    df.to_csv(p, index=False, encoding="latin-1")
    with pytest.raises(DataValidationError,
                       match=r"latin\.csv.*not valid utf-8.*csv_options: \{encoding: latin-1\}"):
        load_source(SourceConfig(kind="csv", path=str(p), keep_columns=["name"]))
    raw = load_source(SourceConfig(kind="csv", path=str(p), keep_columns=["name"],
                                   csv_options={"encoding": "latin-1"}))
    assert (raw.frame["name"] == "Société Générale").all()


def test_duplicated_columns_name_file_and_column(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    df = make_raw()
    p = tmp_path / "dup.csv"
    text = _csv_text(df).splitlines()
    text = [text[0] + ",close"] + [line + ",1.0" for line in text[1:]]
    p.write_text("\n".join(text) + "\n")
    with pytest.raises(DataValidationError, match=r"dup\.csv: duplicated column.*\['close'\]"):
        load_source(SourceConfig(kind="csv", path=str(p)))
    t = pa.Table.from_pandas(df, preserve_index=False)
    t = pa.Table.from_arrays([*t.columns, t.column("close")], names=[*t.column_names, "close"])
    q = tmp_path / "dup.parquet"
    pq.write_table(t, q)
    with pytest.raises(DataValidationError, match=r"dup\.parquet: duplicated.*\['close'\]"):
        load_source(SourceConfig(kind="parquet", path=str(q)))


@pytest.mark.parametrize("params, bad", [
    ({"include_clasic": False}, "include_clasic"),
    ({"formuals": {"a": "close"}}, "formuals"),
])
def test_unknown_alpha_library_keys(params, bad):
    import yaml
    from data_testutils import REPO

    from alphaminer.pipelines.alpha_library.nodes import collect_formulas

    with pytest.raises(ValueError, match=rf"unknown .*'{bad}'.*valid: .*'include_classic'"):
        collect_formulas(params)
    # every key of the shipped parameters file is accepted
    shipped = yaml.safe_load((REPO / "conf/base/parameters/alpha_library.yml").read_text())
    assert len(collect_formulas(shipped["alpha_library"])) > 0
