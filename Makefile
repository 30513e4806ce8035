# The two commands of README.md. Both set up .venv themselves.
.PHONY: setup test run viz bench lint lock

setup:            ## install everything and run the default pipeline on the simulator
	bash scripts/setup_env.sh
	KEDRO_DISABLE_TELEMETRY=1 .venv/bin/python -m kedro run

test:             ## install (if needed) and run the whole test suite (conf/test sizes)
	bash scripts/test.sh

run:
	KEDRO_DISABLE_TELEMETRY=1 .venv/bin/python -m kedro run

viz:
	KEDRO_DISABLE_TELEMETRY=1 .venv/bin/python -m kedro viz run

bench:
	.venv/bin/python benchmarks/run_all.py

lint:
	.venv/bin/python -m ruff check src tests benchmarks scripts

lock:             ## after changing a pin in pyproject.toml: resolve it in .venv, rewrite constraints.txt
	.venv/bin/python -m pip install -q -e ".[dev]"
	.venv/bin/python scripts/lock_deps.py
