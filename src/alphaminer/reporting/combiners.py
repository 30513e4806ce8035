"""The report's "Combiners side by side" section: every combiner an alpha-set method fitted.

Each row is one combiner of one method (``library/lasso_pool``, ``library/xgboost``, ...),
backtested exactly as the method's own signal is (``combination`` pipeline,
``compare_combiners``), in the comparison table's columns, so a researcher sees what the
choice cost or gained without rerunning anything. ``chosen`` marks the method's signal (``auto``
keeps the best validation RankIC; the test figures are shown, never used to choose).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from alphaminer.reporting.results import MethodResults
from alphaminer.reporting.tables import comparison_table

#: columns of a method's ``combiner_comparison`` that are not metrics
_META = ("combiner", "chosen", "segment")


def combiner_rows(tables: Mapping[str, pd.DataFrame | None]
                  ) -> list[tuple[MethodResults, bool]]:
    """``(results, chosen)`` per (method, combiner): results named ``<method>/<combiner>``
    whose metrics are the combiner's backtest and IC figures (methods without a table are
    skipped)."""
    rows: list[tuple[MethodResults, bool]] = []
    for method, table in tables.items():
        if table is None or len(table) == 0 or "combiner" not in table.columns:
            continue
        for _, r in table.iterrows():
            metrics = {k: float(v) for k, v in r.items() if k not in _META
                       and isinstance(v, (int, float)) and not isinstance(v, bool)}
            res = MethodResults(
                name=f"{method}/{r['combiner']}", alphas=None,
                daily=pd.DataFrame({"date": pd.to_datetime([]), "return": []}),
                ic_series=pd.DataFrame({"date": pd.to_datetime([]), "ic": []}),
                quantiles=pd.DataFrame({"date": pd.to_datetime([])}), metrics=metrics)
            rows.append((res, bool(r.get("chosen"))))
    return rows


def combiners_table(tables: Mapping[str, pd.DataFrame | None]) -> pd.DataFrame:
    """The side-by-side table: ``chosen``, ``valid RankIC`` (what ``auto`` compared), then the
    comparison table's display columns, one row per (method, combiner)."""
    rows = combiner_rows(tables)
    if not rows:
        return pd.DataFrame()
    out = comparison_table([m for m, _ in rows])
    valid = [m.metrics.get("valid_rank_ic", float("nan")) for m, _ in rows]
    out.insert(0, "valid RankIC", [f"{v:.4f}" if pd.notna(v) else "–" for v in valid])
    out.insert(0, "chosen", ["✓" if c else "" for _, c in rows])
    return out


def combiners_section(tables: Mapping[str, pd.DataFrame | None],
                      horizon: int | None = None) -> tuple[str, str, str]:
    """``(id, title, html)`` of the report section; says how to get rows when there are none."""
    from alphaminer.reporting.report import esc, frame_table

    table = combiners_table(tables)
    if table.empty:
        body = ('<p class="muted">No combiner comparison in this run: the <code>combination'
                "</code> pipeline writes one per alpha-set method (its <code>auto.candidates"
                "</code>, or the one combiner it was given).</p>")
    else:
        label = f"the {horizon}-day label" if horizon else "the label"
        body = (f"<p>Every combiner each alpha-set method fitted, backtested exactly as the "
                f"method's own signal (same segment, portfolio and costs). IC and RankIC are "
                f"against {esc(label)}. <b>chosen</b> is the method's signal: the best "
                f"validation RankIC (<code>auto</code>); the test columns were not used to "
                f"choose.</p>" + frame_table(table.reset_index().rename(
                    columns={"method": "method/combiner"})))
    return "combiners", "Combiners side by side", body
