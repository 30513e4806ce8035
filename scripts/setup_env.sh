#!/usr/bin/env bash
# Create/refresh the project's virtual environment (.venv) with pinned dependencies.
# torch is installed FIRST and pinned (2.13.0, CPU wheel): with it in place nothing later can
# resolve a multi-GB CUDA build. The venv sees the interpreter's site-packages so a machine that
# already has the pinned wheels does not download them again; pins still win inside the venv.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for c in python3.11 python3; do
    if command -v "$c" >/dev/null 2>&1; then PY="$c"; break; fi
  done
fi
"$PY" - <<'PYCHECK'
import sys
if sys.version_info[:2] != (3, 11):
    sys.exit(f"AlphaMiner needs Python 3.11, found {sys.version.split()[0]}; set PYTHON=/path/to/python3.11")
PYCHECK
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv --system-site-packages .venv
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
.venv/bin/python -m pip install -q "torch==2.13.0"
# constraints.txt fixes every transitive dependency too (scripts/lock_deps.py; `make lock`)
.venv/bin/python -m pip install -q -c constraints.txt -e ".[dev]" || {
  echo "setup_env: install against constraints.txt failed. If you changed a pin in" \
       "pyproject.toml, run \`make lock\` to re-resolve and rewrite constraints.txt." >&2
  exit 1
}
.venv/bin/python -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__; print('torch', torch.__version__, 'cuda build' if torch.version.cuda else 'cpu build')"
# compile the numba kernels into their on-disk cache once (70-80 s on 2 cores; a few seconds when
# they are cached already), so that no later process pays it (src/alphaminer/warmup.py)
.venv/bin/python -m alphaminer.warmup
