"""The `ml_baselines` pipeline (namespaces mlp / lstm / xgb / lgbm) on a tiny market with the
conf/test parameters: tags, outputs in the `<m>.signal` format, train metrics, and conf files
that parse into valid configurations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from alphaminer.combination.ml_baselines import TreeConfig
from alphaminer.data import clean, load_source, make_labels, make_splits
from alphaminer.neural.baselines import NetConfig, WindowConfig
from alphaminer.pipelines.ml_baselines import MODELS, create_pipeline

CONF = Path(__file__).resolve().parents[2] / "conf"


def _deep_merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k),
                                                                              dict) else v
    return out


def _params(env: str) -> dict:
    base = yaml.safe_load((CONF / "base" / "parameters" / "ml_baselines.yml").read_text())
    if env == "base":
        return base["ml_baselines"]
    over = yaml.safe_load((CONF / env / "parameters" / "ml_baselines.yml").read_text())
    return _deep_merge(base, over)["ml_baselines"]  # the project's soft merge


def test_pipeline_structure() -> None:
    p = create_pipeline()
    assert {n.name: n.tags for n in p.nodes} == {
        "mlp.fit_predict_mlp": {"gpu"}, "lstm.fit_predict_lstm": {"gpu"},
        "xgb.fit_predict_xgb": {"cpu"}, "lgbm.fit_predict_lgbm": {"cpu"}}
    assert set(p.outputs()) == {f"{m}.{o}" for m in MODELS for o in ("signal", "train_metrics")}
    assert set(p.inputs()) == {"market_panel", "labels", "splits", "params:ml_baselines",
                               "params:min_stocks", "params:seed"}
    cat = yaml.safe_load((CONF / "base" / "catalog_12_ml_baselines.yml").read_text())
    for m in MODELS:
        assert cat[f"{m}.train_metrics"]["versioned"] is True
    factory = yaml.safe_load((CONF / "base" / "catalog_07_model_output.yml").read_text())
    assert factory["{method}.signal"]["type"] == "pandas.ParquetDataset"


@pytest.mark.parametrize("env", ["base", "test", "paper"])
def test_parameters_are_valid_configs(env: str) -> None:
    p = _params(env)
    for m in MODELS:
        section = dict(p[m])
        WindowConfig(**{**p["window"], **section.pop("window", {})})
        (TreeConfig if m in ("xgb", "lgbm") else NetConfig)(**section, kind=m)
    if env == "paper":  # AlphaFormer Table 11
        assert (p["lgbm"]["num_leaves"], p["lgbm"]["max_depth"], p["lgbm"]["learning_rate"],
                p["lgbm"]["colsample_bytree"], p["lgbm"]["subsample"],
                p["lgbm"]["bagging_freq"]) == (210, 8, 0.05, 0.9, 0.8, 5)
        assert (p["xgb"]["colsample_bytree"], p["xgb"]["max_depth"], p["xgb"]["learning_rate"],
                p["xgb"]["subsample"], p["xgb"]["n_estimators"]) == (0.9, 8, 0.05, 0.9, 1000)
        for m in ("mlp", "lstm"):
            assert (p[m]["layers"], p[m]["hidden"], p[m]["batch_size"], p[m]["lr"]) == (
                2, 64, 512, 0.001)
        assert p["window"]["window"] == 60


def test_pipeline_writes_signals_and_metrics() -> None:
    raw = load_source({"kind": "simulator",
                       "simulator": {"n_stocks": 30, "n_days": 200, "seed": 1,
                                     "alpha_horizon": 5}})
    panel = clean(raw).to_panel()
    labels = panel.frame(make_labels(panel, 5), name="label")
    splits = make_splits(panel.dates, {"fractions": [0.5, 0.25, 0.25], "horizon": 5}).to_dict()
    outs = [f"{m}.{o}" for m in MODELS for o in ("signal", "train_metrics")]
    catalog = DataCatalog({"market_panel": MemoryDataset(panel),
                           "labels": MemoryDataset(labels), "splits": MemoryDataset(splits),
                           "params:ml_baselines": MemoryDataset(_params("test")),
                           "params:min_stocks": MemoryDataset(5),
                           "params:seed": MemoryDataset(0),
                           **{k: MemoryDataset() for k in outs}})
    SequentialRunner().run(create_pipeline(), catalog)
    W = _params("test")["window"]["window"]
    for m in MODELS:
        sig = catalog.load(f"{m}.signal")
        assert list(sig.columns) == ["datetime", "instrument", "signal"]
        assert np.isfinite(sig["signal"]).all() and len(sig) > 0
        # nothing before the first complete window
        assert pd.Timestamp(sig["datetime"].min()) >= panel.dates[W - 1]
        met = catalog.load(f"{m}.train_metrics")
        assert met["method"] == m and np.isfinite(met["best_valid_ic"])
        assert ("best_iteration" if m in ("xgb", "lgbm") else "best_epoch") in met
        assert all(f"{s}_ic" in met for s in ("train", "valid", "test")) and met["wall_s"] > 0
        assert met["window"] == W
