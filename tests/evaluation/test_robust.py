"""Newey–West t-statistic and positive-day share, against hand computations written here.

statsmodels is not a project dependency, so the references are (1) a four-number example worked
by hand, (2) the quadratic form ``e' W e / n²`` with the Bartlett Toeplitz matrix ``W`` (a
different computation from the library's lag loop) and (3) the size of the test on simulated
overlapping-label ICs, where the plain t-statistic is known to over-reject.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from alphaminer.evaluation.robust import (
    default_lags,
    newey_west_se,
    newey_west_t,
    positive_share,
    robust_ic,
)


def test_hand_example():
    # x = 1,2,3,4, L = 1: e = -1.5,-.5,.5,1.5; Σe² = 5; Σ e_t e_{t-1} = .75 - .25 + .75 = 1.25;
    # Bartlett weight 1 - 1/2 = .5 → S = 5 + 2·.5·1.25 = 6.25; Var = 6.25/16; se = .625; t = 4
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert newey_west_se(x, lags=1) == pytest.approx(0.625, abs=1e-12)
    assert newey_west_t(x, lags=1) == pytest.approx(4.0, abs=1e-12)
    # lag 0 is the i.i.d. standard error with the population variance
    assert newey_west_se(x, lags=0) == pytest.approx(np.std(x) / 2.0, abs=1e-12)


def _toeplitz_se(x: np.ndarray, L: int) -> float:
    n = x.size
    e = x - x.mean()
    k = np.abs(np.arange(n)[:, None] - np.arange(n)[None, :])
    W = np.clip(1.0 - k / (L + 1.0), 0.0, None)
    return math.sqrt(float(e @ W @ e) / n**2)


@pytest.mark.parametrize("L", [0, 1, 5, 19])
def test_matches_quadratic_form(L):
    rng = np.random.default_rng(L)
    x = np.convolve(rng.normal(size=320), np.ones(8) / 8, mode="valid") + 0.01
    assert newey_west_se(x, lags=L) == pytest.approx(_toeplitz_se(x, L), rel=1e-10)
    assert newey_west_t(torch.from_numpy(x), lags=L) == pytest.approx(
        x.mean() / _toeplitz_se(x, L), rel=1e-10)


def test_nan_days_dropped_and_lag_rule():
    x = np.array([0.1, np.nan, -0.05, 0.2, np.nan, 0.0, 0.3])
    clean = x[np.isfinite(x)]
    assert newey_west_se(x, lags=2) == pytest.approx(_toeplitz_se(clean, 2), rel=1e-12)
    assert positive_share(x) == pytest.approx(3 / 5)
    assert default_lags(250, horizon=20) == 19
    assert default_lags(5, horizon=20) == 4  # capped at n - 1
    assert default_lags(100) == 4  # ⌊4·1⌋
    assert default_lags(1000) == math.floor(4 * 10 ** (2 / 9))
    r = robust_ic(x, horizon=3)
    assert r.lags == 2 and r.n_days == 5
    assert r.nw_t == pytest.approx(clean.mean() / _toeplitz_se(clean, 2), rel=1e-12)
    assert math.isnan(newey_west_t(np.array([np.nan, 0.1])))


def test_size_on_overlapping_labels():
    # daily "ICs" with zero mean that overlap like 20-day labels (MA(19)). The plain t-statistic
    # rejects a true null most of the time; Newey–West is close to its nominal 5 % but, as is
    # known for strongly autocorrelated series, still over-rejects at this n (13.5 % here).
    rng = np.random.default_rng(0)
    n, h, reps = 750, 20, 400
    nw_rej = plain_rej = 0
    for _ in range(reps):
        x = np.convolve(rng.normal(size=n + h - 1), np.ones(h), mode="valid")
        plain = x.mean() / (x.std(ddof=1) / math.sqrt(n))
        nw_rej += abs(newey_west_t(x, horizon=h)) > 1.96
        plain_rej += abs(plain) > 1.96
    assert nw_rej / reps < 0.18, nw_rej / reps
    assert plain_rej / reps > 0.4, plain_rej / reps
    assert nw_rej < plain_rej / 3
