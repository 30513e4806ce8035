"""Stylised facts against plain pandas/numpy references; the discriminator AUC behaves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alphaminer.synthetic import (
    autocorrelation,
    cross_sectional_correlation,
    discriminator_auc,
    discriminator_scores,
    paired_difference,
    stylised_facts,
)


@pytest.fixture()
def garch_like() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    T, S = 400, 6
    vol = np.exp(np.cumsum(rng.normal(0, 0.1, (T, S)), 0) * 0.3) * 0.01
    market = rng.normal(0, 0.01, (T, 1))
    r = market + vol * rng.standard_t(4, (T, S))
    r[rng.random((T, S)) < 0.05] = np.nan
    v = np.exp(10 + 30 * np.abs(np.nan_to_num(r)) + rng.normal(0, 0.2, (T, S)))
    return r, v


def test_facts_match_pandas(garch_like) -> None:
    r, v = garch_like
    f = stylised_facts(r, v, max_lag=5)
    df = pd.DataFrame(r)
    assert f["ret_excess_kurtosis"] == pytest.approx(df.kurt().mean(), rel=1e-9)
    assert f["ret_skew"] == pytest.approx(df.skew().mean(), rel=1e-9)
    assert f["ret_std"] == pytest.approx(df.std().mean(), rel=1e-6)
    for k in (1, 3):
        ref = np.mean([df[c].corr(df[c].shift(k)) for c in df])
        assert f["acf_ret"][k - 1] == pytest.approx(ref, abs=1e-9)
        ref_a = np.mean([df[c].abs().corr(df[c].abs().shift(k)) for c in df])
        assert f["acf_abs_ret"][k - 1] == pytest.approx(ref_a, abs=1e-9)
    lv = pd.DataFrame(np.log(v))
    ref_vc = np.mean([lv[c].corr(df[c].abs()) for c in df])
    assert f["vol_absret_corr"] == pytest.approx(ref_vc, abs=1e-9)
    c = df.corr().to_numpy()
    ref_cc = c[~np.eye(len(c), dtype=bool)].mean()
    assert cross_sectional_correlation(r) == pytest.approx(ref_cc, abs=1e-9)
    assert f["cross_corr"] > 0.1 and f["vol_absret_corr"] > 0.2


def test_autocorrelation_of_white_noise_is_small() -> None:
    x = np.random.default_rng(1).normal(size=(2000, 10))
    assert np.abs(autocorrelation(x, 5)).max() < 0.03


def test_discriminator_auc_separates_only_different_data() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (300, 20, 6))
    b = rng.normal(0, 1, (300, 20, 6))
    c = rng.normal(0, 1, (300, 20, 6))
    c[..., 0] *= 2.0  # twice the return volatility
    same = discriminator_auc(a, b, classifier="logistic", folds=3)
    diff = discriminator_auc(a, c, classifier="logistic", folds=3)
    assert abs(same - 0.5) < 0.1
    assert diff > 0.9
    assert discriminator_auc(a, c, classifier="gbm", folds=3, max_windows=200) > 0.9


def test_discriminator_scores_are_paired_across_sources() -> None:
    """Same seed and sizes → same real windows and folds: a source identical to another
    scores identically fold by fold, and repeats multiply the folds."""
    rng = np.random.default_rng(2)
    real = rng.normal(0, 1, (200, 10, 6))
    syn = rng.normal(0, 1, (200, 10, 6))
    syn[..., 0] *= 1.3
    s1 = discriminator_scores(real, syn, classifier="logistic", folds=4, repeats=2, seed=5)
    s2 = discriminator_scores(real, syn.copy(), classifier="logistic", folds=4, repeats=2,
                              seed=5)
    assert s1.shape == (8,) and np.array_equal(s1, s2)
    assert discriminator_auc(real, syn, classifier="logistic", folds=4, repeats=2,
                             seed=5) == pytest.approx(s1.mean())
    assert len(discriminator_scores(real[:3], syn, folds=4)) == 0


def test_paired_difference_matches_hand_computation() -> None:
    a, b = np.array([0.90, 0.92, 0.91, 0.95]), np.array([0.91, 0.93, 0.93, 0.95])
    d = a - b                                       # -0.01 -0.01 -0.02 0.00
    out = paired_difference(a, b)
    sd = np.sqrt(((d - d.mean()) ** 2).sum() / 3)
    assert out["difference"] == pytest.approx(-0.01)
    assert out["difference_std"] == pytest.approx(sd)
    assert out["difference_se"] == pytest.approx(sd / 2)
    assert out["folds_total"] == 4
    assert out["decisive"] is bool(sd < 0.01)  # |mean| 0.01 > 2 · sd / √4
    assert paired_difference(a[:1], b[:1])["decisive"] is False
