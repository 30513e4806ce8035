"""A Kedro dataset for the report's figure files (Kedro-side only, like :mod:`alphaminer.kedro_io`;
a module of its own because importing it imports ``matplotlib.pyplot``)."""

from __future__ import annotations

from typing import Any

from kedro.io import DatasetError
from kedro_datasets.matplotlib import MatplotlibDataset

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class FigureFilesDataset(MatplotlibDataset):
    """``matplotlib.MatplotlibDataset`` (same arguments, same kedro-viz preview) whose values may
    also be PNG ``bytes``, written as they are.

    Drawing a figure costs far more than encoding it: the report renders each method figure for
    its HTML, and saving those bytes avoids drawing all of them a second time.
    """

    def _save_to_fs(self, full_key_path: str, plot: Any) -> None:
        if isinstance(plot, bytes | bytearray):
            if bytes(plot[:8]) != _PNG_SIGNATURE:
                raise DatasetError(f"{full_key_path}: bytes given that are not a PNG image")
            with self._fs.open(full_key_path, **self._fs_open_args_save) as fs_file:
                fs_file.write(bytes(plot))
            return
        super()._save_to_fs(full_key_path, plot)
