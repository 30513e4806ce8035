"""Strongly typed genetic programming on DEAP (the seeds' GP baseline, gplearn-style breeding).

- Individuals are ``deap.gp.PrimitiveTree``\\ s over :func:`build_primitive_set` (generated from
  the operator table and the vocabulary); the initial population is ramped half-and-half from
  the kit's typed tree generator (:class:`alphaminer.expr.trees.TreeGenerator`).
- Fitness is the train IC (or |IC|) from the kit's :class:`CandidateScorer` (one evaluation per
  distinct formula: the scorer caches results and failures); a formula that fails scores
  :data:`FAILED_FITNESS`. With ``max_samples < 1`` each generation's fitness is the mean daily IC
  over a random share of the train days (gplearn's ``max_samples``).
- Breeding as gplearn: each child comes from a tournament winner by exactly one of subtree
  crossover (DEAP ``cxOnePoint``), subtree mutation (DEAP ``mutUniform`` with a tree from the
  kit's generator), hoist mutation (a random series subtree becomes the tree; DEAP has none),
  point mutation (every node replaced with probability ``p_point_replace`` by one of the same
  signature), or reproduction; children deeper than ``max_depth`` are replaced by their parent.
- A diverse hall of fame (best formulas whose mutual |corr| stays below ``hof_max_corr``) is
  offered to the pool every ``pool_every`` generations and at the end; the pool (capacity M, L1)
  is the miner's alpha set.
- Checkpoints (the kit's format) after every generation: population, hall of fame, the formulas
  offered to the pool in order (the pool is rebuilt by replaying them: bit-identical), RNG states.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from deap import gp

from alphaminer.checkpoint import CheckpointStore, capture_rng, restore_rng
from alphaminer.evaluation.metrics import daily_ic, ic_stats, max_correlation
from alphaminer.expr.ast import depth
from alphaminer.expr.trees import TreeGenerator
from alphaminer.expr.vocab import Vocabulary
from alphaminer.mining.base import (
    MiningResult,
    locked_store,
    offer_to_pool,
    pool_ic,
    scorer_fingerprint,
)
from alphaminer.mining.gp.primitives import PrimitiveSet, Series, build_primitive_set, from_node
from alphaminer.mining.gp.primitives import to_node as _to_node
from alphaminer.runtime import config_from

log = logging.getLogger(__name__)

#: fitness of a formula the scorer could not score (below any IC)
FAILED_FITNESS = -2.0


@dataclass(frozen=True)
class GPConfig:
    """GP hyper-parameters; defaults are CPU-sized, ``conf/paper`` has the seeds' values
    (population 1000, 40 generations, init depth (2, 6), tournament 600, p_crossover 0.3,
    p_subtree_mutation 0.1, p_hoist_mutation 0.01, p_point_mutation 0.1, p_point_replace 0.6,
    max_samples 0.9)."""

    population: int = 200
    generations: int = 8
    init_depth: tuple[int, int] = (2, 4)
    max_depth: int = 6
    tournament_size: int = 20
    p_crossover: float = 0.3
    p_subtree_mutation: float = 0.1
    p_hoist_mutation: float = 0.01
    p_point_mutation: float = 0.1
    p_point_replace: float = 0.6
    max_samples: float = 1.0
    fitness: str = "ic"
    hall_of_fame: int = 20
    hof_max_corr: float = 0.7
    pool_every: int = 2
    dims: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "init_depth", tuple(int(x) for x in self.init_depth))
        if self.population < 2 or self.generations < 1:
            raise ValueError("population must be >= 2 and generations >= 1")
        lo, hi = self.init_depth
        if not 1 <= lo <= hi <= self.max_depth:
            raise ValueError(f"need 1 <= init_depth[0] <= init_depth[1] <= max_depth, got "
                             f"{self.init_depth}, max_depth={self.max_depth}")
        if not 1 <= self.tournament_size <= self.population:
            raise ValueError(f"tournament_size must be in [1, population], got "
                             f"{self.tournament_size}")
        ps = (self.p_crossover, self.p_subtree_mutation, self.p_hoist_mutation,
              self.p_point_mutation)
        if min(ps) < 0 or sum(ps) > 1:
            raise ValueError(f"operator probabilities must be >= 0 and sum to <= 1, got {ps}")
        if not 0 <= self.p_point_replace <= 1 or not 0 < self.max_samples <= 1:
            raise ValueError("p_point_replace must be in [0, 1] and max_samples in (0, 1]")
        if self.fitness not in ("ic", "abs_ic"):
            raise ValueError(f"fitness must be 'ic' or 'abs_ic', got {self.fitness!r}")
        if self.hall_of_fame < 1 or not 0 < self.hof_max_corr <= 1 or self.pool_every < 1:
            raise ValueError("hall_of_fame >= 1, hof_max_corr in (0, 1], pool_every >= 1")

    @classmethod
    def from_dict(cls, d: Any) -> GPConfig:
        return config_from(cls, d)


@dataclass
class _State:
    generation: int = 0
    population: list[str] = field(default_factory=list)
    hof: list[str] = field(default_factory=list)
    offered: list[str] = field(default_factory=list)
    history: list[dict[str, float]] = field(default_factory=list)
    n_candidates: int = 0


class GPMiner:
    """Typed GP over a vocabulary, scored by a :class:`CandidateScorer` (see module docstring)."""

    def __init__(self, scorer: Any, vocab: Vocabulary | None = None,
                 config: GPConfig | dict | None = None) -> None:
        self.scorer = scorer
        self.vocab = vocab or Vocabulary.default()
        self.config = config if isinstance(config, GPConfig) else GPConfig.from_dict(config)
        self.ps: PrimitiveSet = build_primitive_set(self.vocab)
        self.trees = TreeGenerator(self.vocab, dims=self.config.dims or None,
                                   max_depth=self.config.max_depth)
        self.py_rng = random.Random(self.config.seed)
        self.np_rng = np.random.default_rng(self.config.seed)

    # ------------------------------------------------------------------ conversions
    def to_node(self, ind: gp.PrimitiveTree) -> Any:
        return _to_node(ind, self.ps)

    def _text(self, ind: gp.PrimitiveTree) -> str:
        return str(self.to_node(ind))

    def _ind(self, text: str) -> gp.PrimitiveTree:
        from alphaminer.expr.parser import parse

        return from_node(parse(text), self.ps)

    # ------------------------------------------------------------------ variation
    def _subtree_expr(self, pset: gp.PrimitiveSetTyped, type_: type) -> list:
        if type_ is Series:
            d = int(self.np_rng.integers(1, max(2, self.config.init_depth[1])))
            return list(from_node(self.trees.grow(self.np_rng, d), self.ps))
        return [self.py_rng.choice(pset.terminals[type_])]

    def _hoist(self, ind: gp.PrimitiveTree) -> gp.PrimitiveTree:
        idx = [i for i, node in enumerate(ind) if node.ret is Series and i > 0]
        if not idx:
            return ind
        i = self.py_rng.choice(idx)
        return gp.PrimitiveTree(ind[ind.searchSubtree(i)])

    def _point(self, ind: gp.PrimitiveTree) -> gp.PrimitiveTree:
        out = gp.PrimitiveTree(list(ind))
        pset = self.ps.pset
        for i, node in enumerate(out):
            if self.py_rng.random() >= self.config.p_point_replace:
                continue
            if isinstance(node, gp.Primitive):
                alts = [p for p in pset.primitives[node.ret] if p.args == node.args]
            else:
                alts = pset.terminals[node.ret]
            out[i] = self.py_rng.choice(alts)
        return out

    def _valid(self, ind: gp.PrimitiveTree) -> bool:
        try:
            node = self.to_node(ind)
        except Exception:  # noqa: BLE001 - a broken child is simply not kept
            return False
        return depth(node) <= self.config.max_depth

    def _child(self, pop: list[gp.PrimitiveTree], fit: np.ndarray) -> gp.PrimitiveTree:
        cfg = self.config
        parent = self._tournament(pop, fit)
        r = self.py_rng.random()
        child = gp.PrimitiveTree(list(parent))
        if r < cfg.p_crossover:
            donor = gp.PrimitiveTree(list(self._tournament(pop, fit)))
            child, _ = self._deap(gp.cxOnePoint, child, donor)
        elif r < cfg.p_crossover + cfg.p_subtree_mutation:
            (child,) = self._deap(gp.mutUniform, child, self._subtree_expr, self.ps.pset)
        elif r < cfg.p_crossover + cfg.p_subtree_mutation + cfg.p_hoist_mutation:
            child = self._hoist(child)
        elif r < (cfg.p_crossover + cfg.p_subtree_mutation + cfg.p_hoist_mutation
                  + cfg.p_point_mutation):
            child = self._point(child)
        return child if self._valid(child) else gp.PrimitiveTree(list(parent))

    def _deap(self, fn: Any, *args: Any) -> Any:
        """Run a DEAP operator on this miner's RNG: DEAP draws from the global ``random``
        module, whose state other code (and a resumed run's restored state) would change."""
        outer = random.getstate()
        random.setstate(self.py_rng.getstate())
        try:
            return fn(*args)
        finally:
            self.py_rng.setstate(random.getstate())
            random.setstate(outer)

    def _tournament(self, pop: list[gp.PrimitiveTree], fit: np.ndarray) -> gp.PrimitiveTree:
        idx = self.py_rng.sample(range(len(pop)), self.config.tournament_size)
        best = max(idx, key=lambda i: (fit[i], -i))
        return pop[best]

    # ------------------------------------------------------------------ fitness
    def _fitness(self, texts: list[str]) -> tuple[np.ndarray, list[Any]]:
        scores = self.scorer.score(texts)
        if self.config.max_samples < 1.0:
            # gplearn's max_samples: this generation's fitness is the mean daily IC over a
            # random share of the train days (the kit's daily_ic on the scorer's values)
            n = self.scorer.T
            k = max(1, int(round(self.config.max_samples * n)))
            days = torch.from_numpy(np.sort(self.np_rng.choice(n, size=k, replace=False)))
            ic = np.array([self._subset_ic(s.formula, days) if s.ok else np.nan
                           for s in scores])
        else:
            ic = np.array([s.ic if s.ok else np.nan for s in scores])
        if self.config.fitness == "abs_ic":
            ic = np.abs(ic)
        return np.where(np.isfinite(ic), ic, FAILED_FITNESS), scores

    def _subset_ic(self, formula: str, days: torch.Tensor) -> float:
        v = self.scorer.values(formula)[days]
        return float(ic_stats(daily_ic(v, self.scorer.target[days], self.scorer.min_stocks))[0])

    def _update_hof(self, state: _State, texts: list[str], fit: np.ndarray) -> None:
        cfg = self.config
        cands = dict.fromkeys([*state.hof, *(texts[i] for i in np.argsort(-fit, kind="stable")
                                             if fit[i] > FAILED_FITNESS)])
        fitness = dict(zip(texts, fit.tolist()))
        for h in state.hof:
            fitness.setdefault(h, float(self._fitness([h])[0][0]))
        ranked = sorted(cands, key=lambda t: -fitness[t])
        kept: list[str] = []
        kept_values: list[torch.Tensor] = []
        for t in ranked:
            if len(kept) == cfg.hall_of_fame:
                break
            v = self.scorer.values(t)
            if kept_values and max_correlation(v, torch.stack(kept_values)) >= cfg.hof_max_corr:
                continue
            kept.append(t)
            kept_values.append(v)
        state.hof = kept

    # ------------------------------------------------------------------ run
    def run(self, checkpoint_dir: str | Path | None = None, progress: bool = True
            ) -> MiningResult:
        """Evolve for ``generations`` (resuming from ``checkpoint_dir`` when it has a state)."""
        cfg = self.config
        with locked_store(checkpoint_dir, self._run_key()) as store:
            state = self._resume(store)
            pop = [self._ind(t) for t in state.population]
            t_start = time.perf_counter()
            gens = range(state.generation, cfg.generations)
            if progress:
                from alphaminer.progress import progress as progress_bar

                gens = progress_bar(gens, desc="gp generations", initial=state.generation,
                                   total=cfg.generations)
            for g in gens:
                texts = [self._text(ind) for ind in pop]
                fit, scores = self._fitness(texts)
                state.n_candidates += len(texts)
                self._update_hof(state, texts, fit)
                if (g + 1) % cfg.pool_every == 0 or g + 1 == cfg.generations:
                    state.offered.extend(offer_to_pool(self.scorer, state.hof))
                ok = fit > FAILED_FITNESS
                state.history.append({
                    "generation": g, "best_fitness": float(fit.max()),
                    "mean_fitness": float(fit[ok].mean()) if ok.any() else float("nan"),
                    "valid_share": float(ok.mean()), "unique": len(set(texts)),
                    "pool_ic": pool_ic(self.scorer), "pool_size": len(self.scorer.pool),
                })
                log.info("gp generation %d: best %.4f, pool IC %.4f (%d members)", g,
                         fit.max(), state.history[-1]["pool_ic"], len(self.scorer.pool))
                if g + 1 < cfg.generations:
                    pop = [self._child(pop, fit) for _ in range(cfg.population)]
                state.generation = g + 1
                state.population = [self._text(ind) for ind in pop]
                if store is not None:
                    store.save(self._snapshot(state), step=state.generation)
            elapsed = time.perf_counter() - t_start
        return MiningResult.from_scorer(
            "gp", self.scorer, n_candidates=state.n_candidates, history=state.history,
            meta={"config": asdict(cfg), "hall_of_fame": state.hof,
                  "generations_per_minute": (len(state.history) / elapsed * 60)
                  if elapsed > 0 else float("nan")})

    def _run_key(self) -> dict[str, Any]:
        return {"miner": "gp", "config": asdict(self.config), "vocab": self.vocab.to_dict(),
                "data": scorer_fingerprint(self.scorer)}

    def _snapshot(self, state: _State) -> dict[str, Any]:
        return {"state": asdict(state),
                "rng": capture_rng({"gp": self.np_rng}),
                "py_rng": list(_py_state(self.py_rng))}

    def _resume(self, store: CheckpointStore | None) -> _State:
        ck = store.load_latest() if store is not None else None
        if ck is None:
            init = self.trees.ramped_half_and_half(self.np_rng, self.config.population,
                                                   *self.config.init_depth)
            return _State(population=[str(t) for t in init])
        st = ck.state
        state = _State(**{k: v for k, v in st["state"].items()})
        restore_rng(st["rng"], {"gp": self.np_rng})
        _set_py_state(self.py_rng, st["py_rng"])
        offer_to_pool(self.scorer, state.offered)
        log.info("gp: resumed at generation %d from %s", state.generation, store.folder)
        return state


def _py_state(r: random.Random) -> tuple:
    version, internal, gauss = r.getstate()
    return (version, list(internal), gauss)


def _set_py_state(r: random.Random, st: Any) -> None:
    version, internal, gauss = st
    r.setstate((int(version), tuple(int(x) for x in internal), gauss))
