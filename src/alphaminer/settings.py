"""Kedro project settings."""

import os

from kedro.config import OmegaConfigLoader

from alphaminer.hooks import ManifestHooks, ParameterHooks, ProcessSharedMemoryHooks, RunLockHooks

# ParallelRunner's workers are spawned, not forked: torch (and libgomp's thread pool) hang in
# a forked child of a process that has already used them. Kedro reads this when it starts
# the pool; a value exported in the shell wins.
os.environ.setdefault("KEDRO_MP_CONTEXT", "spawn")

# ParameterHooks first: bad parameters fail at start, naming their YAML path. RunLockHooks
# next: a second concurrent run in this project fails before anything runs.
HOOKS = (ParameterHooks(), RunLockHooks(), ManifestHooks(), ProcessSharedMemoryHooks())

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "merge_strategy": {"parameters": "soft", "globals": "soft"},
    "config_patterns": {
        "parameters": ["parameters*", "parameters*/**", "**/parameters*"],
    },
}

# kedro-mlflow registers its hooks through an entry point as soon as it is installed; the
# project decides itself whether and how a run is tracked.
DISABLE_HOOKS_FOR_PLUGINS = ("kedro-mlflow",)
