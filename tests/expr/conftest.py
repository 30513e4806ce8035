"""Fixtures for the expression-language tests (helpers live in expr_testutils.py)."""

from __future__ import annotations

import pytest
from expr_testutils import make_panel

from alphaminer.panel import Panel


@pytest.fixture(scope="module")
def panel() -> Panel:
    return make_panel()
