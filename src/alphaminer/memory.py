"""Peak memory per node: what each stage of a run needs, read from the kernel.

Before each node the process's peak-RSS mark is reset (``/proc/self/clear_refs``, value 5);
after it, ``VmHWM`` is that node's own peak and ``VmRSS`` what it left behind (after the C
heap's free pages are handed back, :func:`alphaminer.runtime.release_free_memory`). Kedro's
SequentialRunner and ThreadRunner call node hooks in the run's process (ThreadRunner's nodes
overlap, so a peak there is shared by the nodes running at the time). ParallelRunner's spawned
workers run no node hooks; the Dask runner's workers run them in their own processes, where no
run began (``before_pipeline_run`` runs in the driver). Neither's nodes are in the table. Where the
kernel has no ``/proc`` (macOS), the hook records nothing. The table (``memory_table``) is
written to ``<data_root>/08_reporting/memory/<run start>.json`` after every node, so a run that
is killed (or runs out of memory) keeps the rows of the nodes it finished, and logged at the
end. Each
row also has the RSS before the node: a node's own need is ``peak - rss_before``; the rest is
what earlier nodes left resident.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from alphaminer.runtime import release_free_memory

log = logging.getLogger(__name__)

_STATUS = Path("/proc/self/status")
_CLEAR = Path("/proc/self/clear_refs")


def _status_kib(key: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_bytes() -> int | None:
    """Current resident set size of this process (None where /proc is absent)."""
    kib = _status_kib("VmRSS")
    return None if kib is None else kib * 1024


def peak_rss_bytes() -> int | None:
    """Peak RSS since the process started or since the last :func:`reset_peak`."""
    kib = _status_kib("VmHWM")
    return None if kib is None else kib * 1024


def reset_peak() -> bool:
    """Reset the peak-RSS mark to the current RSS (Linux ≥ 4.0); False where unsupported."""
    try:
        _CLEAR.write_text("5")
    except OSError:
        return False
    return True


class MemoryHooks:
    """Each node's peak, prior and remaining RSS and the run's overall peak, as a table kept
    up to date on disk after every node."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self._t0: dict[str, float] = {}
        self._before: dict[str, int | None] = {}
        self._warned = False
        self._run_peak = 0
        self._data_root: Path | None = None
        self._started = ""

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any,
                            catalog: Any) -> None:
        self.rows = []
        self._run_peak = 0
        self._started = time.strftime("%Y-%m-%dT%H.%M.%S")
        runtime = run_params.get("runtime_params") or {}
        project = Path(run_params.get("project_path") or Path.cwd())
        root = Path(str(runtime.get("data_root", "data")))
        self._data_root = root if root.is_absolute() else project / root

    @hook_impl
    def before_node_run(self, node: Any, catalog: Any, inputs: dict[str, Any]) -> None:
        reset_peak()
        self._before[node.name] = rss_bytes()
        self._t0[node.name] = time.perf_counter()

    @hook_impl
    def after_node_run(self, node: Any, catalog: Any, inputs: dict[str, Any],
                       outputs: dict[str, Any]) -> None:
        peak = peak_rss_bytes()
        release_free_memory(0.0)  # the node's freed heap goes back: the next starts from live
        now = rss_bytes()
        if peak is None or now is None:
            return
        self._run_peak = max(self._run_peak, peak)
        seconds = time.perf_counter() - self._t0.pop(node.name, time.perf_counter())
        before = self._before.pop(node.name, None)
        self.rows.append({"node": node.name, "peak_rss_mb": round(peak / 2**20, 1),
                          "rss_before_mb": None if before is None else round(before / 2**20, 1),
                          "rss_after_mb": round(now / 2**20, 1), "seconds": round(seconds, 2)})
        log.debug("memory: %s peak %.0f MB, %.0f MB after", node.name, peak / 2**20,
                  now / 2**20)
        self._write()

    def memory_table(self) -> dict[str, Any]:
        """``{"run_peak_rss_mb", "nodes": [{node, peak_rss_mb, rss_before_mb, rss_after_mb,
        seconds}]}``."""
        return {"run_peak_rss_mb": round(self._run_peak / 2**20, 1), "nodes": list(self.rows)}

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], run_result: Any, pipeline: Any,
                           catalog: Any) -> None:
        if not self.rows:
            return
        table = self.memory_table()
        top = sorted(self.rows, key=lambda r: -r["peak_rss_mb"])[:5]
        log.info("memory: run peak %.0f MB; highest nodes: %s", table["run_peak_rss_mb"],
                 ", ".join(f"{r['node']} {r['peak_rss_mb']:.0f} MB" for r in top))
        self._write()

    def _write(self) -> None:
        """The table so far, replaced atomically (a reader never sees half a file)."""
        if self._data_root is None:
            return
        out = self._data_root / "08_reporting" / "memory" / f"{self._started}.json"
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(self.memory_table(), indent=1))
            tmp.replace(out)
        except OSError as err:  # never fail a run over its memory log
            if not self._warned:
                log.warning("memory: could not write %s: %s", out, err)
                self._warned = True
