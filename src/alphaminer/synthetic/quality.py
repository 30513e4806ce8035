"""The synthetic-data quality report: real vs each generator vs the selected data.

Data only (tables as JSON-ready records + one matplotlib figure); the HTML report renders it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from alphaminer.panel import Panel

from .facts import discriminator_scores, panel_facts, rep_windows

#: Scalar facts shown in the table, in order.
FACT_COLUMNS: tuple[str, ...] = (
    "ret_std", "ret_skew", "ret_excess_kurtosis", "z_q01", "z_q99", "acf_ret_1",
    "acf_abs_ret_1", "acf_abs_ret_mean", "vol_absret_corr", "cross_corr")


@dataclass
class QualityConfig:
    """``params:synthetic.quality``: how many markets to compare and the discriminator."""

    markets: int = 2
    window: int = 20
    max_windows: int = 2000
    classifier: str = "gbm"
    folds: int = 5
    acf_lags: int = 10
    repeats: int = 1          # repeated K-fold: more paired folds, a more decisive comparison


def quality_report(real: Panel, sources: Mapping[str, Sequence[Panel]],
                   wins: Mapping[str, int], config: QualityConfig | None = None,
                   seed: int = 0) -> dict[str, Any]:
    """Stylised facts and discriminator AUC of ``real`` and every source.

    ``sources`` maps a name (each generator's candidates, and ``selected``) to its market
    panels, all built on the same contexts so the comparison is like for like. ``wins`` are the
    generator-win counts over every market. The target (selected AUC ≤ the best single
    generator's) is evaluated when ``selected`` and at least one generator are present.
    """
    cfg = config or QualityConfig()
    facts = {"real": panel_facts([real], cfg.acf_lags)}
    facts.update({n: panel_facts(list(ps), cfg.acf_lags) for n, ps in sources.items()})
    real_w = rep_windows(real, cfg.window)
    # One seed for every source: the same real windows, the same synthetic window positions
    # (every source is built on the same contexts) and the same folds, so the per-fold AUCs of
    # two sources are paired and their difference is judged against its own (small) noise.
    scores: dict[str, np.ndarray] = {}
    n_windows: dict[str, int] = {"real": int(len(real_w))}
    for n, ps in sources.items():
        syn = np.concatenate([rep_windows(p, cfg.window) for p in ps])
        n_windows[n] = int(len(syn))
        scores[n] = discriminator_scores(real_w, syn, classifier=cfg.classifier,
                                         folds=cfg.folds, max_windows=cfg.max_windows,
                                         seed=seed, repeats=cfg.repeats)
    auc = {n: float(np.mean(s)) if len(s) else float("nan") for n, s in scores.items()}
    auc_std = {n: float(np.std(s, ddof=1)) if len(s) > 1 else float("nan")
               for n, s in scores.items()}
    total = max(sum(wins.values()), 1)
    share = {g: wins[g] / total for g in wins}
    rows = []
    for n, f in facts.items():
        rows.append({"source": n, **{c: f[c] for c in FACT_COLUMNS},
                     "discriminator_auc": auc.get(n, float("nan")),
                     "discriminator_auc_std": auc_std.get(n, float("nan")),
                     "win_share": share.get(n, float("nan")),
                     "windows": n_windows.get(n, 0)})
    gens = [n for n in sources if n != "selected" and np.isfinite(auc[n])]
    target: dict[str, Any] = {}
    if "selected" in auc and gens:
        best = min(gens, key=lambda g: auc[g])
        target = {"selected_auc": auc["selected"], "best_generator": best,
                  "best_generator_auc": auc[best],
                  "met": bool(auc["selected"] <= auc[best]),
                  **paired_difference(scores["selected"], scores[best])}
    return {"facts": rows,
            "acf": {n: {"ret": f["acf_ret"], "abs_ret": f["acf_abs_ret"]}
                    for n, f in facts.items()},
            "auc": auc, "auc_std": auc_std, "wins": dict(wins), "win_share": share,
            "target": target,
            "config": {"markets": cfg.markets, "window": cfg.window,
                       "classifier": cfg.classifier, "folds": cfg.folds,
                       "repeats": cfg.repeats, "max_windows": cfg.max_windows}}


def paired_difference(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """Mean and spread of the per-fold AUC difference ``a − b`` of two paired sources.

    ``difference_se`` is the naive standard error ``std / √k`` over the ``k`` folds
    (optimistic: CV folds share training data); ``decisive`` says whether the mean
    difference exceeds two of them, i.e. whether met/missed is more than fold noise.
    """
    if len(a) != len(b) or len(a) < 2:
        return {"difference": float("nan"), "difference_std": float("nan"),
                "difference_se": float("nan"), "folds_total": int(min(len(a), len(b))),
                "decisive": False}
    d = np.asarray(a, float) - np.asarray(b, float)
    sd = float(np.std(d, ddof=1))
    se = sd / np.sqrt(len(d))
    return {"difference": float(d.mean()), "difference_std": sd, "difference_se": float(se),
            "folds_total": int(len(d)), "decisive": bool(abs(d.mean()) > 2 * se)}


def quality_figure(report: Mapping[str, Any], real: Panel | None = None,
                   sources: Mapping[str, Sequence[Panel]] | None = None) -> Any:
    """A 2 × 2 figure: return densities (log scale), ACF of |returns|, ACF of returns, and
    discriminator AUC with win shares. Densities need the panels; without them that panel
    shows the standardised 1 %/99 % quantiles from the table instead."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from .facts import returns_and_volume

    fig, ax = plt.subplots(2, 2, figsize=(11, 7.5))
    names = [r["source"] for r in report["facts"]]
    if real is not None and sources is not None:
        bins = np.linspace(-6, 6, 61)
        for n, ps in [("real", [real]), *sources.items()]:
            r = np.concatenate([returns_and_volume(p)[0].ravel() for p in ps])
            r = r[np.isfinite(r)]
            if len(r) > 1:
                z = (r - r.mean()) / max(r.std(), 1e-12)
                h, _ = np.histogram(z, bins=bins, density=True)
                ax[0, 0].semilogy(0.5 * (bins[1:] + bins[:-1]), np.where(h > 0, h, np.nan),
                                  label=n, lw=2 if n in ("real", "selected") else 1)
        ax[0, 0].set_title("standardised return density")
    else:
        for r in report["facts"]:
            ax[0, 0].plot([0.01, 0.99], [r["z_q01"], r["z_q99"]], marker="o", label=r["source"])
        ax[0, 0].set_title("standardised return quantiles")
    ax[0, 0].legend(fontsize=8)
    for key, a, title in (("abs_ret", ax[0, 1], "ACF of |returns|"),
                          ("ret", ax[1, 0], "ACF of returns")):
        for n in names:
            y = report["acf"][n][key]
            a.plot(np.arange(1, len(y) + 1), y, marker=".", label=n,
                   lw=2 if n in ("real", "selected") else 1)
        a.axhline(0, color="grey", lw=0.5)
        a.set_title(title)
        a.set_xlabel("lag (days)")
    src = list(report["auc"])
    aucs = [report["auc"][n] for n in src]
    x = np.arange(len(src))
    ax[1, 1].bar(x - 0.2, aucs, 0.4, label="discriminator AUC (lower is better)")
    ax[1, 1].bar(x + 0.2, [report["win_share"].get(n, 0.0) for n in src], 0.4,
                 label="win share")
    ax[1, 1].axhline(0.5, color="grey", ls="--", lw=0.8)
    ax[1, 1].set_xticks(x, src)
    ax[1, 1].set_ylim(0, 1.05)
    ax[1, 1].legend(fontsize=8)
    ax[1, 1].set_title("discriminator AUC and generator win share")
    fig.tight_layout()
    return fig


__all__ = ["FACT_COLUMNS", "QualityConfig", "paired_difference", "quality_figure",
           "quality_report"]
