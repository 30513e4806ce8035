"""The `alpha2_mining` pipeline (namespace `alpha2`) on a tiny market: its node is tagged gpu,
it writes the alpha set (programs, per-split IC/RankIC, max corr to the rest), the mining log
and the search statistics, and the conf files parse into valid configurations."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from alphaminer.data import clean, load_source, make_labels, make_splits
from alphaminer.mining.alpha2.miner import Alpha2Config
from alphaminer.pipelines.alpha2_mining import create_pipeline

CONF = Path(__file__).resolve().parents[2] / "conf"
OUTPUTS = ("alpha2.alphas", "alpha2.mining_log", "alpha2.search_stats", "alpha2.ablations")


@pytest.fixture(scope="module")
def inputs() -> dict:
    raw = load_source({"kind": "simulator",
                       "simulator": {"n_stocks": 30, "n_days": 260, "seed": 1}})
    panel = clean(raw).to_panel()
    labels = panel.frame(make_labels(panel, 5), name="label")
    splits = make_splits(panel.dates, {"fractions": [0.5, 0.25, 0.25], "horizon": 5}).to_dict()
    return {"market_panel": panel, "labels": labels, "splits": splits,
            "planted_alphas": raw.extras["planted_alphas"]}


def test_pipeline_structure() -> None:
    p = create_pipeline()
    assert sorted(n.name for n in p.nodes) == ["alpha2.alpha2_ablations", "alpha2.mine_alpha2"]
    assert all(n.tags == {"gpu"} for n in p.nodes)
    assert set(p.outputs()) == set(OUTPUTS)
    assert {"market_panel", "labels", "splits", "planted_alphas", "params:alpha2.mining",
            "params:alpha2.ablations"} <= set(p.inputs())


@pytest.mark.parametrize("env", ["base", "test", "paper"])
def test_parameters_are_valid_configs(env: str) -> None:
    d = yaml.safe_load((CONF / env / "parameters" / "alpha2.yml").read_text())["alpha2"]
    Alpha2Config.from_dict(d["mining"].get("miner", {}))
    if env == "base":
        assert d["combination"]["model"] == "auto"  # chosen on validation (combination.yml)
        cat = yaml.safe_load((CONF / "base" / "catalog_10_alpha2.yml").read_text())
        assert cat["alpha2.search_stats"]["versioned"] is True
        assert cat["alpha2.ablations"]["filepath"] == \
            "${runtime_params:data_root,data}/08_reporting/alpha2/ablations.json"
        assert d["ablations"]["enabled"] is False  # each variant is a full mining run
    if env == "paper":
        # the paper combines the top 20 alphas by IC with XGBoost
        assert d["combination"] == {"model": "xgboost", "xgboost": {"top_k": 20, "n_trials": 5}}
        m = d["mining"]["miner"]
        assert (m["max_len"], m["search"]["pb_c_base"], m["search"]["pb_c_init"],
                m["search"]["dirichlet_alpha"], m["search"]["exploration_fraction"],
                m["search"]["top_k"], m["net"]["momentum"], m["net"]["lr"], m["batch_size"],
                m["replay_games"], m["td_steps"], m["target_update"]) == (
            10, 20000, 1.0, 0.1, 0.25, 5, 0.9, 0.0002, 128, 1000, 3, 50)


def test_pipeline_writes_alphas_log_and_stats(inputs: dict) -> None:
    test_params = yaml.safe_load((CONF / "test" / "parameters" / "alpha2.yml").read_text())
    mining = {**test_params["alpha2"]["mining"], "checkpoint_dir": None}
    catalog = DataCatalog({**{k: MemoryDataset(v) for k, v in inputs.items()},
                           "params:alpha2.mining": MemoryDataset(mining),
                           "params:alpha2.ablations": MemoryDataset(
                               test_params["alpha2"]["ablations"]),
                           "params:min_stocks": MemoryDataset(10),
                           "params:seed": MemoryDataset(0),
                           **{k: MemoryDataset() for k in OUTPUTS}})
    SequentialRunner().run(create_pipeline(), catalog)
    alphas = catalog.load("alpha2.alphas")
    assert alphas["method"] == "alpha2" and alphas["alphas"]
    progs = alphas["meta"]["programs"]
    assert len(progs) == len(alphas["alphas"]) and all(p.startswith("Start;") for p in progs)
    m = alphas["alphas"][0]["metrics"]
    for split in ("train", "valid", "test"):
        assert f"ic_{split}" in m and f"rank_ic_{split}" in m
    assert "max_corr_to_rest" in m
    log = catalog.load("alpha2.mining_log")
    assert isinstance(log, pd.DataFrame) and len(log) == 2
    stats = catalog.load("alpha2.search_stats")
    assert stats["episodes"] == 4 and stats["simulations"] > 0
    assert len(stats["pruned_fraction_by_depth"]) == 5
    assert catalog.load("alpha2.ablations") == {"enabled": False, "rows": [], "summary": []}


def test_enabled_ablations_node_gives_a_row_per_variant(inputs: dict) -> None:
    from alphaminer.pipelines.alpha2_mining.nodes import alpha2_ablations

    test_params = yaml.safe_load((CONF / "test" / "parameters" / "alpha2.yml").read_text())
    mining = {**test_params["alpha2"]["mining"], "checkpoint_dir": None}
    out = alpha2_ablations(inputs["market_panel"], inputs["labels"], inputs["splits"],
                           inputs["planted_alphas"], mining,
                           {"enabled": True, "miner": {"iterations": 1},
                            "variants": {"default": {}, "no_dims": {"dims": False}}}, 10)
    assert out["enabled"] is True
    assert [r["variant"] for r in out["rows"]] == ["default", "no_dims"]
    assert [r["dims"] for r in out["rows"]] == [True, False]
    for r in out["rows"]:
        assert set(r["planted_abs_corr"]) == set(inputs["planted_alphas"]["name"])
        assert 0 <= r["recovered"] <= len(inputs["planted_alphas"])
