"""Peak memory per node (``alphaminer.memory``): the kernel's peak mark, reset per node."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from alphaminer.memory import MemoryHooks, peak_rss_bytes, reset_peak

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists() or not reset_peak(),
                                reason="needs Linux /proc peak-RSS reset")


class _Node:
    def __init__(self, name: str) -> None:
        self.name = name


def test_each_node_gets_its_own_peak_and_the_table_is_written(tmp_path: Path) -> None:
    hooks = MemoryHooks()
    hooks.before_pipeline_run({"runtime_params": {"data_root": str(tmp_path / "d")},
                               "project_path": str(tmp_path)}, None, None)
    big, small = _Node("big"), _Node("small")
    hooks.before_node_run(big, None, {})
    a = np.ones(200 * 2**20 // 8)  # 200 MB, touched
    hooks.after_node_run(big, None, {}, {})
    del a
    # written after each node: a run killed here keeps the finished node's row
    folder = tmp_path / "d" / "08_reporting" / "memory"
    [early] = list(folder.glob("*.json"))
    assert [r["node"] for r in json.loads(early.read_text())["nodes"]] == ["big"]
    hooks.before_node_run(small, None, {})
    b = np.ones(2**20 // 8)
    hooks.after_node_run(small, None, {}, {})
    del b
    rows = {r["node"]: r for r in hooks.memory_table()["nodes"]}
    # the big node's peak holds its 200 MB; the small node's peak was reset after it
    assert rows["big"]["peak_rss_mb"] - rows["small"]["peak_rss_mb"] > 150
    assert rows["small"]["peak_rss_mb"] >= rows["small"]["rss_after_mb"] - 1
    # the big node started below its peak by about its 200 MB
    assert rows["big"]["peak_rss_mb"] - rows["big"]["rss_before_mb"] > 150
    assert hooks.memory_table()["run_peak_rss_mb"] == max(r["peak_rss_mb"] for r in rows.values())
    hooks.after_pipeline_run({}, None, None, None)
    files = list((tmp_path / "d" / "08_reporting" / "memory").glob("*.json"))
    assert len(files) == 1
    assert json.loads(files[0].read_text())["nodes"][0]["node"] == "big"


def test_peak_mark_reset_and_read() -> None:
    reset_peak()
    base = peak_rss_bytes()
    x = np.ones(64 * 2**20 // 8)
    assert peak_rss_bytes() - base > 50 * 2**20
    del x
    reset_peak()
    assert peak_rss_bytes() - base < 30 * 2**20


def test_free_heap_pages_go_back_to_the_os() -> None:
    """Blocks below glibc's mmap threshold come from the heap; freed behind a live block at the
    top, they stay resident until ``malloc_trim`` hands them back."""
    import alphaminer.runtime as rt
    from alphaminer.memory import rss_bytes

    if not rt._malloc_trim():
        pytest.skip("no malloc_trim in this C library")
    rt.release_free_memory(0.0)
    blocks = [bytearray(b"x" * 60_000) for _ in range(4000)]  # 240 MB in 60 kB heap chunks
    pin = bytearray(b"y" * 60_000)  # keeps the heap's top in use, so free() cannot shrink it
    del blocks
    before = rss_bytes()
    assert rt.release_free_memory(0.0)
    after = rss_bytes()
    assert before is not None and after is not None
    assert before - after > 150 * 2**20, (before, after)
    assert not rt.release_free_memory(3600.0)  # rate-limited: ran a moment ago
    calls = rt._TRIM_STATE["calls"]
    assert rt.release_free_memory(0.0) and rt._TRIM_STATE["calls"] == calls + 1
    del pin


_PROBE = r"""
import ctypes, json, alphaminer

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                               "usmblks", "fsmblks", "uordblks", "fordblks",
                                               "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.free(libc.malloc(6 << 20))  # glibc's dynamic threshold would rise past 6 MB here
before = libc.mallinfo2().hblks
p = libc.malloc(5 << 20)
mapped = libc.mallinfo2().hblks - before  # 1: its own mapping; 0: carved from the heap
libc.free(p)
print(json.dumps({"set": alphaminer.MALLOC_DEFAULTS, "mapped": mapped}))
"""


def _probe(**env: str) -> dict:
    import json
    import os
    import subprocess
    import sys

    # every glibc malloc variable out: any of them pins the threshold (and Dask's nanny sets
    # MALLOC_TRIM_THRESHOLD_ in the process that starts a LocalCluster: an earlier test's)
    full = {k: v for k, v in os.environ.items()
            if not k.startswith(("MALLOC_", "GLIBC_TUNABLES"))
            and k not in ("ALPHAMINER_MALLOC_DEFAULTS", "ALPHAMINER_MMAP_THRESHOLD")}
    out = subprocess.run([sys.executable, "-c", _PROBE], env={**full, **env}, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_large_blocks_keep_their_own_mapping_under_the_package_defaults() -> None:
    """glibc raises its mmap threshold after a large free, so a panel-sized temporary then
    comes from the heap (and its freed space stays resident); the package fixes it at 4 MB."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").mallinfo2  # noqa: B018
    except (OSError, AttributeError):
        pytest.skip("needs glibc >= 2.33 (mallinfo2)")
    from alphaminer import available_cpus

    on = _probe()
    assert on == {"set": {"MALLOC_ARENA_MAX": available_cpus(),
                          "MALLOC_MMAP_THRESHOLD_": 4 << 20}, "mapped": 1}
    off = _probe(ALPHAMINER_MALLOC_DEFAULTS="0")
    assert off == {"set": {}, "mapped": 0}  # glibc's own behaviour: the threshold moved
    user = _probe(MALLOC_ARENA_MAX="3")  # the user's setting is kept, the other still applied
    assert user["set"] == {"MALLOC_MMAP_THRESHOLD_": 4 << 20} and user["mapped"] == 1
    moving = _probe(ALPHAMINER_MMAP_THRESHOLD="0")  # arenas only: glibc's threshold moves
    assert moving == {"set": {"MALLOC_ARENA_MAX": available_cpus()}, "mapped": 0}
