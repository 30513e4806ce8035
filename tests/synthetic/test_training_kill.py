"""SIGKILL in the middle of training: the rerun resumes from the checkpoint module's last
checkpoint to exactly the weights of an uninterrupted run (the in-process crash test's
counterpart with a real kill, so nothing in the dying process gets to clean up)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import torch
from test_training import _cfg, _weights

from alphaminer.synthetic import train_synthetic_models

HERE = Path(__file__).resolve().parent

CHILD = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {here!r})
    import torch
    torch.set_num_threads(1)
    from alphaminer.data import (CleanConfig, SourceConfig, SplitConfig, clean,
                                 load_source, make_splits)
    from alphaminer.synthetic import train_synthetic_models
    from test_training import _cfg
    raw = load_source(SourceConfig.from_dict(
        {{"kind": "simulator", "simulator": {{"n_stocks": 30, "n_days": 260, "seed": 3,
                                             "alpha_horizon": 5}}}}))
    panel = clean(raw, CleanConfig()).to_panel()
    splits = make_splits(panel.dates, SplitConfig.from_dict({{"fractions": [0.5, 0.25, 0.25],
                                                              "horizon": 5}}))
    def hang(name, step):
        if name == "diffusion" and step == 3:  # after the step-2 checkpoint, before step 4's
            print("READY", flush=True)
            time.sleep(600)
    train_synthetic_models(splits.slice(panel, "train"), _cfg(), {ck!r}, on_step=hang)
""")


def test_sigkill_mid_training_then_rerun_equals_uninterrupted(train_panel, tmp_path: Path
                                                              ) -> None:
    ck = tmp_path / "run"
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(here=str(HERE), ck=str(ck))],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in child.stdout:  # until the child is inside diffusion's step 3
        lines.append(line)
        if line.strip() == "READY":
            break
    assert lines and lines[-1].strip() == "READY", "".join(lines)[-3000:]
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    assert (ck / "diffusion").is_dir()  # a checkpoint was on disk when it died

    ref, ref_hist = train_synthetic_models(train_panel, _cfg(), tmp_path / "ref")
    resumed, hist = train_synthetic_models(train_panel, _cfg(), ck)
    a, b = _weights(ref), _weights(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert hist[["model", "step", "loss"]].equals(ref_hist[["model", "step", "loss"]])
