import numpy as np
import pandas as pd
import pytest

from alphaminer.reporting import MethodResults, comparison_table


def test_mean_std_across_seeds_matches_numpy(make_method):
    m = make_method("alpha2", seed=1, n_seeds=5)
    plain = make_method("library", seed=2)
    num = comparison_table([m, plain], numeric=True)
    text = comparison_table([m, plain])
    ic = np.array([s["ic"] for s in m.seed_metrics])
    sharpe = np.array([s["sharpe_standard"] for s in m.seed_metrics])
    # by hand: mean and sample std (ddof = 1)
    ic_mean = ic.sum() / len(ic)
    ic_std = np.sqrt(((ic - ic_mean) ** 2).sum() / (len(ic) - 1))
    assert num.loc["alpha2", "IC"] == pytest.approx(ic_mean, rel=1e-12)
    assert num.loc["alpha2", "IC std"] == pytest.approx(ic_std, rel=1e-12)
    assert num.loc["alpha2", "Sharpe"] == pytest.approx(sharpe.mean(), rel=1e-12)
    assert num.loc["alpha2", "Sharpe std"] == pytest.approx(sharpe.std(ddof=1), rel=1e-12)
    assert text.loc["alpha2", "IC"] == f"{ic_mean:.4f} ± {ic_std:.4f}"
    assert text.loc["alpha2", "Sharpe"] == f"{sharpe.mean():.2f} ± {sharpe.std(ddof=1):.2f}"
    assert num.loc["alpha2", "Seeds"] == 5 and text.loc["alpha2", "Seeds"] == "5"
    # a single run: the plain value, no ±, NaN std
    assert text.loc["library", "IC"] == f"{plain.metrics['ic']:.4f}"
    assert np.isnan(num.loc["library", "IC std"])
    assert list(num.index) == ["alpha2", "library"]


def test_seed_nans_are_skipped_and_missing_metrics_fall_back(make_method):
    m = make_method("gp", seed=3)
    m.seed_metrics = [{"ic": 0.01}, {"ic": float("nan")}, {"ic": 0.03}, {"ic": 0.05}]
    num = comparison_table([m], numeric=True)
    assert num.loc["gp", "IC"] == pytest.approx(0.03)
    assert num.loc["gp", "IC std"] == pytest.approx(np.std([0.01, 0.03, 0.05], ddof=1))
    # no seed reports cagr -> the single-run metrics value
    assert num.loc["gp", "CAGR"] == pytest.approx(m.metrics["cagr_standard"])


def test_columns_aliases_percent_format_and_missing(make_method):
    m = make_method("oracle")
    m.metrics = {"ic": 0.05, "mdd_standard": -0.1234, "information_ratio_qlib": 1.5,
                 "annual_return_qlib": 0.2}
    t = comparison_table([m])
    for col in ["IC", "RankIC", "ICIR", "RankICIR", "Num Factors", "Sharpe", "CAGR", "MDD",
                "AnnRet (qlib)", "IR (qlib)", "MDD (qlib)", "Turnover", "Hit rate"]:
        assert col in t.columns
    assert t.loc["oracle", "MDD"] == "-12.34%"
    assert t.loc["oracle", "IR (qlib)"] == "1.50"
    assert t.loc["oracle", "AnnRet (qlib)"] == "20.00%"
    assert t.loc["oracle", "Sharpe"] == "–"
    assert "Excess IR (qlib)" not in t.columns  # optional, no method has it
    m.metrics["excess_information_ratio_qlib"] = 0.7
    assert comparison_table([m]).loc["oracle", "Excess IR (qlib)"] == "0.70"


def test_bad_inputs(make_method):
    a = make_method("x")
    with pytest.raises(ValueError, match="unique"):
        comparison_table([a, make_method("x", seed=1)])
    with pytest.raises(ValueError, match="at least one"):
        comparison_table([])
    a.metrics = {"ic": "high"}
    with pytest.raises(ValueError, match="'ic'"):
        comparison_table([a])
    with pytest.raises(ValueError, match="daily lacks column"):
        MethodResults(name="y", alphas=None, daily=pd.DataFrame({"date": []}),
                      ic_series=pd.DataFrame({"date": [], "ic": []}),
                      quantiles=pd.DataFrame({"date": []}), metrics={})
    with pytest.raises(TypeError, match="ic_series"):
        MethodResults(name="y", alphas=None, daily=pd.DataFrame({"date": [], "return": []}),
                      ic_series=None, quantiles=pd.DataFrame({"date": []}), metrics={})


def test_num_factors_counts_candidates_not_the_pool() -> None:
    """AlphaFormer's "Num Factors" is the number of candidate formulas generated: a miner's
    ``n_candidates`` from its alpha set's metadata; a fixed set (library, oracle) counts its
    formulas."""
    from alphaminer.evaluation.alphaset import AlphaSet
    from alphaminer.pipelines.reporting.nodes import num_factors

    mined = AlphaSet("gp", ["Abs(close)", "Log(volume)"], meta={"n_candidates": 1600})
    fixed = AlphaSet("library", ["Abs(close)", "Log(volume)", "Mean(close,10d)"])
    assert num_factors(mined.to_dict()) == 1600
    assert num_factors(fixed.to_dict()) == 3
