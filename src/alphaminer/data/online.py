"""Optional online sources (baostock for China A-shares, yfinance for US/global).

Both packages are optional extras, imported only when used. Prices are fetched *unadjusted* and
the adjustment factor is derived from the source's adjusted series, so cleaning applies the one
adjustment rule of the project (price × adj_factor). Membership lists from these APIs are not
point-in-time: ``in_universe`` is left to cleaning's default (all True).
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

import numpy as np
import pandas as pd

from .schema import DATE_COL, INSTRUMENT_COL, DataValidationError, RawData

log = logging.getLogger(__name__)

_BAOSTOCK_FIELDS = "date,code,open,high,low,close,volume,amount,tradestatus"
_BAOSTOCK_INDEX = {"hs300": "query_hs300_stocks", "zz500": "query_zz500_stocks",
                   "sz50": "query_sz50_stocks"}


def _import_optional(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ImportError(
            f"source kind {name!r} needs the optional package {name!r}: "
            f"pip install alphaminer[{name}]"
        ) from None


def _rs_frame(rs: Any, what: str) -> pd.DataFrame:
    if str(getattr(rs, "error_code", "0")) != "0":
        raise DataValidationError(f"baostock {what}: error {rs.error_code}: {rs.error_msg}")
    return rs.get_data()


def _bs_code(code: str) -> str:
    """``SH600000`` / ``sh.600000`` / ``600000.SH`` → baostock's ``sh.600000``."""
    c = code.strip().lower()
    if "." in c:
        a, b = c.split(".", 1)
        return f"{a}.{b}" if a in ("sh", "sz", "bj") else f"{b}.{a}"
    return f"{c[:2]}.{c[2:]}"


def load_baostock(config: Any) -> RawData:
    """Daily bars from baostock; instruments normalised to ``SH600000`` style."""
    bs = _import_optional("baostock")
    start = config.start or "2010-01-01"
    end = config.end or pd.Timestamp.today().strftime("%Y-%m-%d")
    lg = bs.login()
    if str(getattr(lg, "error_code", "0")) != "0":
        raise DataValidationError(f"baostock login failed: {lg.error_msg}")
    try:
        if config.instruments:
            codes = [_bs_code(c) for c in config.instruments]
        else:
            if config.universe not in _BAOSTOCK_INDEX:
                raise ValueError(
                    f"baostock: give `instruments` or universe in {sorted(_BAOSTOCK_INDEX)}, "
                    f"got universe={config.universe!r}")
            idx = _rs_frame(getattr(bs, _BAOSTOCK_INDEX[config.universe])(date=end),
                            config.universe)
            codes = list(idx["code"])
        from alphaminer.progress import progress

        frames = []
        for code in progress(codes, desc="baostock", unit="stock", disable=len(codes) < 20):
            raw = _rs_frame(bs.query_history_k_data_plus(
                code, _BAOSTOCK_FIELDS, start_date=start, end_date=end, frequency="d",
                adjustflag="3"), code)
            if raw.empty:
                log.warning("baostock: no rows for %s", code)
                continue
            hfq = _rs_frame(bs.query_history_k_data_plus(
                code, "date,close", start_date=start, end_date=end, frequency="d",
                adjustflag="1"), code)
            raw = raw.merge(hfq.rename(columns={"close": "close_hfq"}), on="date", how="left")
            frames.append(raw)
    finally:
        bs.logout()
    if not frames:
        raise DataValidationError(f"baostock: no rows for {len(codes)} codes {start}..{end}")
    df = pd.concat(frames, ignore_index=True)
    num = ["open", "high", "low", "close", "volume", "amount", "close_hfq"]
    for c in num:
        df[c] = pd.to_numeric(df[c].replace("", np.nan), errors="coerce")
    out = pd.DataFrame({
        DATE_COL: pd.to_datetime(df["date"]),
        INSTRUMENT_COL: df["code"].str.replace(".", "", regex=False).str.upper(),
        **{c: df[c] for c in ("open", "high", "low", "close", "volume", "amount")},
    })
    out["vwap"] = np.where(df["volume"] > 0, df["amount"] / df["volume"], np.nan)
    out["adj_factor"] = (df["close_hfq"] / df["close"]).fillna(1.0)
    out["is_suspended"] = df["tradestatus"].astype(str) != "1"
    return RawData(frame=out, source=f"baostock({len(codes)} codes, {start}..{end})")


def load_yfinance(config: Any) -> RawData:
    """Daily bars from yfinance (unadjusted OHLC; adj_factor = Adj Close / Close)."""
    yf = _import_optional("yfinance")
    tickers = list(config.instruments)
    data = yf.download(tickers, start=config.start, end=_end_exclusive(config.end),
                       auto_adjust=False, actions=False, progress=False, group_by="column")
    if data is None or len(data) == 0:
        raise DataValidationError(f"yfinance: no rows for {tickers}")
    if isinstance(data.columns, pd.MultiIndex):
        lvl = 0 if "Close" in data.columns.get_level_values(0) else 1
        long = data.stack(level=1 - lvl, future_stack=True)
        long.index = long.index.set_names([DATE_COL, INSTRUMENT_COL])
        long = long.reset_index()
    else:
        if len(tickers) != 1:
            raise DataValidationError(f"yfinance: flat columns but {len(tickers)} tickers")
        long = data.rename_axis(DATE_COL).reset_index()
        long[INSTRUMENT_COL] = tickers[0]
    need = ["Open", "High", "Low", "Close", "Volume"]
    miss = [c for c in need if c not in long.columns]
    if miss:
        raise DataValidationError(f"yfinance: response lacks {miss}; got {list(long.columns)}")
    long = long.dropna(subset=need, how="all")  # tickers without a listing on that day
    adj = long["Adj Close"] / long["Close"] if "Adj Close" in long.columns else 1.0
    dt = pd.to_datetime(long[DATE_COL])
    if getattr(dt.dt, "tz", None) is not None:
        dt = dt.dt.tz_localize(None)
    out = pd.DataFrame({
        DATE_COL: dt.astype("datetime64[ns]"),
        INSTRUMENT_COL: long[INSTRUMENT_COL].astype(str),
        "open": long["Open"], "high": long["High"], "low": long["Low"],
        "close": long["Close"], "volume": long["Volume"],
        "adj_factor": adj,
    })
    out["adj_factor"] = out["adj_factor"].fillna(1.0)
    out["vwap"] = np.nan
    return RawData(frame=out.reset_index(drop=True),
                   source=f"yfinance({','.join(tickers)}, {config.start}..{config.end})")


def _end_exclusive(end: str | None) -> str | None:
    """yfinance's ``end`` is exclusive; ours is inclusive."""
    return None if end is None else (pd.Timestamp(end) + pd.Timedelta(days=1)).strftime(
        "%Y-%m-%d")
