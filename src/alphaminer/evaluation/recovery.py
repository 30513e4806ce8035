"""Did a miner recover the planted alphas? (the simulator's ground truth, docs/simulator.md).

For each planted formula: the mined alpha with the largest |mean daily cross-sectional
correlation| with it on a segment (:func:`~alphaminer.evaluation.metrics.mutual_correlation`,
batched over the mined set), that correlation, and whether it reaches the recovery threshold
(0.9 in the seeds' sense of "found the formula").

Two references can be judged. The *formula* itself is the seeds' measure. Under the
simulator's flat persistence kernel (``alpha_horizon`` H > 1) the part of the H-day return that
a planted formula predicts is not the formula but its *effect at the label horizon*,
``WMA(CSZScore(f),Hd)`` (the planted table's ``oracle_formula``): a fast-moving formula (a daily
close location) correlates only about 0.35–0.5 with its own effect, so a miner that finds what
predicts the label can match the effect while it misses the formula, and the reverse. The miner
table reports both (``corr_*`` / ``recovered`` and ``effect_corr_*`` / ``effect_recovered``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from alphaminer.evaluation.metrics import daily_ic, ic_stats

#: |corr| at or above which a planted formula counts as recovered
RECOVERY_THRESHOLD = 0.9


def planted_sets(planted: pd.DataFrame | None) -> tuple[Any, Any]:
    """The planted formulas and their effects at the label horizon as two AlphaSets named
    like the planted table (``(None, None)`` for no table or no rows; the effect set is None
    when the table has no ``oracle_formula`` column or it equals the formulas)."""
    from alphaminer.evaluation.alphaset import AlphaSet

    if planted is None or not len(planted):
        return None, None
    names = [str(n) for n in planted["name"]]
    formulas = [str(f) for f in planted["formula"]]
    effect = None
    if "oracle_formula" in planted.columns:
        eff = [str(f) for f in planted["oracle_formula"]]
        if eff != formulas:
            effect = AlphaSet("planted_effect", eff, names)
    return AlphaSet("planted", formulas, names), effect


def recovery_table(mined: torch.Tensor, mined_names: Sequence[str], planted: torch.Tensor,
                   planted_names: Sequence[str], min_stocks: int = 10,
                   threshold: float = RECOVERY_THRESHOLD) -> pd.DataFrame:
    """One row per planted formula: ``best_corr`` (signed), ``abs_corr``, ``best_alpha``,
    ``recovered`` (``abs_corr >= threshold``). ``mined`` is ``[K, T, S]``, ``planted``
    ``[P, T, S]``, both already restricted to the segment to judge on."""
    if mined.ndim != 3 or planted.ndim != 3:
        raise ValueError("mined and planted must be [K, T, S] and [P, T, S]")
    if len(mined_names) != mined.shape[0] or len(planted_names) != planted.shape[0]:
        raise ValueError("names do not match the stacked values")
    rows = []
    for p, name in enumerate(planted_names):
        if mined.shape[0] == 0:
            rows.append({"planted": str(name), "best_alpha": None, "best_corr": np.nan,
                         "abs_corr": np.nan, "recovered": False})
            continue
        corr = ic_stats(daily_ic(mined, planted[p], min_stocks))[0].cpu().numpy()
        absc = np.where(np.isfinite(corr), np.abs(corr), -1.0)
        k = int(absc.argmax())
        best = float(corr[k]) if absc[k] >= 0 else np.nan
        rows.append({"planted": str(name), "best_alpha": str(mined_names[k]),
                     "best_corr": best, "abs_corr": abs(best),
                     "recovered": bool(np.isfinite(best) and abs(best) >= threshold)})
    return pd.DataFrame(rows)


def mean_mutual_abs_corr(values: torch.Tensor, min_stocks: int = 10) -> float:
    """Mean over pairs ``i < j`` of ``|mean daily corr(f_i, f_j)|`` (Alpha2's Table 4 diversity);
    NaN for fewer than two factors."""
    K = values.shape[0]
    if K < 2:
        return float("nan")
    out = []
    for i in range(K - 1):
        m = ic_stats(daily_ic(values[i + 1:], values[i], min_stocks))[0].cpu().numpy()
        out.extend(np.abs(m[np.isfinite(m)]).tolist())
    return float(np.mean(out)) if out else float("nan")


def miner_table(alpha_sets: Mapping[str, Any], panel: Any, target: torch.Tensor,
                days: tuple[int, int], planted: Any = None, min_stocks: int = 10,
                threshold: float = RECOVERY_THRESHOLD,
                orient_days: tuple[int, int] | None = None,
                planted_effect: Any = None) -> pd.DataFrame:
    """Per alpha-set method, on one segment (``days``): Alpha2's Table 4 layout — number of
    alphas, candidates generated, mean ± std of the alphas' IC and RankIC, mean mutual |corr| —
    and, with ``planted`` (an :class:`AlphaSet` of the planted formulas), the best |corr| with
    each planted formula and how many reach ``threshold``.

    ``orient_days`` (the train segment, normally): each alpha's IC and RankIC on ``days`` are
    multiplied by the sign of its mean IC on those days (``oriented: True`` in the table). Why:
    a miner may keep a formula whose IC is negative (a pool gives it a negative weight), so the
    raw mean mixes signs and understates what the alphas predict; orienting on train uses no
    information from ``days``.

    ``planted_effect`` (an :class:`AlphaSet` named like ``planted``, of each planted formula's
    effect at the label horizon; module docstring): the same best |corr| against it, as
    ``effect_corr_<name>`` and ``effect_recovered``."""
    from alphaminer.evaluation.metrics import daily_rank_ic
    from alphaminer.expr import Evaluator

    t0, t1 = days
    ev = Evaluator(panel)
    y = target[t0:t1]
    pv = planted.values(panel, ev)[:, t0:t1] if planted is not None and len(planted) else None
    pe = planted_effect.values(panel, ev)[:, t0:t1] \
        if planted_effect is not None and len(planted_effect) else None
    rows = []
    for method, aset in alpha_sets.items():
        row: dict[str, Any] = {"method": method, "n_alphas": len(aset),
                               "n_candidates": (aset.meta or {}).get("n_candidates")}
        if len(aset):
            full = aset.values(panel, ev)
            v = full[:, t0:t1]
            ic = ic_stats(daily_ic(v, y, min_stocks))[0].cpu().numpy()
            ric = ic_stats(daily_rank_ic(v, y, min_stocks))[0].cpu().numpy()
            if orient_days is not None:
                o0, o1 = orient_days
                sign = np.sign(ic_stats(daily_ic(full[:, o0:o1], target[o0:o1],
                                                 min_stocks))[0].cpu().numpy())
                sign = np.where(sign == 0, 1.0, sign)  # NaN stays NaN
                ic, ric = ic * sign, ric * sign
                row["oriented"] = True
            row.update(ic_mean=float(np.nanmean(ic)), ic_std=float(np.nanstd(ic, ddof=1))
                       if np.isfinite(ic).sum() > 1 else np.nan,
                       rank_ic_mean=float(np.nanmean(ric)),
                       rank_ic_std=float(np.nanstd(ric, ddof=1))
                       if np.isfinite(ric).sum() > 1 else np.nan,
                       mean_mutual_abs_corr=mean_mutual_abs_corr(v, min_stocks))
            if pv is not None:
                rec = recovery_table(v, aset.names, pv, planted.names, min_stocks, threshold)
                for _, r in rec.iterrows():
                    row[f"corr_{r['planted']}"] = r["abs_corr"]
                row["recovered"] = int(rec["recovered"].sum())
            if pe is not None:
                rec = recovery_table(v, aset.names, pe, planted_effect.names, min_stocks,
                                     threshold)
                for _, r in rec.iterrows():
                    row[f"effect_corr_{r['planted']}"] = r["abs_corr"]
                row["effect_recovered"] = int(rec["recovered"].sum())
        rows.append(row)
    table = pd.DataFrame(rows)
    if "n_candidates" in table:  # counts, with <NA> for sets that were not mined
        table["n_candidates"] = table["n_candidates"].astype("Int64")
    return table
