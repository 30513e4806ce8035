"""The learning-signal measures of ``benchmarks/train_alphaformer_model.py``: first vs last 10 %
of updates, plain and net of a frozen-policy control, on curves built by hand."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from train_alphaformer_model import learning_signal, paired_signal  # noqa: E402


def test_paired_signal_removes_what_the_episodes_do() -> None:
    n = 100
    rng = np.random.default_rng(0)
    # the episodes alone: a falling reward (young pools first) with noise, shared by both runs
    episodes = np.linspace(0.03, 0.0, n) + rng.normal(0, 0.002, n)
    ramp = np.linspace(0.0, 0.01, n)  # what learning adds
    control = pd.DataFrame({"mean_reward": episodes})
    run = pd.DataFrame({"mean_reward": episodes + ramp})
    plain = learning_signal(run)
    assert plain["last_mean"] < plain["first_mean"]  # the plain measure reads a fall
    assert plain["p_value_one_sided"] > 0.5
    net = paired_signal(run, control)
    assert net["first_n"] == net["last_n"] == 10
    assert net["first_mean"] == pytest.approx(ramp[:10].mean())
    assert net["last_mean"] == pytest.approx(ramp[-10:].mean())
    assert net["mean_difference"] == pytest.approx(0.005)
    assert net["p_value_one_sided"] < 1e-6
    # a run that learns nothing reads nothing net of its control
    flat = paired_signal(control, control)
    assert flat["mean_difference"] == 0.0 and flat["first_mean"] == flat["last_mean"] == 0.0
