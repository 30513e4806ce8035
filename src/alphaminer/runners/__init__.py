"""Kedro runners for scale-out: ``kedro run --runner=alphaminer.runners.DaskRunner``."""

from alphaminer.runners.dask_runner import GPU_RESOURCE, SCHEDULER_ENV, DaskRunner

__all__ = ["GPU_RESOURCE", "SCHEDULER_ENV", "DaskRunner"]
