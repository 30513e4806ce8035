"""Backtests small enough to compute with pen and paper; expected numbers are worked by hand.

Example 1 (deal price = close, so trades and marks use the same price), stocks A, B, C,
topk=2, n_drop=1, buy cost 25 %, sell cost 10 % (big, round rates keep the arithmetic exact),
init cash 1000. Budget per buy = cash / n_buys, bought value v = budget / 1.25, cost 0.25 v.

closes   d0  d1  d2  d3   d4  d5  d6  d7  d8  d9
   A     10  10  12  --   10  10   8   9  10  10     (A not observed on d3: suspended)
   B     20  20  25  25   30  32  30  40  --  --     (B delisted after d7)
   C     40  40  50  60   50  55  50  50  40  45
signal on day t (trades on t+1):
 s0: A3 B2 C1   s1: A3 B1 C2   s2: A1 B3 C2   s3: A NaN B2 C1   s4: A1 B3 C2
 s5: A5 B3 C2   s6: A5 B3 C2   s7: A5 B NaN C2   s8: A1 B NaN C2

d1: nothing held; today = [A, B, C]; buy A, B with 500 each: v=400, cost 100 each.
    A 40 sh, B 20 sh, cash 0. equity = 40·10 + 20·20 = 800.
d2: held A(3) B(1); candidate C(2); worst of {A, B, C} is B → sell B at 25: 500, cost 50,
    cash 450; buy C: v=360, cost 90, 7.2 sh. equity = 40·12 + 7.2·50 = 480 + 360 = 840.
d3: A suspended: it is the worst of {B3, C2, A1} but cannot be sold, so it is kept and
    nothing is traded (C stays: it is inside the top-2). equity = A 40·12 (last close)
    + C 7.2·60 = 480 + 432 = 912.
d4: A has no score → ranks last → sold at 10: 400, cost 40, cash 360; buy B at 30: v=288,
    cost 72, 9.6 sh. equity = B 9.6·30 + C 7.2·50 = 288 + 360 = 648.
d5: worst of {B3, C2, A1} is A (not held) → no trade. equity = 9.6·32 + 7.2·55
    = 307.2 + 396 = 703.2.
d6: worst of {A5, B3, C2} is C → sell C at 50: 360, cost 36, cash 324; buy A at 8:
    v=259.2, cost 64.8, 32.4 sh. equity = 259.2 + 9.6·30 = 547.2.
d7: worst is C (not held) → hold. equity = 32.4·9 + 9.6·40 = 291.6 + 384 = 675.6.
d8: B delisted → liquidated at its last close 40: +384, no cost. Held {A}; candidate C;
    comb {A5, C2} has only 2 = topk names → no sell; buy 1: C at 40 with 384: v=307.2,
    cost 76.8, 7.68 sh. equity = 32.4·10 + 307.2 = 631.2.
d9: no candidates; comb {C2, A1} fits in the top-2 → no trade (qlib would sell A and sit
    in cash). equity = 324 + 7.68·45 = 324 + 345.6 = 669.6.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alphaminer.backtest import BacktestConfig, run_backtest

nan = np.nan
CLOSE = np.array([
    [10, 20, 40], [10, 20, 40], [12, 25, 50], [nan, 25, 60], [10, 30, 50],
    [10, 32, 55], [8, 30, 50], [9, 40, 50], [10, nan, 40], [10, nan, 45]], dtype=float)
SIGNAL = np.array([
    [3, 2, 1], [3, 1, 2], [1, 3, 2], [nan, 2, 1], [1, 3, 2],
    [5, 3, 2], [5, 3, 2], [5, nan, 2], [1, nan, 2], [1, 1, 1]], dtype=float)
CFG = BacktestConfig(topk=2, n_drop=1, deal_price="close", buy_cost=0.25, sell_cost=0.10,
                     init_cash=1000.0, progress=False)

EXPECTED_EQUITY = [800, 840, 912, 648, 703.2, 547.2, 675.6, 631.2, 669.6]
EXPECTED_CASH = [0, 0, 0, 0, 0, 0, 0, 0, 0]
EXPECTED_COST = [200, 140, 0, 112, 0, 100.8, 0, 76.8, 0]
EXPECTED_N = [2, 2, 2, 2, 2, 2, 2, 2, 2]
# traded value (buys + sells, delisting excluded) / 2 / previous equity
EXPECTED_TURNOVER = [800 / 2 / 1000, (500 + 360) / 2 / 800, 0, (400 + 288) / 2 / 912, 0,
                     (360 + 259.2) / 2 / 703.2, 0, 307.2 / 2 / 675.6, 0]
EXPECTED_TRADES = [  # (day, instrument, side, shares, price, cost)
    (1, "A", "buy", 40, 10, 100), (1, "B", "buy", 20, 20, 100),
    (2, "B", "sell", 20, 25, 50), (2, "C", "buy", 7.2, 50, 90),
    (4, "A", "sell", 40, 10, 40), (4, "B", "buy", 9.6, 30, 72),
    (6, "C", "sell", 7.2, 50, 36), (6, "A", "buy", 32.4, 8, 64.8),
    (8, "B", "delist", 9.6, 40, 0), (8, "C", "buy", 7.68, 40, 76.8),
]


@pytest.fixture
def hand_panel(make_panel):
    observed = np.isfinite(CLOSE)
    open_ = np.where(observed, CLOSE + 1.0, nan)  # deliberately different from close
    return make_panel(open_, np.nan_to_num(CLOSE), observed=observed, names=["A", "B", "C"])


def test_hand_example_daily(hand_panel):
    res = run_backtest(SIGNAL, hand_panel, CFG)
    d = res.daily
    assert list(d["date"]) == list(hand_panel.dates[1:])
    np.testing.assert_allclose(d["equity"], EXPECTED_EQUITY, rtol=1e-9)
    np.testing.assert_allclose(d["cash"], EXPECTED_CASH, atol=1e-8)
    np.testing.assert_allclose(d["cost"], EXPECTED_COST, rtol=1e-9)
    np.testing.assert_allclose(d["turnover"], EXPECTED_TURNOVER, rtol=1e-9)
    assert list(d["n_holdings"]) == EXPECTED_N
    prev = np.array([1000.0, *EXPECTED_EQUITY[:-1]])
    np.testing.assert_allclose(d["return"], np.array(EXPECTED_EQUITY) / prev - 1, rtol=1e-9)
    # benchmark: close-to-close mean over the universe that trades on the day
    assert d["benchmark_return"].iloc[0] == 0.0
    assert d["benchmark_return"].iloc[1] == pytest.approx((0.2 + 0.25 + 0.25) / 3)
    assert d["benchmark_return"].iloc[2] == pytest.approx((0.0 + 0.2) / 2)  # A suspended
    # d8: B is gone, A 9 → 10, C 50 → 40
    assert d["benchmark_return"].iloc[7] == pytest.approx((10 / 9 - 1 + 40 / 50 - 1) / 2)


def test_hand_example_trades_positions_events(hand_panel):
    res = run_backtest(SIGNAL, hand_panel, CFG)
    t = res.trades
    assert len(t) == len(EXPECTED_TRADES)
    dates = hand_panel.dates
    got = sorted(zip(t["date"], t["instrument"], t["side"]), key=str)
    exp = sorted(((dates[k], i, s) for k, i, s, *_ in EXPECTED_TRADES), key=str)
    assert got == exp
    for k, inst, side, q, p, c in EXPECTED_TRADES:
        row = t[(t["date"] == dates[k]) & (t["instrument"] == inst)].iloc[0]
        assert row["side"] == side
        assert row["shares"] == pytest.approx(q, rel=1e-9)
        assert row["price"] == pytest.approx(p, rel=1e-12)
        assert row["cost"] == pytest.approx(c, rel=1e-9, abs=1e-12)
    pos = res.positions
    last = pos[pos["date"] == dates[9]]
    assert list(last["instrument"]) == ["A", "C"]
    np.testing.assert_allclose(last["shares"], [32.4, 7.68], rtol=1e-9)
    np.testing.assert_allclose(last["value"], [324, 345.6], rtol=1e-9)
    d3 = pos[pos["date"] == dates[3]].set_index("instrument")["value"]
    assert d3["A"] == pytest.approx(480.0)  # suspended name marked at its last close
    assert len(res.events) == 1
    ev = res.events.iloc[0]
    assert (ev["date"], ev["instrument"], ev["kind"]) == (dates[8], "B", "delist")
    assert res.metrics["n_delisted"] == 1
    assert res.metrics["cost_total"] == pytest.approx(sum(EXPECTED_COST), rel=1e-9)


def test_hand_example_open_price(make_panel):
    """Deal at the next open, mark at the close; topk=1, n_drop=1, costs 25 % / 10 %.

    d1: buy A at open 10 with 1000: v=800, cost 200, 80 sh; equity = 80·12 = 960.
    d2: signal A1 B2 → sell A at open 12.5: 1000, cost 100, cash 900; buy B at open 24:
        v=720, cost 180, 30 sh; equity = 30·25 = 750.
    d3: B still best → hold; equity = 30·30 = 900.
    """
    open_ = np.array([[10, 20], [10, 20], [12.5, 24], [12, 25]], dtype=float)
    close = np.array([[10, 20], [12, 22], [13, 25], [13, 30]], dtype=float)
    signal = np.array([[2, 1], [1, 2], [1, 2], [1, 2]], dtype=float)
    p = make_panel(open_, close, names=["A", "B"])
    cfg = BacktestConfig(topk=1, n_drop=1, deal_price="open", buy_cost=0.25, sell_cost=0.1,
                         init_cash=1000.0, progress=False)
    res = run_backtest(signal, p, cfg)
    np.testing.assert_allclose(res.daily["equity"], [960, 750, 900], rtol=1e-9)
    np.testing.assert_allclose(res.daily["cost"], [200, 280, 0], rtol=1e-9)
    np.testing.assert_allclose(res.daily["benchmark_return"],
                               [(0.2 + 0.1) / 2, (13 / 12 - 1 + 25 / 22 - 1) / 2,
                                (0.0 + 0.2) / 2], rtol=1e-6)
    assert list(res.trades["price"]) == [10.0, 12.5, 24.0]


def test_min_cost_and_lots(make_panel):
    """min_cost dominates small orders; lots round shares down. Hand numbers:
    topk=2, cash 1000, buy cost max(1 %·v, 30), lot 7. Budget 500 each: v_max = min(500/1.01,
    500-30) = 470. A at 10 → 47 sh → 42 sh (6 lots), v=420, cost 30. B at 20 → 23.5 → 21 sh,
    v=420, cost 30. cash = 1000 - 900 = 100.
    """
    close = np.array([[10, 20], [10, 20], [11, 20]], dtype=float)
    p = make_panel(close, close, names=["A", "B"])
    cfg = BacktestConfig(topk=2, n_drop=1, deal_price="close", buy_cost=0.01, sell_cost=0.01,
                         min_cost=30.0, lot_size=7, init_cash=1000.0, progress=False)
    res = run_backtest(np.ones((3, 2)), p, cfg)
    t = res.trades.set_index("instrument")
    assert t.loc["A", "shares"] == 42 and t.loc["B", "shares"] == 21
    assert t.loc["A", "cost"] == 30 and t.loc["B", "cost"] == 30
    np.testing.assert_allclose(res.daily["cash"], [100, 100])
    np.testing.assert_allclose(res.daily["equity"], [940, 100 + 42 * 11 + 21 * 20])


def test_limit_locked_names(make_panel):
    """A opens +10 % (limit-up) on d1: not buyable, so B (second best) is bought instead;
    on d2 B opens −10 % (limit-down) and cannot be sold although A is now preferred."""
    open_ = np.array([[10, 10], [11, 10], [11, 9], [11, 9]], dtype=float)
    close = np.array([[10, 10], [11, 10], [11, 9], [11, 9]], dtype=float)
    p = make_panel(open_, close, names=["A", "B"])
    cfg = BacktestConfig(topk=1, n_drop=1, deal_price="open", buy_cost=0.0, sell_cost=0.0,
                         init_cash=100.0, limit_threshold=0.095, progress=False)
    signal = np.array([[2, 1], [2, 1], [2, 1], [2, 1]], dtype=float)
    res = run_backtest(signal, p, cfg)
    t = res.trades
    assert list(zip(t["date"], t["instrument"], t["side"])) == [
        (p.dates[1], "B", "buy"), (p.dates[3], "B", "sell"), (p.dates[3], "A", "buy")]
    off = run_backtest(signal, p, BacktestConfig(**{**res.config, "limit_threshold": None}))
    assert off.trades["instrument"].iloc[0] == "A"


def test_start_end_and_frame_signal(hand_panel):
    full = run_backtest(SIGNAL, hand_panel, CFG)
    part = run_backtest(SIGNAL, hand_panel, CFG, start=hand_panel.dates[0],
                        end=hand_panel.dates[4])
    np.testing.assert_allclose(part.daily["equity"], full.daily["equity"].iloc[:4])
    long = hand_panel.frame(torch.from_numpy(SIGNAL), "score")
    framed = run_backtest(long, hand_panel, dict(CFG.__dict__))
    np.testing.assert_allclose(framed.daily["equity"], full.daily["equity"])


@pytest.mark.parametrize("bad", [
    {"topk": 0}, {"n_drop": 3, "topk": 2}, {"deal_price": "mid"}, {"buy_cost": -1},
    {"lot_size": 0}, {"init_cash": 0}, {"limit_threshold": -0.1}])
def test_config_validation(bad):
    with pytest.raises(ValueError):
        BacktestConfig(**bad)


def test_bad_inputs(hand_panel):
    with pytest.raises(ValueError, match="unknown BacktestConfig key"):
        run_backtest(SIGNAL, hand_panel, {"topk": 2, "ndrop": 1})
    with pytest.raises(ValueError, match="expected"):
        run_backtest(SIGNAL[:, :2], hand_panel, CFG)
    with pytest.raises(ValueError, match="at least two"):
        run_backtest(SIGNAL, hand_panel, CFG, start=hand_panel.dates[9])
    with pytest.raises(KeyError, match="vwap"):
        run_backtest(SIGNAL, hand_panel, BacktestConfig(deal_price="vwap", progress=False))
