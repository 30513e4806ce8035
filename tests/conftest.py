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


def _worker_threads() -> int:
    """Compute threads per pytest-xdist worker: the usable CPUs shared between the workers.

    With 2 workers on 2 cores, a second torch thread in each only oversubscribes the cores, and
    under ``OMP_WAIT_POLICY=PASSIVE`` every parallel region then waits for a thread to wake up
    (benchmarks/README.md, "Shared CPU": one thread ran an AlphaNet epoch in 1.7 s, two in 2.7 s
    even on a quiet machine)."""
    from alphaminer import available_cpus  # stdlib only: torch is not loaded yet

    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return max(1, available_cpus() // max(1, workers))


#: set before torch loads, so torch in this process and every subprocess a test starts
#: (``kedro run``, ParallelRunner workers) reads it; a test that needs more sets it itself
WORKER_THREADS = _worker_threads()
if "PYTEST_XDIST_WORKER" in os.environ:
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_var, str(WORKER_THREADS))


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
