"""The LSTM policy's step-by-step generation and whole-sequence evaluation agree exactly."""

from __future__ import annotations

import torch

from alphaminer.mining.alphagen.policy import LSTMPolicy


def test_step_and_evaluate_agree_and_shapes_are_right() -> None:
    torch.manual_seed(0)
    pol = LSTMPolicy(n_tokens=11, hidden=16, layers=2, head_hidden=8)
    tokens = torch.randint(0, 11, (5, 7))
    logits, values = pol.evaluate(tokens)
    assert logits.shape == (5, 7, 11) and values.shape == (5, 7)
    state = pol.initial_state(5)
    prev = torch.full((5,), -1, dtype=torch.long)
    for t in range(7):
        lg, v, state = pol.step(prev, state)
        torch.testing.assert_close(lg, logits[:, t], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(v, values[:, t], rtol=1e-5, atol=1e-6)
        prev = tokens[:, t]


def test_table_11_sizes() -> None:
    pol = LSTMPolicy(n_tokens=50)
    assert pol.lstm.hidden_size == 128 and pol.lstm.num_layers == 2
    hidden = [m.out_features for m in pol.pi if isinstance(m, torch.nn.Linear)]
    assert hidden == [64, 64, 50]
    assert [m.out_features for m in pol.v if isinstance(m, torch.nn.Linear)] == [64, 64, 1]
