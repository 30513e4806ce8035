"""``alphaformer_infer``: the frozen AlphaFormer model mines the ingested panel."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
