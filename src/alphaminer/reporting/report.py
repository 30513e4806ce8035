"""The self-contained HTML research report.

One file: figures are embedded as base64 PNG data URIs, CSS is inline, there is no JavaScript and
no external resource of any kind, so the report opens the same offline, from an e-mail or from a
versioned catalog folder. Every string that comes from data (method names, formulas, notes,
manifest values) goes through :func:`html.escape`.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from alphaminer.reporting.figures import (
    FIGURE_KEYS,
    FigureConfig,
    add_figure_file,
    figure_png,
    figure_to_base64_png,
    horizon_text,
    ic_decay_figure,
    method_figures,
    quantile_columns,
    tearsheet_figures,
)
from alphaminer.reporting.results import ALPHA_COLUMNS, MethodResults
from alphaminer.reporting.tables import BENCHMARK_ROW, MISSING, comparison_table
from alphaminer.reporting.tearsheet import ic_decay, quantile_spread, rank_autocorr_summary

#: Comparison columns where a smaller value is not "better" or there is no better (not bolded).
_NO_BEST = {"Turnover", "Num Factors", "Seeds", "Vol"}

_FIGURE_CAPTIONS = {
    "cumret_vs_benchmark": "Cumulative return of the strategy (compounded) vs the benchmark; "
                           "the dashed line is the cumulative sum of daily excess returns.",
    "drawdown": "Drawdown of the compounded equity curve (and of the benchmark).",
    "ic_series": "Daily IC of the signal with its rolling mean (and the RankIC rolling mean).",
    "quintiles": "Left: annualised mean forward return of each signal group "
                 "(highest group = highest signal). Right: cumulative long–short return.",
    "turnover": "Daily portfolio turnover with its rolling mean.",
}

_CSS = """
:root { --fg:#1d2125; --muted:#5c6670; --line:#d8dde3; --accent:#1f4e9c; --bg:#ffffff; }
* { box-sizing: border-box; }
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--fg); background: var(--bg); margin: 0 auto; padding: 24px 32px 48px;
       max-width: 1180px; line-height: 1.45; font-size: 14px; }
h1 { font-size: 26px; margin: 0 0 8px; }
h2 { font-size: 20px; margin: 36px 0 10px; padding-bottom: 4px;
     border-bottom: 2px solid var(--accent); }
h3 { font-size: 16px; margin: 22px 0 8px; color: var(--accent); }
header { border-bottom: 1px solid var(--line); padding-bottom: 12px; }
nav { margin: 14px 0; font-size: 13px; }
nav a { margin-right: 14px; color: var(--accent); text-decoration: none; }
table { border-collapse: collapse; margin: 6px 0 12px; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 4px 8px; vertical-align: top; }
th { background: #f1f4f8; text-align: left; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.best { font-weight: 700; background: #eef6ee; }
table.kv th { width: 180px; }
code { font-family: "SFMono-Regular", Menlo, Consolas, "Liberation Mono", monospace;
       font-size: 12px; background: #f5f6f8; padding: 1px 3px; border-radius: 3px;
       word-break: break-all; }
.wide { overflow-x: auto; }
figure { margin: 10px 0 18px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 12px; margin-top: 2px; }
.muted { color: var(--muted); }
.sd { color: var(--muted); font-size: 11px; }
ul.notes { margin: 4px 0 10px; padding-left: 20px; }
details pre { background: #f5f6f8; padding: 10px; overflow-x: auto; font-size: 12px; }
td code, td { overflow-wrap: anywhere; }
td code { white-space: pre-wrap; word-break: break-all; }
table.wrap { width: 100%; }
table.wrap td code { overflow-wrap: anywhere; word-break: normal; }
tr.bench th, tr.bench td { background: #f7f7f2; font-style: italic; }
.warn { border-left: 4px solid #c92a2a; background: #fff4f4; padding: 6px 10px; margin: 8px 0;
        color: #7a1010; }
details.group { margin: 4px 0; }
details.group > summary { cursor: pointer; font-weight: 600; }
footer { margin-top: 40px; border-top: 1px solid var(--line); padding-top: 10px; font-size: 13px; }
footer dt { font-weight: 600; margin-top: 6px; }
footer dd { margin-left: 18px; }
"""


@dataclass(frozen=True)
class ReportConfig:
    """Display limits of the report.

    Attributes:
        figures: figure settings (rolling window, annualisation, horizon, dpi).
        max_alpha_rows: alphas shown per method (the rest are counted, not shown).
        max_table_rows: rows shown of any other table (attribution, planted, data report).
        tearsheet_figures: draw each method's tear-sheet figures (the cross-method tear-sheet
            table and decay chart are drawn either way).
    """

    figures: FigureConfig = field(default_factory=FigureConfig)
    max_alpha_rows: int = 50
    max_table_rows: int = 200
    tearsheet_figures: bool = True


def esc(x: Any) -> str:
    """HTML-escaped ``str(x)`` (quotes included, safe inside attributes)."""
    return html.escape(str(x), quote=True)


def _slug(name: str, i: int) -> str:
    s = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()
    return f"m{i}-{s}" if s else f"m{i}"


def _fmt_cell(v: Any) -> tuple[str, bool]:
    """``(escaped text, is_number)`` of one table cell."""
    if v is None:
        return MISSING, False
    if isinstance(v, bool | np.bool_):
        return esc(v), False
    if isinstance(v, int | np.integer):
        return esc(int(v)), True
    if isinstance(v, float | np.floating):
        f = float(v)
        if not np.isfinite(f):
            return MISSING, True
        if f != 0 and (abs(f) >= 1e5 or abs(f) < 1e-3):
            return esc(f"{f:.3e}"), True
        return esc(f"{f:.4f}" if abs(f) < 100 else f"{f:,.1f}"), True
    if isinstance(v, pd.Timestamp):
        return esc(v.date() if v == v.normalize() else v), False
    try:
        if pd.isna(v):
            return MISSING, False
    except (TypeError, ValueError):
        pass
    return esc(v), False


def frame_table(df: pd.DataFrame, code_columns: Sequence[str] = (), max_rows: int = 200,
                index: bool = False, table_class: str = "",
                numeric_columns: Sequence[str] = ()) -> str:
    """An escaped HTML table of ``df`` (``code_columns`` rendered as ``<code>``; ``table_class``
    e.g. ``"wrap"``: a full-width table whose long cells wrap instead of overflowing;
    ``numeric_columns``: pre-formatted number text, aligned as numbers)."""
    if df is None or len(df.columns) == 0:
        return '<p class="muted">(empty)</p>'
    shown = df.iloc[:max_rows]
    head = "".join(f"<th>{esc(c)}</th>" for c in ([df.index.name or ""] if index else [])
                   + list(df.columns))
    body = []
    for idx, row in zip(shown.index, shown.itertuples(index=False, name=None)):
        cells = [f"<th>{esc(idx)}</th>"] if index else []
        for col, v in zip(df.columns, row):
            text, is_num = _fmt_cell(v)
            is_num = is_num or col in numeric_columns
            if col in code_columns and text != MISSING:
                cells.append(f"<td><code>{text}</code></td>")
            else:
                cells.append(f'<td class="num">{text}</td>' if is_num else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = (f'<p class="muted">{len(df) - max_rows} more row(s) not shown.</p>'
            if len(df) > max_rows else "")
    if not body:
        body.append(f'<tr><td colspan="{len(df.columns) + int(index)}" class="muted">'
                    "(no rows)</td></tr>")
    cls = f' class="{esc(table_class)}"' if table_class else ""
    return (f'<div class="wide"><table{cls}><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>{more}')


def _comparison_html(methods: Sequence[MethodResults]) -> str:
    text = comparison_table(methods, benchmark=True)
    num = comparison_table(methods, numeric=True, benchmark=True)
    bench_text = text.iloc[len(methods):]
    lh = next((m.label_horizon for m in methods if m.label_horizon), None)
    text, num = text.iloc[:len(methods)], num.iloc[:len(methods)]
    best: dict[str, float] = {}
    for c in text.columns:
        if c in _NO_BEST or c not in num.columns or len(methods) < 2:
            continue
        vals = pd.to_numeric(num[c], errors="coerce")
        if vals.notna().sum() >= 2:
            best[c] = float(vals.max())
    head = "<th>method</th><th>combiner</th>" + "".join(f"<th>{esc(c)}</th>"
                                                         for c in text.columns)
    rows = []
    for i, m in enumerate(methods):
        cells = [f'<th><a href="#{_slug(m.name, i)}">{esc(m.name)}</a></th>',
                 f'<td class="combiner">{esc(m.combiner or "–")}</td>']
        for c in text.columns:
            is_best = c in best and float(num.iloc[i][c]) == best[c]
            cls = "num best" if is_best else "num"
            mean, _, std = str(text.iloc[i][c]).partition(" ± ")
            std_html = f'<br><span class="sd">± {esc(std)}</span>' if std else ""
            cells.append(f'<td class="{cls}">{esc(mean)}{std_html}</td>')
        flag = ' <span title="see the warnings" style="color:#c92a2a">⚠</span>' \
            if m.warnings else ""
        rows.append("<tr>" + cells[0].replace("</a></th>", f"</a>{flag}</th>")
                    + "".join(cells[1:]) + "</tr>")
    for _label, row in bench_text.iterrows():  # not a method: never bold, factor columns blank
        rows.append(f'<tr class="bench"><th>{esc(BENCHMARK_ROW)}</th><td>–</td>' + "".join(
            f'<td class="num">{esc(row[c])}</td>' for c in text.columns) + "</tr>")
    return (f'<div class="wide"><table class="comparison"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>'
            '<p class="muted">Bold: best value in the column. "mean ± std" = mean and sample '
            "standard deviation (ddof = 1) across seeds. Sharpe / CAGR / MDD: standard "
            "(geometric, 252 days); (qlib): arithmetic, 238 days — see Definitions. The "
            "benchmark row is the equal-weight universe over the same backtest days (its own "
            "CAGR, volatility, Sharpe and drawdowns); ⚠ marks a method with a warning. "
            "combiner: how an alpha set became the signal (auto → the combiner it kept on "
            "validation; every combiner side by side under \"Combiners side by side\")."
            + (f" IC columns: daily correlations with the {esc(horizon_text(lh))}." if lh
               else "") + "</p>")


def _alpha_table(alphas: pd.DataFrame | None, max_rows: int) -> str:
    if alphas is None or len(alphas) == 0:
        return '<p class="muted">No alpha set (this method produces its signal directly).</p>'
    cols = [c for c in ALPHA_COLUMNS if c in alphas.columns]
    if not cols:
        cols = list(alphas.columns)
    return (f"<p>{len(alphas)} alpha(s).</p>"
            + frame_table(alphas[cols], code_columns=("formula",), max_rows=max_rows))


def _flatten(d: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            rows.extend(_flatten(v, key + "."))
        elif isinstance(v, list | tuple):
            shown = ", ".join(str(x) for x in v[:12])
            rows.append((key, f"[{shown}{', …' if len(v) > 12 else ''}] ({len(v)} items)"
                         if len(v) > 12 else f"[{shown}]"))
        elif isinstance(v, pd.DataFrame):
            rows.append((key, f"table {v.shape[0]}×{v.shape[1]}"))
        else:
            rows.append((key, v))
    return rows


def _kv_table(rows: Sequence[tuple[str, Any]], max_rows: int = 10_000) -> str:
    body = []
    for k, v in rows[:max_rows]:
        text, is_num = _fmt_cell(v)
        cls = ' class="num"' if is_num else ""
        body.append(f"<tr><th>{esc(k)}</th><td{cls}>{text}</td></tr>")
    more = (f'<p class="muted">{len(rows) - max_rows} more entries not shown.</p>'
            if len(rows) > max_rows else "")
    return f'<table class="kv"><tbody>{"".join(body)}</tbody></table>{more}'


#: manifest keys about how the report's own run was invoked (session, pipelines, CLI): kept in
#: ``run_manifest.json`` but not shown, so a reproduction of the report (same inputs, other
#: invocation) renders the same HTML apart from ``created_utc``
_INVOCATION_KEYS = ("session_id", "invocation")


def _provenance_html(prov: Mapping[str, Any], own_hash: Any) -> tuple[list[tuple[str, Any]], str]:
    """Key rows and an HTML block for the manifest's ``provenance`` (inputs, writers, redo)."""
    rows: list[tuple[str, Any]] = []
    inputs = prov.get("inputs") if isinstance(prov.get("inputs"), Mapping) else {}
    writers = prov.get("writers") if isinstance(prov.get("writers"), Mapping) else {}
    versioned = {k: v for k, v in inputs.items() if isinstance(v, Mapping) and v.get("version")}
    rows.append(("inputs", f"{len(inputs)} datasets, {len(versioned)} versioned, written by "
                           f"{len(writers)} run(s)"))
    for name, fp in sorted((prov.get("loaded_fingerprints") or {}).items()):
        rows.append((f"fingerprint.{name}", fp))
    parts = []
    redo = prov.get("reproduce")
    if isinstance(redo, Mapping) and redo.get("command"):
        parts.append("<p>Reproduce this report (from the project root; or "
                     "<code>kedro reproduce &lt;run_manifest.json&gt;</code>, which also checks "
                     "the fingerprints above):</p>"
                     f"<pre>{esc(redo['command'])}</pre>")
    other = list(prov.get("inputs_with_other_params") or [])
    if other:
        parts.append(f'<p style="color:#a40000">{len(other)} input(s) were written by a '
                     "run with other parameters than this report's: "
                     + esc(", ".join(other)) + "</p>")
    wtable = pd.DataFrame([{
        "run (session id)": sid, "params sha256": str(w.get("params_sha256") or "")[:16],
        "same params as report": w.get("params_sha256") == own_hash,
        "env": w.get("env"), "pipelines": ", ".join(w.get("pipelines") or []),
        "runtime params": json.dumps(w.get("runtime_params") or {}, sort_keys=True),
        "git commit": str(w.get("git_commit") or "")[:12],
    } for sid, w in sorted(writers.items()) if isinstance(w, Mapping)])
    itable = pd.DataFrame([{"dataset": k, "version": v.get("version"),
                            "written by": v.get("written_by")}
                           for k, v in sorted(inputs.items()) if isinstance(v, Mapping)])
    parts.append("<details><summary>Input datasets: versions and the runs that wrote them"
                 "</summary>" + (frame_table(wtable) if len(wtable) else "")
                 + frame_table(itable, code_columns=("dataset",), max_rows=10_000)
                 + "</details>")
    return rows, "".join(parts)


def _manifest_html(manifest: Mapping[str, Any]) -> str:
    rows: list[tuple[str, Any]] = []
    for key in ("created_utc", "git_commit", "git_dirty", "params_sha256", "data_fingerprint",
                "python", "platform"):
        if key in manifest:
            rows.append((key, manifest[key]))
    pk = manifest.get("packages")
    if isinstance(pk, Mapping):
        rows.append(("packages", " · ".join(f"{k} {v}" for k, v in pk.items() if v)))
    extra = manifest.get("extra")
    if isinstance(extra, Mapping):
        rows.extend(_flatten(extra, "extra."))
    known = {"created_utc", "git_commit", "git_dirty", "params_sha256", "data_fingerprint",
             "python", "platform", "packages", "extra", "params", "manifest_version",
             "python_implementation", "provenance"}
    rows.extend((k, v) for k, v in manifest.items() if k not in known and not isinstance(
        v, Mapping))
    shown = dict(manifest)
    prov_html = ""
    prov = manifest.get("provenance")
    if isinstance(prov, Mapping):
        prov_rows, prov_html = _provenance_html(prov, manifest.get("params_sha256"))
        rows.extend(prov_rows)
        shown["provenance"] = {k: v for k, v in prov.items() if k not in _INVOCATION_KEYS}
    full = json.dumps(shown, indent=2, sort_keys=True, default=str)
    return (_kv_table(rows) + prov_html + "<details><summary>Full run manifest (JSON; the "
            "run's own session and CLI arguments are in run_manifest.json)</summary>"
            f"<pre>{esc(full)}</pre></details>")


_DEFINITIONS = """
<dl>
<dt>IC / RankIC</dt><dd>Per day, the Pearson correlation across stocks between the signal and the
forward return (RankIC: of their cross-sectional ranks); the reported value is the mean over days.
ICIR / RankICIR = mean / standard deviation of the daily series.</dd>
<dt>Standard convention (geometric, 252 days a year)</dt><dd>Wealth <code>W_t = Π(1 + r_s)</code>
starting at 1 before the first day; CAGR = <code>W_n^(252/n) − 1</code>; Sharpe =
<code>mean(r) / std(r) · √252</code> (sample std, zero risk-free rate); MDD =
<code>min_t W_t / max_{s≤t} W_s − 1</code>.</dd>
<dt>qlib-parity convention (arithmetic, 238 days a year)</dt><dd>As
<code>qlib.contrib.evaluate.risk_analysis(mode="sum")</code>: annualised return =
<code>mean(r) · 238</code>; information ratio = <code>mean(r) / std(r) · √238</code>; MDD =
<code>min(cumsum(r) − cummax(cumsum(r)))</code>. "Excess" columns apply it to the return over
the benchmark.</dd>
<dt>Turnover, hit rate</dt><dd>Turnover: (value bought + value sold) / 2 / the previous day's
equity, averaged over days. Hit rate: fraction of days on which the strategy return beats the
benchmark (the equal-weight universe).</dd>
<dt>Quantiles</dt><dd>Each day stocks are split into equal groups by signal (highest group =
highest signal); bars show the annualised mean forward return of each group, the curve the
cumulative long–short (top minus bottom) return.</dd>
<dt>Factor tear sheet</dt><dd>IC decay: the mean daily IC of the signal against the h-day
forward return, built as the label is (same price and lag) for each h. Rank autocorrelation:
the Spearman correlation of the signal's cross-section on day t with that on day t − lag.
Quantile spread: top minus bottom group return per day, with a trailing mean ± 1 std band.
Excess before cost: the daily excess return plus that day's trading cost over the previous
day's equity.</dd>
</dl>
<p>Full definitions and the backtest rules (top-k/drop-n, next-day execution, costs, untradable
names): <code>docs/backtest.md</code>; factor metrics: <code>docs/metrics.md</code>; this report:
<code>docs/report.md</code> (all in the AlphaMiner repository).</p>
"""


def _tearsheet_captions(m: MethodResults) -> dict[str, str]:
    """Captions of the tear-sheet figures, each naming its horizon (from the method's fields)."""
    lab = f"the {horizon_text(m.label_horizon)}" if m.label_horizon else "the label"
    qr = horizon_text(m.quantile_horizon, "forward returns")
    train = (f" {esc(m.name)} was trained on the {horizon_text(m.train_horizon)}."
             if m.train_horizon and m.train_horizon != m.label_horizon else "")
    return {
        "ic_distribution": f"Distribution of the daily IC against {lab} (test days): histogram "
                           "with the normal density of the same mean and std, and the QQ plot "
                           f"against the normal (points off the line: fat tails).{train}",
        "monthly_ic": f"Mean daily IC against {lab} per calendar month (blank: no IC day).",
        "ic_decay": "Mean daily IC (solid) and RankIC (dashed) of the signal against the "
                    "h-day forward return (the label's definition, h = the horizons shown), on "
                    f"the same days; the dotted line marks {lab}.",
        "quantile_cumulative": f"Cumulative return of each signal quantile ({qr} entered at the "
                               "next day's deal price; cumsum / h, as the quantile analysis).",
        "quantile_spread": f"Top-minus-bottom quantile spread of the {qr}: daily, its trailing "
                           "rolling mean and a ± 1 rolling standard deviation band.",
        "rank_autocorr": "Spearman correlation of the signal's cross-section with itself "
                         "lag days earlier (1 = the ordering never changes; 1 − lag-1 value "
                         "= factor turnover).",
        "excess_cost": "Cumulative sum of the daily excess return over the benchmark, after "
                       "costs (the backtest) and before them (adding back each day's cost / "
                       "the previous day's equity); the shaded gap is the cost drag.",
    }


def _caption(key: str, m: MethodResults) -> str:
    """A backtest figure's caption, naming the horizon of the IC label / quantile returns."""
    if key == "ic_series" and m.label_horizon:
        return (f"Daily IC of the signal against the {horizon_text(m.label_horizon)} with its "
                "rolling mean (and the RankIC rolling mean).")
    if key == "quintiles":
        return (f"Left: annualised mean {horizon_text(m.quantile_horizon, 'forward return')} "
                "of each signal group (highest group = highest signal). Right: cumulative "
                "long–short return.")
    return _FIGURE_CAPTIONS[key]


def _figure_html(fig: Any, alt: str, caption: str, fig_id: str = "") -> str:
    b64 = figure_to_base64_png(fig)
    fid = f' id="{esc(fig_id)}"' if fig_id else ""
    return (f'<figure{fid}><img alt="{esc(alt)}" src="data:image/png;base64,{b64}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def _warnings_html(warnings: Sequence[str]) -> str:
    return "".join(f'<div class="warn">⚠ {esc(w)}</div>' for w in warnings)


def _method_section(m: MethodResults, i: int, cfg: ReportConfig,
                    figure_files: dict[str, bytes] | None = None) -> str:
    slug = _slug(m.name, i)
    parts = [f'<section id="{slug}"><h2>Method: {esc(m.name)}</h2>', _warnings_html(m.warnings)]
    if m.notes:
        parts.append('<ul class="notes">' + "".join(f"<li>{esc(n)}</li>" for n in m.notes)
                     + "</ul>")
    if m.seed_metrics:
        parts.append(f'<p class="muted">{len(m.seed_metrics)} seeds; figures show the '
                     "representative run.</p>")
    parts.append("<h3>Alphas</h3>" + _alpha_table(m.alphas, cfg.max_alpha_rows))
    figs = method_figures(m, cfg.figures)
    parts.append("<h3>Backtest and signal quality</h3>")
    for key in FIGURE_KEYS:
        png = figure_png(figs.pop(key))
        if figure_files is not None:
            add_figure_file(figure_files, m.name, key, png)
        b64 = base64.b64encode(png).decode("ascii")
        parts.append(
            f'<figure><img alt="{esc(m.name)}: {esc(key)}" src="data:image/png;base64,{b64}">'
            f"<figcaption>{esc(_caption(key, m))}</figcaption></figure>")
    for key, fig in figs.items():  # figures added later than FIGURE_KEYS: files only
        if figure_files is not None:
            add_figure_file(figure_files, m.name, key, figure_png(fig))
        else:
            figure_png(fig)  # released all the same
    parts.append(f'<h3 id="{slug}-tearsheet">Factor tear sheet</h3>')
    if cfg.tearsheet_figures:
        caps = _tearsheet_captions(m)
        for key, fig in tearsheet_figures(m, cfg.figures).items():
            parts.append(_figure_html(fig, f"{m.name}: {key}", caps[key], f"{slug}-{key}"))
    else:
        parts.append('<p class="muted">Per-method tear-sheet figures are off in this run '
                     "(<code>reporting.tearsheet_figures: false</code>); the tear-sheet table "
                     "across methods above has the numbers.</p>")
    if m.attribution is not None:
        parts.append("<h3>Attribution</h3>" + frame_table(
            m.attribution, code_columns=("feature", "formula"), max_rows=cfg.max_table_rows))
    if m.metrics:
        parts.append("<details><summary>All metrics</summary>"
                     + _kv_table(sorted(m.metrics.items())) + "</details>")
    parts.append("</section>")
    return "".join(parts)


def tearsheet_summary(methods: Sequence[MethodResults]) -> pd.DataFrame:
    """One row per method: mean IC per forward-return horizon, mean rank autocorrelation per
    lag, and the mean and std of the daily top-minus-bottom quantile spread."""
    rows = []
    for m in methods:
        row: dict[str, Any] = {"method": m.name}
        if m.tearsheet is not None and len(m.tearsheet):
            for h, v in ic_decay(m.tearsheet)["ic"].items():
                row[f"IC {h}d"] = v
            for lag, v in rank_autocorr_summary(m.tearsheet).items():
                row[f"rank autocorr {lag}d"] = v
        q = quantile_columns(m.quantiles)
        if len(m.quantiles) and len(q) >= 2:
            sp = quantile_spread(m.quantiles, q[-1], q[0])["spread"]
            row[f"{q[-1].upper()}−{q[0].upper()} mean"] = float(sp.mean())
            row[f"{q[-1].upper()}−{q[0].upper()} std"] = float(sp.std(ddof=1))
        rows.append(row)
    out = pd.DataFrame(rows)
    ic_cols = sorted((c for c in out.columns if c.startswith("IC ")),
                     key=lambda c: int(c[3:-1]))
    ac_cols = sorted((c for c in out.columns if c.startswith("rank autocorr")),
                     key=lambda c: int(c.split()[-1][:-1]))
    rest = [c for c in out.columns if c not in ic_cols + ac_cols + ["method"]]
    return out[["method", *ic_cols, *ac_cols, *rest]]


def _formatted(df: pd.DataFrame, pct_endings: Sequence[str]) -> pd.DataFrame:
    """The report's number formats as text: returns (columns ending in ``pct_endings``) as
    ``0.00%``, every other number (ICs, correlations) with 4 decimals, never in e-notation."""
    out = df.copy()
    for c in out.columns:
        if c == "method":
            continue
        fmt = "{:.2%}" if str(c).endswith(tuple(pct_endings)) else "{:.4f}"
        out[c] = [MISSING if not np.isfinite(v) else fmt.format(v)
                  for v in pd.to_numeric(out[c], errors="coerce")]
    return out


def _summary_table(methods: Sequence[MethodResults], cfg: ReportConfig) -> str:
    table = _formatted(tearsheet_summary(methods), ("mean", "std"))
    return frame_table(table, max_rows=cfg.max_table_rows,
                       numeric_columns=[c for c in table.columns if c != "method"])


def _tearsheet_overview(methods: Sequence[MethodResults], cfg: ReportConfig) -> str:
    tss = {m.name: m.tearsheet for m in methods if m.tearsheet is not None}
    lh = next((m.label_horizon for m in methods if m.label_horizon), None)
    qh = methods[0].quantile_horizon
    parts = ['<section id="tearsheet"><h2>Factor tear sheet across methods</h2>',
             f"<p>Mean daily IC against the h-day forward return (IC decay), mean rank "
             f"autocorrelation of each signal, and the daily top-minus-bottom spread of "
             f"{esc(horizon_text(qh, 'forward returns'))}, on the backtest segment. "
             f"Per-method figures are under each method.</p>",
             _summary_table(methods, cfg)]
    if tss:
        parts.append(_figure_html(
            ic_decay_figure(tss, "all methods", cfg.figures, lh), "all methods: ic_decay",
            "IC decay of every method over forward-return horizons ("
            + ("the mean daily IC per method" if len(tss) > 3 else "solid: IC, dashed: RankIC")
            + f"); the dotted line marks the {horizon_text(lh)}.", "all-ic_decay"))
    parts.append("</section>")
    return "".join(parts)


def _data_report_html(data_report: Mapping[str, Any], max_rows: int) -> str:
    """The data report grouped by top-level key, each group folded (scalars shown open)."""
    scalars = [(k, v) for k, v in data_report.items() if not isinstance(v, Mapping)]
    parts = [_kv_table(_flatten(dict(scalars)), max_rows)] if scalars else []
    for key, value in data_report.items():
        if isinstance(value, Mapping):
            rows = _flatten(value, f"{key}.")
            parts.append(f'<details class="group"><summary>{esc(key)} ({len(rows)} '
                         f"entr{'y' if len(rows) == 1 else 'ies'})</summary>"
                         + _kv_table(rows, max_rows) + "</details>")
    return "".join(parts)


def survivorship_warning(data_report: Mapping[str, Any] | None) -> str | None:
    """A warning when the panel has no point-in-time universe: the data report's
    ``missingness_before.in_universe`` is ``"absent"`` (the source had no membership column,
    so cleaning made every row a member). ``None`` otherwise, and when the report does not say.

    A source that gives membership is trusted even when every row is a member (the simulator
    on small configurations: its universe is point in time, with delisted names kept)."""
    if not isinstance(data_report, Mapping):
        return None
    before = data_report.get("missingness_before")
    if not (isinstance(before, Mapping) and before.get("in_universe") == "absent"):
        return None
    frac = data_report.get("universe_fraction")
    share = f" ({float(frac):.2%} of rows)" if isinstance(frac, int | float) else ""
    return ("No point-in-time universe: the source has no in_universe column, so every name "
            f"counts as a member on every day it has data{share}. Results may carry "
            "survivorship bias (a list of today's index members, or of names that survived, "
            "treated as investable in the past).")


def build_report(
    methods: Sequence[MethodResults],
    manifest: Mapping[str, Any],
    title: str = "AlphaMiner research report",
    data_report: Mapping[str, Any] | None = None,
    planted: pd.DataFrame | None = None,
    *,
    mining: pd.DataFrame | None = None,
    sections: Sequence[tuple[str, str, str]] = (),
    config: ReportConfig | None = None,
    warnings: Sequence[str] = (),
    horizons: Mapping[str, Any] | None = None,
    figure_files: dict[str, bytes] | None = None,
) -> str:
    """The whole research report as one self-contained HTML string.

    Args:
        methods: the methods to show, in order (names unique).
        manifest: the run manifest (:func:`~alphaminer.reporting.manifest.build_manifest`).
        title: page title and heading.
        data_report: the data layer's JSON report (nested dicts are flattened to key paths).
        planted: the simulator's planted ground-truth alphas (any columns; ``formula`` as code).
        mining: one row per alpha-set method (Alpha2's Table 4 layout and planted recovery,
            :func:`alphaminer.evaluation.recovery.miner_table`).
        sections: further sections ``(id, title, html body)``, after the mined alphas (e.g.
            AlphaFormer's pre-training, Alpha2's ablations); the body is trusted HTML built with
            this module's helpers (:func:`frame_table`, :func:`esc`).
        config: display limits and figure settings.
        warnings: report-level warnings shown at the top (with every method's own warnings);
            the survivorship warning of :func:`survivorship_warning` is added from
            ``data_report``.
        horizons: what each horizon of the report is (e.g. ``{"IC / RankIC label": "20-day
            forward return ..."}``), shown as a table under the comparison.
        figure_files: when given, filled with each method's backtest figures as PNG bytes,
            keyed as :func:`~alphaminer.reporting.figures.all_method_figures` keys them: the
            figures drawn once for the HTML serve the figure files too (drawing is most of
            the report's time).
    """
    cfg = config or ReportConfig()
    methods = list(methods)
    if not methods:
        raise ValueError("build_report needs at least one MethodResults")
    if not all(isinstance(m, MethodResults) for m in methods):
        raise TypeError("build_report: every entry of methods must be a MethodResults")
    if not isinstance(manifest, Mapping):
        raise TypeError(f"manifest must be a mapping, got {type(manifest).__name__}")
    nav = ['<a href="#comparison">Comparison</a>', '<a href="#tearsheet">Tear sheet</a>']
    nav += [f'<a href="#{_slug(m.name, i)}">{esc(m.name)}</a>' for i, m in enumerate(methods)]
    top_warnings = list(warnings)
    surv = survivorship_warning(data_report)
    if surv is not None:
        top_warnings.append(surv)
    top_warnings += [f"{m.name}: {w}" for m in methods for w in m.warnings]
    if data_report is not None:
        nav.append('<a href="#data">Data</a>')
    if mining is not None:
        nav.append('<a href="#mining">Mined alphas</a>')
    sections = list(sections)
    nav += [f'<a href="#{esc(sid)}">{esc(title)}</a>' for sid, title, _ in sections]
    if planted is not None:
        nav.append('<a href="#planted">Planted alphas</a>')
    nav.append('<a href="#definitions">Definitions</a>')
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<header><h1>{esc(title)}</h1>{_manifest_html(manifest)}</header>",
        f"<nav>{''.join(nav)}</nav>",
        f'<div id="warnings">{_warnings_html(top_warnings)}</div>' if top_warnings else "",
        '<section id="comparison"><h2>Comparison across methods</h2>',
        _comparison_html(methods),
    ]
    if horizons:
        out.append('<h3 id="horizons">Horizons and labels</h3>'
                   + _kv_table(list(horizons.items())))
    out.append("</section>")
    out.append(_tearsheet_overview(methods, cfg))
    if mining is not None:
        out.append('<section id="mining"><h2>Mined alphas, method by method</h2>'
                   '<p class="muted">Each alpha-set method\'s own alphas on the segment named '
                   "in the table (not the combined signal): number of alphas, candidates "
                   "generated (<i>Num Factors</i>), mean and std of their IC and RankIC against "
                   "the label, their mean mutual |corr| (Alpha2's Table 4), and on simulated "
                   "data the best |mean daily corr| of any of them with each planted formula "
                   "(<code>corr_*</code>; recovered when ≥ 0.9) and with that formula's effect "
                   "at the label horizon (<code>effect_corr_*</code>: under the simulator's "
                   "persistence kernel the H-day return is predicted by "
                   "<code>WMA(CSZScore(f),Hd)</code>, which a fast-moving formula correlates "
                   "with only about 0.35–0.5).</p>"
                   + frame_table(mining, max_rows=cfg.max_table_rows) + "</section>")
    out.extend(f'<section id="{esc(sid)}"><h2>{esc(title)}</h2>{body}</section>'
               for sid, title, body in sections)
    out.extend(_method_section(m, i, cfg, figure_files) for i, m in enumerate(methods))
    if data_report is not None:
        if not isinstance(data_report, Mapping):
            raise TypeError(f"data_report must be a mapping, got {type(data_report).__name__}")
        out.append('<section id="data"><h2>Data report</h2>'
                   + _data_report_html(data_report, cfg.max_table_rows) + "</section>")
    if planted is not None:
        if not isinstance(planted, pd.DataFrame):
            raise TypeError(f"planted must be a DataFrame, got {type(planted).__name__}")
        out.append('<section id="planted"><h2>Planted ground-truth alphas</h2>'
                   '<p class="muted">Formulas the simulator planted into the returns; compare '
                   "the miners' alphas and ICs with them (and with the oracle method).</p>"
                   + frame_table(planted, code_columns=("formula", "expr"),
                                 max_rows=cfg.max_table_rows, table_class="wrap")
                   + "</section>")
    out.append(f'<footer id="definitions"><h2>Definitions</h2>{_DEFINITIONS}</footer>')
    out.append("</body></html>")
    return "\n".join(out)


def build_page(title: str, manifest: Mapping[str, Any],
               sections: Sequence[tuple[str, str, str]]) -> str:
    """A standalone page in the report's style (e.g. the multi-seed comparison): the manifest
    header, then ``(id, title, trusted html body)`` sections, then the definitions."""
    if not isinstance(manifest, Mapping):
        raise TypeError(f"manifest must be a mapping, got {type(manifest).__name__}")
    nav = "".join(f'<a href="#{esc(sid)}">{esc(t)}</a>' for sid, t, _ in sections)
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
           f"<header><h1>{esc(title)}</h1>{_manifest_html(manifest)}</header>",
           f'<nav>{nav}<a href="#definitions">Definitions</a></nav>']
    out.extend(f'<section id="{esc(sid)}"><h2>{esc(t)}</h2>{body}</section>'
               for sid, t, body in sections)
    out.append(f'<footer id="definitions"><h2>Definitions</h2>{_DEFINITIONS}</footer>')
    out.append("</body></html>")
    return "\n".join(out)
