"""``comparison``: the multi-seed method comparison (see ``pipeline.py`` and ``driver.py``)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
