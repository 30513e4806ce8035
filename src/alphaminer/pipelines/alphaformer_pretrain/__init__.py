"""``alphaformer_pretrain``: PPO pre-training of AlphaFormer on the synthetic markets."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
