"""The research report's synthetic-markets section: the stylised facts of the real data, of
each generator and of the evaluator-selected data, their discriminator AUC and win shares,
and the target (selected AUC no higher than the best single generator's).

Input is the ``synthetic_quality`` JSON of the ``synthetic_generation`` pipeline
(:func:`alphaminer.synthetic.quality_report`); the figure is rebuilt from it when none is
given, since the saved PNG dataset cannot be loaded back.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from alphaminer.reporting.report import esc, frame_table

SECTION_ID = "synthetic-markets"
TITLE = "Synthetic markets"

#: quality-report keys → table headers, in order (missing keys are skipped)
FACT_HEADERS: tuple[tuple[str, str], ...] = (
    ("source", "source"),
    ("ret_std", "return std"),
    ("ret_skew", "skew"),
    ("ret_excess_kurtosis", "excess kurtosis"),
    ("z_q01", "z 1 %"),
    ("z_q99", "z 99 %"),
    ("acf_ret_1", "ACF ret lag 1"),
    ("acf_abs_ret_1", "ACF |ret| lag 1"),
    ("acf_abs_ret_mean", "ACF |ret| mean"),
    ("vol_absret_corr", "corr(log vol, |ret|)"),
    ("cross_corr", "cross-sectional corr"),
    ("discriminator_auc", "discriminator AUC"),
    ("discriminator_auc_std", "AUC std"),
    ("win_share", "win share"),
    ("windows", "windows"),
)

RUN_COMMAND = "kedro run --pipelines=ingestion,synthetic_generation"


def _png_base64(figure: Any) -> str | None:
    """Base64 PNG of a matplotlib figure, PNG bytes, or a PIL image (``None`` if none)."""
    if figure is None:
        return None
    if isinstance(figure, bytes | bytearray):
        return base64.b64encode(bytes(figure)).decode("ascii")
    if hasattr(figure, "savefig"):
        from alphaminer.reporting.figures import figure_to_base64_png

        return figure_to_base64_png(figure)
    if hasattr(figure, "save"):  # a PIL image
        buf = io.BytesIO()
        figure.save(buf, format="PNG")
        return base64.b64encode(buf.getvalue()).decode("ascii")
    raise TypeError(f"figure must be a matplotlib Figure, PNG bytes or a PIL image, "
                    f"got {type(figure).__name__}")


def _num(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def facts_table(quality: Mapping[str, Any]) -> pd.DataFrame:
    """One row per source (real, each generator, selected) with readable headers."""
    rows = pd.DataFrame(list(quality.get("facts", [])))
    if rows.empty:
        return rows
    std = quality.get("auc_std", {}) or {}
    if "discriminator_auc_std" not in rows and std:
        rows["discriminator_auc_std"] = [std.get(s, float("nan")) for s in rows["source"]]
    if "real" in set(rows["source"]):  # real is the reference: no AUC or win share
        for col in ("discriminator_auc", "discriminator_auc_std", "win_share"):
            if col in rows:
                rows.loc[rows["source"] == "real", col] = float("nan")
    keep = [(k, h) for k, h in FACT_HEADERS if k in rows]
    return rows[[k for k, _ in keep]].rename(columns=dict(keep))


def target_line(quality: Mapping[str, Any]) -> str:
    """The issue's target as one sentence: met or missed, with both AUCs (HTML)."""
    t = quality.get("target") or {}
    if not t:
        return ('<p class="muted">Target not evaluated: it needs the selected data and at '
                "least one generator (single-generator ablation?).</p>")
    sel, best = _num(t.get("selected_auc")), _num(t.get("best_generator_auc"))
    std = quality.get("auc_std", {}) or {}
    s_sel, s_best = _num(std.get("selected")), _num(std.get(t.get("best_generator")))

    def pm(s: float) -> str:
        return f" ± {s:.3f}" if np.isfinite(s) else ""

    met = bool(t.get("met"))
    verdict = "<b>met</b>" if met else "<b>missed</b>"
    gap = sel - best
    diff, se = _num(t.get("difference", gap)), _num(t.get("difference_se"))
    if np.isfinite(se):
        k = t.get("folds_total", "?")
        noise = (f"paired per-fold difference {diff:+.3f} ± {se:.3f} (standard error over "
                 f"{esc(k)} folds with the same real windows and splits; "
                 + ("more than twice its standard error" if t.get("decisive")
                    else "<b>within</b> twice its standard error: not decisive") + ")")
    else:
        noise = f"difference {gap:+.3f}"
    return (f"<p>Target — the selected data's discriminator AUC is no higher than the best "
            f"single generator's: {verdict}. Selected {sel:.3f}{pm(s_sel)} vs best generator "
            f"<code>{esc(t.get('best_generator', '?'))}</code> {best:.3f}{pm(s_best)} "
            f"(± is the std over cross-validation folds); {noise}.</p>")


def synthetic_section(quality: Mapping[str, Any] | None, figure: Any = None
                      ) -> tuple[str, str, str]:
    """``(section_id, title, html)`` of the synthetic-markets quality report.

    ``quality`` is the ``synthetic_quality`` JSON (``None`` when the gpu-tagged
    ``synthetic_generation`` pipeline did not run: the section then says how to run it).
    ``figure`` is a matplotlib figure, PNG bytes or a PIL image; when ``None`` the figure is
    rebuilt from ``quality`` (densities fall back to the 1 %/99 % quantiles).
    """
    if not quality:
        body = ("<p class=\"muted\">Not run in this report's run: "
                "<code>synthetic_generation</code> is tagged <code>gpu</code> and is not part "
                f"of the default run. Run it with <code>{esc(RUN_COMMAND)}</code>.</p>")
        return SECTION_ID, TITLE, body
    cfg = quality.get("config", {}) or {}
    parts = [
        "<p>Stylised facts of the real (train-split) data, of every generator's candidates and "
        "of the evaluator-selected data (the LSTM evaluator keeps, per stock, the most likely "
        "candidate), all on the same contexts. A discriminator "
        f"({esc(cfg.get('classifier', '?'))}, {esc(cfg.get('folds', '?'))}-fold CV on "
        f"{esc(cfg.get('window', '?'))}-day windows, {esc(cfg.get('markets', '?'))} markets) "
        "separates real from synthetic windows: AUC 0.5 is indistinguishable, lower is "
        "better. Win share: the fraction of stocks, over every market, whose kept candidate "
        "came from that generator.</p>",
        target_line(quality),
        frame_table(facts_table(quality)),
    ]
    markets = pd.DataFrame(list(quality.get("markets", []) or []))
    if not markets.empty:
        parts.append("<p>Markets built (size, context end day, generator wins):</p>"
                     + frame_table(markets))
    if figure is None:
        from alphaminer.synthetic.quality import quality_figure

        figure = quality_figure(quality)
    b64 = _png_base64(figure)
    if b64:
        parts.append(f'<figure><img alt="synthetic market quality" '
                     f'src="data:image/png;base64,{b64}"><figcaption>Return densities (or '
                     "quantiles), autocorrelation of |returns| and of returns, discriminator "
                     "AUC and win share per source</figcaption></figure>")
    return SECTION_ID, TITLE, "".join(parts)


__all__ = ["FACT_HEADERS", "RUN_COMMAND", "facts_table", "synthetic_section", "target_line"]
