"""Issue 15 training options: signed −IC loss, per-day label transforms, shuffled days, RankIC
monitor. References are numpy / scipy computations written here."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from alphanet_synth import make_panel, pandas_labels
from scipy.stats import rankdata, spearmanr

from alphaminer.neural.alphanet import (
    ImageConfig,
    TrainConfig,
    build_feature_images,
    neg_abs_ic_loss,
    train_alphanet,
)
from alphaminer.neural.alphanet.train import neg_ic_loss, score_images, transform_labels


def _images(T=100, S=20, seed=0, planted=0.0, stride=2):
    panel = make_panel(T=T, S=S, seed=seed, planted=planted)
    a, b = int(T * 0.6), int(T * 0.8)
    return build_feature_images(panel, {"train": (0, a), "valid": (a, b), "test": (b, T)},
                                ImageConfig(stride=stride), labels=pandas_labels(panel),
                                progress=False)


def test_transform_labels_matches_scipy_and_numpy():
    y = torch.tensor([3.0, 1.0, 1.0, 10.0, -2.0, 0.5, 0.7, 5.0, 4.0])
    day = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2, 3])  # day 3 has one image
    r = transform_labels(y, day, "rank").numpy()
    z = transform_labels(y, day, "zscore").numpy()
    for sl in (slice(0, 4), slice(4, 7)):
        v = y[sl].numpy().astype(np.float64)
        rk = rankdata(v)  # average ranks for ties
        np.testing.assert_allclose(r[sl], (rk - rk.mean()) / rk.std(), rtol=1e-6)
        np.testing.assert_allclose(z[sl], (v - v.mean()) / v.std(), rtol=1e-6)
    assert r[7] == 0.0 and r[8] == 0.0 and z[8] == 0.0
    assert torch.equal(transform_labels(y, day, "none"), y)
    with pytest.raises(ValueError, match="label_transform"):
        transform_labels(y, day, "winsor")


def test_signed_loss_rejects_a_score_whose_payoff_flips_sign():
    # the real-data failure of −|IC|: returns load on beta·market_t (sign flips with the market)
    # plus a small persistent alpha. Beta has the larger |IC| every day but a mean IC near 0.
    rng = np.random.default_rng(0)
    D, S = 40, 200
    beta = rng.normal(size=S)
    alpha = rng.normal(size=S)
    market = np.where(np.arange(D) % 2 == 0, 1.0, -1.0)
    y = beta[None] * market[:, None] + 0.3 * alpha[None] + rng.normal(size=(D, S))
    group = torch.arange(D).repeat_interleave(S)
    yt = torch.from_numpy(y.ravel())
    f_beta = torch.from_numpy(np.tile(beta, D))
    f_alpha = torch.from_numpy(np.tile(alpha, D))
    ref_ic = {k: np.array([np.corrcoef(np.broadcast_to(f, (D, S))[d], y[d])[0, 1]
                           for d in range(D)]) for k, f in (("beta", beta), ("alpha", alpha))}
    abs_beta = float(neg_abs_ic_loss(f_beta, yt, group, D)[0])
    abs_alpha = float(neg_abs_ic_loss(f_alpha, yt, group, D)[0])
    ic_beta = float(neg_ic_loss(f_beta, yt, group, D)[0])
    ic_alpha = float(neg_ic_loss(f_alpha, yt, group, D)[0])
    assert abs_beta == pytest.approx(-np.abs(ref_ic["beta"]).mean(), rel=1e-9)
    assert ic_alpha == pytest.approx(-ref_ic["alpha"].mean(), rel=1e-9)
    assert abs_beta < abs_alpha  # −|IC| prefers the sign-flipping beta score ...
    assert ic_alpha < ic_beta    # ... the signed loss prefers the persistent alpha
    # the signed loss is differentiable (numerical Jacobian on a small problem: O(N^2) checks)
    small = torch.arange(3).repeat_interleave(10)
    p = torch.randn(30, dtype=torch.float64, requires_grad=True)
    ys = torch.randn(30, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda q: neg_ic_loss(q, ys, small, 3)[0], (p,),
                                    eps=1e-6, atol=1e-6)


def test_rank_ic_monitor_is_the_mean_daily_spearman_of_the_best_model():
    imgs = _images(T=110, S=25, seed=2, planted=1.0)
    res = train_alphanet(imgs, TrainConfig(epochs=2, patience=2, seed=0, progress=False,
                                           monitor="rank_ic", device="cpu"))
    valid = imgs.subset("valid")
    s = score_images(res.model, valid.images, torch.device("cpu")).numpy()
    d, lab = valid.day_index.numpy(), valid.labels.numpy()
    ref = np.mean([spearmanr(s[d == k], lab[d == k])[0] for k in np.unique(d)])
    assert res.best_valid_ic == pytest.approx(ref, abs=1e-5)
    assert res.history["valid_ic"].max() == pytest.approx(res.best_valid_ic, abs=1e-9)


def test_shuffled_days_are_seeded_and_differ_from_chronological():
    imgs = _images()
    base = dict(epochs=2, seed=5, progress=False, device="cpu")
    a = train_alphanet(imgs, TrainConfig(shuffle_days=True, **base)).model.state_dict()
    b = train_alphanet(imgs, TrainConfig(shuffle_days=True, **base)).model.state_dict()
    c = train_alphanet(imgs, TrainConfig(shuffle_days=False, **base)).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_new_defaults_and_validation():
    cfg = TrainConfig()
    assert (cfg.loss, cfg.label_transform, cfg.monitor) == ("neg_ic", "rank", "ic")
    with pytest.raises(ValueError, match="label_transform"):
        TrainConfig(label_transform="clip")
    with pytest.raises(ValueError, match="monitor"):
        TrainConfig(monitor="sharpe")
