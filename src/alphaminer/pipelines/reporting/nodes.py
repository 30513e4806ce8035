"""Thin adapter: every method's catalog outputs → ``MethodResults`` → figures, table, report."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from alphaminer.evaluation.alphaset import AlphaSet
from alphaminer.evaluation.recovery import miner_table, planted_sets
from alphaminer.panel import Panel
from alphaminer.pipelines._common import labels_tensor, split_ranges
from alphaminer.pipelines._methods import ALL_METHODS, ALPHA_SET_METHODS, SIGNAL_METHODS
from alphaminer.reporting import (
    FigureConfig,
    MethodResults,
    build_manifest,
    build_report,
    comparison_table,
)
from alphaminer.reporting.combiners import combiners_section
from alphaminer.reporting.manifest import data_fingerprint, provenance, relative_paths, run_context
from alphaminer.reporting.report import ReportConfig
from alphaminer.reporting.synthetic import synthetic_section

log = logging.getLogger(__name__)

#: per-method datasets the reporting node reads (``<method>.<suffix>``)
BACKTEST_PARTS = ("backtest_daily", "backtest_metrics", "quantiles", "ic_series", "tearsheet")
ALPHA_PARTS = ("alphas", "combination_model", "combination_metrics", "combiner_comparison")


def report_inputs() -> dict[str, str]:
    """Kedro ``inputs`` mapping: keyword ``<method>__<part>`` → dataset ``<method>.<part>``."""
    out: dict[str, str] = {}
    for m in ALL_METHODS:
        for part in BACKTEST_PARTS:
            out[f"{m}__{part}"] = f"{m}.{part}"
        if m in ALPHA_SET_METHODS:
            for part in ALPHA_PARTS:
                out[f"{m}__{part}"] = f"{m}.{part}"
    out["alphanet__attribution"] = "alphanet.attribution"
    for m in SIGNAL_METHODS:  # AlphaNet and the ML baselines
        out[f"{m}__train_metrics"] = f"{m}.train_metrics"
    out["alphaformer__model"] = "alphaformer.model"
    out["alphaformer__mining_log"] = "alphaformer.mining_log"
    out["alpha2__ablations"] = "alpha2.ablations"
    out["comparison_summary"] = "comparison_summary"
    # null until synthetic_generation has run (alphaminer.kedro_io.OptionalJSONDataset)
    out["synthetic_quality"] = "synthetic_quality"
    return out


def _signal_table(rows: dict[str, dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame([{"quantity": k, "first 10 %": v.get("first_mean"),
                          "last 10 %": v.get("last_mean"), "Welch t": v.get("welch_t"),
                          "one-sided p": v.get("p_value_one_sided")} for k, v in rows.items()])


def _evaluation_table(ev: dict[str, Any]) -> pd.DataFrame:
    """One row per model of a ``benchmarks/alphaformer_vs_random.py --out`` file, then the
    random-weights arm they were all compared with (same N, pool and seeds)."""
    rows = []
    for name, m in ev.get("models", {}).items():
        pre = m["summary"]["pretrained"]
        rows.append({"model": name, "train pool IC": pre["pool_ic_train"],
                     "test IC of the pool": pre["pool_ic_test"],
                     "seeds ahead of random": f"{m['pretrained_wins']} of {len(ev['seeds'])}",
                     "one-sided p (> random)": m["p_one_sided"]})
    if ev.get("models"):
        rnd = next(iter(ev["models"].values()))["summary"]["random"]
        rows.append({"model": "random weights", "train pool IC": rnd["pool_ic_train"],
                     "test IC of the pool": rnd["pool_ic_test"], "seeds ahead of random": "",
                     "one-sided p (> random)": None})
    return pd.DataFrame(rows)


def alphaformer_evaluations(folder: Any) -> str:
    """The model folder's ``evaluations/*.json`` (pre-trained vs random weights on a target
    panel: the generator ablation, the transfer to a real panel) as titled tables."""
    import json
    from pathlib import Path

    from alphaminer.reporting.report import esc, frame_table

    parts = []
    for f in sorted(Path(folder).glob("evaluations/*.json")):
        ev = json.loads(f.read_text())
        title = ev.get("title") or f.stem
        parts.append(f"<p>{esc(title)} (panel <code>{esc(ev.get('panel'))}</code>, N = "
                     f"{esc(ev.get('n'))}, pool capacity {esc(ev.get('capacity'))}, seeds "
                     f"{esc(ev.get('seeds'))}; <code>{esc(f.name)}</code>):</p>"
                     + frame_table(_evaluation_table(ev)))
    return "".join(parts)


def alphaformer_section(model: Any, mining_log: Any) -> tuple[str, str, str] | None:
    """AlphaFormer's pre-trained model: where it came from, its learning signal, its learning
    curves (mean reward, entropy, approximate KL, value loss) when the model folder keeps
    ``learning_curve.csv``, and its measured comparisons with random weights (``evaluations/``).
    The shipped model has all three; a fresh ``alphaformer_pretrain`` model has the first two."""
    from pathlib import Path

    from alphaminer.reporting import figure_to_base64_png
    from alphaminer.reporting.report import esc, frame_table

    meta = dict(getattr(model, "meta", {}) or {})
    source = str(getattr(model, "source", "") or "")
    shipped = Path(source).parts[-2:] == ("models", "alphaformer")
    where = "the shipped model (models/alphaformer)" if shipped else \
        f"a fresh pre-training (version {Path(source).parent.name or '?'})"
    trained = meta.get("trained_with", "alphaformer_pretrain")
    hardware = meta.get("hardware", meta.get("device", "?"))
    parts = [f"<p>Model used by <code>alphaformer_infer</code>: {esc(where)}; trained with "
             f"<code>{esc(trained)}</code> on {esc(hardware)}; {esc(meta.get('updates', '?'))} "
             f"PPO updates, {esc(meta.get('formulas_generated', '?'))} formulas generated.</p>"]
    signal = meta.get("learning_signal")
    if isinstance(signal, dict) and signal:
        parts.append("<p>Learning signal (first vs last 10 % of pre-training updates):</p>"
                     + frame_table(_signal_table(signal)))
    curve = Path(source) / "learning_curve.csv" if source else None
    if curve is not None and curve.exists():
        import matplotlib.pyplot as plt

        hist = pd.read_csv(curve)
        cols = [c for c in ("mean_reward", "entropy", "approx_kl", "value_loss") if c in hist]
        if cols:
            fig, axes = plt.subplots(1, len(cols), figsize=(3.2 * len(cols), 2.6))
            for ax, c in zip(list(np.atleast_1d(axes)), cols):
                ax.plot(hist[c].to_numpy(), lw=0.8)
                ax.plot(hist[c].rolling(10, min_periods=1).mean().to_numpy(), lw=1.6)
                ax.set_title(c, fontsize=9)
                ax.set_xlabel("PPO update", fontsize=8)
            fig.tight_layout()
            parts.append(f'<figure><img alt="AlphaFormer learning curves" '
                         f'src="data:image/png;base64,{figure_to_base64_png(fig)}">'
                         "<figcaption>Pre-training learning curves (raw and 10-update mean)"
                         "</figcaption></figure>")
    if source:
        parts.append(alphaformer_evaluations(source))
    if isinstance(mining_log, pd.DataFrame) and len(mining_log):
        parts.append("<p>Inference on this panel (frozen weights):</p>"
                     + frame_table(mining_log.tail(20)))
    return "alphaformer-pretraining", "AlphaFormer pre-training", "".join(parts)


#: the baselines every method is compared with (the best of them by mean test RankIC)
BASELINE_METHODS: tuple[str, ...] = ("library", "gp", "alphagen", "mlp", "lstm", "xgb", "lgbm")


def significance_section(methods: list[MethodResults]) -> tuple[str, str, str] | None:
    """Each method's test RankIC against the best baseline's, with a 95 % block-bootstrap
    interval of the paired daily difference (:mod:`alphaminer.evaluation.significance`)."""
    from alphaminer.evaluation.significance import gaps_to_best_baseline
    from alphaminer.reporting.report import frame_table

    series = {m.name: m.ic_series for m in methods
              if m.ic_series is not None and "rank_ic" in m.ic_series}
    table = gaps_to_best_baseline(series, BASELINE_METHODS)
    if table.empty:
        return None
    body = ("<p>Daily test RankIC of each method minus that of the best baseline (the one of "
            f"{', '.join(BASELINE_METHODS)} with the highest mean), on the days both have; the "
            "interval is a 95 % moving-block bootstrap (blocks of ≥ 20 days, since daily ICs of "
            "a 20-day label overlap). <i>significant</i>: the interval excludes 0.</p>"
            + frame_table(table))
    return "significance", "Gaps to the best baseline", body


def alpha2_ablation_section(ablations: Any) -> tuple[str, str, str]:
    """Alpha2's ablations (pruning off, β ∈ {0, 0.5, 1}, diversity off), when they were run."""
    from alphaminer.reporting.report import frame_table

    if not isinstance(ablations, dict) or not ablations.get("enabled"):
        body = ("<p class=\"muted\">Not run in this report's run "
                "(<code>alpha2.ablations.enabled: false</code>, the default: each variant is a "
                "full mining run). Set it to true, or run "
                "<code>benchmarks/alpha2_ablations.py</code>.</p>")
    else:
        keep = ("variant", "n_seeds", "top_test_ic_mean", "test_ic_mean", "mean_mutual_abs_corr",
                "n_alphas", "recovered", "recovered_per_seed", "wall_seconds", "same_as")
        summary = pd.DataFrame(ablations.get("summary", []))
        summary = summary[[c for c in keep if c in summary]]
        body = ("<p>Each variant is a full Alpha2 mining run on train, judged on test: "
                "the test IC of its top alphas by train |IC|, all its alphas' mean test IC, "
                "their mean mutual |corr|, and planted formulas recovered (|corr| ≥ 0.9).</p>"
                + frame_table(summary))
    return "alpha2-ablations", "Alpha2 ablations", body


def combination_note(cm: dict[str, Any], valid_ic: float) -> str:
    """How the method's alphas were combined; for ``auto``, which combiner won on validation
    and every candidate's validation figure."""
    chosen = cm.get("combiner", cm.get("model"))
    text = f"combined with {chosen}"
    cands = cm.get("auto_candidates")
    if cm.get("model") == "auto" and isinstance(cands, dict):
        crit = str(cm.get("auto_criterion", "valid_rank_ic"))
        shown = []
        for name, m in cands.items():
            v = m.get(crit)
            shown.append(f"{name} {v:.4f}" if isinstance(v, int | float) else f"{name} failed")
        text += (f", chosen by {crit.replace('_', ' ')} among " + ", ".join(shown))
    return f"{text}; validation IC of the combined signal {valid_ic:.4f}"


def _alpha_table(alphas: dict[str, Any], model: dict[str, Any]) -> pd.DataFrame:
    table = AlphaSet.from_dict(alphas).table()
    weights = model.get("weights")
    if isinstance(weights, dict):
        table["weight"] = table["formula"].map(weights)
    return table


def num_factors(alphas: dict[str, Any]) -> int:
    """AlphaFormer's "Num Factors": candidate formulas the method generated to get its set (a
    miner's ``n_candidates``); for a fixed set (library, oracle), its size. Not the pool size."""
    aset = AlphaSet.from_dict(alphas)
    n = (aset.meta or {}).get("n_candidates")
    return int(n) if n is not None else len(aset)


def _param(parameters: Any, *keys: str, default: Any = None) -> Any:
    """``parameters[k1][k2]...`` for dicts or typed parameter objects; ``default`` if absent."""
    cur = parameters
    for k in keys:
        if isinstance(cur, Mapping):
            cur = cur.get(k)
        else:
            cur = getattr(cur, k, None)
        if cur is None:
            return default
    return cur


def label_horizons(parameters: Any) -> dict[str, Any]:
    """The horizons the report names, from the run's parameters (never hard-coded text):
    the label's (``ingestion.labels``), AlphaNet's training label (``feature_images.horizon``),
    the quantile analysis's forward returns and the tear sheet's IC-decay horizons."""
    from alphaminer.data.labels import label_expression
    from alphaminer.parameters import LabelParams
    from alphaminer.pipelines.backtest.nodes import QUANTILE_HORIZON
    from alphaminer.reporting.tearsheet import DEFAULT_HORIZONS, DEFAULT_LAGS

    lab = LabelParams.coerce(_param(parameters, "ingestion", "labels", default={}))
    return {"label_horizon": lab.horizon, "label_kind": lab.kind,
            "label_expression": label_expression(lab.horizon, lab.kind),
            "alphanet_horizon": int(_param(parameters, "feature_images", "horizon",
                                           default=lab.horizon)),
            "quantile_horizon": QUANTILE_HORIZON,
            "deal_price": str(_param(parameters, "backtest", "portfolio", "deal_price",
                                     default="open")),
            "n_groups": int(_param(parameters, "backtest", "n_groups", default=5)),
            "segment": str(_param(parameters, "backtest", "segment", default="test")),
            "decay_horizons": sorted({*DEFAULT_HORIZONS, lab.horizon}),
            "autocorr_lags": list(DEFAULT_LAGS)}


def horizons_table(h: Mapping[str, Any]) -> dict[str, str]:
    """The report's "Horizons and labels" rows."""
    return {
        "IC / RankIC (comparison, IC series, tear sheet)":
            f"{h['label_horizon']}-day label {h['label_expression']} ({h['label_kind']})",
        "quantiles (bars, cumulative, spread)":
            f"{h['quantile_horizon']}-day forward returns from the next day's {h['deal_price']}, "
            f"{h['n_groups']} groups",
        "IC decay": ", ".join(f"{x}d" for x in h["decay_horizons"])
                    + " forward returns (the label's definition)",
        "rank autocorrelation lags": ", ".join(f"{x}d" for x in h["autocorr_lags"]),
        "AlphaNet training label": f"{h['alphanet_horizon']}-day forward return "
                                   "(feature_images.horizon)",
        "ML baselines, combiners": f"the {h['label_horizon']}-day label",
        "backtest segment": h["segment"],
    }


def learning_warning(method: str, valid_ic: Any) -> str | None:
    """"Did not learn": the method's validation IC is <= 0 (or unknown)."""
    try:
        v = float(valid_ic)
    except (TypeError, ValueError):
        v = float("nan")
    if np.isfinite(v) and v > 0:
        return None
    shown = f"{v:.4f} <= 0" if np.isfinite(v) else "not finite"
    return (f"validation IC {shown}: {method} did not learn a signal that holds out of sample; "
            "its test figures are not evidence of skill.")


def method_results(data: dict[str, Any], parameters: Any = None) -> list[MethodResults]:
    """Assemble one :class:`MethodResults` per method that has a backtest."""
    hz = label_horizons(parameters or {})
    methods = []
    for m in ALL_METHODS:
        metrics = dict(data[f"{m}__backtest_metrics"])
        if metrics.get("skipped"):
            log.info("report: %s skipped (%s)", m, metrics["skipped"])
            continue
        alphas, notes, attribution, valid = None, [], None, None
        combiner = "model (predicts the signal)"
        if m in ALPHA_SET_METHODS:
            cm = data[f"{m}__combination_metrics"]
            combiner = cm.get("combiner") or cm.get("model")
            if cm.get("model") == "auto":
                combiner = f"auto → {combiner}"
            model = data[f"{m}__combination_model"]
            alphas = _alpha_table(data[f"{m}__alphas"], model)
            metrics.setdefault("num_factors", num_factors(data[f"{m}__alphas"]))
            valid_ic = cm.get("valid_ic", float("nan"))
            valid = valid_ic
            notes.append(combination_note(cm, valid_ic))
        if m == "alphanet":
            attribution = data["alphanet__attribution"]
            tm = data["alphanet__train_metrics"]
            valid = tm.get("best_valid_ic")
            metrics.setdefault("num_factors", float("nan"))  # N/A: no formulas (Table 1)
            notes.append(f"best epoch {tm.get('best_epoch')} of {tm.get('epochs_run')}; "
                         f"best validation IC {tm.get('best_valid_ic', float('nan')):.4f}")
        elif m in SIGNAL_METHODS and f"{m}__train_metrics" in data:  # the ML baselines
            tm = data[f"{m}__train_metrics"]
            valid = tm.get("best_valid_ic")
            metrics.setdefault("num_factors", float("nan"))  # N/A: no formulas (Table 1)
            best = tm.get("best_iteration", tm.get("best_epoch"))
            notes.append(f"{m} on {tm.get('window', 60)}-day raw-feature windows; best "
                         f"iteration/epoch {best}; validation IC "
                         f"{tm.get('best_valid_ic', float('nan')):.4f}")
        notes.append(f"backtest on the {metrics.get('segment', 'test')} segment")
        methods.append(MethodResults(
            name=m, alphas=alphas, daily=data[f"{m}__backtest_daily"],
            ic_series=data[f"{m}__ic_series"], quantiles=data[f"{m}__quantiles"],
            metrics={k: v for k, v in metrics.items() if isinstance(v, int | float)},
            attribution=attribution, notes=notes, combiner=combiner,
            tearsheet=data.get(f"{m}__tearsheet"), quantile_horizon=hz["quantile_horizon"],
            label_horizon=hz["label_horizon"],
            train_horizon=hz["alphanet_horizon"] if m == "alphanet" else None,
            # alpha sets always have a combination valid_ic; a signal method only when its
            # train_metrics report one
            warnings=[w for w in [learning_warning(m, valid)] if w]
            if m in ALPHA_SET_METHODS or valid is not None else [],
        ))
    if not methods:
        raise ValueError("no method produced a backtest: nothing to report")
    return methods


def mining_summary(data: dict[str, Any], planted_alphas: pd.DataFrame, panel: Panel,
                   labels: pd.DataFrame, splits: dict[str, Any], min_stocks: int,
                   segment: str = "test") -> pd.DataFrame:
    """Every alpha-set method's mined alphas on ``segment``: Alpha2's Table 4 layout and the
    best |corr| with each planted formula and with its effect at the label horizon
    (:func:`alphaminer.evaluation.recovery.miner_table`)."""
    sets = {m: AlphaSet.from_dict(data[f"{m}__alphas"]) for m in ALPHA_SET_METHODS
            if f"{m}__alphas" in data}
    planted, effect = planted_sets(planted_alphas)
    ranges = split_ranges(splits)
    table = miner_table(sets, panel, labels_tensor(panel, labels), ranges[segment], planted,
                        min_stocks, orient_days=ranges["train"], planted_effect=effect)
    table.insert(1, "segment", segment)
    return table


#: the datasets the report node reads besides the per-method ones (pipeline.py's inputs)
REPORT_DATASETS: tuple[str, ...] = ("data_report", "planted_alphas", "market_panel", "labels",
                                    "splits")


def _project_root() -> str:
    """The Kedro project root (where ``kedro run`` runs): the run's, else the working folder."""
    import os

    return str(run_context().get("project_path") or os.getcwd())


def report_provenance(market_panel: Panel, labels: pd.DataFrame,
                      splits: dict[str, Any]) -> dict[str, Any]:
    """The report's provenance: its inputs' versions and writers (from the run's context), the
    content fingerprints of the unversioned panel, labels and splits as loaded, and the
    command that redoes it (``kedro run --pipelines=reporting --load-versions=...``)."""
    names = (*REPORT_DATASETS, *report_inputs().values())
    loaded = {"market_panel": data_fingerprint(market_panel), "labels": data_fingerprint(labels),
              "splits": data_fingerprint(splits)}
    return provenance(run_context(), names, pipeline="reporting", loaded=loaded)


def build_research_report(parameters: dict[str, Any], data_report: dict[str, Any],
                          planted_alphas: pd.DataFrame, market_panel: Panel,
                          labels: pd.DataFrame, splits: dict[str, Any], min_stocks: int,
                          **data: Any
                          ) -> tuple[str, dict[str, Any], pd.DataFrame, dict[str, Any]]:
    """Returns the HTML report, the figures (for kedro-viz), the comparison table, the manifest."""
    methods = method_results(data, parameters)
    fingerprint = str(data_report.get("panel", {}).get("fingerprint", "unknown"))
    manifest = build_manifest(parameters, fingerprint, provenance=report_provenance(
        market_panel, labels, splits))
    root = _project_root()  # the HTML shows local paths relative to the project
    data_report = relative_paths(data_report, root)
    planted = planted_alphas if len(planted_alphas) else None
    mining = mining_summary(data, planted_alphas, market_panel, labels, splits, min_stocks)
    sections = []
    sig = significance_section(methods)
    if sig is not None:
        sections.append(sig)
    if "alphaformer__model" in data:
        af = alphaformer_section(data["alphaformer__model"], data.get("alphaformer__mining_log"))
        if af is not None:
            sections.append(af)
    if "alpha2__ablations" in data:
        sections.append(alpha2_ablation_section(data["alpha2__ablations"]))
    summary = data.get("comparison_summary")
    if isinstance(summary, dict) and summary.get("html"):
        sections.append(("multi-seed", "Methods over seeds", summary["html"]))
    sections.append(combiners_section(
        {m: data.get(f"{m}__combiner_comparison") for m in ALPHA_SET_METHODS},
        horizon=label_horizons(parameters)["label_horizon"]))
    if "synthetic_quality" in data:
        sections.append(synthetic_section(data["synthetic_quality"]))
    show = bool(_param(parameters, "reporting", "tearsheet_figures", default=True))
    figures: dict[str, bytes] = {}  # the HTML's own renderings, saved as files too
    html = build_report(methods, relative_paths(manifest, root), data_report=data_report,
                        planted=planted, mining=mining, sections=sections,
                        config=ReportConfig(tearsheet_figures=show, figures=FigureConfig(
                            dpi=int(_param(parameters, "reporting", "dpi", default=100)))),
                        horizons=horizons_table(label_horizons(parameters)),
                        figure_files=figures)
    table = comparison_table(methods, numeric=True).reset_index()
    table.insert(1, "combiner", [m.combiner for m in methods])
    return html, figures, table, manifest
