"""Recovery of planted formulas and mutual correlation, against numpy references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alphaminer.evaluation.recovery import mean_mutual_abs_corr, recovery_table


def _np_mean_daily_corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([np.corrcoef(a[t], b[t])[0, 1] for t in range(a.shape[0])]))


def test_recovery_finds_the_matching_alpha_and_thresholds() -> None:
    rng = np.random.default_rng(0)
    T, S = 30, 40
    p0 = rng.normal(size=(T, S))
    p1 = rng.normal(size=(T, S))
    mined = np.stack([rng.normal(size=(T, S)),
                      -p0 + 0.1 * rng.normal(size=(T, S)),   # recovers p0 (negated)
                      p1 + 1.0 * rng.normal(size=(T, S))])   # weakly related to p1
    tab = recovery_table(torch.tensor(mined, dtype=torch.float32), ["a", "b", "c"],
                         torch.tensor(np.stack([p0, p1]), dtype=torch.float32), ["p0", "p1"])
    assert list(tab["best_alpha"]) == ["b", "c"]
    assert tab["best_corr"][0] == pytest.approx(_np_mean_daily_corr(mined[1], p0), abs=1e-5)
    assert tab["best_corr"][0] < 0 and bool(tab["recovered"][0])
    assert tab["abs_corr"][1] == pytest.approx(abs(_np_mean_daily_corr(mined[2], p1)), abs=1e-5)
    assert not bool(tab["recovered"][1])


def test_mean_mutual_abs_corr_matches_pairwise_numpy() -> None:
    rng = np.random.default_rng(1)
    v = rng.normal(size=(4, 20, 30))
    v[1] += 0.5 * v[0]
    want = np.mean([abs(_np_mean_daily_corr(v[i], v[j])) for i in range(4)
                    for j in range(i + 1, 4)])
    got = mean_mutual_abs_corr(torch.tensor(v, dtype=torch.float32))
    assert got == pytest.approx(want, abs=1e-5)
    assert np.isnan(mean_mutual_abs_corr(torch.tensor(v[:1], dtype=torch.float32)))
