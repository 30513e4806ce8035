"""Suite-wide settings, applied before any test module imports JAX.

JAX's persistent compilation cache: Alpha2's network is compiled afresh in every process that
mines (each ``kedro run`` subprocess of the pipeline tests, each in-process miner test), about
3 s each on these hosts. The suite's processes share one cache under ``.pytest_cache`` (JAX
writes entries atomically, and a cached executable is the one XLA would compile). A user's own
``JAX_COMPILATION_CACHE_DIR`` wins; set it to an empty string to compile everything afresh.
"""

from __future__ import annotations

import os
from pathlib import Path

_CACHE = Path(__file__).resolve().parents[1] / ".pytest_cache" / "jax-compilation"
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(_CACHE))
# the network's programs compile in well under JAX's default 1 s threshold for caching
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")


#: The slowest test files, slowest first. With ``--dist loadfile --no-loadscope-reorder``
#: (scripts/test.sh) pytest-xdist hands files to whichever worker is free in this order, so the
#: long ones start at once and the short ones fill in at the end (xdist's own reordering, by
#: number of tests per file, sent the one-test 50-60 s files last and left a worker idle). The
#: shared default run's users (test_run_modes first) are spread so that the second worker is
#: busy with files that do not need it while the first makes it, instead of waiting on its lock.
SLOW_FIRST = (
    "tests/pipelines/test_run_modes.py",
    "tests/pipelines/test_comparison.py",
    "tests/neural/test_alphanet_simulator.py",
    "tests/pipelines/test_baselines_pipeline.py",
    "tests/pipelines/test_run_modes_dask.py",
    "tests/pipelines/test_reproduce.py",
)


def pytest_collection_modifyitems(items: list) -> None:
    rank = {path: i for i, path in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))  # stable
