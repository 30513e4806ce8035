"""AlphaNet: feature images, operator-layer network, −|IC| training, gradient attribution.

Typical use (each line is one Kedro node)::

    imgs = build_feature_images(panel, splits, ImageConfig())          # feature_images
    result = train_alphanet(imgs, TrainConfig(), checkpoint_dir="...")  # alphanet_train
    signal = predict(result.model, panel)                              # [T, S] scores
    table = attribution_table(result.model, imgs, split="test")        # rank, feature, score
"""

from alphaminer.neural.alphanet.attribution import attribution_table, feature_scores
from alphaminer.neural.alphanet.images import (
    DEFAULT_ROWS,
    FeatureImages,
    ImageConfig,
    build_feature_images,
)
from alphaminer.neural.alphanet.model import (
    AlphaNet,
    AlphaNetConfig,
    operator_layer,
    operator_names,
    pooled_names,
)
from alphaminer.neural.alphanet.train import (
    TrainConfig,
    TrainResult,
    load_checkpoint,
    neg_abs_ic_loss,
    predict,
    save_checkpoint,
    train_alphanet,
)

__all__ = [
    "DEFAULT_ROWS", "AlphaNet", "AlphaNetConfig", "FeatureImages", "ImageConfig", "TrainConfig",
    "TrainResult", "attribution_table", "build_feature_images", "feature_scores",
    "load_checkpoint", "neg_abs_ic_loss", "operator_layer", "operator_names", "pooled_names",
    "predict", "save_checkpoint", "train_alphanet",
]
