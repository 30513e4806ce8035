"""Write or check ``constraints.txt``: the exact versions of every package AlphaMiner runs on.

pyproject.toml pins the direct dependencies only. Their own dependencies (omegaconf under Kedro,
a hundred more) would otherwise resolve to whatever is newest on the day of the install, so two
clean installs a month apart could run different code. ``scripts/setup_env.sh`` installs with
``-c constraints.txt``; this script regenerates that file from the environment it runs in, by
walking the installed metadata of ``alphaminer[dev]`` (markers evaluated for this platform).

    .venv/bin/python scripts/lock_deps.py           # rewrite constraints.txt (``make lock``)
    .venv/bin/python scripts/lock_deps.py --check   # exit 1 on a different or unlocked version

Local version labels (``2.13.0+cpu``) are dropped: ``torch==2.13.0`` matches the CPU wheel, and
pyproject.toml's own pin keeps the CUDA build out.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "constraints.txt"
HEADER = (
    "# Exact versions of every package in alphaminer[dev]'s dependency closure, from the\n"
    "# environment that last passed the test suite. scripts/setup_env.sh installs with\n"
    "# `-c constraints.txt`. Regenerate with `make lock` after changing a pin in pyproject.toml.\n"
)


def closure(
    root: str = "alphaminer", extras: frozenset[str] = frozenset({"dev"})
) -> dict[str, str]:
    """Installed ``{canonical name: version}`` of ``root[extras]`` and everything it requires."""
    versions: dict[str, str] = {}
    todo = [(root, extras)]
    done: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, want = todo.pop()
        key = (canonicalize_name(name), want)
        if key in done:
            continue
        done.add(key)
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError as exc:
            msg = f"{name} is required but not installed; run scripts/setup_env.sh"
            raise SystemExit(msg) from exc
        versions[canonicalize_name(name)] = dist.version.split("+", 1)[0]
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is not None and not any(
                req.marker.evaluate({"extra": e}) for e in (want or {""})
            ):
                continue
            todo.append((req.name, frozenset(req.extras)))
    versions.pop(canonicalize_name(root), None)
    return versions


def render(versions: dict[str, str]) -> str:
    return HEADER + "".join(f"{n}=={v}\n" for n, v in sorted(versions.items()))


def parse(text: str) -> dict[str, str]:
    """``{canonical name: version}`` of a constraints file's ``name==version`` lines."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not sep:
            raise ValueError(f"constraints line is not name==version: {raw!r}")
        out[canonicalize_name(name.strip())] = version.strip()
    return out


def check(installed: dict[str, str], locked: dict[str, str]) -> list[str]:
    """What makes the environment differ from the lock: a version other than the locked one, or
    a required package the lock does not list. Locked packages this platform does not need
    (a marker excludes them) are not differences."""
    out = [
        f"{n}: locked {locked[n]}, installed {v}"
        for n, v in sorted(installed.items())
        if n in locked and locked[n] != v
    ]
    out += [
        f"{n}: installed {v}, not in the lock"
        for n, v in sorted(installed.items())
        if n not in locked
    ]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare, do not write")
    args = ap.parse_args(argv)
    now = closure()
    if not args.check:
        LOCK.write_text(render(now))
        print(f"wrote {LOCK.name}: {len(now)} packages")
        return 0
    locked = parse(LOCK.read_text()) if LOCK.exists() else {}
    bad = check(now, locked)
    for line in bad:
        print(line)
    print(f"{len(bad)} difference(s) between the environment and {LOCK.name}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
