"""Custom Kedro datasets (Kedro-side only: the library never imports this module).

- :class:`PanelDataset`: a :class:`~alphaminer.panel.Panel` stored as long parquet with its
  metadata in the schema, so flags such as ``vwap_fallback`` survive the catalog round trip.
- :class:`FeatureImagesDataset` / :class:`AlphaNetDataset`: AlphaNet's images and weights through
  the library's own pickle-free formats (safetensors + JSON).
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import fsspec
from kedro.io import AbstractVersionedDataset, DatasetError, Version
from kedro.io.core import get_filepath_str, get_protocol_and_path

from alphaminer.panel import Panel


class _LocalVersioned(AbstractVersionedDataset):
    def __init__(self, filepath: str, version: Version | None = None,
                 metadata: dict[str, Any] | None = None) -> None:
        protocol, path = get_protocol_and_path(filepath, version)
        self._protocol = protocol
        self._fs = fsspec.filesystem(protocol)
        self.metadata = metadata
        super().__init__(filepath=PurePosixPath(path), version=version,
                         exists_function=self._fs.exists, glob_function=self._fs.glob)

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "version": self._version}

    def _exists(self) -> bool:
        try:
            path = get_filepath_str(self._get_load_path(), self._protocol)
        except DatasetError:
            return False
        return self._fs.exists(path)

    def _path(self, load: bool) -> str:
        p = self._get_load_path() if load else self._get_save_path()
        return get_filepath_str(p, self._protocol)


class PanelDataset(_LocalVersioned):
    """Long parquet <-> :class:`Panel`."""

    def load(self) -> Panel:
        return Panel.load(self._path(load=True))

    def save(self, data: Panel) -> None:
        if not isinstance(data, Panel):
            raise TypeError(f"PanelDataset saves a Panel, got {type(data).__name__}")
        path = self._path(load=False)
        self._fs.makedirs(str(PurePosixPath(path).parent), exist_ok=True)
        data.save(path)


class FeatureImagesDataset(_LocalVersioned):
    """AlphaNet :class:`~alphaminer.neural.alphanet.FeatureImages` (safetensors + JSON sidecar)."""

    def load(self) -> Any:
        from alphaminer.neural.alphanet import FeatureImages

        return FeatureImages.load(self._path(load=True))

    def save(self, data: Any) -> None:
        data.save(self._path(load=False))


class AlphaNetDataset(_LocalVersioned):
    """A trained AlphaNet: a folder with ``model.safetensors`` + ``config.json`` (pickle-free)."""

    def load(self) -> Any:
        from alphaminer.neural.alphanet import load_checkpoint

        return load_checkpoint(self._path(load=True))

    def save(self, data: Any) -> None:
        from alphaminer.neural.alphanet import save_checkpoint

        save_checkpoint(data, self._path(load=False))


class SyntheticModelsDataset(_LocalVersioned):
    """The synthetic-market models (generators + LSTM evaluator + scaler): a folder with one
    ``<name>.safetensors`` per model and ``config.json`` (architectures; pickle-free)."""

    def load(self) -> Any:
        from alphaminer.synthetic import SyntheticModels

        return SyntheticModels.load(self._path(load=True))

    def save(self, data: Any) -> None:
        from alphaminer.synthetic import SyntheticModels

        if not isinstance(data, SyntheticModels):
            raise TypeError(f"SyntheticModelsDataset saves SyntheticModels, got "
                            f"{type(data).__name__}")
        data.save(self._path(load=False))
