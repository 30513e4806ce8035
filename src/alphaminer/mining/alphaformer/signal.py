"""The learning signal of a pre-training run, defined once: the mean of a learning-curve column
over the first vs the last 10 % of PPO updates, with a one-sided Welch t-test (last > first).

The plain comparison is what issue 13's Must-show asks for, but it is not calibrated: a policy
that never changes can read a significant trend, because the pools' fill state changes across
updates and consecutive updates share pools. :func:`paired_signal` takes the same comparison on
the per-update difference from a frozen-policy twin (same markets and seed, learning rate
~0), which sees the same episodes (``docs/methods/alphaformer.md``, "Reading the learning
curve").
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

#: the learning-curve columns summarised in a model's meta (those present in the history)
SIGNAL_COLUMNS = ("mean_reward", "valid_share", "mean_pool_ic", "mean_holdout_pool_ic")


def welch(first: np.ndarray, last: np.ndarray) -> dict[str, Any]:
    """Means of both groups and the one-sided Welch t-test that ``last`` is larger. ``t`` and
    ``p`` are None when a group has fewer than two values or no variance (the test is
    undefined there)."""
    from scipy import stats

    first = np.asarray(first, dtype=float)
    last = np.asarray(last, dtype=float)
    out: dict[str, Any] = {"first_mean": float(first.mean()), "last_mean": float(last.mean()),
                           "first_n": int(first.size), "last_n": int(last.size),
                           "welch_t": None, "p_value_one_sided": None}
    if first.size >= 2 and last.size >= 2 and (first.std() > 0 or last.std() > 0):
        t, p = stats.ttest_ind(last, first, equal_var=False, alternative="greater")
        if math.isfinite(float(t)):
            out["welch_t"], out["p_value_one_sided"] = float(t), float(p)
    return out


def learning_signal(hist: pd.DataFrame, col: str = "mean_reward") -> dict[str, Any]:
    """First vs last 10 % of updates (at least one each) of ``hist[col]``."""
    x = hist[col].to_numpy(dtype=float)
    if x.size == 0:
        raise ValueError("learning_signal needs at least one update")
    k = max(1, x.size // 10)
    return welch(x[:k], x[-k:])


def learning_signals(hist: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """:func:`learning_signal` for every column of :data:`SIGNAL_COLUMNS` in ``hist`` (the
    summary a pre-trained model keeps in its meta, and the report tables)."""
    if len(hist) == 0:
        return {}
    return {c: learning_signal(hist, c) for c in SIGNAL_COLUMNS if c in hist}


def paired_signal(hist: pd.DataFrame, control: pd.DataFrame, col: str = "mean_reward"
                  ) -> dict[str, Any]:
    """The learning signal of ``hist`` net of a frozen-policy control run on the same markets
    and seed. Per-update differences remove what the episodes alone do to the reward (which
    markets, how full the pools are), which the plain comparison cannot tell from learning."""
    n = min(len(hist), len(control))
    if n == 0:
        raise ValueError("paired_signal needs at least one update in both runs")
    d = hist[col].to_numpy(dtype=float)[:n] - control[col].to_numpy(dtype=float)[:n]
    k = max(1, n // 10)
    return {**welch(d[:k], d[-k:]), "mean_difference": float(d.mean())}
