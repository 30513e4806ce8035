"""DaskRunner unit checks that need no project run: in-memory hand-offs and a ``gpu`` node
without a GPU worker fail before any node runs. The whole default pipeline under DaskRunner,
against the SequentialRunner, is ``test_dask_runner_equals_sequential`` in
tests/pipelines/test_run_modes.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline, node

from alphaminer.runners import DaskRunner
from alphaminer.runners.dask_runner import in_memory_handoffs


def _double(x: int) -> int:
    return 2 * x


def test_in_memory_handoff_fails_before_any_node_runs() -> None:
    pipe = Pipeline([node(_double, "a", "b", name="first"), node(_double, "b", "c", name="x")])
    catalog = DataCatalog({"a": MemoryDataset(1)})
    assert in_memory_handoffs(pipe, catalog) == ["b"]
    with pytest.raises(ValueError, match=r"\['b'\].*--env dask"):
        DaskRunner(address="tcp://127.0.0.1:1").run(pipe, catalog)  # never connects


def test_gpu_node_without_gpu_worker_fails_early(tmp_path: Path) -> None:
    from distributed import LocalCluster

    from alphaminer.runners.dask_runner import GPU_RESOURCE

    pipe = Pipeline([node(_double, "a", "b", name="train", tags=["gpu"])])
    catalog = DataCatalog({"a": MemoryDataset(3), "b": MemoryDataset()})
    # an in-process cluster (inproc:// transport, no network) whose one worker has no GPU
    with (LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                       dashboard_address=None) as lc,
          pytest.raises(RuntimeError, match=f"{GPU_RESOURCE}=1.*has none")):
        DaskRunner(address=lc.scheduler_address, project_path=str(tmp_path)).run(pipe, catalog)
