"""constraints.txt locks the whole dependency closure, and agrees with pyproject.toml's pins."""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("lock_deps", ROOT / "scripts" / "lock_deps.py")
lock_deps = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lock_deps)


def _direct_pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in ("dev", "notebook"):
        lines += project["optional-dependencies"][extra]
    pins = {}
    for line in lines:
        req = Requirement(line)
        if canonicalize_name(req.name) == "alphaminer":
            continue
        (spec,) = req.specifier
        assert spec.operator == "==", f"{line}: direct dependencies are pinned with =="
        pins[canonicalize_name(req.name)] = spec.version
    return pins


def test_lock_agrees_with_every_direct_pin() -> None:
    locked = lock_deps.parse((ROOT / "constraints.txt").read_text())
    pins = _direct_pins()
    assert len(pins) > 30
    wrong = {n: (v, locked.get(n)) for n, v in pins.items() if locked.get(n) != v}
    assert not wrong, f"pyproject pin vs constraints.txt: {wrong}; run `make lock`"


def test_environment_matches_the_lock() -> None:
    locked = lock_deps.parse((ROOT / "constraints.txt").read_text())
    assert lock_deps.check(lock_deps.closure(), locked) == []


def test_check_reports_other_and_unlocked_versions_only() -> None:
    installed = {"a": "1.0", "b": "2.0", "c": "3.0"}
    locked = {"a": "1.0", "b": "2.1", "linux-only": "9"}
    assert lock_deps.check(installed, locked) == [
        "b: locked 2.1, installed 2.0",
        "c: installed 3.0, not in the lock",
    ]


def test_parse_normalises_names_and_rejects_ranges() -> None:
    text = "# comment\nPyYAML==6.0.3  # trailing\n\nruamel.yaml==0.18\n"
    assert lock_deps.parse(text) == {"pyyaml": "6.0.3", "ruamel-yaml": "0.18"}
    with pytest.raises(ValueError, match="name==version"):
        lock_deps.parse("numpy>=2\n")


def test_closure_follows_requirements_and_drops_local_labels() -> None:
    got = lock_deps.closure()
    # kedro needs omegaconf, which nothing in pyproject.toml names: the lock's reason to exist
    assert "omegaconf" in got and "omegaconf" not in _direct_pins()
    assert got["torch"] == "2.13.0"
    assert "alphaminer" not in got
