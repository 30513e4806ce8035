"""The multi-seed method comparison: one record per (method, seed) → the papers' tables.

A *record* is the plain-JSON summary of one finished (or failed) method run with one seed, written
by the ``comparison`` pipeline (one versioned dataset per pair). This module turns a list of them
into the tables of AlphaFormer's Table 1 and Alpha2's Table 4, each cell the mean (std) over the
seeds, plus, on the simulator, each method's test IC as a share of the oracle's and which planted
formulas it recovered. It knows nothing of Kedro, so a notebook can feed it records by hand.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from alphaminer.evaluation.recovery import RECOVERY_THRESHOLD
from alphaminer.reporting.tables import COLUMNS, MISSING, Column, _fmt, _lookup

#: parameters that differ between the pairs of one comparison and so do not enter its hash
PAIR_KEYS: tuple[str, ...] = ("seed", "data_root", "comparison")

#: Table 1's columns (AlphaFormer's layout), by label from :data:`~.tables.COLUMNS`
TABLE1_LABELS: tuple[str, ...] = ("IC", "RankIC", "ICIR", "RankICIR", "Num Factors", "Sharpe",
                                  "CAGR", "MDD", "Turnover")
#: Table 4's columns (Alpha2's layout): the mined alphas' own test IC and mutual correlation
TABLE4_COLUMNS: tuple[Column, ...] = (
    Column("IC", ("ic_mean",), ".4f"),
    Column("RankIC", ("rank_ic_mean",), ".4f"),
    Column("Mean mutual |corr|", ("mean_mutual_abs_corr",), ".3f"),
    Column("Alphas", ("n_alphas",), "n"),
)


def comparison_hash(parameters: Mapping[str, Any]) -> str:
    """12 hex digits of the SHA-256 of the parameters that all pairs of one comparison share.

    The seed, the data root, the ``comparison`` block itself and every ``checkpoint_dir`` (it
    resolves under the pair's data root and does not change results) are left out, so adding a
    seed or a method keeps the finished pairs; any other parameter change starts a fresh
    comparison tree.
    """
    from alphaminer.reporting.manifest import canonical, canonical_json

    # canonical first: typed parameter models become the mappings they were written as
    shared = _without_paths(canonical({k: v for k, v in parameters.items()
                                       if k not in PAIR_KEYS}))
    return hashlib.sha256(canonical_json(shared).encode()).hexdigest()[:12]


#: keys that only say where a run keeps its resumable state, not what it computes; they resolve
#: under each pair's own data root, so they differ from pair to pair
LOCATION_KEYS: frozenset[str] = frozenset({"checkpoint_dir"})


def _without_paths(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _without_paths(v) for k, v in value.items() if k not in LOCATION_KEYS}
    if isinstance(value, (list, tuple)):
        return [_without_paths(v) for v in value]
    return value


def pair_root(base: str, digest: str, seed: int) -> str:
    """The data root of one seed of one comparison: ``<base>/<digest>/seed_<seed>``."""
    return f"{base.rstrip('/')}/{digest}/seed_{int(seed)}"


def _finite(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None


def make_record(method: str, seed: int, digest: str, metrics: Mapping[str, Any],
                mined: Mapping[str, Any] | None = None,
                planted_corr: Mapping[str, float] | None = None) -> dict[str, Any]:
    """The record of one finished pair: its backtest/IC metrics (numbers only), its mined
    alphas' Table-4 figures (formula miners), and its best |corr| with each planted formula."""
    return {
        "method": str(method), "seed": int(seed), "params_hash": str(digest), "status": "ok",
        "error": None,
        "metrics": {k: _finite(v) for k, v in metrics.items()
                    if isinstance(v, int | float) and not isinstance(v, bool)},
        "mined": None if mined is None else {k: _finite(v) for k, v in mined.items()},
        "planted_corr": {str(k): _finite(v) for k, v in (planted_corr or {}).items()},
    }


def failed_record(method: str, seed: int, digest: str, error: str) -> dict[str, Any]:
    """The record of a pair whose run failed; a rerun of the comparison retries it."""
    return {"method": str(method), "seed": int(seed), "params_hash": str(digest),
            "status": "failed", "error": str(error), "metrics": {}, "mined": None,
            "planted_corr": {}}


def is_finished(record: Mapping[str, Any] | None) -> bool:
    """A pair is finished when its latest record says ``ok``."""
    return bool(record) and record.get("status") == "ok"


def _select(records: Sequence[Mapping[str, Any]], digest: str | None, methods: Sequence[str],
            seeds: Sequence[int]) -> dict[tuple[str, int], Mapping[str, Any]]:
    out: dict[tuple[str, int], Mapping[str, Any]] = {}
    for r in records:
        key = (str(r.get("method")), int(r.get("seed", -1)))
        if digest is not None and r.get("params_hash") != digest:
            continue
        if key[0] in methods and key[1] in seeds:
            out[key] = r
    return out


def format_mean_std(mean: float, std: float, fmt: str) -> str:
    """The papers' ``"0.0512 (0.0031)"``; the mean alone for one seed; ``–`` when missing."""
    if not np.isfinite(mean):
        return MISSING
    return _fmt(mean, fmt) if not np.isfinite(std) else f"{_fmt(mean, fmt)} ({_fmt(std, fmt)})"


def _stats(values: Sequence[float | None]) -> tuple[float, float, int]:
    v = np.array([np.nan if x is None else x for x in values], dtype=np.float64)
    v = v[np.isfinite(v)]
    if not v.size:
        return float("nan"), float("nan"), 0
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else float("nan"), int(v.size)


def _table(rows_by_method: Mapping[str, list[Mapping[str, Any]]], columns: Sequence[Column]
           ) -> tuple[pd.DataFrame, pd.DataFrame]:
    text, num = [], []
    for m, dicts in rows_by_method.items():
        t: dict[str, Any] = {"method": m, "seeds": len(dicts)}
        n: dict[str, Any] = {"method": m, "seeds": len(dicts)}
        for c in columns:
            mean, std, _ = _stats([_lookup(d, c.keys) for d in dicts])
            t[c.label] = format_mean_std(mean, std, c.fmt)
            n[f"{c.label} mean"], n[f"{c.label} std"] = mean, std
        text.append(t)
        num.append(n)
    return pd.DataFrame(text), pd.DataFrame(num)


def summarise(records: Sequence[Mapping[str, Any]], methods: Sequence[str], seeds: Sequence[int],
              digest: str | None = None, oracle: str = "oracle",
              threshold: float = RECOVERY_THRESHOLD) -> dict[str, pd.DataFrame]:
    """The comparison's tables from the records of one comparison (``digest``; all when None).

    Returns frames keyed ``status`` (one row per requested pair: ok / failed / missing, with the
    error), ``table1`` and ``table1_numeric`` (Table 1: per method over its finished seeds; Num
    Factors is blank for methods without formulas), ``table4``/``table4_numeric`` (formula miners
    only: the mean over seeds of their alphas' mean test IC and mutual |corr|), ``oracle_share``
    (test IC / the oracle's test IC of the same seed, then mean (std)) and ``recovery`` (per
    method × planted formula: the seeds with best |corr| ≥ ``threshold``, and the mean |corr|).
    """
    seeds = [int(s) for s in seeds]
    chosen = _select(records, digest, list(methods), seeds)
    status = []
    for m in methods:
        for s in seeds:
            r = chosen.get((m, s))
            status.append({"method": m, "seed": s,
                           "status": "missing" if r is None else r.get("status", "?"),
                           "error": "" if r is None else (r.get("error") or "")})
    ok = {k: r for k, r in chosen.items() if is_finished(r)}
    by_method = {m: [ok[(m, s)] for s in seeds if (m, s) in ok] for m in methods}
    by_method = {m: rs for m, rs in by_method.items() if rs}
    cols1 = [c for label in TABLE1_LABELS for c in COLUMNS if c.label == label]
    table1, table1_num = _table({m: [r["metrics"] for r in rs] for m, rs in by_method.items()},
                                cols1)
    miners = {m: [r["mined"] for r in rs if r.get("mined")] for m, rs in by_method.items()}
    table4, table4_num = _table({m: d for m, d in miners.items() if d}, TABLE4_COLUMNS)
    share_rows = []
    for m, rs in by_method.items():
        shares = []
        for r in rs:
            o = ok.get((oracle, r["seed"]))
            ic, oic = r["metrics"].get("ic"), (o or {}).get("metrics", {}).get("ic")
            shares.append(ic / oic if ic is not None and oic not in (None, 0.0) else None)
        mean, std, n = _stats(shares)
        share_rows.append({"method": m, "seeds": n, "test IC / oracle": format_mean_std(
            mean, std, ".1%"), "share mean": mean, "share std": std})
    recovery_rows = []
    for m, rs in by_method.items():
        names = sorted({p for r in rs for p in r.get("planted_corr", {})})
        for p in names:
            corr = [r.get("planted_corr", {}).get(p) for r in rs]
            hits = [s["seed"] for s, c in zip(rs, corr) if c is not None and c >= threshold]
            mean, std, n = _stats(corr)
            recovery_rows.append({"method": m, "planted": p, "recovered": f"{len(hits)}/{len(rs)}",
                                  "recovered_seeds": ",".join(map(str, hits)),
                                  "mean |corr|": mean, "std |corr|": std})
    return {"status": pd.DataFrame(status), "table1": table1, "table1_numeric": table1_num,
            "table4": table4, "table4_numeric": table4_num,
            "oracle_share": pd.DataFrame(share_rows), "recovery": pd.DataFrame(recovery_rows)}


def summary_to_json(summary: Mapping[str, pd.DataFrame]) -> dict[str, Any]:
    """JSON-safe form (lists of row dicts, NaN → null) for a JSON dataset."""
    return {k: json.loads(v.to_json(orient="records")) for k, v in summary.items()}


def comparison_html(summary: Mapping[str, pd.DataFrame], methods: Sequence[str],
                    seeds: Sequence[int], digest: str | None = None,
                    command: str = "kedro compare") -> str:
    """The report section: Table 1, Table 4, the oracle share, recovery and the pair status."""
    from alphaminer.reporting.report import esc, frame_table

    status = summary.get("status", pd.DataFrame())
    n_ok = int((status["status"] == "ok").sum()) if len(status) else 0
    head = (f"<p>{n_ok} of {len(status)} (method, seed) pairs finished: methods "
            f"{esc(', '.join(methods))} × seeds {esc(', '.join(map(str, seeds)))}"
            + (f", comparison <code>{esc(digest)}</code>" if digest else "")
            + f". Produced by <code>{esc(command)}</code>; each cell is the mean (sample std) "
            "over the finished seeds, on the test segment.</p>")
    if not n_ok:
        return head + ('<p class="muted">No finished pair for these parameters yet. Run '
                       f"<code>{esc(command)}</code> (README.md, \"Compare methods over seeds\")."
                       "</p>")
    parts = [head, "<h3>Table 1: signal quality and portfolio</h3>",
             frame_table(summary["table1"]),
             '<p class="muted">IC/RankIC: mean daily cross-sectional (rank) correlation with the '
             "forward-return label; ICIR = mean / std of the daily IC; Num Factors = candidate "
             "formulas generated (blank: no formulas); Sharpe, CAGR, MDD, turnover of the top-k "
             "portfolio (docs/metrics.md).</p>"]
    if len(summary.get("table4", ())):
        parts += ["<h3>Table 4: the mined alphas themselves</h3>", frame_table(summary["table4"]),
                  '<p class="muted">Mean test IC/RankIC of each alpha in the set, each alpha '
                  "oriented by the sign of its train IC (a pool gives a negative-IC alpha a "
                  "negative weight), and their mean mutual |corr| (lower = more diverse).</p>"]
    share = summary.get("oracle_share", pd.DataFrame())
    if len(share) and share["share mean"].notna().any():
        parts += ["<h3>Test IC as a share of the oracle's</h3>",
                  frame_table(share[["method", "seeds", "test IC / oracle"]])]
    rec = summary.get("recovery", pd.DataFrame())
    if len(rec):
        parts += [f"<h3>Planted formulas recovered (|corr| ≥ {RECOVERY_THRESHOLD})</h3>",
                  frame_table(rec.pivot(index="method", columns="planted", values="recovered")
                              .reset_index())]
    bad = status[status["status"] != "ok"] if len(status) else status
    if len(bad):
        parts += ["<h3>Pairs not finished</h3>", frame_table(bad)]
    return "".join(parts)


def records_frame(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One flat row per record (``metrics.*``, ``mined.*``, ``planted.*``), e.g. for a CSV."""
    rows = []
    for r in records:
        row = {k: r.get(k) for k in ("method", "seed", "params_hash", "status", "error")}
        row.update({f"metrics.{k}": v for k, v in (r.get("metrics") or {}).items()})
        row.update({f"mined.{k}": v for k, v in (r.get("mined") or {}).items()})
        row.update({f"planted.{k}": v for k, v in (r.get("planted_corr") or {}).items()})
        rows.append(row)
    return pd.DataFrame(rows)
