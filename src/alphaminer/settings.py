"""Kedro project settings."""

import os
import warnings

from kedro.config import OmegaConfigLoader

from alphaminer.hooks import ManifestHooks, ParameterHooks, ProcessSharedMemoryHooks, RunLockHooks
from alphaminer.memory import MemoryHooks
from alphaminer.progress import widen_log_consoles
from alphaminer.tracking import TrackingHooks

# ParallelRunner's workers are spawned, not forked: torch (and libgomp's thread pool) hang in
# a forked child of a process that has already used them. Kedro reads this when it starts
# the pool; a value exported in the shell wins.
os.environ.setdefault("KEDRO_MP_CONTEXT", "spawn")

# Kedro has configured logging by now (its default or KEDRO_LOGGING_CONFIG): off a terminal,
# Rich would wrap every line at 80 columns; widen it (alphaminer.progress says how).
widen_log_consoles()

# ParameterHooks first: bad parameters fail at start, naming their YAML path. RunLockHooks
# next: a second concurrent run in this project fails before anything runs. TrackingHooks
# (MLflow, conf/<env>/mlflow.yml, ALPHAMINER_TRACKING=0 turns it off) last: it only observes.
# MemoryHooks: each node's peak RSS (data/08_reporting/memory/).
HOOKS = (ParameterHooks(), RunLockHooks(), ManifestHooks(), ProcessSharedMemoryHooks(),
         MemoryHooks(), TrackingHooks())

# Kedro 1.7's OmegaConfigLoader registers its resolvers with OmegaConf's old API, and
# omegaconf 2.4 warns about that 2-3 times per command, on every user's console, about
# code that is not theirs or ours. Only that message is silenced.
warnings.filterwarnings(
    "ignore", message=r"register_new_resolver\(\) is deprecated", category=UserWarning
)

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "merge_strategy": {"parameters": "soft", "globals": "soft"},
    "config_patterns": {
        "parameters": ["parameters*", "parameters*/**", "**/parameters*"],
        "mlflow": ["mlflow*", "mlflow*/**"],  # alphaminer.tracking
    },
}

# The project tracks runs itself (alphaminer.tracking says why kedro-mlflow is not used, and it
# is not a dependency). Where kedro-mlflow happens to be installed, its entry-point hooks would
# track every run a second time into ./mlruns: disabled. Kedro compares these names with the
# distribution's metadata ``Name``, which kedro-mlflow 2.0.3 spells ``kedro_mlflow``.
DISABLE_HOOKS_FOR_PLUGINS = ("kedro_mlflow", "kedro-mlflow")
