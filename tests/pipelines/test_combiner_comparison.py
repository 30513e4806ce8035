"""Combiners side by side: every ``auto`` candidate is backtested exactly as a method's signal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alphaminer.data import CleanConfig, SourceConfig, clean, load_source
from alphaminer.evaluation.alphaset import AlphaSet
from alphaminer.pipelines.backtest.nodes import backtest_signal
from alphaminer.pipelines.combination.nodes import combine_alphas, compare_combiners
from alphaminer.pipelines.ingestion.nodes import build_labels, build_splits

BACKTEST = {"segment": "test", "n_groups": 5, "portfolio": {"topk": 5, "n_drop": 1}}
FORMULAS = ["Neg(TsReturn(close,5d))", "Neg(Corr(close,volume,10d))", "Div(Sub(close,open),high)",
            "Mean(volume,5d)", "Std(close,10d)"]


@pytest.fixture(scope="module")
def market():
    raw = load_source(SourceConfig.from_dict(
        {"kind": "simulator", "simulator": {"n_stocks": 40, "n_days": 320, "seed": 5}}))
    panel = clean(raw, CleanConfig()).to_panel()
    lab = {"horizon": 5, "kind": "close"}
    labels = build_labels(panel, lab)
    splits = build_splits(panel, {"fractions": [0.6, 0.2, 0.2]}, lab)
    return panel, labels, splits


def _alphas() -> dict:
    return AlphaSet(method="library", formulas=FORMULAS).to_dict()


def test_every_candidate_is_backtested_like_the_method_signal(market) -> None:
    panel, labels, splits = market
    params = {"model": "auto",
              "auto": {"candidates": ["lasso_pool", "lasso_pool@rank", "rank_average"]},
              "lasso_pool": {"n_trials": 0, "capacity": 5},
              "rank_average": {"top_k": 2, "n_trials": 0}}
    signal, _, metrics, _, cands = combine_alphas(_alphas(), panel, labels, splits, params, 10)
    assert list(cands.columns) == ["datetime", "instrument", "lasso_pool", "lasso_pool@rank",
                                   "rank_average"]
    table = compare_combiners(cands, metrics, panel, labels, splits, BACKTEST, 10)
    assert list(table["combiner"]) == ["lasso_pool", "lasso_pool@rank", "rank_average"]
    assert table["chosen"].sum() == 1
    chosen = table.loc[table["chosen"], "combiner"].item()
    assert chosen == metrics["combiner"]
    # the chosen row equals the method's own backtest of its signal
    _, own, _, _, _ = backtest_signal(signal, panel, labels, splits, BACKTEST, 10)
    row = table.loc[table["chosen"]].iloc[0]
    for key in ("ic", "rank_ic", "sharpe_standard", "max_drawdown_qlib", "turnover_mean"):
        assert row[key] == pytest.approx(own[key], nan_ok=True), key
    # every row's validation RankIC is the one auto compared
    for _, r in table.iterrows():
        assert r["valid_rank_ic"] == pytest.approx(
            metrics["auto_candidates"][r["combiner"]]["valid_rank_ic"])
    # the candidate columns hold each candidate's signal: the chosen one is the signal itself
    merged = signal.merge(cands, on=["datetime", "instrument"], how="left")
    np.testing.assert_allclose(merged["signal"], merged[chosen], rtol=1e-6)


def test_a_fixed_combiner_is_its_own_single_row(market) -> None:
    panel, labels, splits = market
    params = {"model": "lasso_pool", "lasso_pool": {"n_trials": 0}}
    _, _, metrics, _, cands = combine_alphas(_alphas(), panel, labels, splits, params, 10)
    table = compare_combiners(cands, metrics, panel, labels, splits, BACKTEST, 10)
    assert list(table["combiner"]) == ["lasso_pool"] and bool(table["chosen"].item())
    assert table["valid_rank_ic"].item() == pytest.approx(metrics["valid_rank_ic"])


def test_an_empty_alpha_set_compares_nothing(market) -> None:
    panel, labels, splits = market
    empty = AlphaSet(method="gp", formulas=[]).to_dict()
    *_, metrics, _, cands = combine_alphas(empty, panel, labels, splits, {"model": "auto"}, 10)
    table = compare_combiners(cands, metrics, panel, labels, splits, BACKTEST, 10)
    assert isinstance(table, pd.DataFrame) and table.empty


def test_report_table_has_one_labelled_row_per_combiner(market) -> None:
    from alphaminer.reporting.combiners import combiners_table

    panel, labels, splits = market
    params = {"model": "auto", "auto": {"candidates": ["lasso_pool", "rank_average"]},
              "lasso_pool": {"n_trials": 0}, "rank_average": {"top_k": 2, "n_trials": 0}}
    *_, metrics, _, cands = combine_alphas(_alphas(), panel, labels, splits, params, 10)
    table = compare_combiners(cands, metrics, panel, labels, splits, BACKTEST, 10)
    out = combiners_table({"library": table, "gp": None})
    assert list(out.index) == ["library/lasso_pool", "library/rank_average"]
    assert list(out["chosen"]).count("✓") == 1
    row = out.loc[f"library/{metrics['combiner']}"]
    assert row["chosen"] == "✓"
    assert row["RankIC"] == f"{table.loc[table['chosen'], 'rank_ic'].item():.4f}"
    assert row["Sharpe"] == f"{table.loc[table['chosen'], 'sharpe_standard'].item():.2f}"


def test_section_lists_the_rows_or_says_why_not(market) -> None:
    from alphaminer.reporting.combiners import combiners_section

    sid, title, html = combiners_section({"gp": None})
    assert sid == "combiners" and "No combiner comparison" in html
    panel, labels, splits = market
    params = {"model": "lasso_pool", "lasso_pool": {"n_trials": 0}}
    *_, metrics, _, cands = combine_alphas(_alphas(), panel, labels, splits, params, 10)
    table = compare_combiners(cands, metrics, panel, labels, splits, BACKTEST, 10)
    _, _, html = combiners_section({"library": table}, horizon=5)
    assert "library/lasso_pool" in html and "5-day label" in html
