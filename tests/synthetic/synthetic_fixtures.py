"""Tiny model settings shared by the synthetic tests (conf/test-like sizes)."""

from __future__ import annotations

TINY_MODELS = {
    "gru": {"hidden": 16, "layers": 1, "components": 2, "train_window": 16},
    "transformer": {"d_model": 16, "heads": 2, "layers": 1, "ff": 32, "components": 2,
                    "max_len": 16},
    "diffusion": {"channels": 8, "layers": 1, "heads": 2, "ff": 16, "step_embedding": 16,
                  "time_embedding": 8, "feature_embedding": 4, "diffusion_steps": 10,
                  "sample_steps": 4, "context": 8, "block": 8},
    "evaluator": {"hidden": 16, "layers": 1, "components": 2, "train_window": 16},
}
