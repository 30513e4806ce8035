"""AlphaNet training: loss vs numpy, planted signal, determinism, kill/resume, predict."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from alphanet_synth import make_panel, pandas_labels
from safetensors.torch import load_file

from alphaminer.evaluation.metrics import daily_ic
from alphaminer.neural.alphanet import (
    AlphaNet,
    ImageConfig,
    TrainConfig,
    build_feature_images,
    load_checkpoint,
    neg_abs_ic_loss,
    predict,
    save_checkpoint,
    train_alphanet,
)
from alphaminer.neural.alphanet.train import day_batches, grouped_ic


def small_images(T=120, S=30, seed=0, planted=0.0, stride=2):
    panel = make_panel(T=T, S=S, seed=seed, planted=planted)
    a, b = int(T * 0.6), int(T * 0.8)
    splits = {"train": (0, a), "valid": (a, b), "test": (b, T)}
    imgs = build_feature_images(panel, splits, ImageConfig(stride=stride),
                                labels=pandas_labels(panel), progress=False)
    return panel, imgs, (a, b)


def test_grouped_ic_matches_numpy_and_loss_is_differentiable():
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(40, generator=g, dtype=torch.float64)
    y = torch.randn(40, generator=g, dtype=torch.float64) + 0.3 * pred
    group = torch.tensor([0] * 15 + [1] * 24 + [2])
    ic, valid = grouped_ic(pred, y, group, 3, min_count=2)
    assert valid.tolist() == [True, True, False]
    for k, sl in enumerate((slice(0, 15), slice(15, 39))):
        ref = np.corrcoef(pred[sl].numpy(), y[sl].numpy())[0, 1]
        assert float(ic[k]) == pytest.approx(ref, rel=1e-10)
    p = pred.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda q: neg_abs_ic_loss(q, y, group, 3)[0], (p,), eps=1e-6, atol=1e-6)
    loss, _, _ = neg_abs_ic_loss(p, y, group, 3)
    ref = -np.mean([abs(np.corrcoef(pred[s].numpy(), y[s].numpy())[0, 1])
                    for s in (slice(0, 15), slice(15, 39))])
    assert float(loss.detach()) == pytest.approx(ref, rel=1e-10)


def test_day_batches_are_chronological_whole_days():
    days = torch.tensor([3, 3, 3, 5, 5, 8, 9, 9, 9, 9])
    assert day_batches(days, 1) == [(0, 3), (3, 5), (5, 6), (6, 10)]
    assert day_batches(days, 3) == [(0, 6), (6, 10)]


def test_planted_signal_is_learned():
    # oracle: the 5-day return loads on the last volume shock with IC ~ 1/sqrt(6) ~ 0.4; the
    # test-segment mean IC of a useless score has a standard error of ~0.02
    panel, imgs, (_, b) = small_images(T=200, S=60, seed=1, planted=1.0, stride=1)
    cfg = TrainConfig(epochs=3, patience=3, seed=0, progress=False, device="auto",
                      days_per_batch=4)
    res = train_alphanet(imgs, cfg)
    signal = predict(res.model, panel, progress=False)
    assert signal.shape == (panel.T, panel.S)
    assert torch.isnan(signal[:30]).all() and torch.isfinite(signal[30:]).all()
    y = pandas_labels(panel)
    test_ic = float(daily_ic(signal[b:-5], y[b:-5]).nanmean())
    assert test_ic > 0.08, res.history
    assert res.best_valid_ic > 0.08, res.history
    assert list(res.history.columns[:4]) == ["epoch", "train_loss", "train_ic", "valid_ic"]


def test_mse_loss_trains():
    _, imgs, _ = small_images(T=100, S=20)
    res = train_alphanet(imgs, TrainConfig(loss="mse", epochs=2, progress=False,
                                           days_per_batch=3))
    assert len(res.history) == 2 and np.isfinite(res.history["train_loss"]).all()


def test_same_seed_same_weights_different_seed_differs():
    _, imgs, _ = small_images(T=90, S=20)
    cfg = TrainConfig(epochs=2, seed=7, progress=False)
    a = train_alphanet(imgs, cfg).model.state_dict()
    b = train_alphanet(imgs, cfg).model.state_dict()
    c = train_alphanet(imgs, replace(cfg, seed=8)).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


class Killed(Exception):
    """Stands in for a kill: raised after an epoch's checkpoint was written."""


def test_resume_after_kill_gives_identical_checkpoint(tmp_path):
    _, imgs, _ = small_images(T=100, S=20)
    cfg = TrainConfig(epochs=4, patience=10, seed=3, progress=False)
    full = train_alphanet(imgs, cfg, checkpoint_dir=tmp_path / "full")

    def kill_after_2(epoch, row):
        if epoch == 2:
            raise Killed

    with pytest.raises(Killed):
        train_alphanet(imgs, cfg, checkpoint_dir=tmp_path / "cut", on_epoch_end=kill_after_2)
    resumed = train_alphanet(imgs, cfg, checkpoint_dir=tmp_path / "cut")
    # every tensor of the final checkpoint (weights, best weights, Adam moments, RNG states)
    # read straight from the safetensors files, independent of the checkpoint loader
    (fa,), (fb,) = (sorted((tmp_path / d).glob("ckpt-*.safetensors"))[-1:]
                    for d in ("full", "cut"))
    a, b = load_file(str(fa)), load_file(str(fb))
    assert a.keys() == b.keys()
    assert {k.split("/")[0] for k in a} >= {"model", "best_model", "optimizer", "rng"}
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    assert full.best_epoch == resumed.best_epoch
    np.testing.assert_array_equal(full.history["valid_ic"], resumed.history["valid_ic"])
    # a finished run resumed again does no more work and returns the same best model
    again = train_alphanet(imgs, cfg, checkpoint_dir=tmp_path / "cut")
    assert len(again.history) == 4
    # a different config must not silently resume someone else's state
    with pytest.raises(ValueError, match="different run"):
        train_alphanet(imgs, replace(cfg, lr=1e-2), checkpoint_dir=tmp_path / "cut")
    assert not list(tmp_path.rglob("*.pt")) and not list(tmp_path.rglob("*.pkl"))


def test_checkpoint_roundtrip_and_cpu_auto(tmp_path):
    panel, imgs, _ = small_images(T=90, S=15)
    res = train_alphanet(imgs, TrainConfig(epochs=1, progress=False, device="auto"))
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert next(res.model.parameters()).device.type == expected
    save_checkpoint(res.model, tmp_path / "ckpt")
    back = load_checkpoint(tmp_path / "ckpt")
    assert isinstance(back, AlphaNet) and back.config == res.model.config
    a = predict(res.model, panel, progress=False)
    b = predict(back, panel, progress=False)
    torch.testing.assert_close(a, b, equal_nan=True)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "nothing")


def test_predict_is_causal():
    panel, imgs, _ = small_images(T=100, S=12)
    model = train_alphanet(imgs, TrainConfig(epochs=1, progress=False)).model
    t = 60
    vals = panel.values.clone()
    vals[t + 1:] *= torch.rand_like(vals[t + 1:]) + 0.5
    a = predict(model, panel, progress=False)
    b = predict(model, replace(panel, values=vals), progress=False)
    torch.testing.assert_close(a[: t + 1], b[: t + 1], equal_nan=True, rtol=0, atol=0)
    assert not torch.equal(a[t + 1:].nan_to_num(), b[t + 1:].nan_to_num())


def test_bad_training_inputs():
    _, imgs, _ = small_images(T=90, S=10)
    with pytest.raises(ValueError, match="loss"):
        TrainConfig(loss="huber")
    with pytest.raises(ValueError, match="no training images"):
        train_alphanet(imgs.select(imgs.split == 99), TrainConfig(progress=False))


def test_run_checkpoint_dir_is_stable_per_run_and_distinct_across_runs(tmp_path):
    from alphaminer.neural.alphanet import AlphaNetConfig
    from alphaminer.neural.alphanet.train import run_checkpoint_dir

    _, imgs, _ = small_images(T=80, S=12)
    cfg = TrainConfig(epochs=1, seed=3, progress=False)
    mc = AlphaNetConfig(rows=imgs.rows, window=imgs.config.window)
    a = run_checkpoint_dir(tmp_path, imgs, cfg, mc)
    assert a == run_checkpoint_dir(tmp_path, imgs, replace(cfg, progress=True), mc)
    assert a != run_checkpoint_dir(tmp_path, imgs, replace(cfg, lr=1e-2), mc)
    _, other, _ = small_images(T=80, S=12, seed=1)
    assert a != run_checkpoint_dir(tmp_path, other, cfg, mc)
    assert a.parent == tmp_path


def test_training_refuses_a_checkpoint_folder_locked_by_another_trainer(tmp_path):
    from alphaminer.checkpoint import FolderLock, FolderLockedError

    _, imgs, _ = small_images(T=80, S=12)
    cfg = TrainConfig(epochs=1, progress=False)
    with FolderLock(tmp_path / "run"), pytest.raises(FolderLockedError, match="in use"):
        train_alphanet(imgs, cfg, checkpoint_dir=tmp_path / "run")
    assert not list((tmp_path / "run").glob("ckpt-*"))
    train_alphanet(imgs, cfg, checkpoint_dir=tmp_path / "run")  # free again once released
    assert len(list((tmp_path / "run").glob("ckpt-*.json"))) == 1
