"""Labels (through the expression evaluator) and purged splits, with no-look-ahead properties."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
import torch
from data_testutils import make_raw
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alphaminer.data import (
    CleanConfig,
    SplitConfig,
    Splits,
    clean,
    data_report,
    label_expression,
    label_lookahead,
    make_label_frame,
    make_labels,
    make_splits,
)
from alphaminer.panel import Panel

FEATS = ("open", "high", "low", "close", "volume", "vwap")


def _random_panel(T: int, S: int, seed: int, universe_p: float = 0.9) -> Panel:
    rng = np.random.default_rng(seed)
    close = 10 * np.exp(np.cumsum(rng.normal(0, 0.02, (T, S)), axis=0))
    vals = np.stack([close * (1 + rng.normal(0, 0.01, (T, S))), close * 1.02, close * 0.98,
                     close, rng.uniform(1e5, 1e6, (T, S)),
                     close * (1 + rng.normal(0, 0.005, (T, S)))], axis=-1)
    observed = rng.random((T, S)) > 0.05
    vals[~observed] = np.nan
    universe = observed & (rng.random((T, S)) < universe_p)
    return Panel(values=torch.tensor(vals, dtype=torch.float32),
                 dates=pd.bdate_range("2021-01-04", periods=T),
                 instruments=[f"X{i}" for i in range(S)], features=FEATS,
                 observed=torch.tensor(observed), universe=torch.tensor(universe),
                 tradable=torch.tensor(observed))


def _reference_labels(panel: Panel, h: int, kind: str) -> np.ndarray:
    """Plain pandas: forward returns on the full history, then masked by universe."""
    if kind == "close":
        c = pd.DataFrame(panel.feature("close").numpy().astype(np.float64))
        lab = c.shift(-h) / c - 1
    else:
        v = pd.DataFrame(panel.feature("vwap").numpy().astype(np.float64))
        lab = v.shift(-(h + 1)) / v.shift(-1) - 1
    out = lab.to_numpy().copy()
    out[~panel.universe.numpy()] = np.nan
    return out


def test_label_expressions():
    assert label_expression(20) == "Sub(Div(Ref(close,-20d),close),1)"
    assert label_expression(5, "vwap_lag") == "Sub(Div(Ref(vwap,-6d),Ref(vwap,-1d)),1)"
    assert label_lookahead(5, "vwap_lag") == 6 and label_lookahead(5) == 5
    with pytest.raises(ValueError, match="unknown label kind 'open'"):
        label_expression(5, "open")
    with pytest.raises(ValueError, match="horizon"):
        label_expression(0)


@pytest.mark.parametrize("kind", ["close", "vwap_lag"])
@pytest.mark.parametrize("h", [1, 5, 20])
def test_labels_match_pandas(kind, h):
    panel = _random_panel(60, 7, seed=h)
    got = make_labels(panel, horizon=h, kind=kind).numpy()
    exp = _reference_labels(panel, h, kind)
    np.testing.assert_allclose(got, exp, rtol=2e-5, atol=1e-6, equal_nan=True)
    look = label_lookahead(h, kind)
    assert np.isnan(got[-look:]).all()  # the future beyond the data is unknown
    frame = make_label_frame(panel, h, kind)
    assert len(frame) == np.isfinite(got).sum()


def test_labels_on_cleaned_panel():
    res = clean(make_raw(n_days=50, n_inst=4))
    panel = Panel.from_long(res.panel_long, meta=res.meta)
    got = make_labels(panel, horizon=10).numpy()
    lp = res.panel_long.assign(instrument=res.panel_long.instrument.astype(str))
    wide = lp.pivot(index="datetime", columns="instrument", values="close").astype(np.float64)
    exp = (wide.shift(-10) / wide - 1).to_numpy()
    np.testing.assert_allclose(got, exp, rtol=2e-5, atol=1e-6, equal_nan=True)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(T=st.integers(15, 45), S=st.integers(2, 5), h=st.integers(1, 8),
       kind=st.sampled_from(["close", "vwap_lag"]), seed=st.integers(0, 10_000),
       frac=st.floats(0.3, 0.95))
def test_future_data_never_changes_past_labels(T, S, h, kind, seed, frac):
    panel = _random_panel(T, S, seed)
    t = int(frac * (T - 1))
    base = make_labels(panel, horizon=h, kind=kind).numpy()
    rng = np.random.default_rng(seed + 1)
    vals = panel.values.clone()
    noise = torch.tensor(rng.uniform(0.5, 2.0, tuple(vals[t + 1:].shape)), dtype=torch.float32)
    vals[t + 1:] = vals[t + 1:] * noise
    vals[t + 1:][torch.tensor(rng.random(tuple(vals[t + 1:].shape)) < 0.1)] = float("nan")
    changed = Panel(values=vals, dates=panel.dates, instruments=panel.instruments,
                    features=panel.features, observed=panel.observed, universe=panel.universe,
                    tradable=panel.tradable)
    after = make_labels(changed, horizon=h, kind=kind).numpy()
    last = t - label_lookahead(h, kind)
    if last >= 0:
        np.testing.assert_array_equal(base[: last + 1], after[: last + 1])
    # and the change is visible afterwards (the test can fail)
    if t + 1 < T - label_lookahead(h, kind) and np.isfinite(base[t + 1:]).any():
        assert not np.array_equal(np.nan_to_num(base[t + 1:]), np.nan_to_num(after[t + 1:]))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 1000), frac=st.floats(0.2, 0.9))
def test_future_rows_never_change_cleaned_past(seed, frac):
    raw = make_raw(n_days=30, n_inst=4, seed=seed)
    cut = raw["datetime"].iloc[int(frac * (len(raw) - 1))]
    later = raw["datetime"] > cut
    rng = np.random.default_rng(seed)
    changed = raw.copy()
    for c in ("open", "high", "low", "close", "vwap"):
        changed.loc[later, c] *= rng.uniform(0.8, 1.25, later.sum())
    changed.loc[later & (rng.random(len(raw)) < 0.2), "close"] = -1.0  # rejected later rows
    cfg = CleanConfig(limit_pct=0.05, ohlc_policy="repair")
    a = clean(raw, cfg).panel_long
    b = clean(changed, cfg).panel_long
    a_past = a[a.datetime <= cut].reset_index(drop=True)
    b_past = b[b.datetime <= cut].reset_index(drop=True)
    pd.testing.assert_frame_equal(a_past.astype({"instrument": str}),
                                  b_past.astype({"instrument": str}))


# ------------------------------------------------------------------------- splits
DATES = pd.bdate_range("2020-01-01", periods=300)


def test_date_splits_purge_the_earlier_segment():
    cfg = SplitConfig(segments={"train": ["2020-01-01", "2020-06-30"],
                                "valid": ["2020-07-01", "2020-09-30"],
                                "test": ["2020-10-01", "2021-12-31"]}, horizon=20)
    sp = make_splits(DATES, cfg)
    # reference by hand with pandas positions
    v0 = DATES.get_loc(pd.Timestamp("2020-07-01"))
    t0 = DATES.get_loc(pd.Timestamp("2020-10-01"))
    assert sp.ranges["train"] == (0, v0 - 20)
    assert sp.ranges["valid"] == (v0, t0 - 20)
    assert sp.ranges["test"] == (t0, 300)  # clipped to the data
    assert sp.segment_dates("valid")[0] == pd.Timestamp("2020-07-01")
    m = sp.masks
    assert not (m["train"] & m["valid"]).any() and m["train"].sum() == v0 - 20


def test_user_gap_counts_towards_purge():
    cfg = SplitConfig(segments={"train": ["2020-01-01", "2020-03-31"],
                                "valid": ["2020-06-01", "2020-08-31"]}, horizon=5)
    sp = make_splits(DATES, cfg)
    assert sp.ranges["train"][1] == DATES.get_loc(pd.Timestamp("2020-03-31")) + 1


def test_fraction_splits_and_roundtrip():
    sp = make_splits(DATES, SplitConfig(horizon=10))
    assert sp.ranges == {"train": (0, 170), "valid": (180, 230), "test": (240, 300)}
    d = sp.to_dict()
    import json
    back = Splits.from_dict(json.loads(json.dumps(d)))
    assert back.ranges == sp.ranges and back.purge == 10
    assert back.dates.equals(sp.dates)
    assert d["segments"]["valid"]["start"] == str(DATES[180].date())
    flat = SplitConfig.from_dict({"train": ["2020-01-01", "2020-05-01"],
                                  "test": ["2020-06-01", "2020-09-01"], "horizon": 3})
    assert list(flat.segments) == ["train", "test"]


@settings(max_examples=40, deadline=None)
@given(T=st.integers(60, 400), h=st.integers(0, 15),
       f=st.tuples(st.floats(0.2, 0.5), st.floats(0.1, 0.25), st.floats(0.1, 0.25)))
def test_purge_property(T, h, f):
    dates = pd.bdate_range("2015-01-01", periods=T)
    try:
        sp = make_splits(dates, SplitConfig(fractions=f, horizon=h))
    except ValueError as e:  # legitimate only when a segment is not longer than the purge
        m = re.search(r"empty after purging (\d+) days.*it has (\d+) trading days", str(e))
        assert m and int(m.group(2)) <= int(m.group(1)) == h
        return
    names = sp.names
    for p, q in zip(names, names[1:]):
        last_label_day = sp.ranges[p][1] - 1 + h  # the label at the last day reads up to here
        assert last_label_day < sp.ranges[q][0]
    covered = sum(i1 - i0 for i0, i1 in sp.ranges.values())
    assert covered <= T


def test_purged_train_labels_do_not_see_valid_segment():
    panel = _random_panel(120, 5, seed=7)
    h = 10
    sp = make_splits(panel.dates, SplitConfig(fractions=(0.5, 0.25, 0.25), horizon=h))
    full = make_labels(panel, horizon=h).numpy()
    v0 = sp.ranges["valid"][0]
    truncated = make_labels(panel.slice_dates(0, v0), horizon=h).numpy()
    i0, i1 = sp.ranges["train"]
    np.testing.assert_array_equal(full[i0:i1], truncated[i0:i1])
    assert np.isfinite(full[i0:i1]).any()


def test_data_report_is_json(raw_frame):
    import json
    res = clean(raw_frame)
    panel = Panel.from_long(res.panel_long, meta=res.meta)
    sp = make_splits(panel.dates, SplitConfig(horizon=2))
    labels = np.full((panel.T, panel.S), 0.01)
    labels[-2:] = np.nan
    rep = data_report(res, labels=labels, splits=sp, panel=panel)
    rep2 = json.loads(json.dumps(rep))
    assert rep2["rows"]["in"] == len(raw_frame)
    assert rep2["labels"]["valid_fraction"] == pytest.approx(1 - 2 / panel.T)
    assert rep2["splits"]["segments"]["train"]["start_index"] == 0
    assert rep2["labels"]["valid_fraction_by_segment"]["test"] < 1.0


@pytest.mark.parametrize("kind", ["close", "vwap_lag"])
@pytest.mark.parametrize("h", [1, 5, 20])
def test_labels_equal_the_label_expression_bit_for_bit(kind: str, h: int) -> None:
    """The one forward-return function reproduces the evaluator's value of the label formula."""
    from alphaminer.expr import Evaluator

    panel = _random_panel(60, 7, seed=h)
    want = Evaluator(panel, cache_bytes=0).evaluate(label_expression(h, kind))
    got = make_labels(panel, horizon=h, kind=kind)
    assert torch.equal(torch.isnan(got), torch.isnan(want))
    assert torch.equal(got.nan_to_num(0.0), want.nan_to_num(0.0))


def test_forward_returns_entry_lag_and_masks() -> None:
    from alphaminer.data.labels import forward_returns

    p = torch.tensor([[10.0], [11.0], [0.0], [12.0], [15.0], [16.0], [18.0]],
                     dtype=torch.float64)
    valid = torch.tensor([[True], [True], [True], [True], [False], [True], [True]])
    entry = torch.tensor([[True], [False], [True], [True], [True], [True], [True]])
    out = forward_returns(p, 1, lag=1, valid=valid, entry_valid=entry)[:, 0].tolist()
    # out[t] = p[t+2] / p[t+1] - 1: t=0 enters on a non-tradable day, t=1 at a zero price, t=2
    # exits and t=3 enters on an invalid day; t=4 is the only value; t=5, 6 run off the data
    assert all(math.isnan(v) for v in out[:4] + out[5:])
    assert out[4] == pytest.approx(18 / 16 - 1)
    plain = forward_returns(p, 2)[:, 0].tolist()
    assert plain[0] == pytest.approx(0.0 / 10 - 1) and plain[1] == pytest.approx(12 / 11 - 1)
    assert math.isnan(plain[2])  # entry price 0
    with pytest.raises(ValueError, match="horizon"):
        forward_returns(p, 0)
