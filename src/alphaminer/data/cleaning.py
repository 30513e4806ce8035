"""Validation and cleaning: raw long frame → adjusted long panel + quarantined rows + report.

Row accounting is exact: every input row is either kept in :attr:`CleanResult.panel_long` or
appears once in :attr:`CleanResult.rejected_rows` with exactly one ``reason`` (the first rule it
breaks, in the order of :data:`REJECTION_REASONS`). Problems that make the whole input unusable
(a non-numeric column, no rows left) raise :class:`DataValidationError` instead.

Rules (DESIGN §3):

- ``missing_instrument``: empty instrument code.
- ``non_numeric``: text in a numeric column (the column is named in ``reason_detail``); a column
  that is mostly text is a wrong dtype and raises.
- ``missing_value``: NaN in ``open/high/low/close/volume``.
- ``non_finite``: ±inf in any numeric column.
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

Fixes (counted in the report): sorting, adjustment (prices × adj_factor, volume / adj_factor),
vwap fallback ``(high + low + close) / 3`` where vwap is missing/NaN or outside [low, high]
(WARNING logged, ``meta["vwap_fallback"]``), ``amount = vwap · volume`` where missing, OHLC repair
(policy ``repair``). Not tradable: ``is_suspended``, zero volume, limit-locked days
(``|close / prev_close − 1| ≥ limit_pct`` on adjusted closes, off by default; 0.099 for CN).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from alphaminer.runtime import config_from

from .schema import (
    DATE_COL,
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
    "missing_value",
    "non_finite",
    "non_positive_price",
    "negative_volume",
    "negative_amount",
    "bad_adj_factor",
    "ohlc_inconsistent",
    "zero_volume",
    "duplicate_row",
    "duplicate_conflict",
)
PANEL_COLS: tuple[str, ...] = (
    DATE_COL, INSTRUMENT_COL, "open", "high", "low", "close", "volume", "vwap", "amount",
    "adj_factor", "is_tradable", "in_universe",
)
_FLOAT_OUT = ("open", "high", "low", "close", "volume", "vwap", "amount", "adj_factor")
_TRUE_STRINGS = {"1", "1.0", "true", "t", "yes", "y"}


@dataclass
class CleanConfig:
    """Cleaning policy.

    Attributes:
        ohlc_policy: ``"reject"`` inconsistent OHLC rows or ``"repair"`` them (high/low widened).
        ohlc_tolerance: relative slack for the OHLC and vwap-range checks (float rounding).
        zero_volume: ``"suspend"`` (keep, not tradable) or ``"reject"``.
        limit_pct: daily |return| at which a day counts as limit-locked (not tradable); None = off.
        vwap_range_check: vwap outside [low, high] is replaced by the fallback.
        max_non_numeric_fraction: above this share of unparseable values a numeric column is a
            wrong dtype and raises instead of quarantining rows.
        float32: store numeric panel columns as float32 (the Panel is float32 anyway).
        keep_extra_columns: carry source columns outside the raw schema through to the panel.
    """

    ohlc_policy: str = "reject"
    ohlc_tolerance: float = 1e-6
    zero_volume: str = "suspend"
    limit_pct: float | None = None
    vwap_range_check: bool = True
    max_non_numeric_fraction: float = 0.5
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

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> CleanConfig:
        return config_from(cls, d)


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


def _to_bool(s: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(s):
        return s.fillna(False).to_numpy(dtype=bool)
    if pd.api.types.is_numeric_dtype(s):
        v = s.to_numpy(dtype=np.float64, na_value=np.nan)
        return np.nan_to_num(v, nan=0.0) != 0
    return s.astype(str).str.strip().str.lower().isin(_TRUE_STRINGS).to_numpy()


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

    dates = _parse_dates(df[DATE_COL], None, src, df).to_numpy()
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

    inst = df[INSTRUMENT_COL]
    if isinstance(inst.dtype, pd.CategoricalDtype):
        codes = inst.cat.codes.to_numpy()
        empty_cat = inst.cat.categories.astype(str).str.strip().to_numpy() == ""
        no_inst = (codes < 0) | np.append(empty_cat, True)[codes]
        inst_codes, inst_uni = codes.astype(np.int64), inst.cat.categories
        if not inst.cat.ordered and not inst_uni.is_monotonic_increasing:
            inst_codes, inst_uni = pd.factorize(inst, sort=True)
    else:
        no_inst = inst.isna().to_numpy() | (inst.astype(str).str.strip() == "").to_numpy()
        inst_codes, inst_uni = pd.factorize(inst.astype(str), sort=True)
    flag("missing_instrument", no_inst, INSTRUMENT_COL)

    num: dict[str, np.ndarray] = {}
    for c in NUMERIC_COLS:
        if c in df.columns:
            vals, bad = _coerce_numeric(df, c, src, cfg)
            num[c] = vals
            flag("non_numeric", bad, c)
    o, h, l, c_, v = (num[k] for k in ("open", "high", "low", "close", "volume"))

    def which(cols: list[str], test: Any) -> tuple[np.ndarray, tuple[list[str], np.ndarray]]:
        """Rows failing ``test`` in any of ``cols`` and, per row, the first such column."""
        mask = np.zeros(n_in, dtype=bool)
        code = np.zeros(n_in, dtype=np.int8)
        for i, k in enumerate(cols):
            m = test(num[k])
            m &= ~mask
            code[m] = i
            mask |= m
        return mask, (cols, code)

    flag("missing_value", *which([*PRICE_COLS, "volume"], np.isnan))
    flag("non_finite", *which(list(num), np.isinf))
    with np.errstate(invalid="ignore"):
        flag("non_positive_price", *which(list(PRICE_COLS), lambda x: x <= 0))
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
    d_codes, _ = pd.factorize(dates, sort=False)
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
    fixes: dict[str, Any] = {"resorted": not was_sorted}
    if not was_sorted:
        log.info("%s: input was not sorted by (datetime, instrument); sorted it", src)

    def take(name: str, default: float = np.nan) -> np.ndarray:
        return num[name][idx] if name in num else np.full(len(idx), default)

    o, h, l, c_, v = (take(k) for k in ("open", "high", "low", "close", "volume"))
    vw, amt, af = take("vwap"), take("amount"), take("adj_factor", 1.0)
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

    suspended = v == 0
    fixes["zero_volume_suspended"] = int(suspended.sum())
    if "is_suspended" in df.columns:
        flagged = _to_bool(df["is_suspended"])[idx]
        fixes["flagged_suspended"] = int(flagged.sum())
        suspended |= flagged
    locked = np.zeros(len(idx), dtype=bool)
    ic_sorted = ic_k[order]
    if cfg.limit_pct is not None:
        # previous observed close of the same instrument (rows are sorted by date, instrument)
        by_inst = np.argsort(ic_sorted, kind="stable")
        cs = c_[by_inst]
        same = np.r_[False, ic_sorted[by_inst][1:] == ic_sorted[by_inst][:-1]]
        prev = np.where(same, np.r_[np.nan, cs[:-1]], np.nan)
        ret = np.empty(len(idx))
        ret[by_inst] = cs / prev - 1.0
        with np.errstate(invalid="ignore"):
            locked = np.abs(ret) >= cfg.limit_pct - 1e-9
        fixes["limit_locked"] = int(locked.sum())
    tradable = ~suspended & ~locked
    universe = _to_bool(df["in_universe"])[idx] if "in_universe" in df.columns \
        else np.ones(len(idx), dtype=bool)

    ft = np.float32 if cfg.float32 else np.float64
    used = np.unique(ic_k)  # drop categories with no kept row
    remap = np.full(len(inst_uni), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    out = pd.DataFrame({
        DATE_COL: d_k[order],
        INSTRUMENT_COL: pd.Categorical.from_codes(
            remap[ic_sorted],
            categories=pd.Index(np.asarray(inst_uni, dtype=object)[used].astype(str))),
    })
    for name, arr in zip(_FLOAT_OUT, (o, h, l, c_, v, vw, amt, af)):
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
