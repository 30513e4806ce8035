"""The checkpoint format: round trips of every kind of state, atomicity, config keys, locks."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from alphaminer.checkpoint import (
    CheckpointStore,
    FolderLock,
    FolderLockedError,
    atomic_dir,
    capture_rng,
    config_hash,
    restore_rng,
    run_dir,
)

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _child(code: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [SRC, os.environ.get(
        "PYTHONPATH")])))
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_line(proc: subprocess.Popen, expect: str, timeout: float = 60.0) -> None:
    """Block until the child prints ``expect`` (it has reached the state the test needs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.strip() == expect:
            return
        if not line and proc.poll() is not None:
            raise AssertionError(f"child exited early: {proc.stderr.read()}")
    raise AssertionError(f"child never printed {expect!r}")


def _assert_tree_equal(a, b) -> None:
    """Structural equality with exact tensor/array equality (types and dtypes included; any
    dict subclass, e.g. a state_dict's OrderedDict, comes back as a plain dict in order)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b)
        for k in a:
            _assert_tree_equal(a[k], b[k])
        return
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_tree_equal(x, y)
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert torch.equal(a, b)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b)
    else:
        assert a == b


# ----------------------------------------------------------------------------- round trips
def test_round_trip_of_model_optimizer_arrays_and_progress(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3),
                                torch.nn.Linear(3, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.8, 0.9))
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(8, 4)).pow(2).mean().backward()
        opt.step()
    state = {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),  # int keys, tuples (betas), tensor 'step', None values
        "replay": {"obs": np.arange(12, dtype=np.float32).reshape(3, 4),
                   "done": np.array([True, False, True]),
                   "idx": np.array([2**40, -1], dtype=np.int64),
                   "u16": np.array([1, 65535], dtype=np.uint16),
                   "empty": np.zeros((0, 5), dtype=np.float64)},
        "search": [{"node": 1, "children": (2, 3), "value": -0.5}, {"node": 2, "children": ()}],
        "progress": {"step": 7, "epoch": 2, "best": float("-inf"), "ic": float("nan"),
                     "history": [{"epoch": 1, "loss": 0.25}], "name": "run", "none": None},
        "weird keys": {"__tensor__": "not a tensor", 3: "int key", (1, 2): "tuple key"},
        "blob": b"\x00\x01raw",
        "bf16": torch.arange(4, dtype=torch.bfloat16),
        "scalar": torch.tensor(3.5, dtype=torch.float64),
    }
    store = CheckpointStore(tmp_path / "run")
    store.save(state, step=7)
    back = store.load_latest()
    assert back is not None and back.step == 7 and back.seq == 1
    _assert_tree_equal(state, back.state)
    # the restored optimizer continues exactly like the original one
    model2 = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3),
                                 torch.nn.Linear(3, 1))
    model2.load_state_dict(back.state["model"])
    opt2 = torch.optim.Adam(model2.parameters(), lr=1e-3, betas=(0.8, 0.9))
    opt2.load_state_dict(back.state["optimizer"])
    x = torch.randn(8, 4)
    for m, o in ((model, opt), (model2, opt2)):
        o.zero_grad()
        m(x).pow(2).mean().backward()
        o.step()
    for p, q in zip(model.parameters(), model2.parameters()):
        assert torch.equal(p, q)


def test_record_lists_tensor_names_dtypes_shapes_and_is_pickle_free(tmp_path):
    store = CheckpointStore(tmp_path)
    path = store.save({"w": torch.zeros(2, 3, dtype=torch.float16), "a": np.ones(4, np.int32)})
    record = json.loads(path.read_text())
    assert record["tensors"]["w"] == {"dtype": "float16", "shape": [2, 3], "kind": "torch",
                                      "device": "cpu"}
    assert record["tensors"]["a"]["dtype"] == "int32"
    raw = load_file(str(path.with_suffix(".safetensors")))
    assert set(raw) == {"w", "a"}
    assert not list(tmp_path.rglob("*.pkl")) and not list(tmp_path.rglob("*.pt"))


def test_shared_storage_tensors_are_stored(tmp_path):
    w = torch.randn(3, 3)
    a = np.arange(4.0)
    # tied weights, a view, one array twice: safetensors alone refuses shared memory
    state = {"enc": w, "dec": w, "view": w[1], "a1": a, "a2": a}
    CheckpointStore(tmp_path).save(state)
    back = CheckpointStore(tmp_path).load_latest()
    for k, v in state.items():
        got = back.state[k]
        assert torch.equal(got, v) if isinstance(v, torch.Tensor) else np.array_equal(got, v)


def test_rng_states_round_trip_python_numpy_torch_and_generators(tmp_path):
    rng = {"sampler": np.random.default_rng(5), "mt": np.random.Generator(np.random.MT19937(3)),
           "philox": np.random.Generator(np.random.Philox(9))}
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    for g in rng.values():
        g.random(10)
    CheckpointStore(tmp_path).save({"rng": capture_rng(rng)})
    want = ([random.random() for _ in range(3)], np.random.rand(3), torch.rand(3),
            {k: g.random(3) for k, g in rng.items()})
    # scramble every generator, then restore from disk
    random.seed(99)
    np.random.seed(99)
    torch.manual_seed(99)
    fresh = {k: type(g)(type(g.bit_generator)(0)) for k, g in rng.items()}
    restore_rng(CheckpointStore(tmp_path).load_latest().state["rng"], fresh)
    got = ([random.random() for _ in range(3)], np.random.rand(3), torch.rand(3),
           {k: g.random(3) for k, g in fresh.items()})
    assert got[0] == want[0]
    np.testing.assert_array_equal(got[1], want[1])
    assert torch.equal(got[2], want[2])
    for k in rng:
        np.testing.assert_array_equal(got[3][k], want[3][k])


def test_jax_pytree_round_trips_as_numpy(tmp_path):
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    params = {"dense": {"kernel": jnp.arange(6.0).reshape(2, 3), "bias": jnp.zeros(3)},
              "embed": [jnp.ones((2, 2), dtype=jnp.int32)]}
    leaves, treedef = jax.tree_util.tree_flatten(params)
    CheckpointStore(tmp_path).save({"params": params, "leaves": leaves,
                                    "key": jax.random.key_data(jax.random.key(0))})
    back = CheckpointStore(tmp_path).load_latest().state
    flat_back = jax.tree_util.tree_leaves(back["params"])
    for a, b in zip(leaves, flat_back):
        assert isinstance(b, np.ndarray) and b.dtype == np.asarray(a).dtype
        np.testing.assert_array_equal(np.asarray(a), b)
    rebuilt = jax.tree_util.tree_unflatten(treedef, [jnp.asarray(x) for x in back["leaves"]])
    np.testing.assert_array_equal(rebuilt["dense"]["kernel"], params["dense"]["kernel"])
    np.testing.assert_array_equal(back["key"], np.asarray(jax.random.key_data(
        jax.random.key(0))))


def test_unsupported_leaves_fail_before_anything_is_written(tmp_path):
    store = CheckpointStore(tmp_path / "run")
    with pytest.raises(TypeError, match="cannot checkpoint a object"):
        store.save({"x": object()})
    with pytest.raises(TypeError, match="dtype"):
        store.save({"names": np.array(["a", "b"])})
    assert store.load_latest() is None


# ----------------------------------------------------------------------------- keeping / latest
def test_latest_wins_and_only_keep_newest_remain(tmp_path):
    store = CheckpointStore(tmp_path, keep=2)
    for step in range(1, 5):
        store.save({"step": step, "w": torch.full((2,), float(step))}, step=step)
    assert list(store) == [3, 4]
    assert len(list(tmp_path.glob("ckpt-*.safetensors"))) == 2
    ck = store.load_latest()
    assert ck.step == 4 and torch.equal(ck.state["w"], torch.full((2,), 4.0))


def test_corrupt_newest_falls_back_to_the_previous_one(tmp_path):
    store = CheckpointStore(tmp_path, keep=2)
    store.save({"v": torch.ones(3)}, step=1)
    store.save({"v": torch.full((3,), 2.0)}, step=2)
    newest = sorted(tmp_path.glob("ckpt-*.safetensors"))[-1]
    data = bytearray(newest.read_bytes())
    data[-1] ^= 0xFF  # one flipped byte in a tensor: same size, different hash
    newest.write_bytes(bytes(data))
    ck = store.load_latest()
    assert ck.step == 1 and torch.equal(ck.state["v"], torch.ones(3))
    # a record without its tensor file (killed between the two writes) is invisible too
    sorted(tmp_path.glob("ckpt-*.safetensors"))[0].unlink()
    assert store.load_latest() is None


def test_failing_writer_leaves_previous_checkpoint(tmp_path, monkeypatch):
    import alphaminer.checkpoint as ck

    store = CheckpointStore(tmp_path)
    store.save({"v": torch.ones(2)}, step=1)

    def crash(tmp, final):
        raise OSError("disk full (simulated) before the rename")

    monkeypatch.setattr(ck, "_commit", crash)
    with pytest.raises(OSError, match="simulated"):
        store.save({"v": torch.zeros(2)}, step=2)
    monkeypatch.undo()
    assert not list(tmp_path.glob(".*.tmp"))  # the half-written temporary was removed
    back = store.load_latest()
    assert back.step == 1 and torch.equal(back.state["v"], torch.ones(2))


def test_kill_9_during_writes_never_leaves_a_broken_latest(tmp_path):
    """A child saves ~1 MB checkpoints in a loop and is killed at random instants."""
    folder = tmp_path / "run"
    child = _child(f"""
        import torch
        from alphaminer.checkpoint import CheckpointStore
        store = CheckpointStore({str(folder)!r}, config={{"run": 1}}, keep=2)
        lock = store.lock()
        step = 0
        while True:
            step += 1
            store.save({{"step": step, "w": torch.full((256, 1024), float(step))}}, step=step)
            if step == 3:
                print("ready", flush=True)
    """)
    try:
        _wait_line(child, "ready")
        time.sleep(0.05 + np.random.default_rng().random() * 0.2)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    store = CheckpointStore(folder, config={"run": 1})
    ck = store.load_latest()
    assert ck is not None and ck.step >= 3
    assert torch.equal(ck.state["w"], torch.full((256, 1024), float(ck.step)))
    with store.lock():  # the dead writer's lock is gone, and its temporaries are cleaned
        assert not list(folder.glob(".*.tmp"))
        store.save({"step": ck.step + 1, "w": torch.zeros(1)}, step=ck.step + 1)
    assert store.load_latest().step == ck.step + 1


def test_atomic_dir_keeps_the_old_folder_when_the_build_fails(tmp_path):
    target = tmp_path / "export"
    with atomic_dir(target) as d:
        (d / "a.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(target) as d:
        (d / "a.txt").write_text("new")
        raise RuntimeError("crash while building")
    assert (target / "a.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


# ----------------------------------------------------------------------------- config keys
@dataclass(frozen=True)
class _Cfg:
    lr: float = 1e-3
    layers: tuple = (8, 4)


def test_config_hash_is_canonical_and_sensitive():
    a = {"lr": 1e-3, "layers": [8, 4], "data": {"fp": "abc", "path": "x"}}
    b = {"data": {"path": "x", "fp": "abc"}, "layers": (8, 4), "lr": 0.001}
    assert config_hash(a) == config_hash(b)
    assert config_hash({"lr": 1e-3, "layers": (8, 4)}) == config_hash(_Cfg())
    assert config_hash(a) != config_hash({**a, "lr": 2e-3})
    assert config_hash(a) != config_hash({**a, "layers": [4, 8]})
    assert config_hash({"x": 1}) != config_hash({"x": "1"})
    # an independent reference: sha256 of the sorted, compact JSON
    import hashlib

    ref = hashlib.sha256(json.dumps({"a": [1, 2], "b": "c"}, sort_keys=True,
                                    separators=(",", ":")).encode()).hexdigest()[:12]
    assert config_hash({"b": "c", "a": (1, 2)}) == ref
    with pytest.raises(TypeError, match="cannot hash"):
        config_hash({"f": object()})


def test_run_dir_and_store_refuse_another_configs_state(tmp_path):
    cfg = {"lr": 1e-3, "seed": 0}
    a = CheckpointStore.for_run(tmp_path, cfg)
    assert a.folder == run_dir(tmp_path, cfg) == tmp_path / config_hash(cfg)
    assert run_dir(tmp_path, {**cfg, "seed": 1}) != a.folder
    a.save({"w": torch.ones(1)})
    assert CheckpointStore(a.folder, config=dict(reversed(cfg.items()))).load_latest() is not None
    with pytest.raises(ValueError, match="different run"):
        CheckpointStore(a.folder, config={**cfg, "lr": 1.0}).load_latest()


# ----------------------------------------------------------------------------- locks
def test_lock_conflict_names_the_holder_and_clears_after_exit_and_kill(tmp_path):
    folder = tmp_path / "run"
    holder_code = f"""
        import time
        from alphaminer.checkpoint import CheckpointStore
        lock = CheckpointStore({str(folder)!r}).lock()
        print("locked", flush=True)
        time.sleep(600)
    """
    child = _child(holder_code)
    try:
        _wait_line(child, "locked")
        with pytest.raises(FolderLockedError) as err:
            CheckpointStore(folder).lock()
        msg = str(err.value)
        assert f"PID {child.pid}" in msg and "checkpoint folder" in msg and "command:" in msg
        assert err.value.holder["pid"] == child.pid
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    lock = CheckpointStore(folder).lock()  # kill -9 released it
    assert lock.held and lock.holder()["pid"] == os.getpid()
    lock.release()
    assert not lock.held and lock.holder() is None
    # a process that exits normally releases it as well
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        from alphaminer.checkpoint import FolderLock
        FolderLock({str(folder)!r}).acquire()
        print("exiting with the lock held")
    """)], env=dict(os.environ, PYTHONPATH=SRC), capture_output=True, text=True, timeout=60,
        check=True)
    assert "exiting" in done.stdout
    with FolderLock(folder) as again:
        assert again.held


def test_two_lock_objects_in_one_process_conflict(tmp_path):
    with FolderLock(tmp_path, what="data folder"), \
            pytest.raises(FolderLockedError, match=f"data folder {tmp_path}"):
        FolderLock(tmp_path, what="data folder").acquire()
    FolderLock(tmp_path).acquire().release()
