"""Fixtures for the combination tests."""

import pytest
from combination_data import planted_linear


@pytest.fixture
def planted():
    return planted_linear()
