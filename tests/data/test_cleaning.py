"""Cleaning: adjustment, fallbacks, tradability and accounting against plain pandas references."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from data_testutils import make_raw

from alphaminer.data import CleanConfig, RawData, clean
from alphaminer.panel import Panel


def _balance(res, n_in: int) -> None:
    assert len(res.panel_long) + len(res.rejected_rows) == n_in
    assert res.report["rows"] == {"in": n_in, "kept": len(res.panel_long),
                                  "rejected": len(res.rejected_rows)}
    assert sum(res.report["rejected_by_reason"].values()) == len(res.rejected_rows)


def test_adjustment_matches_hand_computation(raw_frame):
    res = clean(RawData(raw_frame, "t"))
    _balance(res, len(raw_frame))
    ref = raw_frame.sort_values(["datetime", "instrument"]).reset_index(drop=True)
    out = res.panel_long
    for c in ("open", "high", "low", "close", "vwap"):
        np.testing.assert_allclose(out[c], ref[c] * ref["adj_factor"], rtol=1e-6)
    np.testing.assert_allclose(out["volume"], ref["volume"] / ref["adj_factor"], rtol=1e-6)
    np.testing.assert_allclose(out["amount"], ref["amount"], rtol=1e-6)
    # the 2:1 split disappears from adjusted closes: no daily move beyond 15 %
    wide = out.pivot(index="datetime", columns="instrument", values="close")
    assert wide.pct_change().abs().max().max() < 0.15
    assert not res.meta["vwap_fallback"]
    assert out["is_tradable"].all() and out["in_universe"].all()


def test_vwap_fallback_and_amount(caplog):
    raw = make_raw(with_vwap=False)
    with caplog.at_level(logging.WARNING):
        res = clean(raw)
    assert "fallback" in caplog.text
    assert res.meta["vwap_fallback"] is True and res.report["vwap_fallback"] is True
    assert res.report["missingness_before"]["vwap"] == "absent"
    ref = raw.sort_values(["datetime", "instrument"]).reset_index(drop=True)
    exp_vwap = (ref.high + ref.low + ref.close) / 3 * ref.adj_factor
    np.testing.assert_allclose(res.panel_long["vwap"], exp_vwap, rtol=1e-6)
    np.testing.assert_allclose(res.panel_long["amount"],
                               (ref.high + ref.low + ref.close) / 3 * ref.volume, rtol=1e-6)
    panel = Panel.from_long(res.panel_long, meta=res.meta)
    assert panel.meta["vwap_fallback"] is True


def test_vwap_partial_nan_and_out_of_range():
    raw = make_raw()
    raw.loc[3, "vwap"] = np.nan
    raw.loc[7, "vwap"] = raw.loc[7, "high"] * 1.5  # outside [low, high]
    res = clean(raw)
    assert res.report["fixes"]["vwap_fallback_rows"] == 2
    assert res.report["fixes"]["vwap_out_of_range_replaced"] == 1
    out = res.panel_long.set_index(["datetime", "instrument"])
    for i in (3, 7):
        r = raw.loc[i]
        got = out.loc[(r.datetime, r.instrument), "vwap"]
        assert got == pytest.approx((r.high + r.low + r.close) / 3 * r.adj_factor, rel=1e-6)


def test_zero_volume_is_suspended_not_rejected():
    raw = make_raw()
    raw.loc[5, "volume"] = 0.0
    res = clean(raw)
    _balance(res, len(raw))
    row = res.panel_long.set_index(["datetime", "instrument"]).loc[
        (raw.loc[5, "datetime"], raw.loc[5, "instrument"])]
    assert not row["is_tradable"]
    assert res.panel_long["is_tradable"].sum() == len(raw) - 1


def test_suspended_flag_and_universe_columns():
    raw = make_raw()
    raw["is_suspended"] = False
    raw.loc[[2, 9], "is_suspended"] = True
    raw["in_universe"] = np.where(raw["instrument"] == "S000", 0.0, 1.0)
    res = clean(raw)
    assert res.panel_long["is_tradable"].sum() == len(raw) - 2
    exp = res.panel_long["instrument"].astype(str) != "S000"
    np.testing.assert_array_equal(res.panel_long["in_universe"].to_numpy(), exp.to_numpy())
    p = Panel.from_long(res.panel_long, meta=res.meta)
    assert not p.universe[:, 0].any() and p.universe[:, 1:].all()


def test_limit_prices_against_pandas_reference():
    """``limit_pct``: limit prices come from the previous observed close only; a day that
    closes at the limit stays tradable (the backtest decides with the execution price)."""
    raw = make_raw(n_days=60, n_inst=6, seed=3)
    raw.loc[raw.index[::17], "close"] *= 1.12  # push some days over a 10 % limit
    raw["high"] = raw[["high", "close"]].max(axis=1)
    raw["vwap"] = raw["vwap"].clip(upper=raw["high"])
    raw = raw.drop(index=[30, 31, 44])  # gaps: previous *observed* close is used
    res = clean(raw, CleanConfig(limit_pct=0.099))
    ref = raw.sort_values(["instrument", "datetime"]).copy()
    adj = ref["close"] * ref["adj_factor"]
    prev = adj.groupby(ref["instrument"]).shift(1)
    ref["up"], ref["down"] = prev * 1.099, prev * 0.901
    ref["locked"] = (adj / prev - 1).abs() >= 0.099
    ref = ref.set_index(["datetime", "instrument"])
    got = res.panel_long.set_index(["datetime", "instrument"])
    np.testing.assert_allclose(got["limit_up"], ref.loc[got.index, "up"], rtol=1e-6)
    np.testing.assert_allclose(got["limit_down"], ref.loc[got.index, "down"], rtol=1e-6)
    assert ref["locked"].sum() > 0
    assert res.report["fixes"]["limit_locked"] == ref["locked"].sum()
    assert got["is_tradable"].all()


def test_unsorted_input_is_sorted_and_noted():
    raw = make_raw().sample(frac=1.0, random_state=1)
    res = clean(raw)
    assert res.report["fixes"]["resorted"] is True
    out = res.panel_long
    key = list(zip(out["datetime"], out["instrument"].astype(str)))
    assert key == sorted(key)


def test_ohlc_repair_policy():
    raw = make_raw()
    raw.loc[4, "high"] = raw.loc[4, "low"] * 0.99  # high < low
    res = clean(raw, CleanConfig(ohlc_policy="repair"))
    _balance(res, len(raw))
    assert len(res.rejected_rows) == 0 and res.report["fixes"]["ohlc_repaired"] == 1
    out = res.panel_long
    assert (out["high"] >= out[["open", "close", "low"]].max(axis=1) * (1 - 1e-6)).all()
    assert (out["low"] <= out[["open", "close", "high"]].min(axis=1) * (1 + 1e-6)).all()


def test_exact_duplicate_keeps_one_conflict_rejects_all():
    raw = make_raw()
    dup = raw.iloc[[0]]
    conflict = raw.iloc[[1]].assign(volume=raw.iloc[1]["volume"] + 100.0)
    bad = pd.concat([raw, dup, conflict], ignore_index=True)
    res = clean(bad)
    _balance(res, len(bad))
    assert res.report["rejected_by_reason"] == {"duplicate_row": 1, "duplicate_conflict": 2}
    assert len(res.panel_long) == len(raw) - 1


def test_float32_and_categorical_output(raw_frame):
    res = clean(raw_frame)
    assert res.panel_long["close"].dtype == np.float32
    assert isinstance(res.panel_long["instrument"].dtype, pd.CategoricalDtype)
    assert res.panel_long["is_tradable"].dtype == bool


def test_extra_columns_are_carried(raw_frame):
    res = clean(raw_frame.assign(pct_chg=1.5))
    assert "pct_chg" in res.panel_long.columns
    res2 = clean(raw_frame.assign(pct_chg=1.5), CleanConfig(keep_extra_columns=False))
    assert "pct_chg" not in res2.panel_long.columns


def test_already_adjusted_source_is_not_adjusted_twice(raw_frame):
    res = clean(RawData(raw_frame, "adjusted-src", adjusted=True))
    ref = raw_frame.sort_values(["datetime", "instrument"]).reset_index(drop=True)
    np.testing.assert_allclose(res.panel_long["close"], ref["close"], rtol=1e-6)
    np.testing.assert_allclose(res.panel_long["adj_factor"], ref["adj_factor"], rtol=1e-6)
