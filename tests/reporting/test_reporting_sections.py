"""The report's AlphaFormer pre-training and Alpha2 ablation sections."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd

from alphaminer.pipelines.reporting.nodes import (
    alpha2_ablation_section,
    alphaformer_evaluations,
    alphaformer_section,
)

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "alphaformer"


def test_alphaformer_section_shows_signal_and_curves_of_the_shipped_model() -> None:
    meta = {"trained_with": "train.py", "hardware": "CPU", "updates": 3,
            "learning_signal": {"mean_reward": {"first_mean": 0.1, "last_mean": 0.3,
                                                "welch_t": 4.0, "p_value_one_sided": 0.01}}}
    model = SimpleNamespace(meta=meta, source=str(SHIPPED))
    log = pd.DataFrame({"batch": [0, 1], "pool_ic": [0.05, 0.06]})
    sid, title, html = alphaformer_section(model, log)
    assert sid == "alphaformer-pretraining" and "AlphaFormer" in title
    assert "the shipped model (models/alphaformer)" in html
    assert "mean_reward" in html and "0.3000" in html  # the learning-signal table
    assert html.count("<img") == 1  # the learning curves from learning_curve.csv
    assert str(SHIPPED) not in html  # no absolute local paths in the report
    # a model folder without a curve: no figure, still the table
    _, _, bare = alphaformer_section(SimpleNamespace(meta=meta, source="/x/version/model"), None)
    assert "<img" not in bare and "fresh pre-training" in bare


def test_alphaformer_evaluations_table_every_model_and_the_random_arm(tmp_path: Path) -> None:
    import json

    assert alphaformer_evaluations(tmp_path) == ""  # no evaluations/: nothing
    arm = {"pool_ic_train": 0.0683, "pool_ic_test": 0.043, "candidates_per_second": 20.0,
           "unique": 290.0}
    ev = {"title": "Generator ablation", "panel": "default", "n": 300, "capacity": 10,
          "seeds": [0, 1, 2], "models": {
              "gru": {"summary": {"pretrained": {**arm, "pool_ic_train": 0.0711},
                                  "random": arm}, "pretrained_wins": 2, "p_one_sided": 0.2},
              "mix": {"summary": {"pretrained": {**arm, "pool_ic_train": 0.0599},
                                  "random": arm}, "pretrained_wins": 0, "p_one_sided": 0.9}}}
    (tmp_path / "evaluations").mkdir()
    (tmp_path / "evaluations" / "ablation.json").write_text(json.dumps(ev))
    html = alphaformer_evaluations(tmp_path)
    assert "Generator ablation" in html and "ablation.json" in html
    assert html.count("<tr") == 4  # header + two models + the random arm
    assert "0.0711" in html and "0.0599" in html and "0.0683" in html
    assert "2 of 3" in html and "0 of 3" in html and "random weights" in html


def test_alpha2_ablation_section_off_and_on() -> None:
    _, _, off = alpha2_ablation_section({"enabled": False, "rows": [], "summary": []})
    assert "Not run" in off
    on = {"enabled": True, "summary": [
        {"variant": "default", "top_test_ic_mean": 0.067, "mean_mutual_abs_corr": 0.08,
         "recovered_per_seed": [1, 2], "extra_column": 1},
        {"variant": "no_dims", "top_test_ic_mean": 0.061, "mean_mutual_abs_corr": 0.079,
         "recovered_per_seed": [2, 0]}]}
    _, title, html = alpha2_ablation_section(on)
    assert title == "Alpha2 ablations" and "no_dims" in html and "0.0670" in html
    assert "extra_column" not in html


def test_significance_section_compares_with_the_best_baseline() -> None:
    import numpy as np

    from alphaminer.pipelines.reporting.nodes import significance_section
    from alphaminer.reporting import MethodResults

    rng = np.random.default_rng(0)
    dates = pd.bdate_range("2020-01-01", periods=120)
    daily = pd.DataFrame({"date": dates, "return": rng.normal(0, 0.01, 120)})

    def method(name: str, level: float) -> MethodResults:
        ics = pd.DataFrame({"date": dates, "ic": level, "rank_ic": level
                            + 0.01 * rng.normal(size=120)})
        return MethodResults(name=name, alphas=None, daily=daily, ic_series=ics,
                             quantiles=pd.DataFrame({"date": dates, "q1": 0.0, "q2": 0.0}),
                             metrics={})

    sid, _, html = significance_section([method("xgb", 0.05), method("library", 0.07),
                                         method("alpha2", 0.12)])
    assert sid == "significance" and "alpha2" in html and "xgb" in html
    assert html.count("library") >= 2  # the baseline column names the best baseline
    assert significance_section([method("alpha2", 0.1)]) is None  # no baseline present
