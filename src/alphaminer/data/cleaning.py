"""Validation and cleaning: raw long frame → adjusted long panel + quarantined rows + report.

Row accounting is exact: every input row is either kept in :attr:`CleanResult.panel_long` or
appears once in :attr:`CleanResult.rejected_rows` with exactly one ``reason`` (the first rule it
breaks, in the order of :data:`REJECTION_REASONS`). Problems that make the whole input unusable
(a non-numeric column, no rows left) raise :class:`DataValidationError` instead.

Row rules (docs/data.md, "Validation and cleaning"), in order:

- ``missing_instrument``: empty (or whitespace-only) instrument code.
- ``non_numeric``: text in a numeric column (the column is named in ``reason_detail``); a column
  that is mostly text is a wrong dtype and raises.
- ``bad_flag``: a flag column (``in_universe``, ``is_suspended``, ``is_trading``, ``is_st``) holding
  something that is not a boolean (``"maybe"``, ``2``); mostly non-boolean raises.
- ``missing_value``: NaN in ``open/high/low/close/volume`` — except suspension rows (below).
- ``non_finite``: ±inf in any numeric column.
- ``out_of_range``: a value that becomes ±inf in the float32 panel (|x| > 3.4e38 after
  adjustment), so it would slip past ``non_finite``.
- ``non_positive_price``: a price ≤ 0.
- ``negative_volume`` / ``negative_amount``.
- ``bad_adj_factor``: ``adj_factor`` NaN or ≤ 0.
- ``ohlc_inconsistent``: ``high < max(open, close)``, ``low > min(open, close)`` or
  ``high < low`` beyond a relative tolerance (policy ``repair`` instead widens high/low).
- ``zero_volume``: only with ``zero_volume="reject"``; by default a zero-volume day is kept as
  suspended (observed, not tradable), because dropping it would hide the suspension from the
  backtest.
- ``duplicate_row``: an exact copy of an earlier row (the first copy is kept).
- ``duplicate_conflict``: same (date, instrument) with different values; every copy is rejected
  because there is no way to know which one is right.

Calendar rules, on the rows that passed the row rules:

- ``future_date``: after ``max_date`` (default: today) — such a row lets labels read prices
  that cannot exist yet.
- ``isolated_date``: dates separated from the rest by more than ``isolated_gap_days`` calendar
  days at either end and holding at most ``isolated_max_share`` of the rows (a 2031 row in data
  ending 2019).
- ``thin_date``: a date with fewer than ``min_date_share`` × the median instrument count of the
  previous ``date_share_window`` dates (a Saturday row for one stock would otherwise become a
  trading day for everyone and shorten every label horizon). Trailing only, so it is causal and
  growing (thin early) histories pass.

Suspension rows: a row with NaN volume and/or NaN prices is *kept* as suspended (observed, not
tradable) when the source marks it suspended (``is_suspended`` true or ``is_trading`` false), or
when its volume is NaN and every price present equals the previous close of the instrument.
Missing prices are filled with the previous kept close (adjusted, so no return is created),
vwap with that close, missing volume with 0. A suspended row with missing prices and no earlier
close is ``missing_value``.

Fixes (counted in the report): instrument codes stripped of surrounding spaces, times of day
dropped, sorting, adjustment (prices × adj_factor, volume / adj_factor), vwap fallback
``(high + low + close) / 3`` where vwap is missing/NaN or outside [low, high] (WARNING logged,
``meta["vwap_fallback"]``), ``amount = vwap · volume`` where missing, OHLC repair (policy
``repair``). Not tradable: ``is_suspended`` / not ``is_trading``, zero volume, suspension rows.

Price limits (off by default): ``market="cn"`` (or ``limit_rules``) gives each row its daily
limit from the instrument code, the date and ``is_st``; ``limit_pct`` is one threshold for every
name. Both add ``limit_up`` / ``limit_down`` price columns (adjusted, computed from the previous
close only) that the backtest compares with the price at the time of the trade — a close at the
limit never blocks that day's open. Implausible jumps (``|log return| > jump_log_threshold``)
are reported and logged, not rejected.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from alphaminer.runtime import config_from

from .schema import (
    DATE_COL,
    FLAG_COLS,
    INSTRUMENT_COL,
    NUMERIC_COLS,
    PRICE_COLS,
    RAW_COLS,
    DataValidationError,
    RawData,
    examples,
)

log = logging.getLogger(__name__)

REJECTION_REASONS: tuple[str, ...] = (
    "missing_instrument",
    "non_numeric",
    "bad_flag",
    "missing_value",
    "non_finite",
    "out_of_range",
    "non_positive_price",
    "negative_volume",
    "negative_amount",
    "bad_adj_factor",
    "ohlc_inconsistent",
    "zero_volume",
    "duplicate_row",
    "duplicate_conflict",
    "future_date",
    "isolated_date",
    "thin_date",
)
PANEL_COLS: tuple[str, ...] = (
    DATE_COL, INSTRUMENT_COL, "open", "high", "low", "close", "volume", "vwap", "amount",
    "adj_factor", "is_tradable", "in_universe",
)
LIMIT_COLS: tuple[str, ...] = ("limit_up", "limit_down")
MARKETS: tuple[str, ...] = ("cn",)
#: A-share daily price limits by code (first matching rule wins; ``start``/``end`` bound the
#: dates a rule applies to, so ChiNext is ±10 % before its 2020-08-24 reform). ST names take
#: ``st_limit`` where the rule has one (main boards); IPO days without limits are not modelled.
CN_LIMIT_RULES: tuple[dict[str, Any], ...] = (
    {"board": "STAR", "pattern": r"(?<!\d)68[89]\d{3}(?!\d)", "limit": 0.20,
     "start": "2019-07-22"},
    {"board": "ChiNext", "pattern": r"(?<!\d)30[01]\d{3}(?!\d)", "limit": 0.20,
     "start": "2020-08-24"},
    {"board": "BSE", "pattern": r"(?<!\d)(?:8\d{5}|4\d{5}|920\d{3})(?!\d)", "limit": 0.30},
    {"board": "main", "pattern": r".", "limit": 0.10, "st_limit": 0.05},
)
_RULE_KEYS = ("pattern", "limit", "st_limit", "start", "end", "board")
_FLOAT_OUT = ("open", "high", "low", "close", "volume", "vwap", "amount", "adj_factor")
_TRUE_STRINGS = {"1", "1.0", "true", "t", "yes", "y"}
_FALSE_STRINGS = {"0", "0.0", "false", "f", "no", "n"}
_MISSING_STRINGS = {"", "nan", "none", "null", "<na>"}
_F32_MAX = float(np.finfo(np.float32).max)
#: relative slack when a price is compared with a limit price (float32 panel, tick rounding)
LIMIT_RTOL = 1e-6


@dataclass
class CleanConfig:
    """Cleaning policy.

    Attributes:
        ohlc_policy: ``"reject"`` inconsistent OHLC rows or ``"repair"`` them (high/low widened).
        ohlc_tolerance: relative slack for the OHLC and vwap-range checks (float rounding).
        zero_volume: ``"suspend"`` (keep, not tradable) or ``"reject"``.
        limit_pct: one daily limit for every name (``limit_up = prev_close · (1 + limit_pct)``);
            None = off. Use ``market: cn`` for per-board limits instead.
        market: ``"cn"``: A-share preset (``limit_rules = CN_LIMIT_RULES``, ``price_tick=0.01``).
        limit_rules: ``[{pattern, limit, st_limit?, start?, end?, board?}, ...]``: the first rule
            whose regex is found in the instrument code (and whose date range holds the day)
            gives the row's limit; ``st_limit`` applies where ``is_st`` is true.
        price_tick: limit prices are rounded (half up) to this tick of the *unadjusted* price,
            as exchanges do (0.01 CNY); None = unrounded.
        vwap_range_check: vwap outside [low, high] is replaced by the fallback.
        max_non_numeric_fraction: above this share of unparseable values a numeric (or flag)
            column is a wrong dtype and raises instead of quarantining rows.
        max_date: latest acceptable date (``future_date`` after it); None = today.
        isolated_gap_days / isolated_max_share: ``isolated_date`` rule (None = off).
        min_date_share / date_share_window: ``thin_date`` rule (None = off).
        jump_log_threshold: ``|log(close_t / close_{t-1})|`` above which a move is reported as
            implausible (ln 3: a 20:1 split without adj_factor is −3.0); None = off.
        float32: store numeric panel columns as float32 (the Panel is float32 anyway).
        keep_extra_columns: carry source columns outside the raw schema through to the panel.
    """

    ohlc_policy: str = "reject"
    ohlc_tolerance: float = 1e-6
    zero_volume: str = "suspend"
    limit_pct: float | None = None
    market: str | None = None
    limit_rules: list[dict[str, Any]] | None = None
    price_tick: float | None = None
    vwap_range_check: bool = True
    max_non_numeric_fraction: float = 0.5
    max_date: str | None = None
    isolated_gap_days: int | None = 90
    isolated_max_share: float = 0.05
    min_date_share: float | None = 0.3
    date_share_window: int = 20
    jump_log_threshold: float | None = float(np.log(3.0))
    float32: bool = True
    keep_extra_columns: bool = True

    def __post_init__(self) -> None:
        if self.ohlc_policy not in ("reject", "repair"):
            raise ValueError(f"ohlc_policy must be 'reject' or 'repair', got {self.ohlc_policy!r}")
        if self.zero_volume not in ("suspend", "reject"):
            raise ValueError(
                f"zero_volume must be 'suspend' or 'reject', got {self.zero_volume!r}")
        if not 0 <= self.ohlc_tolerance < 0.1:
            raise ValueError(f"ohlc_tolerance must be in [0, 0.1), got {self.ohlc_tolerance}")
        if self.limit_pct is not None and not 0 < self.limit_pct < 1:
            raise ValueError(f"limit_pct must be in (0, 1) or None, got {self.limit_pct}")
        if not 0 <= self.max_non_numeric_fraction <= 1:
            raise ValueError("max_non_numeric_fraction must be in [0, 1]")
        if self.market is not None:
            if self.market not in MARKETS:
                raise ValueError(f"market must be one of {list(MARKETS)} or None, "
                                 f"got {self.market!r}")
            if self.limit_rules is None:
                self.limit_rules = [dict(r) for r in CN_LIMIT_RULES]
            if self.price_tick is None:
                self.price_tick = 0.01
        if self.limit_rules is not None:
            if self.limit_pct is not None:
                raise ValueError("set either limit_pct (one limit for every name) or "
                                 "market / limit_rules (per-instrument limits), not both")
            self.limit_rules = [_check_rule(r, i) for i, r in enumerate(self.limit_rules)]
        if self.price_tick is not None and not self.price_tick > 0:
            raise ValueError(f"price_tick must be > 0 or None, got {self.price_tick}")
        if self.max_date is not None:
            try:
                self.max_date = str(pd.Timestamp(self.max_date).date())
            except (ValueError, TypeError):
                raise ValueError(f"max_date={self.max_date!r} is not a date") from None
        if self.isolated_gap_days is not None and not self.isolated_gap_days >= 1:
            raise ValueError(f"isolated_gap_days must be >= 1 or None, "
                             f"got {self.isolated_gap_days}")
        if not 0 <= self.isolated_max_share < 0.5:
            raise ValueError(f"isolated_max_share must be in [0, 0.5), "
                             f"got {self.isolated_max_share}")
        if self.min_date_share is not None and not 0 < self.min_date_share < 1:
            raise ValueError(f"min_date_share must be in (0, 1) or None, "
                             f"got {self.min_date_share}")
        if int(self.date_share_window) != self.date_share_window or self.date_share_window < 1:
            raise ValueError(f"date_share_window must be a positive integer, "
                             f"got {self.date_share_window}")
        if self.jump_log_threshold is not None and not self.jump_log_threshold > 0:
            raise ValueError(f"jump_log_threshold must be > 0 or None, "
                             f"got {self.jump_log_threshold}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> CleanConfig:
        return config_from(cls, d)


def _check_rule(rule: Any, i: int) -> dict[str, Any]:
    """One validated limit rule (regex compiled once to check it, dates normalised)."""
    if not isinstance(rule, Mapping):
        raise ValueError(f"limit_rules[{i}] must be a mapping, got {rule!r}")
    unknown = sorted(set(rule) - set(_RULE_KEYS))
    if unknown or "pattern" not in rule or "limit" not in rule:
        raise ValueError(f"limit_rules[{i}] = {dict(rule)!r}: needs 'pattern' and 'limit'; "
                         f"valid keys {list(_RULE_KEYS)}"
                         + (f"; unknown {unknown}" if unknown else ""))
    out = dict(rule)
    try:
        re.compile(str(out["pattern"]))
    except re.error as e:
        raise ValueError(f"limit_rules[{i}].pattern {out['pattern']!r} is not a regex: {e}"
                         ) from None
    for k in ("limit", "st_limit"):
        if out.get(k) is not None and not 0 < float(out[k]) < 1:
            raise ValueError(f"limit_rules[{i}].{k} must be in (0, 1), got {out[k]!r}")
    for k in ("start", "end"):
        if out.get(k) is not None:
            out[k] = str(pd.Timestamp(out[k]).date())
    return out


@dataclass
class CleanResult:
    """Output of :func:`clean`. ``Panel.from_long(r.panel_long, meta=r.meta)`` builds the Panel."""

    panel_long: pd.DataFrame
    rejected_rows: pd.DataFrame
    report: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)

    def to_panel(self) -> Any:
        from alphaminer.panel import Panel

        return Panel.from_long(self.panel_long, meta=self.meta)


def _missingness(df: pd.DataFrame, cols: tuple[str, ...] | list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    n = max(len(df), 1)
    for c in cols:
        if c not in df.columns:
            out[c] = "absent"
        elif pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]):
            out[c] = round(float(np.count_nonzero(np.isnan(df[c].to_numpy(np.float64,
                                                                       na_value=np.nan)))) / n, 6)
        else:
            out[c] = round(float(df[c].isna().sum()) / n, 6)
    return out


def _parse_flag(s: pd.Series, missing: bool) -> tuple[np.ndarray, np.ndarray]:
    """Boolean values of a flag column and a mask of entries that are not booleans.

    Valid: bools, 0/1, and the strings true/false, t/f, yes/no, y/n, 1/0 (any case); missing
    entries take ``missing``. Anything else (``"maybe"``, ``2``) is flagged instead of silently
    becoming False.
    """
    if pd.api.types.is_bool_dtype(s):
        isna = s.isna().to_numpy()
        return np.where(isna, missing, s.fillna(False).to_numpy(dtype=bool)), \
            np.zeros(len(s), dtype=bool)
    if pd.api.types.is_numeric_dtype(s):
        v = s.to_numpy(dtype=np.float64, na_value=np.nan)
        isna = np.isnan(v)
        return np.where(isna, missing, v == 1), ~isna & (v != 0) & (v != 1)
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    text = pd.Index(uniques).astype(str).str.strip().str.lower()
    true_u = np.asarray(text.isin(_TRUE_STRINGS), dtype=bool)
    na_u = np.asarray(text.isin(_MISSING_STRINGS), dtype=bool)
    bad_u = ~(true_u | na_u | np.asarray(text.isin(_FALSE_STRINGS), dtype=bool))
    isna = codes < 0
    safe = np.where(isna, 0, codes)
    if len(uniques) == 0:
        return np.full(len(s), missing), np.zeros(len(s), dtype=bool)
    na = isna | na_u[safe]
    return np.where(na, missing, true_u[safe]), ~isna & bad_u[safe]


def _coerce_numeric(df: pd.DataFrame, col: str, source: str, cfg: CleanConfig
                    ) -> tuple[np.ndarray, np.ndarray]:
    """float64 values and a mask of unparseable text entries; raise if the column is mostly text."""
    s = df[col]
    if pd.api.types.is_bool_dtype(s):
        raise DataValidationError(f"{source}: column {col!r} is boolean, expected numbers")
    if pd.api.types.is_numeric_dtype(s):
        return s.to_numpy(dtype=np.float64, na_value=np.nan), np.zeros(len(s), dtype=bool)
    num = pd.to_numeric(s.astype(str).str.strip().replace({"": None}), errors="coerce")
    vals = num.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = s.notna().to_numpy() & np.isnan(vals)
    # "nan"/"inf" spelled out are NaN/inf, not text
    n_present = int(s.notna().sum())
    if n_present and bad.sum() > cfg.max_non_numeric_fraction * n_present:
        raise DataValidationError(
            f"{source}: column {col!r} should be numeric but has dtype {s.dtype} with "
            f"{int(bad.sum())} of {n_present} values that are not numbers, e.g. rows:\n"
            f"{examples(df, bad)}"
        )
    return vals, bad


def _instrument_codes(inst: pd.Series) -> tuple[np.ndarray, pd.Index, np.ndarray, int]:
    """Per-row codes into sorted, stripped instrument names (-1 = missing), the names, a mask
    of rows with no usable name, and the number of rows whose name had surrounding spaces."""
    if isinstance(inst.dtype, pd.CategoricalDtype):
        codes = inst.cat.codes.to_numpy().astype(np.int64)
        cats = pd.Index(inst.cat.categories).astype(str)
    else:
        codes, uniq = pd.factorize(inst, use_na_sentinel=True)
        codes = codes.astype(np.int64)
        cats = pd.Index(uniq).astype(str)
    stripped = cats.str.strip()
    names, inv = np.unique(np.asarray(stripped, dtype=object).astype(str), return_inverse=True)
    present = codes >= 0
    new = np.full(len(codes), -1, dtype=np.int64)
    new[present] = inv[codes[present]]
    n_spaced = int(np.count_nonzero(np.asarray(stripped != cats)[codes[present]]))
    empty = np.append(names == "", True)  # index -1 → True
    return new, pd.Index(names, dtype=object), empty[new] | ~present, n_spaced


def _prev_in_group(group: np.ndarray, x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """For rows sorted by (group, time): ``x`` of the latest earlier *valid* row of the same
    group (NaN where there is none)."""
    n = len(x)
    out = np.full(n, np.nan)
    if n == 0:
        return out
    last = np.maximum.accumulate(np.where(valid, np.arange(n), -1))
    prev = np.r_[-1, last[:-1]]
    starts = np.r_[0, np.flatnonzero(group[1:] != group[:-1]) + 1]
    gstart = np.repeat(starts, np.diff(np.r_[starts, n]))
    ok = prev >= gstart
    out[ok] = x[prev[ok]]
    return out


def _round_half_up(x: np.ndarray, tick: float) -> np.ndarray:
    # the 1e-9 guards exact half ticks against float error (10.05 · 1.1 = 11.054999…)
    return np.floor(x / tick + 0.5 + 1e-9) * tick


def _row_limits(cfg: CleanConfig, names: pd.Index, inst: np.ndarray, dates: np.ndarray,
                is_st: np.ndarray) -> np.ndarray:
    """Daily limit (fraction) of each row from ``cfg.limit_rules``; NaN where no rule applies."""
    lim = np.full(len(inst), np.nan)
    done = np.zeros(len(inst), dtype=bool)
    for rule in cfg.limit_rules or ():
        by_name = np.asarray(pd.Index(names).str.contains(str(rule["pattern"]), regex=True),
                             dtype=bool)
        m = by_name[inst] & ~done
        if rule.get("start") is not None:
            m &= dates >= np.datetime64(rule["start"], "ns")
        if rule.get("end") is not None:
            m &= dates <= np.datetime64(rule["end"], "ns")
        val = np.full(len(inst), float(rule["limit"]))
        if rule.get("st_limit") is not None:
            val = np.where(is_st, float(rule["st_limit"]), val)
        lim[m] = val[m]
        done |= m
    return lim


def clean(raw: RawData | pd.DataFrame, config: CleanConfig | Mapping[str, Any] | None = None
          ) -> CleanResult:
    """Validate, quarantine and adjust ``raw``; see the module docstring for every rule."""
    if isinstance(raw, pd.DataFrame):
        raw = RawData(frame=raw, source="<DataFrame>")
    cfg = config if isinstance(config, CleanConfig) else CleanConfig.from_dict(config)
    src = raw.source
    df = raw.frame.reset_index(drop=True)
    n_in = len(df)
    if n_in == 0:
        raise DataValidationError(f"{src}: no rows (empty input)")
    from .sources import _parse_dates

    date_ser, n_timed = _parse_dates(df[DATE_COL], None, src, df)
    dates = date_ser.to_numpy()
    if n_timed:
        log.warning("%s: %d rows had a time of day; kept their date only", src, n_timed)
    n_timed += int(raw.extras.get("rows_with_time_of_day", 0) or 0)
    missing_before = _missingness(df, RAW_COLS)

    # ---------------------------------------------------------------- row rules
    reason = np.zeros(n_in, dtype=np.int16)  # 0 = kept; k = REJECTION_REASONS[k-1]
    detail = np.full(n_in, "", dtype=object)

    def flag(name: str, mask: np.ndarray, what: str | tuple[list[str], np.ndarray] = "") -> None:
        """Give ``name`` to rows in ``mask`` that have no reason yet (first rule wins)."""
        new = mask & (reason == 0)
        if new.any():
            reason[new] = REJECTION_REASONS.index(name) + 1
            if isinstance(what, str):
                detail[new] = what
            else:  # (labels, per-row label index): only the flagged rows are materialised
                labels, code = what
                detail[new] = np.asarray(labels, dtype=object)[code[new]]

    inst_codes, inst_uni, no_inst, n_spaced = _instrument_codes(df[INSTRUMENT_COL])
    if n_spaced:
        log.warning("%s: stripped leading/trailing spaces from the instrument code of %d rows",
                    src, n_spaced)
    flag("missing_instrument", no_inst, INSTRUMENT_COL)

    num: dict[str, np.ndarray] = {}
    for c in NUMERIC_COLS:
        if c in df.columns:
            vals, bad = _coerce_numeric(df, c, src, cfg)
            num[c] = vals
            flag("non_numeric", bad, c)
    flags: dict[str, np.ndarray] = {}
    for c in FLAG_COLS:
        if c in df.columns:
            vals, bad = _parse_flag(df[c], missing=(c == "is_trading"))
            n_present = max(int(df[c].notna().sum()), 1)
            if bad.sum() > cfg.max_non_numeric_fraction * n_present:
                raise DataValidationError(
                    f"{src}: column {c!r} should be boolean (true/false, 1/0, yes/no) but "
                    f"{int(bad.sum())} of {n_present} values are not, e.g. rows:\n"
                    f"{examples(df, bad)}")
            flags[c] = vals
            flag("bad_flag", bad, c)
    o, h, l, c_, v = (num[k] for k in ("open", "high", "low", "close", "volume"))
    src_suspended = np.zeros(n_in, dtype=bool)
    if "is_suspended" in flags:
        src_suspended |= flags["is_suspended"]
    if "is_trading" in flags:
        src_suspended |= ~flags["is_trading"]

    def which(cols: list[str], test: Any) -> tuple[np.ndarray, tuple[list[str], np.ndarray]]:
        """Rows failing ``test`` in any of ``cols`` and, per row, the first such column."""
        mask = np.zeros(n_in, dtype=bool)
        code = np.zeros(n_in, dtype=np.int8)
        for i, k in enumerate(cols):
            m = test(num[k], k)
            m &= ~mask
            code[m] = i
            mask |= m
        return mask, (cols, code)

    # suspension rows: NaN volume/prices kept (not tradable) when the source says suspended or
    # the volume is missing and the prices present are frozen at the previous close
    p_nan = np.isnan(o) | np.isnan(h) | np.isnan(l) | np.isnan(c_)
    holes = p_nan | np.isnan(v)
    susp_fill = np.zeros(n_in, dtype=bool)
    if holes.any():
        by = np.lexsort((dates.view("int64"), inst_codes))
        prev = np.empty(n_in)
        prev[by] = _prev_in_group(inst_codes[by], c_[by], np.isfinite(c_[by]))
        with np.errstate(invalid="ignore"):
            frozen = np.isnan(v) & ~(np.isnan(o) & np.isnan(h) & np.isnan(l) & np.isnan(c_))
            for x in (o, h, l, c_):
                frozen &= np.isnan(x) | (np.abs(x - prev) <= 1e-6 * np.abs(prev))
        susp = holes & (src_suspended | frozen)
        flag("missing_value", susp & p_nan & ~np.isfinite(prev),
             "suspended row with no earlier close to fill its prices from")
        susp_fill = susp & (reason == 0)
    nan_test = which([*PRICE_COLS, "volume"], lambda x, k: np.isnan(x))
    flag("missing_value", nan_test[0] & ~susp_fill, nan_test[1])
    flag("non_finite", *which(list(num), lambda x, k: np.isinf(x)))
    if cfg.float32:
        af_all = num.get("adj_factor")
        scale = np.ones(n_in) if af_all is None or raw.adjusted else \
            np.where(np.isfinite(af_all) & (af_all > 0), af_all, 1.0)

        def beyond_f32(x: np.ndarray, k: str) -> np.ndarray:
            with np.errstate(over="ignore", invalid="ignore"):
                y = x * scale if k in (*PRICE_COLS, "vwap") else \
                    x / scale if k == "volume" else x
                return np.abs(y) > _F32_MAX
        flag("out_of_range", *which(list(num), beyond_f32))
    with np.errstate(invalid="ignore"):
        flag("non_positive_price", *which(list(PRICE_COLS), lambda x, k: x <= 0))
        flag("negative_volume", v < 0, "volume")
        if "amount" in num:
            flag("negative_amount", num["amount"] < 0, "amount")
        if "adj_factor" in num:
            af = num["adj_factor"]
            flag("bad_adj_factor", np.isnan(af) | (af <= 0), "adj_factor")
        tol = cfg.ohlc_tolerance
        hi_bad = h < np.maximum(o, c_) * (1 - tol)
        lo_bad = l > np.minimum(o, c_) * (1 + tol)
        hl_bad = h < l * (1 - tol)
    ohlc_bad = hi_bad | lo_bad | hl_bad
    if cfg.ohlc_policy == "reject":
        ohlc_code = np.where(hl_bad, 0, np.where(hi_bad, 1, 2)).astype(np.int8)
        flag("ohlc_inconsistent", ohlc_bad,
             (["high<low", "high<max(open,close)", "low>min(open,close)"], ohlc_code))
    if cfg.zero_volume == "reject":
        flag("zero_volume", v == 0, "volume")

    # duplicates among rows that passed everything else, on one int64 key per row
    d_codes, d_uni = pd.factorize(dates, sort=True)
    flat = pd.Series(d_codes.astype(np.int64) * max(len(inst_uni), 1) + inst_codes)
    cand = reason == 0
    key_dup = np.zeros(n_in, dtype=bool)
    key_dup[cand] = flat[cand].duplicated(keep=False).to_numpy()
    if key_dup.any():
        sub = pd.concat([flat.rename("_k"), pd.DataFrame(num)], axis=1)[key_dup]
        exact = np.zeros(n_in, dtype=bool)
        exact[key_dup] = sub.duplicated(keep="first").to_numpy()
        flag("duplicate_row", exact, "exact copy of an earlier row")
        still = np.zeros(n_in, dtype=bool)
        still[reason == 0] = flat[reason == 0].duplicated(keep=False).to_numpy()
        flag("duplicate_conflict", still, "same date and instrument, different values")

    # ---------------------------------------------------------------- calendar rules
    d_uni = np.asarray(d_uni, dtype="datetime64[ns]")
    max_date = pd.Timestamp(cfg.max_date) if cfg.max_date else pd.Timestamp.now().normalize()
    future = dates > max_date.to_datetime64()
    if raw.extras.get("synthetic_dates") and not cfg.max_date:
        future[:] = False  # a simulated calendar may legitimately run past today
    flag("future_date", future,
         f"after {max_date.date()} ({'max_date' if cfg.max_date else 'today'})")
    if cfg.isolated_gap_days is not None:
        per_date = np.bincount(d_codes[reason == 0], minlength=len(d_uni))
        live = np.flatnonzero(per_date)
        if live.size > 1:
            gaps = np.diff(d_uni[live]).astype("timedelta64[D]").astype(np.int64)
            big = np.flatnonzero(gaps > cfg.isolated_gap_days)
            cum = np.cumsum(per_date[live])
            total = cum[-1]
            iso = np.zeros(len(d_uni), dtype=bool)
            tail = big[(total - cum[big]) <= cfg.isolated_max_share * total]
            head = big[cum[big] <= cfg.isolated_max_share * total]
            labels: list[str] = []
            code = np.zeros(len(d_uni), dtype=np.int64)
            if tail.size:
                g = int(tail.min())
                iso[live[g + 1:]] = True
                code[live[g + 1:]] = len(labels)
                labels.append(f"{int(gaps[g])} days after the rest of the data "
                              f"(which ends {pd.Timestamp(d_uni[live[g]]).date()})")
            if head.size:
                g = int(head.max())
                iso[live[:g + 1]] = True
                code[live[:g + 1]] = len(labels)
                labels.append(f"{int(gaps[g])} days before the rest of the data "
                              f"(which starts {pd.Timestamp(d_uni[live[g + 1]]).date()})")
            if labels:
                flag("isolated_date", iso[d_codes], (labels, code[d_codes]))
    if cfg.min_date_share is not None:
        per_date = np.bincount(d_codes[reason == 0], minlength=len(d_uni))
        live = np.flatnonzero(per_date)
        cnt = per_date[live]
        ref = pd.Series(cnt, dtype=np.float64).shift(1).rolling(
            int(cfg.date_share_window), min_periods=1).median().to_numpy()
        with np.errstate(invalid="ignore"):
            thin_live = cnt < cfg.min_date_share * ref
        if thin_live.any():
            thin = np.zeros(len(d_uni), dtype=bool)
            thin[live[thin_live]] = True
            code = np.zeros(len(d_uni), dtype=np.int64)
            code[live[thin_live]] = np.arange(int(thin_live.sum()))
            labels = [f"{int(k)} instruments on this date vs a median of {r:g} on the previous "
                      f"{int(cfg.date_share_window)} dates (min_date_share "
                      f"{cfg.min_date_share})" for k, r in zip(cnt[thin_live], ref[thin_live])]
            flag("thin_date", thin[d_codes], (labels, code[d_codes]))

    # a suspension row needs an earlier *kept* close to fill from
    kept = reason == 0
    if (susp_fill & p_nan & kept).any():
        ks = np.flatnonzero(kept)
        by = ks[np.lexsort((dates[ks].view("int64"), inst_codes[ks]))]
        has_prev = np.isfinite(_prev_in_group(inst_codes[by], c_[by], np.isfinite(c_[by])))
        orphan = np.zeros(n_in, dtype=bool)
        orphan[by] = ~has_prev & p_nan[by] & susp_fill[by]
        flag("missing_value", orphan,
             "suspended row with no earlier kept close to fill its prices from")
        kept = reason == 0

    n_kept = int(kept.sum())
    counts = {r: int(np.count_nonzero(reason == i + 1)) for i, r in enumerate(REJECTION_REASONS)}
    counts = {k: v for k, v in counts.items() if v}
    if n_kept == 0:
        raise DataValidationError(
            f"{src}: no usable rows left after validation ({n_in} in, all rejected: {counts}); "
            f"e.g. rows:\n{examples(df)}"
        )

    # ---------------------------------------------------------------- build the panel
    d_k = dates[kept]
    ic_k = inst_codes[kept]
    order = np.lexsort((ic_k, d_k.view("int64")))
    was_sorted = bool(np.all(np.diff(order) > 0)) if len(order) > 1 else True
    idx = np.flatnonzero(kept)[order]
    fixes: dict[str, Any] = {"resorted": not was_sorted,
                             "instrument_whitespace_stripped": n_spaced,
                             "rows_with_time_of_day": n_timed}
    if not was_sorted:
        log.info("%s: input was not sorted by (datetime, instrument); sorted it", src)

    def take(name: str, default: float = np.nan) -> np.ndarray:
        return num[name][idx] if name in num else np.full(len(idx), default)

    o, h, l, c_, v = (take(k) for k in ("open", "high", "low", "close", "volume"))
    vw, amt, af = take("vwap"), take("amount"), take("adj_factor", 1.0)
    ic_sorted = ic_k[order]
    d_sorted = d_k[order]
    by_inst = np.argsort(ic_sorted, kind="stable")  # instrument-major, dates ascending
    g_inst = ic_sorted[by_inst]
    fill = susp_fill[idx]
    fixes["suspended_filled"] = int(fill.sum())
    if fill.any():
        # missing prices ← previous kept close, in adjusted terms (no return is created)
        cadj = c_ * af if not raw.adjusted else c_.copy()
        prev = np.empty(len(idx))
        prev[by_inst] = _prev_in_group(g_inst, cadj[by_inst], np.isfinite(cadj[by_inst]))
        fill_px = prev / af if not raw.adjusted else prev
        for arr in (o, h, l, c_, vw):
            pf = fill & np.isnan(arr)
            arr[pf] = fill_px[pf]
        v[fill & np.isnan(v)] = 0.0
    if cfg.ohlc_policy == "repair":
        rep = ohlc_bad[idx]
        fixes["ohlc_repaired"] = int(rep.sum())
        h = np.where(rep, np.maximum.reduce([o, h, l, c_]), h)
        l = np.where(rep, np.minimum.reduce([o, h, l, c_]), l)
    tol = cfg.ohlc_tolerance
    vw_missing = np.isnan(vw)
    with np.errstate(invalid="ignore"):
        vw_out = ~vw_missing & ((vw < l * (1 - tol)) | (vw > h * (1 + tol))) \
            if cfg.vwap_range_check else np.zeros(len(idx), dtype=bool)
    use_fb = vw_missing | vw_out
    vw = np.where(use_fb, (h + l + c_) / 3.0, vw)
    n_fb = int(use_fb.sum())
    fixes["vwap_fallback_rows"] = n_fb
    fixes["vwap_out_of_range_replaced"] = int(vw_out.sum())
    amt_missing = np.isnan(amt)
    amt = np.where(amt_missing, vw * v, amt)  # computed before adjustment: invariant to it
    fixes["amount_filled_rows"] = int(amt_missing.sum())
    if not raw.adjusted:
        o, h, l, c_, vw = o * af, h * af, l * af, c_ * af, vw * af
        v = v / af
        fixes["adjusted_rows"] = int(np.count_nonzero(af != 1.0))
    else:
        fixes["adjusted_rows"] = 0
    if n_fb:
        log.warning("%s: vwap missing/invalid on %d of %d rows (%.1f%%); using the fallback "
                    "(high + low + close) / 3", src, n_fb, len(idx), 100.0 * n_fb / len(idx))

    suspended = (v == 0) & ~fill
    fixes["zero_volume_suspended"] = int(suspended.sum())
    flagged = src_suspended[idx]
    if "is_suspended" in flags or "is_trading" in flags:
        fixes["flagged_suspended"] = int(flagged.sum())
    suspended |= flagged | fill

    # previous observed (adjusted) close of the same instrument: limits and jumps
    prev_close = np.empty(len(idx))
    prev_close[by_inst] = _prev_in_group(g_inst, c_[by_inst], np.isfinite(c_[by_inst]))
    limits: dict[str, np.ndarray] = {}
    if cfg.limit_pct is not None or cfg.limit_rules is not None:
        if cfg.limit_rules is not None:
            is_st = flags["is_st"][idx] if "is_st" in flags else np.zeros(len(idx), dtype=bool)
            lim = _row_limits(cfg, inst_uni, ic_sorted, d_sorted, is_st)
            ref_raw = prev_close / af  # the exchange's reference price (ex-rights prev close)
            up_raw, dn_raw = ref_raw * (1 + lim), ref_raw * (1 - lim)
            if cfg.price_tick is not None:
                up_raw = _round_half_up(up_raw, cfg.price_tick)
                dn_raw = _round_half_up(dn_raw, cfg.price_tick)
            up, dn = up_raw * af, dn_raw * af
            fixes["limit_rows_by_pct"] = {f"{k:g}": int(n) for k, n in zip(
                *np.unique(lim[np.isfinite(lim)], return_counts=True))}
        else:
            up = prev_close * (1 + cfg.limit_pct)
            dn = prev_close * (1 - cfg.limit_pct)
        with np.errstate(invalid="ignore"):
            fixes["limit_up_close"] = int(np.count_nonzero(c_ >= up * (1 - LIMIT_RTOL)))
            fixes["limit_down_close"] = int(np.count_nonzero(c_ <= dn * (1 + LIMIT_RTOL)))
            fixes["limit_up_open"] = int(np.count_nonzero(o >= up * (1 - LIMIT_RTOL)))
            fixes["limit_down_open"] = int(np.count_nonzero(o <= dn * (1 + LIMIT_RTOL)))
        fixes["limit_locked"] = fixes["limit_up_close"] + fixes["limit_down_close"]
        limits = {"limit_up": up, "limit_down": dn}
    tradable = ~suspended
    universe = flags["in_universe"][idx] if "in_universe" in flags \
        else np.ones(len(idx), dtype=bool)

    jumps: dict[str, Any] = {"threshold": cfg.jump_log_threshold, "count": 0, "examples": []}
    if cfg.jump_log_threshold is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            lr = np.log(c_ / prev_close)
        big = np.flatnonzero(np.abs(lr) > cfg.jump_log_threshold)
        jumps["count"] = int(big.size)
        if big.size:
            top = big[np.argsort(-np.abs(lr[big]), kind="stable")[:10]]
            jumps["examples"] = [
                f"{inst_uni[ic_sorted[i]]} {pd.Timestamp(d_sorted[i]).date()} "
                f"{np.expm1(lr[i]):+.3f}" for i in top]
            log.warning("%s: %d implausible daily moves (|log return| > %.3g; a split without "
                        "adj_factor?), e.g. %s", src, big.size, cfg.jump_log_threshold,
                        ", ".join(jumps["examples"][:5]))

    ft = np.float32 if cfg.float32 else np.float64
    used = np.unique(ic_k)  # drop categories with no kept row
    remap = np.full(len(inst_uni), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    out = pd.DataFrame({
        DATE_COL: d_sorted,
        INSTRUMENT_COL: pd.Categorical.from_codes(
            remap[ic_sorted],
            categories=pd.Index(np.asarray(inst_uni, dtype=object)[used].astype(str))),
    })
    for name, arr in zip(_FLOAT_OUT, (o, h, l, c_, v, vw, amt, af)):
        out[name] = arr.astype(ft)
    for name, arr in limits.items():
        out[name] = arr.astype(ft)
    out["is_tradable"] = tradable
    out["in_universe"] = universe
    if cfg.keep_extra_columns:
        for col in df.columns:
            if col not in RAW_COLS and col not in out.columns:
                out[col] = df[col].to_numpy()[idx]

    rej_mask = ~kept
    rejected = df[rej_mask].copy()
    rejected["reason"] = pd.Categorical(
        [REJECTION_REASONS[i - 1] for i in reason[rej_mask]], categories=REJECTION_REASONS)
    rejected["reason_detail"] = detail[rej_mask].astype(str)
    if len(rejected):
        log.warning("%s: rejected %d of %d rows: %s", src, len(rejected), n_in, counts)
    assert n_kept + len(rejected) == n_in  # the accounting invariant

    meta = {
        "source": src,
        "vwap_fallback": bool(n_fb > 0),
        "vwap_fallback_fraction": round(n_fb / len(idx), 6),
        "adjusted_by": "source" if raw.adjusted else "adj_factor",
        "limit_pct": cfg.limit_pct,
        "limits": "rules" if cfg.limit_rules is not None else
        ("limit_pct" if cfg.limit_pct is not None else None),
        "rows_rejected": int(len(rejected)),
    }
    report = {
        "source": src,
        "rows": {"in": n_in, "kept": n_kept, "rejected": int(len(rejected))},
        "rejected_by_reason": counts,
        "coverage": coverage(out),
        "missingness_before": missing_before,
        "missingness_after": _missingness(out, [c for c in PANEL_COLS if c in out.columns]),
        "fixes": fixes,
        "jumps": jumps,
        "vwap_fallback": meta["vwap_fallback"],
        "vwap_fallback_fraction": meta["vwap_fallback_fraction"],
        "tradable_fraction": round(float(tradable.mean()), 6),
        "universe_fraction": round(float(universe.mean()), 6),
        "config": asdict(cfg),
    }
    return CleanResult(panel_long=out, rejected_rows=rejected.reset_index(drop=True),
                       report=_jsonable(report), meta=_jsonable(meta))


def coverage(panel_long: pd.DataFrame) -> dict[str, Any]:
    """Coverage of a long panel: dates, instruments, fill ratio, stocks per day."""
    d = panel_long[DATE_COL]
    n_d = int(d.nunique())
    n_i = int(panel_long[INSTRUMENT_COL].nunique())
    per_day = d.value_counts()
    return {
        "rows": int(len(panel_long)),
        "dates": n_d,
        "instruments": n_i,
        "first_date": str(pd.Timestamp(d.min()).date()) if len(d) else None,
        "last_date": str(pd.Timestamp(d.max()).date()) if len(d) else None,
        "fill_ratio": round(len(panel_long) / max(n_d * n_i, 1), 6),
        "instruments_per_date": {
            "min": int(per_day.min()), "median": float(per_day.median()),
            "max": int(per_day.max()),
        } if len(per_day) else {},
    }


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, pd.Timestamp):
        return str(x)
    return x


def data_report(
    result: CleanResult,
    labels: Any = None,
    splits: Any = None,
    panel: Any = None,
) -> dict[str, Any]:
    """JSON-serialisable data report: the cleaning report plus label and split coverage.

    ``labels`` is a ``[T, S]`` tensor/array aligned with ``panel`` (label NaN share per segment
    is reported); ``splits`` a :class:`~alphaminer.data.splits.Splits`.
    """
    rep = dict(result.report)
    if panel is not None:
        rep["panel"] = {"T": panel.T, "S": panel.S, "features": list(panel.features),
                        "fingerprint": panel.fingerprint(), "meta": panel.meta}
    if labels is not None:
        arr = np.asarray(labels.detach().cpu().numpy() if hasattr(labels, "detach") else labels,
                         dtype=np.float64)
        lab = {"valid_fraction": round(float(np.isfinite(arr).mean()), 6),
               "mean": float(np.nanmean(arr)) if np.isfinite(arr).any() else None,
               "std": float(np.nanstd(arr)) if np.isfinite(arr).any() else None}
        if splits is not None:
            lab["valid_fraction_by_segment"] = {
                name: round(float(np.isfinite(arr[i0:i1]).mean()), 6)
                for name, (i0, i1) in splits.ranges.items()}
        rep["labels"] = lab
    if splits is not None:
        rep["splits"] = splits.to_dict()
    return _jsonable(rep)
