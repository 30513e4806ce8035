"""Custom Kedro datasets (Kedro-side only: the library never imports this module).

- :class:`PanelDataset`: a :class:`~alphaminer.panel.Panel` stored as long parquet with its
  metadata in the schema, so flags such as ``vwap_fallback`` survive the catalog round trip.
- :class:`FeatureImagesDataset` / :class:`AlphaNetDataset`: AlphaNet's images and weights through
  the library's own pickle-free formats (safetensors + JSON).
- :class:`AlphaFormerModelDataset`: AlphaFormer weights + config, falling back to the shipped
  pre-trained model when no pre-training has run.
- :class:`ComparisonRecordsDataset`: every (method, seed) record of the multi-seed comparison.
- :class:`OptionalJSONDataset`: versioned JSON that loads as ``None`` while nothing has been
  saved, for a report input whose pipeline is not part of every run.
- :class:`~alphaminer.kedro_figures.FigureFilesDataset` (its own module, so that the datasets
  here do not import matplotlib): a folder of figures that also takes PNG bytes already
  rendered, so the report's figures are drawn once for the HTML and the files.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import fsspec
from kedro.io import AbstractDataset, AbstractVersionedDataset, DatasetError, Version
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


class AlphaFormerModelDataset(_LocalVersioned):
    """An AlphaFormer model folder (``model.safetensors`` + ``config.json``; pickle-free).

    ``fallback`` is the model loaded when no version has been saved yet (no fresh
    ``alphaformer_pretrain`` run): the shipped ``models/alphaformer``. A relative fallback is
    looked up from the working directory, then from the project checkout the package lives in.
    """

    def __init__(self, filepath: str, version: Version | None = None,
                 metadata: dict[str, Any] | None = None, fallback: str | None = None) -> None:
        super().__init__(filepath, version, metadata)
        self._fallback = fallback

    def _fallback_path(self) -> str | None:
        from pathlib import Path

        if not self._fallback:
            return None
        p = Path(self._fallback)
        cands = [p] if p.is_absolute() else [Path.cwd() / p,
                                              Path(__file__).resolve().parents[2] / p]
        for c in cands:
            if (c / "config.json").exists():
                return str(c)
        return None

    def _exists(self) -> bool:
        return super()._exists() or self._fallback_path() is not None

    def load(self) -> Any:
        import logging

        from alphaminer.mining.alphaformer.model import SavedModel, load_model

        try:
            path = self._path(load=True)
            if not self._fs.exists(path):
                raise DatasetError(f"no model at {path}")
        except DatasetError:
            path = self._fallback_path()
            if path is None:
                raise DatasetError(f"no AlphaFormer model saved under {self._filepath} and no "
                                   f"fallback at {self._fallback!r}: run alphaformer_pretrain"
                                   ) from None
            logging.getLogger(__name__).info("alphaformer: no pre-trained version under %s, "
                                             "using the shipped model %s", self._filepath, path)
        model, meta = load_model(path)
        return SavedModel(model, meta, source=str(path))

    def save(self, data: Any) -> None:
        from alphaminer.mining.alphaformer.model import SavedModel, save_model

        if not isinstance(data, SavedModel):
            raise TypeError(f"AlphaFormerModelDataset saves a SavedModel, got "
                            f"{type(data).__name__}")
        save_model(data.model, self._path(load=False), data.meta, history=data.history)


def _json_scalar(o: Any) -> Any:
    """numpy scalars and arrays as numbers and lists; anything else is an error, as in json."""
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


class OptionalJSONDataset(_LocalVersioned):
    """Versioned JSON; loading before any version exists gives ``None`` instead of an error.

    Why: ``synthetic_quality`` is written by ``synthetic_generation``, which is not in the default
    run, yet the report shows it when it exists. As the same dataset (not a copy), a run with both
    pipelines still orders the report after it."""

    def load(self) -> Any:
        import json

        try:
            path = self._path(load=True)
        except DatasetError:
            return None
        if not self._fs.exists(path):
            return None
        with self._fs.open(path, "r", encoding="utf-8") as f:
            return json.load(f)

    def save(self, data: Any) -> None:
        import json

        path = self._path(load=False)
        self._fs.makedirs(str(PurePosixPath(path).parent), exist_ok=True)
        with self._fs.open(path, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, default=_json_scalar)

    def _exists(self) -> bool:
        return True


class ComparisonRecordsDataset(AbstractDataset):
    """Read-only: the latest record of every (method, seed) pair of every comparison under
    ``path`` (``<path>/<hash>/seed_<s>/07_model_output/<m>/comparison_record.json/<version>/
    comparison_record.json``, as the pairs' own runs write them). An empty list when no
    comparison has run, so the report can say so instead of failing."""

    RECORD = "comparison_record.json"

    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._root = PurePosixPath(path)
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._root)}

    def load(self) -> list[dict[str, Any]]:
        from pathlib import Path

        root = Path(str(self._root))
        if not root.is_dir():
            return []
        found = (self.latest(ds) for ds in
                 sorted(root.glob(f"*/seed_*/07_model_output/*/{self.RECORD}")))
        return [r for r in found if r is not None]

    @classmethod
    def latest(cls, folder: Any) -> dict[str, Any] | None:
        """The newest version of one pair's versioned record folder, or None."""
        import json
        from pathlib import Path

        folder = Path(folder)
        if not folder.is_dir():
            return None
        versions = sorted(v for v in folder.iterdir() if (v / cls.RECORD).is_file())
        return json.loads((versions[-1] / cls.RECORD).read_text()) if versions else None

    def save(self, data: Any) -> None:
        raise DatasetError("comparison_records is read-only: each pair's run writes its own "
                           "'<method>.comparison_record'")

    def _exists(self) -> bool:
        return True
