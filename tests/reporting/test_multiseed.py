"""The multi-seed tables against hand computations with numpy."""

from __future__ import annotations

import numpy as np
import pytest

from alphaminer.reporting.multiseed import (
    comparison_hash,
    failed_record,
    format_mean_std,
    make_record,
    summarise,
)


def _rec(method, seed, ic, sharpe, mined=None, planted=None, digest="h"):
    return make_record(method, seed, digest,
                       {"ic": ic, "rank_ic": ic / 2, "sharpe_standard": sharpe,
                        "num_factors": 100 + seed, "flag": True, "segment": "test"},
                       mined, planted)


@pytest.fixture()
def records():
    return [
        _rec("oracle", 0, 0.10, 1.0, {"ic_mean": 0.05, "mean_mutual_abs_corr": 0.2,
                                     "n_alphas": 4}, {"p1": 1.0, "p2": 1.0}),
        _rec("oracle", 1, 0.08, 2.0, {"ic_mean": 0.07, "mean_mutual_abs_corr": 0.4,
                                     "n_alphas": 4}, {"p1": 1.0, "p2": 1.0}),
        _rec("gp", 0, 0.05, 0.5, {"ic_mean": 0.01, "mean_mutual_abs_corr": 0.3,
                                 "n_alphas": 10}, {"p1": 0.95, "p2": 0.5}),
        _rec("gp", 1, 0.02, -0.5, {"ic_mean": 0.03, "mean_mutual_abs_corr": 0.1,
                                  "n_alphas": 12}, {"p1": 0.80, "p2": 0.91}),
        failed_record("xgb", 0, "h", "boom"),
        _rec("xgb", 0, 0.5, 9.0, digest="other-comparison"),
    ]


def test_table1_is_mean_and_sample_std_over_seeds(records):
    s = summarise(records, ["oracle", "gp", "xgb"], [0, 1], digest="h")
    num = s["table1_numeric"].set_index("method")
    assert num.loc["gp", "IC mean"] == pytest.approx(np.mean([0.05, 0.02]))
    assert num.loc["gp", "IC std"] == pytest.approx(np.std([0.05, 0.02], ddof=1))
    assert num.loc["oracle", "Sharpe std"] == pytest.approx(np.std([1.0, 2.0], ddof=1))
    assert num.loc["gp", "Num Factors mean"] == pytest.approx(100.5)
    text = s["table1"].set_index("method")
    assert text.loc["gp", "IC"] == f"{0.035:.4f} ({np.std([0.05, 0.02], ddof=1):.4f})"
    assert list(text.columns[:4]) == ["seeds", "IC", "RankIC", "ICIR"]
    assert "xgb" not in text.index  # its only record of this comparison failed


def test_status_names_failed_and_missing_pairs(records):
    st = summarise(records, ["oracle", "gp", "xgb"], [0, 1], digest="h")["status"]
    got = {(r.method, r.seed): (r.status, r.error) for r in st.itertuples()}
    assert got[("xgb", 0)] == ("failed", "boom")
    assert got[("xgb", 1)][0] == "missing"  # the other comparison's record is not used
    assert got[("gp", 1)] == ("ok", "")


def test_table4_oracle_share_and_recovery(records):
    s = summarise(records, ["oracle", "gp"], [0, 1], digest="h")
    t4 = s["table4_numeric"].set_index("method")
    assert t4.loc["gp", "IC mean"] == pytest.approx(0.02)
    assert t4.loc["gp", "Mean mutual |corr| std"] == pytest.approx(np.std([0.3, 0.1], ddof=1))
    share = s["oracle_share"].set_index("method")
    assert share.loc["gp", "share mean"] == pytest.approx(np.mean([0.05 / 0.10, 0.02 / 0.08]))
    rec = s["recovery"].set_index(["method", "planted"])
    assert rec.loc[("gp", "p1"), "recovered"] == "1/2"
    assert rec.loc[("gp", "p1"), "recovered_seeds"] == "0"
    assert rec.loc[("gp", "p2"), "recovered_seeds"] == "1"
    assert rec.loc[("oracle", "p2"), "recovered"] == "2/2"


def test_one_seed_shows_the_mean_alone():
    assert format_mean_std(0.5, float("nan"), ".2f") == "0.50"
    assert format_mean_std(float("nan"), 0.1, ".2f") == "–"
    assert format_mean_std(0.5, 0.25, ".1%") == "50.0% (25.0%)"


def test_hash_ignores_seed_root_and_comparison_block_only():
    base = {"seed": 0, "data_root": "data", "comparison": {"seeds": [0]}, "backtest": {"k": 1}}
    same = {**base, "seed": 3, "data_root": "elsewhere", "comparison": {"seeds": [0, 1, 2]}}
    assert comparison_hash(base) == comparison_hash(same)
    assert comparison_hash(base) != comparison_hash({**base, "backtest": {"k": 2}})


def test_hash_ignores_checkpoint_folders_under_each_pairs_own_root():
    """Checkpoint folders resolve under the pair's data root and do not change results."""
    a = {"seed": 0, "data_root": "data/comparison/x/seed_0",
         "gp": {"mining": {"checkpoint_dir": "data/comparison/x/seed_0/06_models/gp/ck",
                           "pool": {"capacity": 10}}}}
    b = {"seed": 1, "data_root": "data/comparison/x/seed_1",
         "gp": {"mining": {"checkpoint_dir": "data/comparison/x/seed_1/06_models/gp/ck",
                           "pool": {"capacity": 10}}}}
    driver = {"gp": {"mining": {"checkpoint_dir": "data/06_models/gp/ck",
                                "pool": {"capacity": 10}}}}
    assert comparison_hash(a) == comparison_hash(b) == comparison_hash(driver)
    c = {**b, "gp": {"mining": {"checkpoint_dir": "x", "pool": {"capacity": 20}}}}
    assert comparison_hash(a) != comparison_hash(c)


def test_records_drop_non_numbers():
    r = _rec("gp", 0, 0.1, float("nan"))
    assert "flag" not in r["metrics"] and "segment" not in r["metrics"]
    assert r["metrics"]["sharpe_standard"] is None  # NaN → null (JSON-safe)


def test_hash_of_typed_parameters_equals_the_written_mapping():
    """Kedro hands nodes typed models; the driver may hold them too: same hash as the YAML."""
    from alphaminer.parameters import GPMiningParams

    written = {"checkpoint_dir": "data/comparison/x/seed_0/06_models/gp/ck",
               "pool": {"capacity": 10}}
    typed = {"gp": {"mining": GPMiningParams.coerce(written)}}
    raw = {"gp": {"mining": {**written, "checkpoint_dir": "data/06_models/gp/ck"}}}
    assert comparison_hash(typed) == comparison_hash(raw)
