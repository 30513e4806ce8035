"""Recovery of planted formulas and mutual correlation, against numpy references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alphaminer.evaluation.recovery import mean_mutual_abs_corr, recovery_table


def _np_mean_daily_corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([np.corrcoef(a[t], b[t])[0, 1] for t in range(a.shape[0])]))


def test_recovery_finds_the_matching_alpha_and_thresholds() -> None:
    rng = np.random.default_rng(0)
    T, S = 30, 40
    p0 = rng.normal(size=(T, S))
    p1 = rng.normal(size=(T, S))
    mined = np.stack([rng.normal(size=(T, S)),
                      -p0 + 0.1 * rng.normal(size=(T, S)),   # recovers p0 (negated)
                      p1 + 1.0 * rng.normal(size=(T, S))])   # weakly related to p1
    tab = recovery_table(torch.tensor(mined, dtype=torch.float32), ["a", "b", "c"],
                         torch.tensor(np.stack([p0, p1]), dtype=torch.float32), ["p0", "p1"])
    assert list(tab["best_alpha"]) == ["b", "c"]
    assert tab["best_corr"][0] == pytest.approx(_np_mean_daily_corr(mined[1], p0), abs=1e-5)
    assert tab["best_corr"][0] < 0 and bool(tab["recovered"][0])
    assert tab["abs_corr"][1] == pytest.approx(abs(_np_mean_daily_corr(mined[2], p1)), abs=1e-5)
    assert not bool(tab["recovered"][1])


def test_mean_mutual_abs_corr_matches_pairwise_numpy() -> None:
    rng = np.random.default_rng(1)
    v = rng.normal(size=(4, 20, 30))
    v[1] += 0.5 * v[0]
    want = np.mean([abs(_np_mean_daily_corr(v[i], v[j])) for i in range(4)
                    for j in range(i + 1, 4)])
    got = mean_mutual_abs_corr(torch.tensor(v, dtype=torch.float32))
    assert got == pytest.approx(want, abs=1e-5)
    assert np.isnan(mean_mutual_abs_corr(torch.tensor(v[:1], dtype=torch.float32)))


def _np_mean_ic(x: np.ndarray, y: np.ndarray, min_stocks: int = 10) -> float:
    vals = []
    for t in range(x.shape[0]):
        ok = np.isfinite(x[t]) & np.isfinite(y[t])
        if ok.sum() >= min_stocks and np.std(x[t, ok]) > 0 and np.std(y[t, ok]) > 0:
            vals.append(np.corrcoef(x[t, ok], y[t, ok])[0, 1])
    return float(np.mean(vals))


def test_miner_table_orients_each_alpha_by_its_train_ic() -> None:
    from alphaminer.data import CleanConfig, SourceConfig, clean, load_source
    from alphaminer.data.labels import make_labels
    from alphaminer.evaluation.alphaset import AlphaSet
    from alphaminer.evaluation.recovery import miner_table
    from alphaminer.expr import Evaluator

    raw = load_source(SourceConfig.from_dict(
        {"kind": "simulator", "simulator": {"n_stocks": 30, "n_days": 200, "seed": 2}}))
    panel = clean(raw, CleanConfig()).to_panel()
    y = make_labels(panel, 5, "close")
    formulas = ["TsReturn(close,5d)", "Neg(TsReturn(close,5d))", "Std(close,10d)"]
    aset = AlphaSet("m", formulas)
    train, test = (0, 120), (130, 195)
    plain = miner_table({"m": aset}, panel, y, test).iloc[0]
    oriented = miner_table({"m": aset}, panel, y, test, orient_days=train).iloc[0]
    v = aset.values(panel, Evaluator(panel)).numpy().astype(np.float64)
    yn = y.numpy().astype(np.float64)
    test_ic = [_np_mean_ic(v[k, slice(*test)], yn[slice(*test)]) for k in range(3)]
    sign = [np.sign(_np_mean_ic(v[k, slice(*train)], yn[slice(*train)])) for k in range(3)]
    assert plain["ic_mean"] == pytest.approx(np.mean(test_ic), abs=1e-5)
    assert oriented["ic_mean"] == pytest.approx(np.mean(np.multiply(sign, test_ic)), abs=1e-5)
    assert bool(oriented["oriented"]) and "oriented" not in plain.index
    # a formula and its negation count the same once oriented
    one = miner_table({"a": AlphaSet("a", formulas[:1])}, panel, y, test, orient_days=train)
    neg = miner_table({"b": AlphaSet("b", formulas[1:2])}, panel, y, test, orient_days=train)
    assert one["ic_mean"].item() == pytest.approx(neg["ic_mean"].item(), abs=1e-6)


def _np_abs_mean_corr(a: np.ndarray, b: np.ndarray, min_stocks: int = 10) -> float:
    return abs(_np_mean_ic(a, b, min_stocks))


def test_miner_table_judges_the_formula_and_its_label_horizon_effect() -> None:
    """``planted_sets`` builds the formula and effect sets from a planted table; the miner
    table's ``corr_*`` and ``effect_corr_*`` are each the best |mean daily corr| (numpy) with
    the one or the other, so a mined effect can be recovered while its formula is not."""
    import pandas as pd

    from alphaminer.data import CleanConfig, SourceConfig, clean, load_source
    from alphaminer.evaluation.alphaset import AlphaSet
    from alphaminer.evaluation.recovery import miner_table, planted_sets
    from alphaminer.expr import Evaluator

    raw = load_source(SourceConfig.from_dict(
        {"kind": "simulator", "simulator": {"n_stocks": 30, "n_days": 200, "seed": 3}}))
    panel = clean(raw, CleanConfig()).to_panel()
    from alphaminer.data.labels import make_labels

    y = make_labels(panel, 5, "close")
    f = "Div(Sub(close,open),Sub(high,low))"
    table = pd.DataFrame({"name": ["loc"], "formula": [f],
                          "oracle_formula": [f"WMA(CSZScore({f}),20d)"]})
    planted, effect = planted_sets(table)
    assert planted.formulas == [f] and effect.formulas == [f"WMA(CSZScore({f}),20d)"]
    assert effect.names == ["loc"]
    assert planted_sets(table.drop(columns="oracle_formula"))[1] is None
    assert planted_sets(table.assign(oracle_formula=f))[1] is None  # one-day kernel: the same
    assert planted_sets(table.iloc[:0]) == (None, None)

    mined = AlphaSet("m", [f"Mean({f},10d)", "Std(close,10d)"])
    days = (40, 195)
    row = miner_table({"m": mined}, panel, y, days, planted, planted_effect=effect).iloc[0]
    ev = Evaluator(panel)
    v = mined.values(panel, ev).numpy().astype(np.float64)[:, slice(*days)]
    pf = planted.values(panel, ev).numpy().astype(np.float64)[0, slice(*days)]
    pe = effect.values(panel, ev).numpy().astype(np.float64)[0, slice(*days)]
    assert row["corr_loc"] == pytest.approx(max(_np_abs_mean_corr(x, pf) for x in v), abs=1e-5)
    assert row["effect_corr_loc"] == pytest.approx(max(_np_abs_mean_corr(x, pe) for x in v),
                                                   abs=1e-5)
    # a 10-day mean of a fast signal tracks its 20-day WMA, not the signal itself
    assert row["effect_recovered"] == int(row["effect_corr_loc"] >= 0.9)
    assert row["effect_corr_loc"] > row["corr_loc"]
