"""Market assembly by evaluator selection (the paper's Algorithm 2), batched across stocks.

For market ``i``: draw ``S ~ U[S_min, S_max]`` and ``T ~ U[T_min, T_max]``; draw one context end
day ``e`` from the real (train-split) data and ``S`` stocks whose last ``c`` days up to ``e``
are all valid (distinct stocks while there are enough; a common day keeps the contexts'
market regime shared, as in a real cross-section); every generator samples one ``T``-day
candidate per stock from that context (one batched call per generator); the LSTM evaluator
scores each candidate by ``Σ_t log P(x_t | x_<t)`` given its context; per stock the candidate
with the highest score is kept. The result is decoded to OHLCV + vwap + amount and returned as
a :class:`~alphaminer.panel.Panel`, so labels, the evaluator and the pool work on it unchanged.

Each market draws from its own RNG streams seeded by ``(seed, i)``, so market ``i`` is the same
whether it is built alone, lazily, or in a loop, and whatever the other markets are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch

from alphaminer.panel import Panel

from .representation import RealSequences, Scaler, decode, panel_from_bars


class Sampler(Protocol):
    def sample(self, context: torch.Tensor, horizon: int,
               generator: torch.Generator | None = None) -> torch.Tensor: ...


class Scorer(Protocol):
    def log_likelihood(self, context: torch.Tensor, candidate: torch.Tensor
                       ) -> torch.Tensor: ...


@dataclass
class MarketConfig:
    """How many markets and their size ranges (inclusive), Table 7 in ``conf/paper``."""

    n_markets: int = 4
    stocks: tuple[int, int] = (50, 100)
    days: tuple[int, int] = (120, 250)

    def __post_init__(self) -> None:
        self.stocks = (int(self.stocks[0]), int(self.stocks[1]))
        self.days = (int(self.days[0]), int(self.days[1]))
        for name, (a, b) in (("stocks", self.stocks), ("days", self.days)):
            if not 1 <= a <= b:
                raise ValueError(f"markets.{name} must be [min, max] with 1 <= min <= max")


@dataclass
class Market:
    """One assembled market and how it was chosen."""

    panel: Panel
    winners: np.ndarray                       # [S] index into generator names
    log_likelihood: np.ndarray                # [G, S]
    generator_names: list[str]
    candidates: dict[str, Panel] = field(default_factory=dict)

    @property
    def wins(self) -> dict[str, int]:
        counts = np.bincount(self.winners, minlength=len(self.generator_names))
        return {n: int(c) for n, c in zip(self.generator_names, counts)}


def select_best(log_likelihood: torch.Tensor) -> torch.Tensor:
    """Per stock, the index of the candidate with the highest log-likelihood (``[G, S] → [S]``;
    ties → the first generator; NaN scores never win)."""
    ll = torch.nan_to_num(log_likelihood.to(torch.float64), nan=-np.inf)
    return torch.argmax(ll, dim=0)


def market_rngs(seed: int, index: int, device: torch.device) -> tuple[np.random.Generator,
                                                                        torch.Generator]:
    """The market's own numpy and torch RNG streams (independent of every other market)."""
    ss = np.random.SeedSequence([int(seed), int(index)])
    rng = np.random.default_rng(ss)
    tseed = int(ss.generate_state(1, dtype=np.uint64)[0] % (2**63 - 1))
    return rng, torch.Generator(device=device).manual_seed(tseed)


def draw_contexts(real: RealSequences, context: int, n_stocks: int, rng: np.random.Generator
                  ) -> tuple[int, np.ndarray]:
    """A common context end day and ``n_stocks`` stock columns valid over its ``context`` days.

    Days where the most stocks are valid are eligible (at least ``min(n_stocks, best)``), so
    markets take distinct stocks whenever the data has enough; otherwise stocks repeat.
    """
    ok = real.window_ends(context).numpy()
    counts = ok.sum(1)
    if counts.max() == 0:
        raise ValueError(f"no stock has {context} consecutive valid days in the train split")
    need = min(n_stocks, int(counts.max()))
    days = np.flatnonzero(counts >= need)
    e = int(rng.choice(days))
    pool = np.flatnonzero(ok[e])
    stocks = rng.choice(pool, size=n_stocks, replace=n_stocks > len(pool))
    return e, np.sort(stocks) if n_stocks <= len(pool) else stocks


def assemble_market(index: int, real: RealSequences, scaler: Scaler,
                    generators: Mapping[str, Sampler], evaluator: Scorer, context: int,
                    config: MarketConfig, seed: int, *, device: str | torch.device = "cpu",
                    keep_candidates: bool = False) -> Market:
    """Build market ``index`` (see the module docstring)."""
    device = torch.device(device)
    names = list(generators)
    if not names:
        raise ValueError("assemble_market needs at least one generator")
    rng, tgen = market_rngs(seed, index, device)
    S = int(rng.integers(config.stocks[0], config.stocks[1] + 1))
    T = int(rng.integers(config.days[0], config.days[1] + 1))
    e, stocks = draw_contexts(real, context, S, rng)
    days = np.arange(e - context + 1, e + 1)
    ctx_rep = real.rep[days][:, stocks].transpose(0, 1)            # [S, c, F]
    ctx = scaler.transform(ctx_rep).to(device)
    cands = torch.stack([generators[n].sample(ctx, T, tgen) for n in names])  # [G, S, T, F]
    ll = torch.stack([evaluator.log_likelihood(ctx, cands[g]) for g in range(len(names))])
    win = select_best(ll)
    chosen = cands[win, torch.arange(S, device=device)]
    anchor_c = real.close[e, stocks]
    anchor_v = real.volume[e, stocks]
    ctx_end = pd.Timestamp(real.dates[e])
    dates = pd.bdate_range(ctx_end + pd.offsets.BDay(1), periods=T)
    inst = [f"SYN{i:04d}" for i in range(S)]
    win_np = win.cpu().numpy()
    wins = np.bincount(win_np, minlength=len(names))
    meta = {"synthetic": True, "market": int(index), "seed": int(seed),
            "generators": names, "generator_wins": {n: int(w) for n, w in zip(names, wins)},
            "winner": [names[i] for i in win_np],
            "context_days": int(context),
            "context_start": str(pd.Timestamp(real.dates[days[0]]).date()),
            "context_end": str(ctx_end.date()),
            "source_instruments": [str(real.instruments[s]) for s in stocks]}

    def to_panel(x: torch.Tensor, extra: dict[str, Any]) -> Panel:
        bars = decode(scaler.inverse(x.cpu()), anchor_c, anchor_v)
        return panel_from_bars(bars, dates, inst, {**meta, **extra})

    panel = to_panel(chosen, {})
    cand_panels = {n: to_panel(cands[g], {"candidate_of": n}) for g, n in enumerate(names)} \
        if keep_candidates else {}
    return Market(panel=panel, winners=win_np, log_likelihood=ll.cpu().numpy(),
                  generator_names=names, candidates=cand_panels)


def lazy_markets(build: Callable[[int], Market], n_markets: int) -> dict[str, Callable[[], Panel]]:
    """``{"market_0000": callable}`` for a lazily saved partitioned dataset: each market is
    built only when written, so memory holds one market at a time whatever ``n_markets``."""
    return {f"market_{i:04d}": (lambda i=i: build(i).panel) for i in range(n_markets)}


__all__ = ["Market", "MarketConfig", "assemble_market", "draw_contexts", "lazy_markets",
           "market_rngs", "select_best"]
