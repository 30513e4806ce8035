"""The learning-signal measures (:mod:`alphaminer.mining.alphaformer.signal`): first vs last
10 % of updates, plain and net of a frozen-policy control, on curves built by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alphaminer.mining.alphaformer.signal import learning_signal, learning_signals, paired_signal


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


def test_welch_matches_the_hand_formula_and_is_undefined_below_two_values() -> None:
    first = np.array([0.01, 0.03, 0.02, 0.00])
    last = np.array([0.05, 0.02, 0.06, 0.04, 0.03])
    h = pd.DataFrame({"mean_reward": np.r_[first, np.zeros(32), last][:41]})
    # by hand: t = (mean_l - mean_f) / sqrt(s_l^2/n_l + s_f^2/n_f), sample variances
    se = np.sqrt(last.var(ddof=1) / last.size + first.var(ddof=1) / first.size)
    t_hand = (last.mean() - first.mean()) / se
    from alphaminer.mining.alphaformer.signal import welch

    w = welch(first, last)
    assert w["welch_t"] == pytest.approx(t_hand, rel=1e-12)
    assert w["first_mean"] == pytest.approx(0.015) and w["last_mean"] == pytest.approx(0.04)
    assert 0 < w["p_value_one_sided"] < 0.05
    # 41 updates: the first and last 4 (10 %, rounded down)
    s = learning_signal(h)
    assert s["first_n"] == s["last_n"] == 4
    assert s["first_mean"] == pytest.approx(first.mean())
    assert s["last_mean"] == pytest.approx(last[-4:].mean())
    # two updates (conf/test): one per group, the test is undefined but the means are kept
    two = learning_signal(pd.DataFrame({"mean_reward": [0.1, 0.3]}))
    assert two["welch_t"] is None and two["p_value_one_sided"] is None
    assert (two["first_mean"], two["last_mean"]) == (0.1, 0.3)
    sig = learning_signals(pd.DataFrame({"mean_reward": [0.1, 0.3], "valid_share": [0.5, 1.0],
                                         "entropy": [2.0, 1.0]}))
    assert set(sig) == {"mean_reward", "valid_share"}
    assert learning_signals(pd.DataFrame({"mean_reward": []})) == {}
