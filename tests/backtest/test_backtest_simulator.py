"""End to end on the embedded simulator: the planted alphas must make money, their negation
must lose it, and random signals must do neither."""

from __future__ import annotations

import numpy as np
import torch

from alphaminer.backtest import BacktestConfig, run_backtest
from alphaminer.backtest.analysis import quantile_analysis
from alphaminer.data import SourceConfig, clean, load_source
from alphaminer.expr import Evaluator
from alphaminer.expr.kernels import cs_zscore
from alphaminer.panel import Panel


def test_planted_alphas_oracle_random_negated():
    raw = load_source(SourceConfig(kind="simulator", simulator={
        "n_stocks": 150, "n_days": 600, "seed": 1, "progress": False}))
    res = clean(raw)
    panel = Panel.from_long(res.panel_long, meta=res.meta)
    planted = raw.extras["planted_alphas"]
    factors = Evaluator(panel).evaluate_many(list(planted["formula"]))
    w = torch.tensor(planted["strength"].to_numpy(), dtype=torch.float32)
    signal = panel.mask_universe((w[:, None, None] * torch.nan_to_num(cs_zscore(factors))).sum(0))
    cfg = BacktestConfig(topk=30, n_drop=10, deal_price="open", buy_cost=0.0, sell_cost=0.0,
                         progress=False)
    good = run_backtest(signal, panel, cfg).metrics["excess_sharpe_standard"]
    bad = run_backtest(-signal, panel, cfg).metrics["excess_sharpe_standard"]
    rand = [run_backtest(np.random.default_rng(s).normal(size=(panel.T, panel.S)), panel, cfg)
            .metrics["excess_sharpe_standard"] for s in range(3)]
    assert good > 1.5
    assert bad < -1.5
    assert np.mean(np.abs(rand)) < 1.5
    q = quantile_analysis(signal, panel, n_groups=5, horizon=1, deal_price="open")
    assert q.summary.loc["long_short", "ir"] > 1.5
    assert q.monotonicity > 0.5
