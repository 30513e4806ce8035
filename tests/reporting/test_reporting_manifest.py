import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from alphaminer.reporting import build_manifest, canonical_json, params_hash

PARAMS = {"seed": 7, "backtest": {"topk": 50, "n_drop": 5, "cost": 0.0005},
          "methods": ["alpha2", "gp"], "path": Path("data/01_raw")}


def test_hash_stable_for_equal_params_and_key_order_irrelevant():
    reordered = {"path": Path("data/01_raw"), "methods": ["alpha2", "gp"],
                 "backtest": {"cost": 0.0005, "n_drop": 5, "topk": 50}, "seed": 7}
    assert params_hash(PARAMS) == params_hash(reordered)
    # numpy scalars hash like the Python numbers they stand for
    np_params = dict(reordered, seed=np.int64(7))
    assert params_hash(np_params) == params_hash(PARAMS)
    # independent reference: sha256 of sorted compact JSON
    ref = json.dumps({"backtest": {"cost": 0.0005, "n_drop": 5, "topk": 50},
                      "methods": ["alpha2", "gp"], "path": "data/01_raw", "seed": 7},
                     sort_keys=True, separators=(",", ":"))
    assert params_hash(PARAMS) == hashlib.sha256(ref.encode()).hexdigest()


@pytest.mark.parametrize("change", [
    {"seed": 8}, {"backtest": {"topk": 50, "n_drop": 5, "cost": 0.001}},
    {"methods": ["gp", "alpha2"]}, {"extra_key": None},
])
def test_hash_differs_for_different_params(change):
    assert params_hash({**PARAMS, **change}) != params_hash(PARAMS)


def test_dataclass_params_and_unhashable_objects():
    @dataclass
    class Cfg:
        k: int = 50
        cost: float = 0.0005

    assert canonical_json({"c": Cfg()}) == '{"c":{"cost":0.0005,"k":50}}'
    with pytest.raises(TypeError, match="object"):
        params_hash({"x": object()})


def test_manifest_contents(tmp_path):
    m = build_manifest(PARAMS, "fp123", extra={"pipeline": "reporting"}, repo_dir=tmp_path)
    json.dumps(m)  # JSON-serialisable
    assert m["params_sha256"] == params_hash(PARAMS)
    assert m["data_fingerprint"] == "fp123"
    assert m["git_commit"] == "unknown" and m["git_dirty"] is None  # tmp_path is not a repo
    for pkg in ["torch", "kedro", "pandas", "numpy", "jax", "xgboost", "lightgbm", "optuna",
                "alphaminer"]:
        assert pkg in m["packages"]
    import numpy
    import pandas
    assert m["packages"]["numpy"] == numpy.__version__
    assert m["packages"]["pandas"] == pandas.__version__
    assert m["python"].startswith("3.")
    assert m["created_utc"].endswith("+00:00")
    assert m["extra"] == {"pipeline": "reporting"}
    with pytest.raises(ValueError, match="data_fingerprint"):
        build_manifest(PARAMS, "")


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_git_commit_and_dirty_flag(tmp_path):
    def git(*args):
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                              cwd=tmp_path, check=True, capture_output=True, text=True).stdout
    git("init", "-q")
    (tmp_path / "a.txt").write_text("1")
    git("add", "a.txt")
    git("commit", "-q", "-m", "init")
    head = git("rev-parse", "HEAD").strip()
    m = build_manifest({}, "fp", repo_dir=tmp_path)
    assert m["git_commit"] == head and m["git_dirty"] is False
    (tmp_path / "untracked.txt").write_text("x")  # untracked files do not make it dirty
    assert build_manifest({}, "fp", repo_dir=tmp_path)["git_dirty"] is False
    (tmp_path / "a.txt").write_text("2")
    assert build_manifest({}, "fp", repo_dir=tmp_path)["git_dirty"] is True
