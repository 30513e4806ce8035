"""AlphaMiner: mining, combining and backtesting formulaic alpha factors.

Importing the package sets the process's OpenMP defaults (:func:`apply_thread_defaults`) before
torch loads, and glibc's allocator defaults (:func:`apply_malloc_defaults`), so this module must
import nothing heavy (stdlib only).
"""

from __future__ import annotations

import os
import sys

__version__ = "0.1.0"

#: Environment variables a user may set to control OpenMP waiting; when either is set we keep out.
_WAIT_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def available_cpus() -> int:
    """CPUs this process may really use: its affinity mask, capped by a cgroup v2 CPU quota.

    ``os.cpu_count()`` counts the host's CPUs, which over-counts in containers and under
    ``taskset``; sizing thread pools by it oversubscribes the cores we actually get.
    """
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    try:
        with open("/sys/fs/cgroup/cpu.max") as fh:
            quota, period = fh.read().split()[:2]
        if quota != "max":
            n = min(n, max(1, int(float(quota) / float(period))))
    except (OSError, ValueError):
        pass
    return max(1, n)


def apply_thread_defaults() -> dict[str, str]:
    """Set OpenMP defaults for shared CPUs in ``os.environ``; return what was set.

    torch's CPU kernels run on libgomp, whose idle threads spin-wait (``GOMP_SPINCOUNT``
    300,000) after every parallel region. On a quiet machine that hides wake-up latency; on a
    shared one the spinning thread burns the core the main thread needs next, and an AlphaNet
    epoch ran 13-70x slower beside busy processes instead of the ~2.5x fair share (see the
    benchmarks README, "Shared CPU"). ``OMP_WAIT_POLICY=PASSIVE`` makes idle threads sleep.

    Only effective before torch (libgomp) is loaded, which importing any ``alphaminer`` module
    first guarantees. Values the user already set are kept (if either ``OMP_WAIT_POLICY`` or
    ``GOMP_SPINCOUNT`` is set, neither is touched); ``ALPHAMINER_THREAD_DEFAULTS=0`` turns this
    off. ``OMP_NUM_THREADS`` is set only when a cgroup quota or affinity mask leaves fewer CPUs
    than the host has, since libgomp does not read the quota and would start a thread per host
    CPU.
    """
    if os.environ.get("ALPHAMINER_THREAD_DEFAULTS", "1").strip().lower() in ("0", "false", "no"):
        return {}
    if "torch" in sys.modules:
        return {}  # libgomp already read its environment; changing it now would only mislead
    changed: dict[str, str] = {}
    if not any(v in os.environ for v in _WAIT_VARS):
        changed["OMP_WAIT_POLICY"] = "PASSIVE"
    n = available_cpus()
    if "OMP_NUM_THREADS" not in os.environ and n < (os.cpu_count() or n):
        changed["OMP_NUM_THREADS"] = str(n)
    os.environ.update(changed)
    return changed


#: glibc ``mallopt`` parameters (malloc.h); the environment variables that set them at start.
_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8
MMAP_THRESHOLD_BYTES = 4 << 20


def apply_malloc_defaults() -> dict[str, int]:
    """Tune glibc's allocator for ``[T, S]`` tensors; return what was set (empty elsewhere).

    Scoring allocates and frees panel-sized temporaries by the thousand. glibc serves a block
    above its mmap threshold with its own mapping, returned on free, but raises that threshold
    (up to 32 MB) after the first such frees, so later temporaries come from the heap, where
    freed space stays resident between live blocks; and each allocating thread may get its own
    arena (up to 8 per core), each keeping its own freed space. On the CN all-A panel (3,724
    stocks; a train-split ``[T, S]`` float32 is ~7 MB) 6 AlphaGen updates peaked at 6.1 GB
    resident with glibc's defaults, 4.6 GB with one arena per usable core, and 3.0 GB with a
    fixed mmap threshold as well (benchmarks README, "Memory on the CN all-A panel").

    Sets ``M_ARENA_MAX`` to the usable CPUs and fixes ``M_MMAP_THRESHOLD`` at 4 MB: a large
    panel's blocks always map and unmap, while the default simulator's (300 stocks, ~2 MB) keep
    the heap's speed. The price on a large panel is a page fault per fresh page: AlphaGen on CN
    all-A ran 60 s instead of 41 s (one arena per CPU alone: 4.6 GB). Memory is the default
    because a run that does not fit cannot finish; ``ALPHAMINER_MMAP_THRESHOLD`` (bytes; 0 keeps
    glibc's moving threshold) trades it back. Values the user set (``MALLOC_ARENA_MAX``,
    ``MALLOC_MMAP_THRESHOLD_``, read by glibc at start) are kept;
    ``ALPHAMINER_MALLOC_DEFAULTS=0`` turns all of this off.
    """
    if os.environ.get("ALPHAMINER_MALLOC_DEFAULTS", "1").strip().lower() in ("0", "false", "no"):
        return {}
    if not sys.platform.startswith("linux"):
        return {}
    import ctypes

    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return {}  # not glibc
    changed: dict[str, int] = {}
    try:
        threshold = int(os.environ.get("ALPHAMINER_MMAP_THRESHOLD", MMAP_THRESHOLD_BYTES))
    except ValueError:
        threshold = MMAP_THRESHOLD_BYTES
    wanted = {"MALLOC_ARENA_MAX": (_M_ARENA_MAX, available_cpus())}
    if threshold > 0:
        wanted["MALLOC_MMAP_THRESHOLD_"] = (_M_MMAP_THRESHOLD, threshold)
    for var, (param, value) in wanted.items():
        if var not in os.environ and mallopt(param, value) == 1:
            changed[var] = value
    return changed


apply_thread_defaults()
#: what :func:`apply_malloc_defaults` set in this process
MALLOC_DEFAULTS = apply_malloc_defaults()
