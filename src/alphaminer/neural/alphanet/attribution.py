"""Gradient attribution of a trained AlphaNet back to its symbolic pooled features.

Score of pooled feature ``k`` = mean over images of ``|∂L/∂a_k · a_k|`` (gradient × activation),
where ``a`` are the 288 BN'd pooled features and ``L`` the −|IC| loss of each day's cross-section
(model in eval mode, so BN uses running statistics and dropout is off).

Why gradient × activation rather than mean |gradient|: a feature that is almost always ~0 after
BN can have a large gradient yet contribute nothing to the predictions; multiplying by the
activation measures the first-order contribution of the feature to the loss on the data actually
seen. Features are unit-scale after BN, so scores are comparable across features.
"""

from __future__ import annotations

import pandas as pd
import torch
from tqdm.auto import tqdm

from alphaminer.neural.alphanet.images import FeatureImages
from alphaminer.neural.alphanet.model import AlphaNet
from alphaminer.neural.alphanet.train import day_batches, neg_abs_ic_loss
from alphaminer.runtime import resolve_device

METHODS = ("grad_x_activation", "abs_grad")


def feature_scores(
    model: AlphaNet,
    images: FeatureImages,
    *,
    method: str = "grad_x_activation",
    min_stocks: int = 10,
    days_per_batch: int = 8,
    device: str | torch.device = "auto",
    progress: bool = True,
) -> torch.Tensor:
    """``[n_pooled]`` attribution scores of the pooled features over ``images`` (see module)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if len(images) == 0:
        raise ValueError("attribution needs at least one image")
    dev = resolve_device(device)
    model = model.to(dev).eval()
    total = torch.zeros(model.config.n_pooled, dtype=torch.float64)
    count = 0
    _, g_all = torch.unique_consecutive(images.day_index, return_inverse=True)
    batches = day_batches(images.day_index, days_per_batch)
    for i0, i1 in tqdm(batches, desc="alphanet attribution", disable=not progress, leave=False):
        x = images.images[i0:i1].to(dev, torch.float32)
        y = images.labels[i0:i1].to(dev, torch.float32)
        g = (g_all[i0:i1] - g_all[i0]).to(dev)
        ops = model.operator_features(x)
        pooled = model.pooled_features(ops).detach().requires_grad_(True)
        pred = model.head(ops.detach(), pooled)
        loss, _, ok = neg_abs_ic_loss(pred, y, g, int(g[-1]) + 1, min_stocks)
        if not bool(ok.any()):
            continue
        (grad,) = torch.autograd.grad(loss, pooled)
        act = pooled.detach()
        contrib = (grad * act).abs() if method == "grad_x_activation" else grad.abs()
        # images of days that did not enter the loss have zero gradient; count only used ones
        used = ok[g]
        total += contrib[used].sum(dim=0).double().cpu()
        count += int(used.sum())
    if count == 0:
        raise ValueError(f"no day with at least {min_stocks} images: nothing to attribute")
    return (total / count).float()


def attribution_table(
    model: AlphaNet,
    images: FeatureImages,
    *,
    split: str | None = "test",
    top_k: int | None = 20,
    method: str = "grad_x_activation",
    min_stocks: int = 10,
    device: str | torch.device = "auto",
    progress: bool = True,
) -> pd.DataFrame:
    """Top-``k`` pooled features by attribution: DataFrame ``rank, feature, score``.

    ``split`` picks the segment (``None`` = all images); ``top_k=None`` returns all features.
    """
    subset = images.subset(split) if split is not None else images
    scores = feature_scores(model, subset, method=method, min_stocks=min_stocks, device=device,
                            progress=progress)
    names = model.feature_names()
    order = torch.argsort(scores, descending=True, stable=True)
    if top_k is not None:
        order = order[:top_k]
    return pd.DataFrame({
        "rank": range(1, len(order) + 1),
        "feature": [names[i] for i in order.tolist()],
        "score": scores[order].numpy().astype(float),
    })


__all__ = ["METHODS", "attribution_table", "feature_scores"]
