"""Training resumes after a simulated crash to exactly the weights of an uninterrupted run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from synthetic_fixtures import TINY_MODELS

from alphaminer.synthetic import SyntheticModels, train_synthetic_models


class Crash(RuntimeError):
    pass


def _cfg(generators="all") -> dict:
    return {"generators": generators, "context": 12, "seed": 5,
            "train": {"steps": 6, "batch_size": 8, "checkpoint_every": 2},
            "models": TINY_MODELS}


def _weights(bundle: SyntheticModels) -> dict[str, torch.Tensor]:
    out = {}
    for n, m in {**bundle.generators, "evaluator": bundle.evaluator}.items():
        out.update({f"{n}.{k}": v for k, v in m.state_dict().items()})
    return out


def test_resume_after_crash_equals_uninterrupted_run(train_panel, tmp_path: Path) -> None:
    ref, ref_hist = train_synthetic_models(train_panel, _cfg(), tmp_path / "ref")

    def crash(name: str, step: int) -> None:
        if name == "diffusion" and step == 3:
            raise Crash  # dies one step after the step-2 checkpoint: step 3 is lost

    with pytest.raises(Crash):
        train_synthetic_models(train_panel, _cfg(), tmp_path / "run", on_step=crash)
    resumed, hist = train_synthetic_models(train_panel, _cfg(), tmp_path / "run")
    a, b = _weights(ref), _weights(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert hist[["model", "step", "loss"]].equals(ref_hist[["model", "step", "loss"]])
    # the finished models were not retrained (their checkpoint was already at the last step)
    assert (tmp_path / "run" / "gru").is_dir()


def test_bundle_round_trip_and_ablation(train_panel, tmp_path: Path) -> None:
    bundle, hist = train_synthetic_models(train_panel, _cfg("gru"))
    assert list(bundle.generators) == ["gru"] and set(hist["model"]) == {"gru", "evaluator"}
    bundle.save(tmp_path / "models")
    back = SyntheticModels.load(tmp_path / "models")
    assert back.context == 12 and list(back.generators) == ["gru"]
    ctx = torch.randn(3, 12, 6)
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    assert torch.equal(bundle.generators["gru"].sample(ctx, 5, g1),
                       back.generators["gru"].sample(ctx, 5, g2))
    torch.testing.assert_close(bundle.evaluator.log_likelihood(ctx, ctx),
                               back.evaluator.log_likelihood(ctx, ctx))
    with pytest.raises(ValueError, match="generators"):
        train_synthetic_models(train_panel, _cfg("vae"))
