"""The one checkpoint/resume format for every trainer and miner, and the live folder lock.

A checkpoint is one *state tree*: nested dicts, lists and tuples whose leaves are JSON scalars
(``None``, bool, int, float, str), torch tensors or numpy arrays (anything with ``__array__``,
e.g. JAX arrays, is stored as a numpy array). Model and optimizer ``state_dict()``\\ s, a flax
parameter tree, RNG states (:func:`capture_rng`), a replay buffer, a search tree flattened to
arrays and JSON progress (step, epoch, best score, history) all fit as they are.

On disk (pickle-free), in one folder per run (:func:`run_dir`, keyed by :func:`config_hash`)::

    ckpt-00000007.safetensors   every tensor leaf, named by its path in the tree
    ckpt-00000007.json          the tree with tensor placeholders, each tensor's dtype and shape,
                                the safetensors file's size and SHA-256, the run's config hash
    .lock / .lock.json          the live lock (:class:`FolderLock`) and who holds it

Writes are atomic: each file goes to a temporary name in the same folder, is fsynced and then
``os.replace``\\ d into place, tensors first; the JSON is the commit record. A process killed at
any instant leaves either the new checkpoint complete or no trace of it, and the previous one
stays until a newer one is complete (the ``keep`` newest are kept). Loading takes the newest
checkpoint whose JSON parses and whose tensor file matches the recorded size and hash.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import random
import re
import shutil
import socket
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, is_dataclass
from enum import Enum
from pathlib import Path, PurePath
from typing import Any

import filelock
import numpy as np
import torch
from safetensors.torch import load_file, save_file

log = logging.getLogger(__name__)

FORMAT = "alphaminer.checkpoint.v1"
_NAME = re.compile(r"^ckpt-(\d{8})\.json$")
_MARKERS = frozenset({"__tensor__", "__ndarray__", "__tuple__", "__dict__", "__bytes__"})


# ----------------------------------------------------------------------------- config hashing
def _canonical(obj: Any) -> Any:
    """A JSON-ready copy of ``obj`` whose serialisation does not depend on insertion order."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return _canonical(asdict(obj))
    if isinstance(obj, Mapping):
        items = {str(k): _canonical(v) for k, v in obj.items()}
        if len(items) != len(obj):
            raise TypeError(f"config keys collide once turned into strings: {list(obj)}")
        return items
    if isinstance(obj, list | tuple):
        return [_canonical(v) for v in obj]
    if isinstance(obj, set | frozenset):
        return sorted((_canonical(v) for v in obj), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(obj, Enum):
        return _canonical(obj.value)
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and obj == 0.0:
        return 0.0  # -0.0 and 0.0 are the same setting
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    raise TypeError(f"config_hash cannot hash a {type(obj).__name__} ({obj!r}); pass plain "
                    f"JSON-able values, dataclasses, paths or enums")


def config_hash(config: Any, length: int = 12) -> str:
    """Hex SHA-256 prefix of ``config`` serialised canonically (sorted keys, no whitespace).

    Dict order, tuple-vs-list and dataclass-vs-dict do not change the hash; any value does.
    Types with no canonical JSON form raise instead of hashing their ``repr``, so a hash never
    depends on memory addresses.
    """
    blob = json.dumps(_canonical(config), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True, allow_nan=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


def run_dir(root: str | os.PathLike[str], config: Any) -> Path:
    """``root/<config_hash(config)>``: one resumable folder per run configuration."""
    return Path(root) / config_hash(config)


# ----------------------------------------------------------------------------- state trees
def _encode(obj: Any, path: str, tensors: dict[str, torch.Tensor], info: dict[str, dict],
            seen: dict[int, str]) -> Any:
    if isinstance(obj, torch.Tensor | np.ndarray) and path in tensors:
        path = f"{path}#{len(tensors)}"  # two tree paths spelled alike ("a/b" vs a -> b)
    if isinstance(obj, torch.Tensor):
        t = obj.detach().to("cpu").contiguous()
        _add_tensor(t, path, tensors, seen)
        info[path] = {"dtype": str(t.dtype).removeprefix("torch."), "shape": list(t.shape),
                      "kind": "torch", "device": str(obj.device)}
        return {"__tensor__": path}
    if isinstance(obj, np.ndarray) or (hasattr(obj, "__array__") and not np.isscalar(obj)
                                       and not isinstance(obj, list | tuple | dict)):
        arr = np.ascontiguousarray(np.asarray(obj))
        if arr.dtype.hasobject or arr.dtype.kind in "USV":
            raise TypeError(f"{path}: arrays of dtype {arr.dtype} cannot be stored as tensors; "
                            f"put strings in JSON leaves")
        try:
            t = torch.from_numpy(arr if arr.flags.writeable else arr.copy())
        except TypeError as exc:
            raise TypeError(f"{path}: numpy dtype {arr.dtype} has no torch equivalent") from exc
        _add_tensor(t, path, tensors, seen)
        info[path] = {"dtype": str(arr.dtype), "shape": list(arr.shape), "kind": "numpy"}
        return {"__ndarray__": path}
    if isinstance(obj, Mapping):
        if all(isinstance(k, str) for k in obj) and not (_MARKERS & set(obj)):
            return {k: _encode(v, f"{path}/{k}" if path else k, tensors, info, seen)
                    for k, v in obj.items()}
        return {"__dict__": [[_encode(k, f"{path}/#k{i}", tensors, info, seen),
                              _encode(v, f"{path}/{k}" if path else str(k), tensors, info, seen)]
                             for i, (k, v) in enumerate(obj.items())]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, f"{path}/{i}", tensors, info, seen)
                              for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, f"{path}/{i}", tensors, info, seen) for i, v in enumerate(obj)]
    if isinstance(obj, bytes | bytearray):
        return {"__bytes__": base64.b64encode(bytes(obj)).decode()}
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    raise TypeError(f"{path or '<root>'}: cannot checkpoint a {type(obj).__name__}; use "
                    f"tensors, arrays, dicts, lists, tuples and JSON scalars")


def _add_tensor(t: torch.Tensor, path: str, tensors: dict[str, torch.Tensor],
                seen: dict[int, str]) -> None:
    """Register ``t`` under ``path``; a second tensor on an already seen storage (tied weights,
    a view, one array stored twice) is copied, since safetensors refuses shared memory."""
    key = t.untyped_storage().data_ptr() if t.numel() else None
    if key in seen:
        t = t.clone()
    elif key is not None:
        seen[key] = path
    tensors[path] = t


def _decode(obj: Any, tensors: Mapping[str, torch.Tensor], info: Mapping[str, dict]) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors, info) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if len(obj) == 1:
        (tag, val), = obj.items()
        if tag == "__tensor__":
            return tensors[val]
        if tag == "__ndarray__":
            return tensors[val].cpu().numpy().astype(np.dtype(info[val]["dtype"]), copy=False)
        if tag == "__tuple__":
            return tuple(_decode(v, tensors, info) for v in val)
        if tag == "__dict__":
            return {_hashable(_decode(k, tensors, info)): _decode(v, tensors, info)
                    for k, v in val}
        if tag == "__bytes__":
            return base64.b64decode(val)
    return {k: _decode(v, tensors, info) for k, v in obj.items()}


def _hashable(k: Any) -> Any:
    return tuple(_hashable(v) for v in k) if isinstance(k, list | tuple) else k


# ----------------------------------------------------------------------------- RNG states
def capture_rng(generators: Mapping[str, np.random.Generator] | None = None) -> dict[str, Any]:
    """Every RNG state a run depends on, as a state tree.

    python ``random``, numpy's legacy global state, torch CPU and (when present) every CUDA
    device, plus the ``bit_generator.state`` of each named numpy ``Generator`` (JAX takes
    explicit keys: store those as arrays in the tree yourself).
    """
    state: dict[str, Any] = {"python": random.getstate(), "numpy_global": np.random.get_state(),
                             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    if generators:
        state["generators"] = {k: g.bit_generator.state for k, g in generators.items()}
    return state


def restore_rng(state: Mapping[str, Any],
                generators: Mapping[str, np.random.Generator] | None = None) -> None:
    """Put back what :func:`capture_rng` captured (CUDA only when the device count matches)."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy_global"])
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available():
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        else:
            log.warning("checkpoint has %d CUDA RNG states, this host %d devices: not restored",
                        len(cuda), torch.cuda.device_count())
    for name, g in (generators or {}).items():
        g.bit_generator.state = state["generators"][name]


# ----------------------------------------------------------------------------- atomic files
def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # not every platform opens directories
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _tmp_name(final: Path) -> Path:
    return final.with_name(f".{final.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")


def _commit(tmp: Path, final: Path) -> None:
    """fsync ``tmp`` and atomically move it onto ``final`` (same folder), then sync the folder."""
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    _fsync_dir(final.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never part."""
    final = Path(path)
    tmp = _tmp_name(final)
    try:
        tmp.write_bytes(data)
        _commit(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return final


def atomic_save_tensors(tensors: Mapping[str, torch.Tensor], path: str | os.PathLike[str],
                        metadata: Mapping[str, str] | None = None) -> Path:
    """``safetensors`` file written atomically (see :func:`atomic_write_bytes`)."""
    final = Path(path)
    tmp = _tmp_name(final)
    try:
        save_file(dict(tensors), str(tmp), metadata=dict(metadata) if metadata else None)
        _commit(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return final


@contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Build a folder in a temporary sibling, then swap it in for ``path`` as a whole.

    For exports made of several files (a model folder). The files are fsynced before the swap;
    a crash leaves the old folder (or, between the two renames, ``path.old``, which the next
    call removes) and never a mix of old and new files. An exception discards the new folder.
    """
    final = Path(path)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    old = final.with_name(final.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        for f in tmp.rglob("*"):
            if f.is_file():
                with open(f, "rb+") as fh:
                    os.fsync(fh.fileno())
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        _fsync_dir(final.parent)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


# ----------------------------------------------------------------------------- the lock
class FolderLockedError(RuntimeError):
    """Another live process holds the folder's lock."""

    def __init__(self, folder: Path, what: str, holder: dict[str, Any] | None) -> None:
        self.folder, self.holder = folder, holder
        if holder:
            who = (f"PID {holder.get('pid')} on {holder.get('host')}, started "
                   f"{holder.get('started')}, command: {holder.get('command')}")
        else:
            who = "a process that has not recorded itself yet (it is starting)"
        super().__init__(f"{what} {folder} is in use by another live process ({who}). Two runs "
                         f"on one {what} would mix their data; wait for it to finish, stop it, "
                         f"or use another {what}.")


class FolderLock:
    """Exclusive lock on ``folder`` held for a run's lifetime, released on exit or crash.

    ``folder/.lock`` is an OS file lock (``flock`` via ``filelock``): the kernel drops it when
    the holding process dies, even by ``kill -9``, so there are no stale locks to clean up.
    ``folder/.lock.json`` records who holds it (PID, host, start time, command) for the error
    a second process gets; it is only read while the lock is held, so a leftover one from a
    crashed process is harmless. Acquiring never waits: a conflict raises
    :class:`FolderLockedError` at once.
    """

    def __init__(self, folder: str | os.PathLike[str], what: str = "checkpoint folder") -> None:
        self.folder = Path(folder)
        self.what = what
        self._lock = filelock.FileLock(self.folder / ".lock", timeout=0, thread_local=False,
                                       preserve_lock_file=True)

    @property
    def info_path(self) -> Path:
        return self.folder / ".lock.json"

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._lock.is_locked

    def holder(self) -> dict[str, Any] | None:
        """The holder record last written (trust it only while the lock is held)."""
        try:
            return json.loads(self.info_path.read_text())
        except (OSError, ValueError):
            return None

    def acquire(self) -> FolderLock:
        if self.held:
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except filelock.Timeout:
            raise FolderLockedError(self.folder, self.what, self.holder()) from None
        try:
            atomic_write_bytes(self.info_path, json.dumps({
                "pid": os.getpid(), "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "command": " ".join(sys.argv) or sys.executable,
            }).encode())
        except BaseException:
            self._lock.release()
            raise
        return self

    def release(self) -> None:
        if not self.held:
            return
        self.info_path.unlink(missing_ok=True)
        self._lock.release(force=True)

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


# ----------------------------------------------------------------------------- the store
@dataclass
class Checkpoint:
    """One loaded checkpoint: the state tree, its sequence number and free-form ``step``."""

    state: Any
    seq: int
    step: int | None
    path: Path
    meta: dict[str, Any] = field(default_factory=dict)


class CheckpointStore:
    """A run's checkpoints in one folder: :meth:`save` a state tree, :meth:`load_latest` it.

    Args:
        folder: the run's folder (e.g. :func:`run_dir`); created on first use.
        config: the run's identity (any :func:`config_hash`-able value). Recorded in every
            checkpoint; :meth:`load_latest` refuses one written under another config, so a
            changed hyper-parameter can never silently resume someone else's state.
        keep: how many complete checkpoints to keep (>= 1; the previous one is only removed
            after the new one is complete).
    """

    def __init__(self, folder: str | os.PathLike[str], config: Any = None, keep: int = 2
                 ) -> None:
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.folder = Path(folder)
        self.config_hash = None if config is None else config_hash(config)
        self.keep = keep
        self._lock = FolderLock(self.folder, "checkpoint folder")

    @classmethod
    def for_run(cls, root: str | os.PathLike[str], config: Any, keep: int = 2
                ) -> CheckpointStore:
        """The store in ``root/<config_hash(config)>``."""
        return cls(run_dir(root, config), config=config, keep=keep)

    # -- locking
    def lock(self) -> FolderLock:
        """Take the folder's live lock (use as a context manager around the whole run).

        Leftover temporary files of a writer that was killed mid-write are removed here: once
        we hold the lock no other live process can be writing them.
        """
        self._lock.acquire()
        for tmp in self.folder.glob(".ckpt-*.tmp"):
            tmp.unlink(missing_ok=True)
        return self._lock

    # -- listing
    def _seqs(self) -> list[int]:
        if not self.folder.is_dir():
            return []
        return sorted(int(m.group(1)) for p in self.folder.iterdir()
                      if (m := _NAME.match(p.name)))

    def _paths(self, seq: int) -> tuple[Path, Path]:
        stem = self.folder / f"ckpt-{seq:08d}"
        return stem.with_suffix(".safetensors"), stem.with_suffix(".json")

    def __iter__(self) -> Iterator[int]:
        return iter(self._seqs())

    # -- writing
    def save(self, state: Any, step: int | None = None) -> Path:
        """Write ``state`` as the newest checkpoint; returns its JSON record's path."""
        self.folder.mkdir(parents=True, exist_ok=True)
        tensors: dict[str, torch.Tensor] = {}
        info: dict[str, dict] = {}
        tree = _encode(state, "", tensors, info, {})
        seqs = self._seqs()
        seq = (seqs[-1] + 1) if seqs else 1
        st_path, js_path = self._paths(seq)
        atomic_save_tensors(tensors, st_path, metadata={"format": FORMAT})
        record = {"format": FORMAT, "seq": seq, "step": step, "config_hash": self.config_hash,
                  "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                  "tensor_file": st_path.name, "tensor_bytes": st_path.stat().st_size,
                  "tensor_sha256": _sha256(st_path), "tensors": info, "tree": tree}
        atomic_write_bytes(js_path, json.dumps(record, allow_nan=True).encode())
        self._prune()
        return js_path

    def _prune(self) -> None:
        keep = set(self._seqs()[-self.keep:])
        for seq in self._seqs():
            if seq not in keep:
                st, js = self._paths(seq)
                js.unlink(missing_ok=True)  # the record first: a half-pruned one is invisible
                st.unlink(missing_ok=True)
        for p in self.folder.glob("ckpt-*.safetensors"):  # tensors whose record never landed
            if int(p.stem.split("-")[1]) not in keep:
                p.unlink(missing_ok=True)

    # -- reading
    def _read(self, seq: int, map_location: str | torch.device) -> Checkpoint:
        st_path, js_path = self._paths(seq)
        record = json.loads(js_path.read_text())
        if record.get("format") != FORMAT:
            raise ValueError(f"{js_path}: unknown format {record.get('format')!r}")
        if st_path.stat().st_size != record["tensor_bytes"] or \
                _sha256(st_path) != record["tensor_sha256"]:
            raise ValueError(f"{st_path} does not match its record (size or SHA-256)")
        tensors = load_file(str(st_path), device=str(map_location))
        state = _decode(record["tree"], tensors, record["tensors"])
        return Checkpoint(state=state, seq=seq, step=record.get("step"), path=js_path,
                          meta={k: record[k] for k in ("config_hash", "written")})

    def load_latest(self, map_location: str | torch.device = "cpu") -> Checkpoint | None:
        """The newest complete checkpoint, or ``None`` when there is none.

        A checkpoint that fails to read (truncated, hash mismatch) is skipped with a warning in
        favour of the one before it. One written under another config raises ``ValueError``.
        """
        for seq in reversed(self._seqs()):
            try:
                ckpt = self._read(seq, map_location)
            except (OSError, ValueError, KeyError) as exc:
                log.warning("skipping unreadable checkpoint %d in %s: %s", seq, self.folder, exc)
                continue
            got = ckpt.meta.get("config_hash")
            if self.config_hash is not None and got != self.config_hash:
                raise ValueError(f"checkpoint in {self.folder} was written by a different run "
                                 f"(config hash {got}, this run {self.config_hash}); use "
                                 f"another folder or start fresh")
            return ckpt
        return None


__all__ = [
    "FORMAT", "Checkpoint", "CheckpointStore", "FolderLock", "FolderLockedError",
    "atomic_dir", "atomic_save_tensors", "atomic_write_bytes", "capture_rng", "config_hash",
    "restore_rng", "run_dir",
]
