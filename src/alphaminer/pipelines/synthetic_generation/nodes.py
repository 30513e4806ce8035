"""Thin adapters: unpack ``params:synthetic`` and call :mod:`alphaminer.synthetic`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from alphaminer.data import Splits
from alphaminer.panel import Panel
from alphaminer.parameters import SyntheticParams
from alphaminer.runtime import resolve_device
from alphaminer.synthetic import (
    MarketConfig,
    RealSequences,
    SyntheticModels,
    assemble_market,
    lazy_markets,
    quality_figure,
    quality_report,
    train_synthetic_models,
)

log = logging.getLogger(__name__)


def _train_panel(panel: Panel, splits: Mapping[str, Any]) -> Panel:
    """The train segment only: generators, evaluator and contexts never see later days."""
    return Splits.coerce(splits, panel.dates, required=("train",)).slice(panel, "train")


def _builder(models: SyntheticModels, panel: Panel, splits: Mapping[str, Any],
             params: SyntheticParams, seed: int, keep_candidates: bool = False
             ) -> tuple[Callable[[int], Any], MarketConfig]:
    device = resolve_device(params.device)
    models.to(device)
    real = RealSequences.from_panel(_train_panel(panel, splits))
    cfg = params.markets.to_config()

    def build(i: int) -> Any:
        m = assemble_market(i, real, models.scaler, models.generators, models.evaluator,
                            models.context, cfg, seed, device=device,
                            keep_candidates=keep_candidates)
        log.info("synthetic market %d: %d stocks x %d days, wins %s", i, m.panel.S,
                 m.panel.T, m.wins)
        return m

    return build, cfg


def train_models(panel: Panel, splits: dict[str, Any], params: SyntheticParams, seed: int
                 ) -> tuple[SyntheticModels, pd.DataFrame]:
    """Fit scaler, generators (the ``generators`` ablation) and evaluator on the train split.
    ``checkpoint_dir`` (resumable state after a kill) is the one place the library writes."""
    p = SyntheticParams.coerce(params)
    return train_synthetic_models(_train_panel(panel, splits), p.to_config(seed=seed),
                                  checkpoint_dir=p.checkpoint_dir)


def build_markets(models: SyntheticModels, panel: Panel, splits: dict[str, Any],
                  params: SyntheticParams, seed: int) -> dict[str, Callable[[], Panel]]:
    """Lazily built markets (one in memory at a time) for the partitioned dataset; each
    market's generator-win counts are in its panel metadata."""
    build, cfg = _builder(models, panel, splits, SyntheticParams.coerce(params), seed)
    return lazy_markets(build, cfg.n_markets)


def market_quality(models: SyntheticModels, markets: dict[str, Callable[[], Panel]],
                   panel: Panel, splits: dict[str, Any], params: SyntheticParams, seed: int
                   ) -> tuple[dict[str, Any], Any]:
    """Stylised facts and discriminator AUC of real vs each generator vs selected.

    The first ``quality.markets`` markets are rebuilt with every generator's candidate kept
    (same seed, so the selected panels equal the stored ones); win counts cover every market.
    """
    params = SyntheticParams.coerce(params)
    qcfg = params.quality.to_config()
    index, wins = [], {}
    for name in sorted(markets):
        m = markets[name]()
        w = m.meta.get("generator_wins", {})
        index.append({"market": name, "stocks": m.S, "days": m.T,
                      "context_end": m.meta.get("context_end"), **w})
        for g, n in w.items():
            wins[g] = wins.get(g, 0) + int(n)
    build, _ = _builder(models, panel, splits, params, seed, keep_candidates=True)
    built = [build(i) for i in range(min(qcfg.markets, len(markets)))]
    if not built:
        raise ValueError("no synthetic markets to assess (markets.n_markets is 0?)")
    sources = {g: [m.candidates[g] for m in built] for g in built[0].generator_names}
    sources["selected"] = [m.panel for m in built]
    real = _train_panel(panel, splits)
    report = quality_report(real, sources, wins, qcfg, seed=seed)
    report["markets"] = index
    t = report["target"]
    if t:
        log.info("synthetic quality: selected AUC %.3f vs best generator %s %.3f -> target %s "
                 "(paired difference %+.4f, s.e. %.4f over %d folds%s)",
                 t["selected_auc"], t["best_generator"], t["best_generator_auc"],
                 "met" if t["met"] else "MISSED", t["difference"], t["difference_se"],
                 t["folds_total"], "" if t["decisive"] else ": not decisive")
    return report, quality_figure(report, real, sources)
