"""Kedro project settings."""

from kedro.config import OmegaConfigLoader

from alphaminer.hooks import ManifestHooks, RunLockHooks

# RunLockHooks first: a second concurrent run in this project fails before anything runs.
HOOKS = (RunLockHooks(), ManifestHooks())

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "merge_strategy": {"parameters": "soft", "globals": "soft"},
    "config_patterns": {
        "parameters": ["parameters*", "parameters*/**", "**/parameters*"],
    },
}
