"""The run manifest: what produced a report (code, parameters, packages, data), to redo it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import importlib.metadata as md
import json
import math
import platform
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import pandas as pd

#: Distributions whose versions are recorded; a tuple lists alternative distribution names.
PACKAGES: dict[str, tuple[str, ...]] = {
    "alphaminer": ("alphaminer",),
    "torch": ("torch",),
    "kedro": ("kedro",),
    "kedro-datasets": ("kedro-datasets",),
    "pandas": ("pandas",),
    "numpy": ("numpy",),
    "jax": ("jax",),
    "jaxlib": ("jaxlib",),
    "xgboost": ("xgboost", "xgboost-cpu"),
    "lightgbm": ("lightgbm",),
    "optuna": ("optuna",),
    "scikit-learn": ("scikit-learn",),
    "matplotlib": ("matplotlib",),
}

MANIFEST_VERSION = 1


def canonical(obj: Any) -> Any:
    """A JSON-native copy of ``obj`` with string keys (dicts sorted later by ``json.dumps``).

    Handles nested dicts/lists/tuples/sets, dataclasses, Pydantic models, numpy scalars and arrays,
    paths, enums, dates and pandas timestamps. NaN/inf floats are kept as strings so the JSON is
    strict. Unknown objects raise, rather than hashing an unstable ``repr``.
    """
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, enum.Enum):
        return canonical(obj.value)
    if isinstance(obj, np.generic):
        return canonical(obj.item())
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj) if math.isfinite(obj) else repr(float(obj))
    if isinstance(obj, Mapping):
        return {str(k): canonical(v) for k, v in obj.items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return canonical(dataclasses.asdict(obj))
    if hasattr(obj, "model_dump") and callable(obj.model_dump):
        return canonical(obj.model_dump(mode="json"))
    if isinstance(obj, list | tuple):
        return [canonical(v) for v in obj]
    if isinstance(obj, set | frozenset):
        items = [canonical(v) for v in obj]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(obj, np.ndarray):
        return canonical(obj.tolist())
    if isinstance(obj, PurePath):
        return obj.as_posix()
    if isinstance(obj, pd.Timestamp | dt.datetime | dt.date):
        return obj.isoformat()
    raise TypeError(
        f"cannot put a {type(obj).__name__} into the canonical parameter JSON: {obj!r:.80}")


def canonical_json(obj: Any) -> str:
    """Key-order-independent compact JSON of ``obj`` (the text that is hashed)."""
    return json.dumps(canonical(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)


def params_hash(params: Any) -> str:
    """sha256 hex digest of :func:`canonical_json` of ``params``."""
    return hashlib.sha256(canonical_json(params).encode("utf-8")).hexdigest()


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        res = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                             timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() if res.returncode == 0 else None


def git_state(repo_dir: str | Path | None = None) -> dict[str, Any]:
    """``{"commit": sha | "unknown", "dirty": bool | None}`` of the repository at ``repo_dir``.

    ``dirty`` means tracked files differ from the commit (untracked files are ignored);
    ``None`` when it cannot be told (not a repository, no git).
    """
    cwd = Path(repo_dir) if repo_dir is not None else Path.cwd()
    commit = _git(["rev-parse", "HEAD"], cwd)
    if not commit:
        return {"commit": "unknown", "dirty": None}
    status = _git(["status", "--porcelain", "--untracked-files=no"], cwd)
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def package_versions() -> dict[str, str | None]:
    """Installed versions of :data:`PACKAGES` (``None`` when not installed)."""
    out: dict[str, str | None] = {}
    for name, dists in PACKAGES.items():
        out[name] = None
        for dist in dists:
            try:
                out[name] = md.version(dist)
                break
            except md.PackageNotFoundError:
                continue
    return out


def build_manifest(
    params: Mapping[str, Any],
    data_fingerprint: str,
    extra: Mapping[str, Any] | None = None,
    *,
    repo_dir: str | Path | None = None,
) -> dict[str, Any]:
    """The run manifest (JSON-serialisable).

    Args:
        params: the run's parameters (any nesting; key order does not change the hash).
        data_fingerprint: e.g. ``Panel.fingerprint()`` of the input panel.
        extra: anything else worth recording (run id, pipeline name, ...), stored under ``extra``.
        repo_dir: where to ask git; defaults to the current directory (the Kedro project root).

    Returns:
        ``manifest_version, created_utc, git_commit, git_dirty, params_sha256, params,
        data_fingerprint, python, platform, packages, extra``.
    """
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a mapping, got {type(params).__name__}")
    if not isinstance(data_fingerprint, str) or not data_fingerprint:
        raise ValueError(f"data_fingerprint must be a non-empty string, got {data_fingerprint!r}")
    git = git_state(repo_dir)
    return {
        "manifest_version": MANIFEST_VERSION,
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": git["commit"],
        "git_dirty": git["dirty"],
        "params_sha256": params_hash(params),
        "params": canonical(params),
        "data_fingerprint": data_fingerprint,
        "python": platform.python_version(),
        "python_implementation": sys.implementation.name,
        "platform": platform.platform(),
        "packages": package_versions(),
        "extra": canonical(dict(extra)) if extra else {},
    }
