"""Shared settings for the AlphaNet tests (helpers live in ``alphanet_synth.py``)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _two_threads():
    torch.set_num_threads(2)
