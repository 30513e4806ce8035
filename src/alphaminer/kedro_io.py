"""Custom Kedro datasets (Kedro-side only: the library never imports this module).

- :class:`PanelDataset`: a :class:`~alphaminer.panel.Panel` stored as long parquet with its
  metadata in the schema, so flags such as ``vwap_fallback`` survive the catalog round trip.
- :class:`SafetensorsDataset`: a ``dict[str, Tensor]`` (model weights, image tensors) stored
  pickle-free, with a JSON sidecar for the non-tensor part (architecture config, axes).
"""

from __future__ import annotations

import json
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


class SafetensorsDataset(_LocalVersioned):
    """``{"tensors": dict[str, Tensor], "meta": dict}`` <-> ``file.safetensors`` + ``file.json``."""

    def load(self) -> dict[str, Any]:
        from safetensors.torch import load_file

        path = self._path(load=True)
        with self._fs.open(path + ".json") as f:
            meta = json.load(f)
        return {"tensors": load_file(path), "meta": meta}

    def save(self, data: dict[str, Any]) -> None:
        from safetensors.torch import save_file

        if set(data) - {"tensors", "meta"} or "tensors" not in data:
            raise ValueError("SafetensorsDataset expects {'tensors': {...}, 'meta': {...}}")
        path = self._path(load=False)
        self._fs.makedirs(str(PurePosixPath(path).parent), exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous() for k, v in data["tensors"].items()}
        save_file(tensors, path)
        with self._fs.open(path + ".json", "w") as f:
            json.dump(data.get("meta", {}), f, indent=1, default=str)
