"""OptionalJSONDataset: None before the first save, then the newest version."""

from __future__ import annotations

from pathlib import Path

from kedro.io import Version

from alphaminer.kedro_io import OptionalJSONDataset


def test_none_until_saved_then_latest_version(tmp_path: Path) -> None:
    path = str(tmp_path / "q" / "quality.json")
    assert OptionalJSONDataset(path, version=Version(None, None)).load() is None
    assert OptionalJSONDataset(path, version=Version(None, None)).exists()
    OptionalJSONDataset(path, version=Version(None, "2026-01-01T00.00.00.000Z")).save({"a": 1})
    OptionalJSONDataset(path, version=Version(None, "2026-01-02T00.00.00.000Z")).save({"a": 2})
    assert OptionalJSONDataset(path, version=Version(None, None)).load() == {"a": 2}
    pinned = OptionalJSONDataset(path, version=Version("2026-01-01T00.00.00.000Z", None))
    assert pinned.load() == {"a": 1}


def test_numpy_scalars_are_numbers(tmp_path: Path) -> None:
    import numpy as np
    import pytest

    path = str(tmp_path / "n.json")
    OptionalJSONDataset(path, version=Version(None, "v1")).save(
        {"x": np.float32(0.5), "v": np.arange(3)})
    assert OptionalJSONDataset(path, version=Version(None, None)).load() == {"x": 0.5,
                                                                             "v": [0, 1, 2]}
    with pytest.raises(Exception, match="not JSON serialisable"):
        OptionalJSONDataset(path, version=Version(None, "v2")).save({"o": object()})
