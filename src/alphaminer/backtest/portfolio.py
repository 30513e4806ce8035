"""Top-k / drop-n portfolio simulator (qlib ``TopkDropoutStrategy`` semantics).

Timing: the signal on day ``t`` uses information up to ``t``'s close; the orders it implies are
executed on day ``t+1`` at the deal price (``open``/``close``/``vwap`` of ``t+1``, adjusted prices
from the panel) and the book is marked to market at every close. The loop over days is inherent
(the portfolio is path dependent); everything inside a day is vectorised over stocks with numpy.

See ``docs/backtest.md`` for the full semantics (selection, costs, delistings, benchmark,
turnover).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from alphaminer.backtest.metrics import all_risk_metrics, hit_rate
from alphaminer.panel import DATE_COL, INSTRUMENT_COL, Panel
from alphaminer.progress import progress
from alphaminer.runtime import config_from

log = logging.getLogger(__name__)

DEAL_PRICES = ("open", "close", "vwap")
SIDES = ("buy", "sell", "delist")
#: fraction of each day's cash held back from buys so that float rounding can never overdraw it
_CASH_MARGIN = 1e-12
#: relative slack when a price is compared with the panel's limit prices (float32 values)
_LIMIT_RTOL = 1e-6


@dataclass
class BacktestConfig:
    """Parameters of :func:`run_backtest` (all prices are the panel's adjusted prices).

    Attributes:
        topk: number of names held at most.
        n_drop: names replaced per day at most (the worst-scored held names are sold).
        deal_price: price of day ``t+1`` at which day ``t``'s orders trade.
        buy_cost / sell_cost: proportional cost per order (0.0005 = 5 bp).
        min_cost: minimum cost per order (currency).
        init_cash: starting cash.
        lot_size: shares are bought in multiples of this; ``None`` → fractional shares.
        limit_threshold: e.g. ``0.095``: a name whose deal price is ≥ +threshold over the previous
            close is not buyable (limit-up), ≤ −threshold not sellable (limit-down). ``None`` → off.
            Independently, a panel with ``limit_up`` / ``limit_down`` features (cleaning with
            ``market: cn`` or ``limit_pct``) blocks buys at / above ``limit_up`` and sells at /
            below ``limit_down``, judged on the open for ``deal_price="open"`` and on the close
            otherwise.
        annualisation: trading days per year for the standard-convention metrics.
        progress: show a tqdm bar over days.
    """

    topk: int = 50
    n_drop: int = 5
    deal_price: str = "open"
    buy_cost: float = 0.0005
    sell_cost: float = 0.0005
    min_cost: float = 0.0
    init_cash: float = 1e8
    lot_size: float | None = None
    limit_threshold: float | None = None
    annualisation: int = 252
    progress: bool = True

    def __post_init__(self) -> None:
        if int(self.topk) != self.topk or self.topk < 1:
            raise ValueError(f"topk must be a positive integer, got {self.topk!r}")
        if int(self.n_drop) != self.n_drop or not 0 <= self.n_drop <= self.topk:
            raise ValueError(f"n_drop must be an integer in [0, topk={self.topk}], "
                             f"got {self.n_drop!r}")
        self.topk, self.n_drop = int(self.topk), int(self.n_drop)
        if self.deal_price not in DEAL_PRICES:
            raise ValueError(f"deal_price must be one of {DEAL_PRICES}, got {self.deal_price!r}")
        for name in ("buy_cost", "sell_cost", "min_cost"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not self.init_cash > 0:
            raise ValueError(f"init_cash must be > 0, got {self.init_cash!r}")
        if self.lot_size is not None and not self.lot_size > 0:
            raise ValueError(f"lot_size must be > 0 or None, got {self.lot_size!r}")
        if self.limit_threshold is not None and not self.limit_threshold > 0:
            raise ValueError(f"limit_threshold must be > 0 or None, got {self.limit_threshold!r}")
        if self.annualisation < 1:
            raise ValueError(f"annualisation must be >= 1, got {self.annualisation!r}")

    @classmethod
    def from_dict(cls, params: dict[str, Any] | BacktestConfig | None) -> BacktestConfig:
        """Build from a parameters mapping (unknown keys raise, naming them)."""
        return config_from(cls, params)


@dataclass
class BacktestResult:
    """Output of :func:`run_backtest`.

    Attributes:
        daily: one row per execution day: ``date, equity, cash, holdings_value, return,
            benchmark_return, excess_return, turnover, cost, n_holdings``.
        positions: long frame ``date, instrument, shares, value`` (value at that day's close).
        trades: ``date, instrument, side, shares, price, value, cost``; ``side`` is ``buy``,
            ``sell`` or ``delist`` (forced liquidation at the last price, no cost).
        events: ``date, instrument, kind, detail`` (delistings, …).
        metrics: flat dict of floats (risk metrics in both conventions, hit rate, turnover, …).
        config: the configuration used, as a dict.
    """

    daily: pd.DataFrame
    positions: pd.DataFrame
    trades: pd.DataFrame
    events: pd.DataFrame
    metrics: dict[str, float]
    config: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- inputs
def signal_to_numpy(signal: torch.Tensor | np.ndarray | pd.DataFrame, panel: Panel,
                    column: str | None = None) -> np.ndarray:
    """Align a signal with ``panel`` as a float64 ``[T, S]`` array (NaN = no opinion).

    Accepts a ``[T, S]`` tensor/array, or a long frame ``datetime, instrument, <value>`` (the
    value column is ``column`` or the frame's single other numeric column).
    """
    if isinstance(signal, pd.DataFrame):
        if column is None:
            cols = [c for c in signal.columns if c not in (DATE_COL, INSTRUMENT_COL)
                    and pd.api.types.is_numeric_dtype(signal[c])]
            if len(cols) != 1:
                raise ValueError(f"signal frame needs exactly one value column besides "
                                 f"{DATE_COL!r}/{INSTRUMENT_COL!r}; got {list(signal.columns)} "
                                 "(pass column=...)")
            column = cols[0]
        for c in (DATE_COL, INSTRUMENT_COL, column):
            if c not in signal.columns:
                raise KeyError(f"signal frame has no {c!r} column; got {list(signal.columns)}")
        signal = panel.wide(signal, column)
    if isinstance(signal, torch.Tensor):
        arr = signal.detach().to("cpu", torch.float64).numpy()
    else:
        arr = np.asarray(signal, dtype=np.float64)
    if arr.shape != (panel.T, panel.S):
        raise ValueError(f"signal has shape {arr.shape}, expected [T, S] = {(panel.T, panel.S)}")
    return np.where(np.isfinite(arr), arr, np.nan)


def _date_range(panel: Panel, start: Any, end: Any) -> tuple[int, int]:
    """``[i0, i1)``: first signal day and one past the last execution day."""
    i0 = 0 if start is None else (
        int(start) if isinstance(start, (int, np.integer)) else panel.date_index(start, "left"))
    i1 = panel.T if end is None else (
        int(end) + 1 if isinstance(end, (int, np.integer)) else panel.date_index(end, "right"))
    if not 0 <= i0 < panel.T or i1 > panel.T or i1 - i0 < 2:
        raise ValueError(f"backtest range start={start!r}, end={end!r} must cover at least two "
                         f"trading days of the panel ({panel.dates[0].date()} … "
                         f"{panel.dates[-1].date()})")
    return i0, i1


def _ffill_rows(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Forward-fill along axis 0 where ``valid`` is False (NaN before the first valid row)."""
    T, S = x.shape
    idx = np.where(valid, np.arange(T)[:, None], -1)
    np.maximum.accumulate(idx, axis=0, out=idx)
    out = x[np.maximum(idx, 0), np.arange(S)[None, :]]
    out[idx < 0] = np.nan
    return out


@dataclass
class _Market:
    """Per-day arrays the simulator needs, all ``[T, S]`` float64/bool numpy (full panel)."""

    deal: np.ndarray
    mark: np.ndarray          # close forward-filled: the mark-to-market / last price
    can_buy: np.ndarray
    can_sell: np.ndarray
    last_obs: np.ndarray      # [S] last day with a valid close (-1 if none)
    universe: np.ndarray
    bench: np.ndarray         # [T] equal-weight close-to-close return (day e vs e-1)


def _market(panel: Panel, cfg: BacktestConfig) -> _Market:
    for f in ("close", cfg.deal_price):
        if not panel.has_feature(f):
            raise KeyError(f"backtest needs feature {f!r}; panel has {panel.features}")
    close = panel.feature("close").detach().to("cpu", torch.float64).numpy()
    deal = panel.feature(cfg.deal_price).detach().to("cpu", torch.float64).numpy()
    observed = panel.observed.cpu().numpy()
    universe = panel.universe.cpu().numpy()
    tradable = panel.tradable.cpu().numpy()
    T, S = close.shape
    close_ok = observed & np.isfinite(close) & (close > 0)
    mark = _ffill_rows(close, close_ok)
    last_obs = np.where(close_ok.any(0), T - 1 - np.argmax(close_ok[::-1], axis=0), -1)
    trade_ok = tradable & close_ok & np.isfinite(deal) & (deal > 0)
    can_buy, can_sell = trade_ok.copy(), trade_ok.copy()
    if panel.has_feature("limit_up") and panel.has_feature("limit_down"):
        # exchange limit prices of day e (from e-1's close, known before the open), compared
        # with the price at the time of the trade: the open for open execution; the close for
        # close (and vwap: an order spread over a day that ends locked cannot complete).
        # So day e's close never blocks a trade at day e's open.
        px = deal if cfg.deal_price == "open" else close
        up = panel.feature("limit_up").detach().to("cpu", torch.float64).numpy()
        down = panel.feature("limit_down").detach().to("cpu", torch.float64).numpy()
        with np.errstate(invalid="ignore"):
            can_buy &= ~(px >= up * (1 - _LIMIT_RTOL))
            can_sell &= ~(px <= down * (1 + _LIMIT_RTOL))
    if cfg.limit_threshold is not None:
        prev = np.vstack([np.full((1, S), np.nan), mark[:-1]])
        with np.errstate(invalid="ignore", divide="ignore"):
            chg = deal / prev - 1.0
        can_buy &= ~(chg >= cfg.limit_threshold)
        can_sell &= ~(chg <= -cfg.limit_threshold)
    bench = np.full(T, np.nan)
    if T > 1:
        ok = universe[:-1] & close_ok[:-1] & close_ok[1:] & tradable[1:]
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.where(ok, close[1:] / np.where(ok, close[:-1], 1.0) - 1.0, 0.0)
        n = ok.sum(1)
        bench[1:] = np.where(n > 0, r.sum(1) / np.maximum(n, 1), np.nan)
    return _Market(deal, mark, can_buy, can_sell, last_obs, universe, bench)


# ----------------------------------------------------------------------------- simulator
class _Ledger:
    """Per-day records of one simulation (filled in the day loop, assembled afterwards)."""

    def __init__(self, n_days: int, n_stocks: int) -> None:
        self.book = np.zeros((n_days, n_stocks))   # shares held at each close
        self.cash = np.empty(n_days)
        self.hold = np.empty(n_days)
        self.traded = np.zeros(n_days)              # buy + sell value (delistings excluded)
        self.cost = np.zeros(n_days)
        self.events: list[dict[str, Any]] = []
        self._cols: tuple[list[np.ndarray], ...] = ([], [], [], [], [], [])

    def record(self, k: int, inst: np.ndarray, side: int,
               shares_price_cost: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        """Append the orders of day ``k`` (``side`` indexes :data:`SIDES`)."""
        for col, x in zip(self._cols, (np.full(inst.size, k), inst,
                                       np.full(inst.size, side, dtype=np.int8),
                                       *shares_price_cost)):
            col.append(x)

    def trade_columns(self) -> tuple[list[np.ndarray], ...]:
        return self._cols


def _order_best_first(idx: np.ndarray, key: np.ndarray) -> np.ndarray:
    """``idx`` sorted by ``key`` descending, ties by instrument position ascending."""
    return idx[np.lexsort((idx, -key[idx]))]


def run_backtest(
    signal: torch.Tensor | np.ndarray | pd.DataFrame,
    panel: Panel,
    config: BacktestConfig | dict[str, Any] | None = None,
    start: Any = None,
    end: Any = None,
) -> BacktestResult:
    """Simulate a top-k/drop-n long-only portfolio driven by ``signal`` (higher = better).

    Args:
        signal: ``[T, S]`` scores aligned with ``panel`` (tensor, array or long frame). NaN, or
            outside the point-in-time universe on the signal day → not a candidate (a held name
            with no valid score ranks below every scored name, so it is sold first).
        panel: the market (adjusted ``close`` and the deal price, masks).
        config: :class:`BacktestConfig` or a dict of its fields.
        start, end: first signal day and last execution day (dates or integer positions,
            inclusive). Orders from the signal on ``start`` trade on the next day.

    Returns:
        :class:`BacktestResult` with one ``daily`` row per execution day.
    """
    cfg = BacktestConfig.from_dict(config)
    sig = signal_to_numpy(signal, panel)
    i0, i1 = _date_range(panel, start, end)
    mk = _market(panel, cfg)
    S = panel.S
    score = np.where(mk.universe, sig, np.nan)
    key_all = np.where(np.isfinite(score), score, -np.inf)

    days = np.arange(i0 + 1, i1)
    N = days.size
    shares = np.zeros(S)
    cash = float(cfg.init_cash)
    led = _Ledger(N, S)
    rate_b, rate_s, mcost = cfg.buy_cost, cfg.sell_cost, cfg.min_cost

    it = progress(range(N), desc="backtest", unit="day", disable=not cfg.progress or N < 500,
              leave=False)
    for k in it:
        e = days[k]
        # 1. forced liquidation of names with no observed price from today on (delisted)
        gone = (shares > 0) & (mk.last_obs < e)
        if gone.any():
            inst = np.flatnonzero(gone)
            p = mk.mark[e, inst]
            q = shares[inst]
            cash += float(np.sum(q * p))
            shares[inst] = 0.0
            led.record(k, inst, 2, (q, p, np.zeros(inst.size)))
            for s, qs, px in zip(inst, q, p):
                last_day = panel.dates[mk.last_obs[s]].date()
                led.events.append({
                    "date": panel.dates[e], "instrument": panel.instruments[s],
                    "kind": "delist",
                    "detail": f"no observed price after {last_day}: liquidated {qs:.6g} "
                              f"shares at the last close {px:.6g}",
                })
        # 2. selection (qlib TopkDropout): rank held ∪ best candidates; sell the held names
        #    among the worst n_drop that are also outside the top-k, if they can be sold today
        key = key_all[e - 1]
        held = shares > 0
        held_idx = np.flatnonzero(held)
        n_held = held_idx.size
        cand = np.flatnonzero(~held & mk.can_buy[e] & np.isfinite(score[e - 1]))
        today = _order_best_first(cand, key)[: cfg.n_drop + cfg.topk - n_held]
        comb = _order_best_first(np.concatenate([held_idx, today]), key)
        tail = comb[max(comb.size - cfg.n_drop, cfg.topk):]
        sell = tail[held[tail] & mk.can_sell[e, tail]]
        buy = today[: max(sell.size + cfg.topk - n_held, 0)]
        # 3. sells at the deal price
        if sell.size:
            p = mk.deal[e, sell]
            q = shares[sell]
            v = q * p
            c = np.minimum(np.maximum(rate_s * v, mcost), v)
            cash += float(np.sum(v - c))
            shares[sell] = 0.0
            led.traded[k] += float(v.sum())
            led.cost[k] += float(c.sum())
            led.record(k, sell, 1, (q, p, c))
        # 4. buys: equal budgets of today's cash, costs included in the budget
        if buy.size and cash > 0:
            budget = cash * (1.0 - _CASH_MARGIN) / buy.size
            v_max = max(min(budget / (1.0 + rate_b), budget - mcost), 0.0)
            p = mk.deal[e, buy]
            q = v_max / p
            if cfg.lot_size is not None:
                q = np.floor(q / cfg.lot_size) * cfg.lot_size
            ok = q > 0
            if ok.any():
                buy, p, q = buy[ok], p[ok], q[ok]
                v = q * p
                c = np.maximum(rate_b * v, mcost)
                cash -= float(np.sum(v + c))
                shares[buy] += q
                led.traded[k] += float(v.sum())
                led.cost[k] += float(c.sum())
                led.record(k, buy, 0, (q, p, c))
        if cash < 0:
            raise RuntimeError(f"cash went negative ({cash!r}) on {panel.dates[e].date()}")
        # 5. mark to market at the close
        led.book[k] = shares
        held = shares > 0
        led.hold[k] = float(np.sum(shares[held] * mk.mark[e, held]))
        led.cash[k] = cash

    return _assemble(panel, cfg, days, led, mk)


def _assemble(panel: Panel, cfg: BacktestConfig, days: np.ndarray, led: _Ledger,
              mk: _Market) -> BacktestResult:
    dates = panel.dates[days]
    book, cash, hold, traded, cost = led.book, led.cash, led.hold, led.traded, led.cost
    equity = cash + hold
    prev_equity = np.concatenate([[cfg.init_cash], equity[:-1]])
    ret = equity / prev_equity - 1.0
    bench = mk.bench[days]
    daily = pd.DataFrame({
        "date": dates,
        "equity": equity,
        "cash": cash,
        "holdings_value": hold,
        "return": ret,
        "benchmark_return": bench,
        "excess_return": ret - bench,
        "turnover": traded / 2.0 / prev_equity,
        "cost": cost,
        "n_holdings": (book > 0).sum(1),
    })

    t_day, t_inst, t_side, t_shares, t_price, t_cost = (
        np.concatenate(x) if x else np.empty(0) for x in led.trade_columns())
    t_day = t_day.astype(np.int64)
    t_inst = t_inst.astype(np.int64)
    trades = pd.DataFrame({
        "date": pd.DatetimeIndex(dates[t_day]) if t_day.size else pd.DatetimeIndex([]),
        "instrument": np.asarray(panel.instruments, dtype=object)[t_inst],
        "side": np.asarray(SIDES, dtype=object)[t_side.astype(np.int64)],
        "shares": t_shares.astype(np.float64),
        "price": t_price.astype(np.float64),
        "value": t_shares.astype(np.float64) * t_price.astype(np.float64),
        "cost": t_cost.astype(np.float64),
    })

    # internal accounting check: cash rebuilt from the trade table must match the simulation
    sign = np.where(trades["side"].to_numpy() == "buy", -1.0, 1.0)
    flow = sign * trades["value"].to_numpy() - trades["cost"].to_numpy()
    per_day = np.bincount(t_day, weights=flow, minlength=days.size)
    rebuilt = cfg.init_cash + np.cumsum(per_day)
    scale = cfg.init_cash + np.cumsum(np.bincount(t_day, weights=np.abs(flow),
                                                  minlength=days.size))
    close_enough = np.abs(rebuilt - cash) <= 1e-9 * scale
    if not close_enough.all():
        bad = int(np.argmax(~close_enough))
        raise RuntimeError(f"cash accounting mismatch on {dates[bad].date()}: "
                           f"simulated {cash[bad]!r}, rebuilt from trades {rebuilt[bad]!r}")

    kk, ss = np.nonzero(book > 0)
    q = book[kk, ss]
    positions = pd.DataFrame({
        "date": pd.DatetimeIndex(dates[kk]) if kk.size else pd.DatetimeIndex([]),
        "instrument": np.asarray(panel.instruments, dtype=object)[ss],
        "shares": q,
        "value": q * mk.mark[days[kk], ss],
    })
    ev = pd.DataFrame(led.events, columns=["date", "instrument", "kind", "detail"])
    if len(ev):
        log.info("backtest: %d delisted holdings liquidated at their last price", len(ev))

    metrics = all_risk_metrics(ret, cfg.annualisation)
    metrics.update(all_risk_metrics(daily["excess_return"].to_numpy(), cfg.annualisation,
                                    prefix="excess_"))
    metrics.update(all_risk_metrics(bench, cfg.annualisation, prefix="benchmark_"))
    metrics.update({
        "hit_rate": hit_rate(ret, bench),
        "turnover_mean": float(np.mean(daily["turnover"])) if len(daily) else float("nan"),
        "cost_total": float(cost.sum()),
        "cost_over_init_cash": float(cost.sum() / cfg.init_cash),
        "final_equity": float(equity[-1]),
        "n_holdings_mean": float(daily["n_holdings"].mean()),
        "n_trades": float(len(trades)),
        "n_delisted": float(len(ev)),
    })
    return BacktestResult(daily=daily, positions=positions, trades=trades, events=ev,
                          metrics=metrics, config=asdict(cfg))
