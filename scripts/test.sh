#!/usr/bin/env bash
# The project's test command: set up the environment, then run the whole suite on conf/test sizes.
# Headless Chromium (Debian's `chromium`) is installed when possible for the report/kedro-viz
# screenshot tests; those tests skip cleanly when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "chromium could not be installed; screenshot tests will be skipped"
fi
export KEDRO_DISABLE_TELEMETRY=1 DO_NOT_TRACK=1 MPLBACKEND=Agg
.venv/bin/python -m ruff check src tests benchmarks scripts
.venv/bin/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder --durations=30 "$@"
