"""Did a miner recover the planted alphas? (the simulator's ground truth, DESIGN §3).

For each planted formula: the mined alpha with the largest |mean daily cross-sectional
correlation| with it on a segment (:func:`~alphaminer.evaluation.metrics.mutual_correlation`,
batched over the mined set), that correlation, and whether it reaches the recovery threshold
(0.9 in the seeds' sense of "found the formula").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from alphaminer.evaluation.metrics import daily_ic, ic_stats

#: |corr| at or above which a planted formula counts as recovered
RECOVERY_THRESHOLD = 0.9


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
