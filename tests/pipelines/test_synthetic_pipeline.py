"""`kedro run --pipelines=synthetic_generation` on conf/test: markets are project panels that
labels work on, with win counts; the quality report covers real, each generator and selected."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from project_utils import latest, run_project, scratch_project

from alphaminer.data import Splits, make_labels
from alphaminer.panel import Panel


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    proj = scratch_project(tmp_path_factory.mktemp("synthetic"))
    run_project(proj, "ingestion")
    run_project(proj, "synthetic_generation")
    return proj


def test_nodes_are_gpu_tagged() -> None:
    from alphaminer.pipelines.synthetic_generation import create_pipeline

    p = create_pipeline()
    assert p.nodes and all(set(n.tags) & {"cpu", "gpu"} == {"gpu"} for n in p.nodes)


def test_markets_are_panels_with_win_counts(project: Path) -> None:
    files = sorted((project / "data/05_model_input/synthetic_markets").glob("*.parquet"))
    assert [f.stem for f in files] == ["market_0000", "market_0001"]
    splits = Splits.from_dict(json.loads((project / "data/03_primary/splits.json").read_text()))
    train_end = splits.dates[splits.train[1] - 1]
    for f in files:
        m = Panel.load(f)
        assert 5 <= m.S <= 8 and 20 <= m.T <= 30
        assert set(m.meta["generator_wins"]) == {"gru", "transformer", "diffusion"}
        assert sum(m.meta["generator_wins"].values()) == m.S
        assert pd.Timestamp(m.meta["context_end"]) <= train_end
        assert m.dates[0] > pd.Timestamp(m.meta["context_end"])
        o, h, lo, c, v, w = (m.feature(k).numpy() for k in
                             ("open", "high", "low", "close", "volume", "vwap"))
        assert (lo <= np.minimum(o, c)).all() and (h >= np.maximum(o, c)).all()
        assert ((lo <= w) & (w <= h)).all() and (v > 0).all()
        y = make_labels(m, 5)  # labels work unchanged on a synthetic market
        assert torch.isfinite(y[:-5]).all()


def test_quality_report_and_models(project: Path) -> None:
    q = json.loads(latest(project / "data/08_reporting/synthetic/quality.json").read_text())
    assert [r["source"] for r in q["facts"]] == ["real", "gru", "transformer", "diffusion",
                                                 "selected"]
    assert set(q["auc"]) == {"gru", "transformer", "diffusion", "selected"}
    assert sum(q["wins"].values()) == sum(
        sum(m[g] for g in ("gru", "transformer", "diffusion")) for m in q["markets"])
    assert abs(sum(q["win_share"].values()) - 1) < 1e-9
    t = q["target"]
    assert set(t) == {"selected_auc", "best_generator", "best_generator_auc", "met",
                      "difference", "difference_std", "difference_se", "folds_total",
                      "decisive"}
    assert t["met"] == (t["selected_auc"] <= t["best_generator_auc"])
    # paired folds: the mean per-fold difference is the difference of the mean AUCs
    assert t["difference"] == pytest.approx(t["selected_auc"] - t["best_generator_auc"])
    assert t["folds_total"] == 2 * 3  # conf/test: 2 folds x the 3 repeats of conf/base
    assert set(q["auc_std"]) == set(q["auc"])
    assert latest(project / "data/08_reporting/synthetic/quality.png").stat().st_size > 0
    models = latest(project / "data/06_models/synthetic/models")
    cfg = json.loads((models / "config.json").read_text())
    assert cfg["generators"] == ["gru", "transformer", "diffusion"]
    assert all((models / f"{n}.safetensors").exists() for n in cfg["models"])
    hist = pd.read_parquet(latest(project / "data/06_models/synthetic/train_history.parquet"))
    assert set(hist["model"]) == {"gru", "transformer", "diffusion", "evaluator"}
