"""Fixtures for the data tests."""

from __future__ import annotations

import pandas as pd
import pytest
from data_testutils import make_raw


@pytest.fixture
def raw_frame() -> pd.DataFrame:
    return make_raw()
