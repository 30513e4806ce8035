"""`alphaformer_pretrain` → `alphaformer_infer` on conf/test sizes: the infer pipeline uses the
shipped model until a pre-training has run, then the latest pre-trained version; both write the
pool as the `alphaformer` alpha set. The registry keeps pre-training out of the default run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from project_utils import latest, run_project, scratch_project

from alphaminer.data import clean, load_source

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    proj = scratch_project(tmp_path_factory.mktemp("alphaformer"))
    run_project(proj, "ingestion")
    folder = proj / "data/05_model_input/synthetic_markets"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(2):  # stand-ins for synthetic_generation's markets (Panels as parquet)
        raw = load_source({"kind": "simulator", "simulator": {"n_stocks": 20, "n_days": 90,
                                                                "seed": 10 + i}})
        clean(raw).to_panel().save(folder / f"market_{i:03d}.parquet")
    return proj


def _alphas(project: Path) -> dict:
    return json.loads(latest(project / "data/04_feature/alphaformer/alphas.json").read_text())


def test_infer_uses_the_shipped_model_without_pretraining(project: Path) -> None:
    assert not (project / "data/06_models/alphaformer/model").exists()
    run_project(project, "alphaformer_infer")
    a = _alphas(project)
    assert a["method"] == "alphaformer" and 0 < len(a["alphas"]) <= 3
    assert a["meta"]["n_candidates"] == 16
    assert Path(a["meta"]["model_source"]).resolve() == (
        Path(__file__).resolve().parents[2] / "models/alphaformer").resolve()


def test_pretrain_then_infer_uses_the_fresh_model(project: Path) -> None:
    run_project(project, "alphaformer_pretrain")
    model_dir = latest(project / "data/06_models/alphaformer/model")
    cfg = json.loads((model_dir / "config.json").read_text())
    assert cfg["model"]["d_model"] == 16 and cfg["meta"]["updates"] == 2
    assert (model_dir / "model.safetensors").stat().st_size > 0
    hist = latest(project / "data/06_models/alphaformer/pretrain_history.parquet")
    import pandas as pd

    h = pd.read_parquet(hist)
    assert len(h) == 2 and {"mean_reward", "entropy", "approx_kl", "value_loss"} <= set(h)
    # the model folder keeps its own learning curve and signal, so the report can show them
    curve = pd.read_csv(model_dir / "learning_curve.csv")
    assert curve["mean_reward"].tolist() == pytest.approx(h["mean_reward"].tolist())
    sig = cfg["meta"]["learning_signal"]["mean_reward"]
    assert (sig["first_mean"], sig["last_mean"]) == pytest.approx(
        (h["mean_reward"].iloc[0], h["mean_reward"].iloc[-1]))
    from alphaminer.kedro_io import AlphaFormerModelDataset
    from alphaminer.pipelines.reporting.nodes import alphaformer_section

    loaded = AlphaFormerModelDataset(str(model_dir)).load()
    _, _, html = alphaformer_section(loaded, None)
    assert "a fresh pre-training" in html and html.count("<img") == 1
    run_project(project, "alphaformer_infer")
    a = _alphas(project)
    assert Path(a["meta"]["model_source"]) == model_dir.resolve() or \
        a["meta"]["model_source"].endswith(str(model_dir.relative_to(project)))
    assert a["meta"]["model"]["d_model"] == 16


def test_registry_default_run_has_infer_not_pretrain() -> None:
    from kedro.framework.project import pipelines
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(Path(__file__).resolve().parents[2])
    default = {n.name for n in pipelines["__default__"].nodes}
    assert "alphaformer.infer_alphaformer" in default
    assert "alphaformer.pretrain_alphaformer" not in default
    for name in ("alphaformer_pretrain", "alphaformer_infer"):
        assert all("gpu" in n.tags for n in pipelines[name].nodes)
