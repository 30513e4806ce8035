"""Feature images: content vs a numpy reference, dropping, splits/purge, storage, no look-ahead."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from alphanet_synth import make_panel, pandas_labels

from alphaminer.neural.alphanet.images import (
    FeatureImages,
    ImageConfig,
    build_feature_images,
)


def reference_image(panel, t: int, s: int, W: int = 30) -> np.ndarray:
    """Hand-built 8 x W image of stock s at day t (float64)."""
    f = {n: panel.feature(n).numpy().astype(np.float64)[:, s] for n in panel.features}
    sl = slice(t - W + 1, t + 1)
    c_last = f["close"][t]
    rows = [f[n][sl] / c_last for n in ("open", "high", "low", "close", "vwap")]
    rows += [f[n][sl] / f[n][sl].mean() for n in ("volume", "amount")]
    rows.append(f["close"][sl] / f["close"][t - W:t] - 1)
    return np.stack(rows)


def test_images_match_reference_and_grid():
    panel = make_panel(T=70, S=6)
    y = pandas_labels(panel)
    imgs = build_feature_images(panel, labels=y, progress=False)
    t0 = 30  # 30-day window + one day for the first return
    days = sorted(set(imgs.day_index.tolist()))
    assert days == list(range(t0, 70 - 5, 5))
    assert imgs.images.shape[1:] == (8, 30)
    assert len(imgs) == len(days) * 6
    for n in range(len(imgs)):
        t, s = int(imgs.day_index[n]), int(imgs.stock_index[n])
        np.testing.assert_allclose(imgs.images[n].numpy(), reference_image(panel, t, s),
                                   rtol=2e-5, atol=1e-6)
        assert imgs.labels[n] == pytest.approx(float(y[t, s]))
    # ordered by day, then stock
    key = imgs.day_index * 1000 + imgs.stock_index
    assert bool((key[1:] > key[:-1]).all())


def test_level_invariance():
    panel = make_panel(T=50, S=4, seed=3)
    scaled = panel.values.clone()
    for j, name in enumerate(panel.features):
        if name in ("open", "high", "low", "close", "vwap"):
            scaled[:, 1, j] *= 37.0
        elif name == "volume":
            scaled[:, 1, j] *= 0.01
        elif name == "amount":
            scaled[:, 1, j] *= 0.37
    p2 = replace(panel, values=scaled)
    cfg = ImageConfig(stride=1)
    a = build_feature_images(panel, config=cfg, labels=pandas_labels(panel), progress=False)
    b = build_feature_images(p2, config=cfg, labels=pandas_labels(p2), progress=False)
    torch.testing.assert_close(a.images, b.images, rtol=1e-5, atol=1e-6)


def test_nan_and_universe_drop_images():
    panel = make_panel(T=90, S=5)
    vals = panel.values.clone()
    vals[50, 3, panel.features.index("close")] = float("nan")
    uni = panel.universe.clone()
    uni[60, 1] = False
    p2 = replace(panel, values=vals, universe=uni)
    imgs = build_feature_images(p2, config=ImageConfig(stride=1, require_label=False),
                                labels=pandas_labels(p2), progress=False)
    m = imgs.mask()
    # close NaN at day 50 poisons stock 3's images for t in 50..80 (the return of day 51 too)
    assert not m[50:81, 3].any()
    assert m[49, 3] and m[81, 3]
    # out of universe only on the sample day itself
    assert not m[60, 1] and m[59, 1] and m[61, 1]
    assert torch.isfinite(imgs.images.float()).all()


def test_labels_required_for_training_sets():
    panel = make_panel(T=60, S=3)
    y = pandas_labels(panel)
    train = build_feature_images(panel, config=ImageConfig(stride=1), labels=y, progress=False)
    infer = build_feature_images(panel, config=ImageConfig(stride=1, require_label=False),
                                 labels=y, progress=False)
    assert int(train.day_index.max()) == 60 - 1 - 5
    assert int(infer.day_index.max()) == 59
    assert torch.isnan(infer.labels[infer.day_index > 54]).all()


def test_splits_membership_and_purge():
    panel = make_panel(T=200, S=4)
    ranges = {"train": (0, 100), "valid": (100, 150), "test": (150, 200)}
    imgs = build_feature_images(panel, ranges, ImageConfig(stride=1), labels=pandas_labels(panel),
                                progress=False)
    assert imgs.split_names == ("train", "valid", "test")
    for code, (a, b) in enumerate(ranges.values()):
        d = imgs.day_index[imgs.split == code]
        assert int(d.min()) >= a and int(d.max()) < b
        nxt = b if b < 200 else 200
        assert int((d + 5).max()) < nxt  # label window never reaches the next segment
    assert int(imgs.subset("train").day_index.max()) == 94
    assert int(imgs.subset("valid").day_index.min()) == 100
    # date bounds are inclusive and give the same result
    by_date = {k: (str(panel.dates[a].date()), str(panel.dates[b - 1].date()))
               for k, (a, b) in ranges.items()}
    imgs2 = build_feature_images(panel, by_date, ImageConfig(stride=1),
                                 labels=pandas_labels(panel), progress=False)
    assert torch.equal(imgs.day_index, imgs2.day_index) and torch.equal(imgs.split, imgs2.split)
    with pytest.raises(ValueError, match="overlap"):
        build_feature_images(panel, {"a": (0, 100), "b": (90, 120)}, labels=pandas_labels(panel))


def test_data_splits_object_needs_no_extra_purge():
    from alphaminer.data import SplitConfig, make_splits

    panel = make_panel(T=200, S=3)
    sp = make_splits(panel.dates, SplitConfig(fractions=(0.5, 0.25, 0.25), horizon=5))
    imgs = build_feature_images(panel, sp, ImageConfig(stride=1), labels=pandas_labels(panel),
                                progress=False)
    i0, i1 = sp.ranges["train"]
    assert int(imgs.subset("train").day_index.max()) == i1 - 1  # already purged by make_splits
    assert int(imgs.subset("train").day_index.max()) + 5 < sp.ranges["valid"][0]


def test_chunking_does_not_change_result():
    panel = make_panel(T=80, S=7)
    y = pandas_labels(panel)
    a = build_feature_images(panel, config=ImageConfig(stride=1), labels=y, progress=False)
    b = build_feature_images(panel, config=ImageConfig(stride=1, chunk_bytes=1), labels=y,
                             progress=False)
    assert torch.equal(a.images, b.images) and torch.equal(a.stock_index, b.stock_index)


def test_save_load_roundtrip(tmp_path):
    panel = make_panel(T=120, S=5)
    imgs = build_feature_images(panel, {"train": (0, 80), "test": (80, 120)},
                                ImageConfig(dtype="float16"), labels=pandas_labels(panel),
                                progress=False)
    path = tmp_path / "imgs.safetensors"
    imgs.save(path)
    assert json.loads(path.with_suffix(".json").read_text())["rows"][-1] == "return1"
    with open(path, "rb") as fh:  # a safetensors file: 8-byte header length + JSON header
        n = int.from_bytes(fh.read(8), "little")
        assert json.loads(fh.read(n))["images"]["dtype"] == "F16"
    back = FeatureImages.load(path)
    for name in ("images", "labels", "day_index", "stock_index", "split", "tradable"):
        assert torch.equal(getattr(back, name), getattr(imgs, name)), name
    assert back.dates.equals(imgs.dates) and list(back.instruments) == list(imgs.instruments)
    assert back.split_names == imgs.split_names and back.config == imgs.config


def test_no_lookahead():
    panel = make_panel(T=100, S=6)
    t = 70
    vals = panel.values.clone()
    vals[t + 1:] *= torch.rand_like(vals[t + 1:]) + 0.5
    p2 = replace(panel, values=vals)
    cfg = ImageConfig(stride=1)
    a = build_feature_images(panel, config=cfg, labels=pandas_labels(panel), progress=False)
    b = build_feature_images(p2, config=cfg, labels=pandas_labels(p2), progress=False)
    ka, kb = a.day_index <= t, b.day_index <= t
    assert torch.equal(a.images[ka], b.images[kb])
    la, lb = a.day_index <= t - 5, b.day_index <= t - 5
    assert torch.equal(a.labels[la], b.labels[lb])


def test_bad_inputs_raise_clear_errors():
    panel = make_panel(T=60, S=3)
    with pytest.raises(KeyError, match="turnover"):
        build_feature_images(panel, config=ImageConfig(rows=("close", "turnover")),
                             labels=pandas_labels(panel))
    with pytest.raises(ValueError, match="labels must be"):
        build_feature_images(panel, labels=torch.zeros(3, 3))
    with pytest.raises(ValueError, match="stride"):
        ImageConfig(stride=0)


def test_default_labels_use_shared_label_code():
    pytest.importorskip("alphaminer.expr", reason="expr package missing")
    from alphaminer import expr

    if not hasattr(expr, "Evaluator"):
        pytest.skip("alphaminer.expr.Evaluator not available yet")
    panel = make_panel(T=60, S=4)
    imgs = build_feature_images(panel, config=ImageConfig(stride=1), progress=False)
    ref = pandas_labels(panel)[imgs.day_index, imgs.stock_index]
    torch.testing.assert_close(imgs.labels, ref, rtol=1e-5, atol=1e-6)
