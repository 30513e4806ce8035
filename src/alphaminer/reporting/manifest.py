"""The run manifest: what produced a report (code, parameters, packages, data), to redo it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import importlib.metadata as md
import json
import math
import os
import platform
import re
import shlex
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

MANIFEST_VERSION = 2


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
    provenance: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The run manifest (JSON-serialisable).

    Args:
        params: the run's parameters (any nesting; key order does not change the hash).
        data_fingerprint: e.g. ``Panel.fingerprint()`` of the input panel.
        extra: anything else worth recording (run id, pipeline name, ...), stored under ``extra``.
        repo_dir: where to ask git; defaults to the current directory (the Kedro project root).
        provenance: what the inputs were and how to redo the run (:func:`provenance`), stored
            under ``provenance`` when given.

    Returns:
        ``manifest_version, created_utc, git_commit, git_dirty, params_sha256, params,
        data_fingerprint, python, platform, packages, extra`` (and ``provenance``).
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
        **({"provenance": canonical(dict(provenance))} if provenance is not None else {}),
    }


# --------------------------------------------------------------------------------------------
# Provenance: which versions a report read, which runs wrote them, and how to redo the report.
# The Kedro hook (alphaminer.hooks.ManifestHooks) publishes the run's facts and the versions its
# nodes will load in a JSON file named by RUN_CONTEXT_ENV; this module only reads plain JSON,
# so the library stays independent of Kedro. An environment variable (not a module global)
# carries it because ParallelRunner's spawned workers inherit the environment, not our state.

#: environment variable naming the current run's context file (set by the project hook)
RUN_CONTEXT_ENV = "ALPHAMINER_RUN_CONTEXT"

def run_context() -> dict[str, Any]:
    """The current Kedro run's facts (``session_id, env, params_sha256, invocation, datasets,
    writers, project_path``), or ``{}`` outside a run (or when the context file is gone)."""
    path = os.environ.get(RUN_CONTEXT_ENV)
    if not path:
        return {}
    try:
        return dict(json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


def data_fingerprint(obj: Any) -> str:
    """Content hash of a loaded object, so an unversioned input (panel, labels, splits) can
    still be pinned: a reproduction checks that what it loads hashes the same.

    A :class:`~alphaminer.panel.Panel` uses its own ``fingerprint()``; a DataFrame hashes its
    values, index, columns and dtypes; JSON-like data hashes its canonical JSON.
    """
    if hasattr(obj, "fingerprint") and callable(obj.fingerprint):
        return str(obj.fingerprint())
    if isinstance(obj, pd.DataFrame):
        h = hashlib.sha256()
        h.update(pd.util.hash_pandas_object(obj, index=True).to_numpy().tobytes())
        h.update(canonical_json([str(c) for c in obj.columns]).encode())
        h.update(canonical_json([str(t) for t in obj.dtypes]).encode())
        h.update(canonical_json([str(n) for n in obj.index.names]).encode())
        return h.hexdigest()[:16]
    return params_hash(obj)[:16]


def _dotted(params: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in params.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.extend(_dotted(v, key + "."))
        else:
            out.append((key, v))
    return out


def _cli_value(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return v
    return json.dumps(canonical(v), separators=(",", ":"))


def params_arg(runtime_params: Mapping[str, Any]) -> str:
    """``kedro run --params`` text for (nested) runtime parameters: ``a.b=1,c=x``."""
    return ",".join(f"{k}={_cli_value(v)}" for k, v in sorted(_dotted(runtime_params)))


def load_versions_arg(versions: Mapping[str, str | None]) -> str:
    """``kedro run --load-versions`` text: ``name:version,...`` (sorted; unversioned skipped)."""
    return ",".join(f"{k}:{v}" for k, v in sorted(versions.items()) if v)


def reproduce_command(pipeline: str, env: str | None, runtime_params: Mapping[str, Any],
                      load_versions: Mapping[str, str | None]) -> str:
    """The one ``kedro run`` command line that redoes ``pipeline`` on exactly these inputs."""
    parts = ["kedro", "run"]
    if env:
        parts.append(f"--env={env}")
    parts.append(f"--pipelines={pipeline}")
    lv = load_versions_arg(load_versions)
    if lv:
        parts.append(f"--load-versions={lv}")
    pa = params_arg(runtime_params)
    if pa:
        parts.append(f"--params={pa}")
    return " ".join(shlex.quote(p) for p in parts)


def input_provenance(context: Mapping[str, Any], names: list[str] | tuple[str, ...]
                     ) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(inputs, writers)`` for the datasets ``names`` from a :func:`run_context`.

    ``inputs[name] = {"version", "written_by"}`` (``written_by`` a session id, ``None`` when
    unknown: unversioned, or written before runs left sidecars); ``writers[session_id] =
    {"params_sha256", "env", "pipelines", "runtime_params", "git_commit", "git_dirty"}``.
    """
    known = context.get("datasets") or {}
    all_writers = context.get("writers") or {}
    inputs: dict[str, Any] = {}
    writers: dict[str, Any] = {}
    for name in names:
        entry = dict(known.get(name) or {"version": None, "written_by": None})
        inputs[name] = {"version": entry.get("version"), "written_by": entry.get("written_by")}
        sid = entry.get("written_by")
        if sid and sid in all_writers:
            writers[sid] = all_writers[sid]
    return inputs, writers


def provenance(context: Mapping[str, Any], input_names: list[str] | tuple[str, ...],
               pipeline: str, loaded: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The manifest's provenance block for a node that read ``input_names`` in this run.

    ``session_id``/``env``/``invocation``: the report's own run (its CLI arguments as Kedro
    parsed them); ``inputs``/``writers``: per input, the version loaded and the run that wrote
    it, with that run's parameters hash; ``loaded_fingerprints``: content hashes of unversioned
    inputs; ``reproduce``: the one command (and its parts) that redoes ``pipeline`` on the same
    versions, env and runtime parameters.
    """
    inputs, writers = input_provenance(context, input_names)
    inv = dict(context.get("invocation") or {})
    runtime = dict(inv.get("runtime_params") or {})
    env = context.get("env")
    pins = {k: v["version"] for k, v in inputs.items() if v.get("version")}
    own = context.get("params_sha256")
    other = sorted(k for k, v in inputs.items()
                   if v.get("written_by") in writers
                   and writers[v["written_by"]].get("params_sha256") != own)
    return {
        "session_id": context.get("session_id"),
        "env": env,
        "invocation": inv,
        "inputs": inputs,
        "writers": writers,
        "inputs_with_other_params": other,
        "loaded_fingerprints": dict(loaded or {}),
        "reproduce": {
            "pipeline": pipeline,
            "env": env,
            "runtime_params": runtime,
            "load_versions": pins,
            "load_versions_arg": load_versions_arg(pins),
            "command": reproduce_command(pipeline, env, runtime, pins),
        },
    }


#: an absolute POSIX path inside a string: a "/" not preceded by a word character, dot, "~",
#: "-", ":" (URLs) or another "/", followed by at least one path character
_ABS_PATH = re.compile(r"(?<![\w.~/\-:])/[^\s'\"(),;<>|*?]+")


def relative_paths(obj: Any, root: str | Path) -> Any:
    """A copy of ``obj`` (nested dicts/lists/strings) with every absolute POSIX path in its
    strings rewritten relative to ``root`` (the project), so a shared report does not show
    where the user keeps their data; ``kedro`` runs from the project root, so the relative
    paths still work in commands shown in the report."""
    base = os.path.abspath(str(root))

    def fix(s: str) -> str:
        return _ABS_PATH.sub(lambda m: os.path.relpath(m.group(0), base), s)

    if isinstance(obj, str):
        return fix(obj)
    if isinstance(obj, Mapping):
        return {k: relative_paths(v, root) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(relative_paths(v, root) for v in obj)
    return obj
