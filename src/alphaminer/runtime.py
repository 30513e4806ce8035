"""Process-wide helpers every layer may use: seeding, device choice and CPU threads.

See docs/architecture.md ("Conventions") and docs/howto.md (devices).

The OpenMP environment defaults for shared CPUs are applied in ``alphaminer/__init__.py``
(they must precede torch's import, which this module does).
"""

from __future__ import annotations

import ctypes
import os
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import fields
from typing import Any, TypeVar

import numpy as np
import torch

from alphaminer import available_cpus

C = TypeVar("C")


def config_from(config_cls: type[C], config: Any) -> C:
    """A typed config from ``None`` (defaults), a parameters mapping or an instance.

    Unknown keys raise naming them and the valid ones, so a typo in ``parameters/*.yml`` fails
    before any work starts instead of being silently ignored.
    """
    if config is None:
        return config_cls()
    if isinstance(config, config_cls):
        return config
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be None, a mapping or a {config_cls.__name__}; "
                        f"got {type(config).__name__}")
    known = {f.name for f in fields(config_cls)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(f"unknown {config_cls.__name__} key(s) {unknown}; valid: {sorted(known)}")
    return config_cls(**dict(config))


def seed_everything(seed: int) -> np.random.Generator:
    """Seed python, numpy and torch; return a numpy Generator for explicit use.

    JAX takes explicit keys, so callers derive ``jax.random.key(seed)`` themselves.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    return np.random.default_rng(seed)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → cuda when available, else cpu; anything else is passed to torch."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available; use 'auto'")
    return dev


def thread_report() -> dict[str, Any]:
    """The CPU threading this process runs with (logged at the start of a run).

    Useful when a run is unexpectedly slow on a shared machine: torch's intra-op and inter-op
    thread counts, the CPUs really available, and the OpenMP variables libgomp read at start.
    """
    return {"torch_threads": torch.get_num_threads(),
            "torch_interop_threads": torch.get_num_interop_threads(),
            "available_cpus": available_cpus(),
            **{k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT",
                                               "OMP_NUM_THREADS") if k in os.environ}}


_TRIM_LOCK = threading.Lock()
_TRIM_STATE: dict[str, Any] = {"libc": None, "last": float("-inf"), "calls": 0}


def _malloc_trim() -> Any:
    if _TRIM_STATE["libc"] is None:
        trim = False
        try:
            libc = ctypes.CDLL("libc.so.6")  # glibc, as apply_malloc_defaults (no ldconfig run)
            trim = getattr(libc, "malloc_trim", False)
        except OSError:
            pass
        _TRIM_STATE["libc"] = trim
    return _TRIM_STATE["libc"]


def release_free_memory(min_interval_s: float = 10.0) -> bool:
    """Hand the C heap's free pages back to the OS (glibc ``malloc_trim(0)``), at most once per
    ``min_interval_s`` seconds; True when it ran. A no-op where the C library has no
    ``malloc_trim`` (macOS, musl).

    Why: scoring allocates and frees ``[T, S]`` temporaries by the thousand. glibc raises its
    mmap threshold after the first large frees, so later temporaries come from the heap, whose
    freed pages it keeps: on the CN all-A panel AlphaGen's resident set reached 8.2 GB while its
    live allocations peaked at 3.4 GB (memray). The scorer calls this after each batch; every
    10 s it cost no measurable time on ``bench_alpha2`` (56 vs 58 s, one run each) and cut the
    peak RSS from 4.1 to 3.4 GB (every 2 s: 3.1 GB in 68 s). Within a batch only the allocator
    settings help (:func:`alphaminer.apply_malloc_defaults`).
    """
    now = time.monotonic()
    if now - _TRIM_STATE["last"] < min_interval_s:
        return False
    with _TRIM_LOCK:
        if now - _TRIM_STATE["last"] < min_interval_s:
            return False
        _TRIM_STATE["last"] = now
        trim = _malloc_trim()
        if not trim:
            return False
        trim(0)
        _TRIM_STATE["calls"] += 1
        return True


__all__ = ["available_cpus", "config_from", "release_free_memory", "resolve_device",
           "seed_everything", "thread_report"]
