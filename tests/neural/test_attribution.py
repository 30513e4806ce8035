"""Gradient attribution: a model that only reads one pooled feature ranks exactly that one first."""

from __future__ import annotations

import pytest
import torch
from alphanet_synth import make_panel, pandas_labels

from alphaminer.neural.alphanet import (
    AlphaNet,
    ImageConfig,
    attribution_table,
    build_feature_images,
    pooled_names,
)
from alphaminer.neural.alphanet.attribution import feature_scores


def _images():
    panel = make_panel(T=120, S=40, seed=5)
    return build_feature_images(panel, {"train": (0, 80), "test": (80, 120)},
                                ImageConfig(stride=1), labels=pandas_labels(panel),
                                progress=False)


def _single_feature_model(k: int) -> AlphaNet:
    torch.manual_seed(0)
    model = AlphaNet()
    c = model.config
    with torch.no_grad():
        model.fc1.weight.zero_()
        model.fc1.bias.fill_(10.0)  # keep the ReLU open
        model.fc1.weight[:, c.n_channels * c.n_columns + k] = 1.0  # pooled feature k only
        model.fc2.weight.fill_(1.0)
    return model.eval()


@pytest.mark.parametrize("method", ["grad_x_activation", "abs_grad"])
def test_attribution_finds_the_only_used_feature(method):
    imgs = _images()
    k = pooled_names(AlphaNet().config).index("BN(ts_min(BN(ts_corr(open,low,10)),3))")
    model = _single_feature_model(k)
    scores = feature_scores(model, imgs.subset("test"), method=method, progress=False)
    assert scores.shape == (288,)
    assert int(torch.argmax(scores)) == k and float(scores[k]) > 0
    others = torch.cat([scores[:k], scores[k + 1:]])
    assert float(others.abs().max()) == 0.0
    table = attribution_table(model, imgs, split="test", top_k=5, method=method,
                              progress=False)
    assert list(table.columns) == ["rank", "feature", "score"]
    assert table["rank"].tolist() == [1, 2, 3, 4, 5]
    assert table.loc[0, "feature"] == "BN(ts_min(BN(ts_corr(open,low,10)),3))"


def test_attribution_table_of_a_random_model_is_sorted_and_complete():
    imgs = _images()
    torch.manual_seed(1)
    model = AlphaNet().eval()
    table = attribution_table(model, imgs, split=None, top_k=None, progress=False)
    assert len(table) == 288 and set(table["feature"]) == set(model.feature_names())
    assert (table["score"].diff().dropna() <= 0).all() and (table["score"] >= 0).all()
    with pytest.raises(ValueError, match="method"):
        feature_scores(model, imgs, method="shap")
