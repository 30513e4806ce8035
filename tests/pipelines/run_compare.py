"""Comparing two runs of the project: alpha sets, combination and backtest metrics, signals."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from project_utils import latest

from alphaminer.pipelines._methods import ALPHA_SET_METHODS


def read_json(project: Path, rel: str) -> dict:
    return json.loads(latest(project / "data" / rel).read_text())


def alpha_set(project: Path, method: str) -> dict:
    d = read_json(project, f"04_feature/{method}/alphas.json")
    return {"method": d["method"], "alphas": d["alphas"]}  # meta holds wall-clock timings


def signal(project: Path, method: str) -> pd.DataFrame:
    return pd.read_parquet(latest(project / f"data/07_model_output/{method}/signal.parquet"))


def assert_same_method(a: Path, b: Path, method: str, signal_atol: float = 0.0) -> None:
    if method in ALPHA_SET_METHODS:
        assert alpha_set(a, method) == alpha_set(b, method), method
        for rel in ("combination_metrics.json",):
            assert read_json(a, f"07_model_output/{method}/{rel}") == \
                read_json(b, f"07_model_output/{method}/{rel}"), (method, rel)
    if signal_atol:
        pd.testing.assert_frame_equal(signal(a, method), signal(b, method), check_exact=False,
                                      rtol=0.0, atol=signal_atol, obj=f"{method} signal")
    else:
        pd.testing.assert_frame_equal(signal(a, method), signal(b, method), check_exact=True,
                                      obj=f"{method} signal")
    assert read_json(a, f"07_model_output/{method}/backtest_metrics.json") == \
        read_json(b, f"07_model_output/{method}/backtest_metrics.json"), method


def n_versions(project: Path, rel: str) -> int:
    return sum(1 for p in (project / "data" / rel).iterdir() if p.is_dir())
