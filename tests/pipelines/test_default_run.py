"""`kedro run` (``__default__``) on conf/test: every stage runs and the report compares methods."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from project_utils import latest, run_project, scratch_project

from alphaminer.pipelines._methods import ALL_METHODS


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    proj = scratch_project(tmp_path_factory.mktemp("default_run"))
    run_project(proj)  # __default__
    return proj


def _metrics(proj: Path, method: str) -> dict:
    return json.loads(latest(proj / f"data/07_model_output/{method}/backtest_metrics.json")
                      .read_text())


def test_report_has_every_method(project: Path):
    html = latest(project / "data/08_reporting/research_report.html").read_text()
    for m in ALL_METHODS:
        assert f">{m}<" in html or f"{m}</" in html
    assert "Comparison" in html and "data:image/png;base64," in html
    assert "http://" not in html and "https://" not in html
    table = pd.read_csv(latest(project / "data/08_reporting/comparison_table.csv"))
    assert set(ALL_METHODS) <= set(table.iloc[:, 0].astype(str))


def test_manifest(project: Path):
    man = json.loads(latest(project / "data/08_reporting/run_manifest.json").read_text())
    text = json.dumps(man)
    for key in ("commit", "torch", "kedro"):
        assert key in text
    report = json.loads(latest(project / "data/08_reporting/data_report.json").read_text())
    assert report["panel"]["fingerprint"] in text


def test_oracle_beats_library_out_of_sample(project: Path):
    oracle, library = _metrics(project, "oracle"), _metrics(project, "library")
    assert oracle["ic"] > library["ic"]
    assert oracle["rank_ic"] > 0


def test_backtest_accounting_in_catalog(project: Path):
    for m in ALL_METHODS:
        path = project / f"data/07_model_output/{m}/backtest_daily.parquet"
        daily = pd.read_parquet(latest(path))
        assert ((daily["equity"] - daily["cash"] - daily["holdings_value"]).abs()
                <= 1e-6 * daily["equity"]).all()
        assert (daily["cash"] >= 0).all()


def test_alphanet_outputs(project: Path):
    attr = pd.read_parquet(latest(project / "data/07_model_output/alphanet/attribution.parquet"))
    assert len(attr) > 0 and attr["feature"].str.startswith("BN(").all()
    model_dir = latest(project / "data/06_models/alphanet/model")
    assert (model_dir / "model.safetensors").exists() and (model_dir / "config.json").exists()
    tm = json.loads(latest(project / "data/06_models/alphanet/train_metrics.json").read_text())
    assert tm["device"] in ("auto", "cpu")
