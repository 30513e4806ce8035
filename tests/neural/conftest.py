"""Shared settings for the AlphaNet tests (helpers live in ``alphanet_synth.py``)."""

import os

import pytest
import torch


@pytest.fixture(autouse=True)
def _threads():
    """Two torch threads, or each pytest-xdist worker's share of the cores (tests/conftest.py)."""
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
