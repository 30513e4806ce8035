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
