"""Alpha2 (paper §4–5): self-play MCTS over alpha programs, a policy/value net trained on the
search statistics, and a diversity-aware reward.

One iteration plays ``games`` episodes in lockstep (one batched network call and one batched
scorer call per simulation step across the games). An episode writes a program instruction by
instruction from the empty program: at each move ``simulations`` PUCT simulations run from the
current state, the move is drawn from the root's visit counts (sampled for the first
``temperature_moves`` moves, then the most visited, or with ``move_selection: value`` the tried
move with the best backed-up Q) and the subtree is kept. A new leaf is worth the value head's
estimate (``leaf_value: network``, the paper) or 0 (``zero``: the exact value of ending there,
since the returns telescope; the CPU default, where the value head is barely trained). The
reward of a move is dense, ``Perf(ζ_{t+1}) − Perf(ζ_t)``, with

    Perf(ζ) = (1 − MaxCorr(z, G)) · IC(z, μ)       (``diversity: false`` → Perf = IC)

where z is Reg0's alpha, IC its train IC and MaxCorr its largest mean daily |corr| with the
mined set G, both from the kit's :class:`~alphaminer.evaluation.scorer.CandidateScorer` (G is
the scorer's reference set). A program without an alpha, or one the scorer rejects, has Perf 0.
``abs_ic: true`` uses |IC| (an alpha and its negation are the same signal for a combiner; the
paper's signed IC is ``abs_ic: false``). At the end of an iteration each episode's final alpha
joins G when the scorer accepts it, ``|IC| >= min_abs_ic`` and its MaxCorr with G is below
``accept_max_corr``.

Episodes go to a replay buffer of the last ``replay_games`` games; after each iteration the
network takes ``train_steps`` SGD steps on batches of (state, legal mask, visit distribution,
n-step value target with the target network's bootstrap after ``td_steps``). A checkpoint is
written after every iteration (network, optimizer, replay, G, statistics, RNG states) through
:mod:`alphaminer.checkpoint`; a rerun resumes where it stopped and gives the same alphas.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from alphaminer.checkpoint import CheckpointStore, capture_rng, restore_rng
from alphaminer.evaluation.alphaset import AlphaSet, split_summary
from alphaminer.evaluation.metrics import correlation_matrix
from alphaminer.expr import Evaluator
from alphaminer.expr.vocab import Vocabulary
from alphaminer.mining.alpha2.mcts import Node, SearchConfig, run_search
from alphaminer.mining.alpha2.net_config import NetConfig
from alphaminer.mining.alpha2.program import ActionTable, ProgramState
from alphaminer.mining.base import locked_store, scorer_fingerprint
from alphaminer.runtime import config_from

log = logging.getLogger(__name__)

__all__ = ["ALPHA2_VOCABULARY", "Alpha2Config", "Alpha2Miner", "Alpha2Result", "describe_alphas",
           "perf_of"]

#: Alpha2's default vocabulary: price/volume features, unary, binary and time-series operators
#: over weekly to two-monthly windows, two scalars for binary operators.
ALPHA2_VOCABULARY: dict[str, list] = {
    "operators": ["Abs", "Log", "Sign", "Neg", "CSRank", "Add", "Sub", "Mul", "Div", "Greater",
                  "Less", "Ref", "Mean", "Std", "Max", "Min", "Delta", "TsRank", "TsZScore",
                  "TsReturn", "Corr", "Cov"],
    "features": ["open", "high", "low", "close", "volume", "vwap"],
    "constants": [0.5, 2.0],
    "windows": [5, 10, 20, 40],
}


@dataclass(frozen=True)
class Alpha2Config:
    """Alpha2 settings; CPU-sized defaults (``conf/paper`` has the authors' configuration)."""

    iterations: int = 30
    games: int = 8
    max_len: int = 6
    n_registers: int = 2
    dims: bool = True
    diversity: bool = True
    abs_ic: bool = True
    accept_max_corr: float = 0.7
    min_abs_ic: float = 0.005
    temperature_moves: int = 2
    move_selection: str = "visits"
    leaf_value: str = "network"
    search: dict[str, Any] = field(default_factory=dict)
    net: dict[str, Any] = field(default_factory=lambda: {"lr": 0.01})
    batch_size: int = 128
    replay_games: int = 1000
    td_steps: int = 3
    target_update: int = 50
    train_steps: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.iterations, self.games, self.max_len, self.n_registers, self.batch_size,
               self.replay_games, self.td_steps, self.target_update) < 1:
            raise ValueError("iterations, games, max_len, n_registers, batch_size, "
                             "replay_games, td_steps and target_update must be >= 1")
        if self.train_steps < 0 or self.temperature_moves < 0:
            raise ValueError("train_steps and temperature_moves must be >= 0")
        if self.move_selection not in ("visits", "value"):
            raise ValueError("move_selection must be 'visits' or 'value'")
        if self.leaf_value not in ("network", "zero"):
            raise ValueError("leaf_value must be 'network' or 'zero'")
        if not 0 < self.accept_max_corr <= 1:
            raise ValueError("accept_max_corr must be in (0, 1]")
        sc = self.search_config
        if not 0 <= sc.beta <= 1 or not 0 < sc.gamma <= 1 or sc.simulations < 1:
            raise ValueError("search: beta in [0, 1], gamma in (0, 1], simulations >= 1")
        config_from(NetConfig, self.net)

    @property
    def search_config(self) -> SearchConfig:
        return config_from(SearchConfig, self.search)

    @classmethod
    def from_dict(cls, d: Any) -> Alpha2Config:
        return config_from(cls, d)


def perf_of(score: Any, diversity: bool = True, abs_ic: bool = False) -> float:
    """``Perf = (1 − MaxCorr(z, G)) · IC(z)`` of a scorer :class:`Score` (0 when not ok)."""
    if not score.ok or not np.isfinite(score.ic):
        return 0.0
    ic = abs(score.ic) if abs_ic else score.ic
    if not diversity:
        return float(ic)
    mc = score.max_corr if np.isfinite(score.max_corr) else 0.0
    return float((1.0 - mc) * ic)


@dataclass
class Alpha2Result:
    """The mined set G (formulas with their programs), the learning log and search statistics."""

    formulas: list[str]
    programs: list[str]
    history: list[dict[str, float]]
    search_stats: dict[str, Any]
    config: dict[str, Any]

    def alpha_set(self) -> AlphaSet:
        return AlphaSet("alpha2", self.formulas,
                        meta={"programs": self.programs, "config": self.config,
                              "n_candidates": self.search_stats["candidates_scored"],
                              "search_stats": self.search_stats, "history": self.history})


class _Replay:
    """The last ``capacity`` games as arrays; samples positions uniformly."""

    def __init__(self, capacity: int) -> None:
        self.games: deque[dict[str, np.ndarray]] = deque(maxlen=capacity)
        self._flat: dict[str, np.ndarray] | None = None

    def add(self, game: dict[str, np.ndarray]) -> None:
        self.games.append(game)
        self._flat = None

    def __len__(self) -> int:
        return len(self.games)

    def flat(self) -> dict[str, np.ndarray]:
        if self._flat is None:
            g = list(self.games)
            lens = np.array([len(x["reward"]) for x in g], dtype=np.int64)
            self._flat = {k: np.concatenate([x[k] for x in g]) for k in g[0]}
            self._flat["start"] = np.repeat(np.cumsum(lens) - lens, lens)
            self._flat["end"] = np.repeat(np.cumsum(lens), lens)
        return self._flat

    def state(self) -> dict[str, Any]:
        if not self.games:
            return {"lens": np.zeros(0, dtype=np.int64)}
        g = list(self.games)
        return {"lens": np.array([len(x["reward"]) for x in g], dtype=np.int64),
                **{k: np.concatenate([x[k] for x in g]) for k in g[0]}}

    def load(self, st: dict[str, Any]) -> None:
        lens = np.asarray(st["lens"], dtype=np.int64)
        bounds = np.concatenate([[0], np.cumsum(lens)])
        keys = [k for k in st if k != "lens"]
        for i in range(len(lens)):
            self.add({k: np.asarray(st[k])[bounds[i]:bounds[i + 1]] for k in keys})


class Alpha2Miner:
    """Self-play MCTS + policy/value network over alpha programs (module docstring)."""

    def __init__(self, scorer: Any, vocab: Vocabulary | None = None,
                 config: Alpha2Config | dict | None = None) -> None:
        self.scorer = scorer
        self.vocab = vocab or Vocabulary.from_config(ALPHA2_VOCABULARY)
        self.config = config if isinstance(config, Alpha2Config) \
            else Alpha2Config.from_dict(config)
        cfg = self.config
        self.table = ActionTable(self.vocab, cfg.n_registers, cfg.max_len, dims=cfg.dims)
        self.search = replace(cfg.search_config, end_action=self.table.end_id)
        from alphaminer.mining.alpha2.network import Trainer  # JAX: only when a miner runs

        self.net = Trainer(self.table.encoding_size, len(self.table), config_from(
            NetConfig, cfg.net), cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)
        self.replay = _Replay(cfg.replay_games)
        self.G: list[str] = []
        self.programs: dict[str, str] = {}
        self.history: list[dict[str, float]] = []
        self.seen: set[str] = set()
        D = cfg.max_len + 1
        self.counts = {"legal": np.zeros(D), "structural": np.zeros(D), "expansions": np.zeros(D),
                       "simulations": 0, "episodes": 0, "search_seconds": 0.0,
                       "score_seconds": 0.0}

    # ------------------------------------------------------------------ search plumbing
    def _perf(self, states: list[ProgramState]) -> list[float]:
        cfg = self.config
        texts = [None if s.alpha is None else str(s.alpha) for s in states]
        todo = sorted({t for t in texts if t is not None})
        t0 = time.perf_counter()
        scores = dict(zip(todo, self.scorer.score(todo))) if todo else {}
        self.counts["score_seconds"] += time.perf_counter() - t0
        self.seen.update(todo)
        return [0.0 if t is None else perf_of(scores[t], cfg.diversity, cfg.abs_ic)
                for t in texts]

    def _make_child(self, node: Node, slot: int, a: int) -> Node:
        return Node(self.table.step(node.state, a), k=self.search.top_k, parent=node, slot=slot)

    def _expand(self, leaves: list[Node]) -> None:
        perfs = self._perf([n.state for n in leaves])
        obs, legal = [], []
        for n, p in zip(leaves, perfs):
            n.perf = p
            n.reward = p - (n.parent.perf if n.parent is not None else 0.0)
            ok, structural = self.table.masks(n.state)
            d = n.state.length
            self.counts["legal"][d] += ok.sum()
            self.counts["structural"][d] += structural.sum()
            self.counts["expansions"][d] += 1
            obs.append(self.table.encode(n.state))
            legal.append(ok)
        logits, values = self.net.predict(np.stack(obs))
        for i, n in enumerate(leaves):
            acts = np.flatnonzero(legal[i])
            if n.state.done or len(acts) == 0:
                n.expand(np.zeros(0, dtype=np.int64), np.zeros(0), 0.0)
                continue
            lg = logits[i, acts]
            p = np.exp(lg - lg.max())
            # "zero": the value of stopping here (returns telescope to the final Perf)
            v = float(values[i]) if self.config.leaf_value == "network" else 0.0
            n.expand(acts, p, v)

    # ------------------------------------------------------------------ self-play
    def _play(self) -> list[dict[str, Any]]:
        cfg, A = self.config, len(self.table)
        roots = [Node(self.table.initial(), k=self.search.top_k) for _ in range(cfg.games)]
        games: list[dict[str, list]] = [{"obs": [], "mask": [], "pi": [], "reward": [],
                                         "value": []} for _ in roots]
        t0 = time.perf_counter()
        move = 0
        while True:
            active = [i for i, r in enumerate(roots) if not r.terminal]
            if not active:
                break
            run_search([roots[i] for i in active], self.search, self._expand, self._make_child,
                       self.rng, noise=True)
            self.counts["simulations"] += self.search.simulations * len(active)
            for i in active:
                r = roots[i]
                visits = r.N.astype(np.float64)
                if move < cfg.temperature_moves:
                    slot = int(self.rng.choice(len(visits), p=visits / visits.sum()))
                elif cfg.move_selection == "value":
                    # the best backed-up Q among tried moves; on a tie End (the shorter
                    # program), then the more visited
                    q = np.where(visits > 0, r.Q, -np.inf)
                    is_end = r.actions == self.table.end_id
                    slot = int(np.lexsort((-visits, ~is_end, -q))[0])
                else:
                    slot = int(np.argmax(visits))
                pi = np.zeros(A, dtype=np.float32)
                pi[r.actions] = visits / visits.sum()
                mask = np.zeros(A, dtype=bool)
                mask[r.actions] = True
                a = int(r.actions[slot])
                child = r.children.get(a) or self._make_child(r, slot, a)
                if not child.expanded:
                    self._expand([child])
                g = games[i]
                g["obs"].append(self.table.encode(r.state))
                g["mask"].append(mask)
                g["pi"].append(pi)
                g["reward"].append(child.reward)
                g["value"].append(r.heap.backed(self.search.beta))
                child.parent, child.slot = None, -1
                roots[i] = child
            move += 1
        self.counts["search_seconds"] += time.perf_counter() - t0
        self.counts["episodes"] += len(roots)
        out = []
        for r, g in zip(roots, games):
            arrays = {"obs": np.stack(g["obs"]).astype(np.float32),
                      "mask": np.stack(g["mask"]), "pi": np.stack(g["pi"]),
                      "reward": np.asarray(g["reward"], dtype=np.float32),
                      "value": np.asarray(g["value"], dtype=np.float32)}
            out.append({"arrays": arrays, "state": r.state, "return": float(sum(g["reward"]))})
        return out

    def _accept(self, games: list[dict[str, Any]]) -> int:
        cfg, added = self.config, 0
        for g in games:
            alpha = g["state"].alpha
            if alpha is None:
                continue
            f = str(alpha)
            if f in self.programs:
                continue
            s = self.scorer.score_one(f)
            if not s.ok or abs(s.ic) < cfg.min_abs_ic:
                continue
            if self.G and not s.max_corr < cfg.accept_max_corr:
                continue
            self.scorer.add_reference(f)
            self.G.append(f)
            self.programs[f] = self.table.program_text(g["state"])
            added += 1
        return added

    # ------------------------------------------------------------------ learning
    def _train(self) -> dict[str, float]:
        cfg = self.config
        if not len(self.replay) or cfg.train_steps == 0:
            return {}
        fl = self.replay.flat()
        n = len(fl["reward"])
        gamma = self.search.gamma
        acc: dict[str, float] = {}
        for _ in range(cfg.train_steps):
            idx = self.rng.integers(0, n, size=min(cfg.batch_size, n))
            z = np.zeros(len(idx), dtype=np.float32)
            end = fl["end"][idx]
            for i in range(cfg.td_steps):
                j = idx + i
                z += np.where(j < end, (gamma ** i) * fl["reward"][np.minimum(j, n - 1)], 0.0)
            jb = idx + cfg.td_steps
            boot = jb < end
            if boot.any():
                _, v = self.net.predict(fl["obs"][jb[boot]], target=True)
                z[boot] += (gamma ** cfg.td_steps) * v
            st = self.net.train_step(fl["obs"][idx], fl["mask"][idx], fl["pi"][idx], z)
            for k, v in st.items():
                acc[k] = acc.get(k, 0.0) + v / cfg.train_steps
            if self.net.steps % cfg.target_update == 0:
                self.net.update_target()
        return acc

    # ------------------------------------------------------------------ the run
    def run(self, checkpoint_dir: str | Path | None = None, progress: bool = True
            ) -> Alpha2Result:
        cfg = self.config
        with locked_store(checkpoint_dir, self._run_key()) as store:
            it0 = self._resume(store)
            its = range(it0, cfg.iterations)
            if progress:
                from alphaminer.progress import progress as progress_bar

                its = progress_bar(its, desc="alpha2 iterations", initial=it0, total=cfg.iterations)
            for it in its:
                games = self._play()
                for g in games:
                    self.replay.add(g["arrays"])
                added = self._accept(games)
                losses = self._train()
                row = {"iteration": it, "episodes": self.counts["episodes"],
                       "mean_return": float(np.mean([g["return"] for g in games])),
                       "max_return": float(np.max([g["return"] for g in games])),
                       "accepted": added, "n_alphas": len(self.G),
                       "candidates": len(self.seen), **losses}
                self.history.append(row)
                log.info("alpha2 iteration %d: mean return %.4f, %d alphas (+%d)", it,
                         row["mean_return"], len(self.G), added)
                if store is not None:
                    store.save(self._snapshot(it + 1), step=it + 1)
        return Alpha2Result(list(self.G), [self.programs[f] for f in self.G], list(self.history),
                            self.search_stats(), asdict(cfg))

    def search_stats(self) -> dict[str, Any]:
        """Episodes, simulations (and per second of search), candidates scored, and per depth
        the mean legal actions and the fraction of structurally legal actions that the
        dimension rules pruned."""
        c = self.counts
        exp = np.maximum(c["expansions"], 1)
        struct = c["structural"]
        pruned = np.where(struct > 0, 1.0 - c["legal"] / np.maximum(struct, 1), np.nan)
        secs = c["search_seconds"]
        return {"episodes": int(c["episodes"]), "simulations": int(c["simulations"]),
                "search_seconds": float(secs),
                "simulations_per_second": c["simulations"] / secs if secs > 0 else None,
                "candidates_scored": len(self.seen),
                "candidates_per_second": len(self.seen) / secs if secs > 0 else None,
                "score_seconds": float(c["score_seconds"]),
                "table_size": len(self.table), "dimension_pruning": self.config.dims,
                "pruned_fraction_by_depth": [None if not np.isfinite(x) else float(x)
                                             for x in pruned],
                "legal_actions_by_depth": [float(x) for x in c["legal"] / exp],
                "expansions_by_depth": [int(x) for x in c["expansions"]]}

    def _run_key(self) -> dict[str, Any]:
        return {"miner": "alpha2", "config": asdict(self.config),
                "vocab": self.vocab.to_dict(), "data": scorer_fingerprint(self.scorer)}

    def _snapshot(self, iteration: int) -> dict[str, Any]:
        c = self.counts
        return {"iteration": iteration, "net": self.net.state_dict(),
                "replay": self.replay.state(), "G": list(self.G),
                "programs": [self.programs[f] for f in self.G], "history": list(self.history),
                "seen": sorted(self.seen),
                "counts": {k: (np.asarray(v) if isinstance(v, np.ndarray) else v)
                           for k, v in c.items()},
                "rng": capture_rng(), "generator": self.rng.bit_generator.state}

    def _resume(self, store: CheckpointStore | None) -> int:
        ck = store.load_latest() if store is not None else None
        if ck is None:
            return 0
        st = ck.state
        self.net.load_state_dict(st["net"])
        self.replay.load(st["replay"])
        self.G = list(st["G"])
        self.programs = dict(zip(self.G, st["programs"]))
        if self.G:
            self.scorer.add_reference(self.G)
        self.history = [dict(r) for r in st["history"]]
        self.seen = set(st["seen"])
        self.counts = {k: (np.asarray(v, dtype=np.float64) if k in ("legal", "structural",
                                                                     "expansions") else v)
                       for k, v in st["counts"].items()}
        restore_rng(st["rng"])
        self.rng.bit_generator.state = st["generator"]
        log.info("alpha2: resumed at iteration %d from %s", st["iteration"], store.folder)
        return int(st["iteration"])


def describe_alphas(formulas: list[str], panel: Any, target: torch.Tensor,
                    ranges: dict[str, tuple[int, int]], programs: list[str] | None = None,
                    min_stocks: int = 10, corr_split: str = "train") -> AlphaSet:
    """The output alpha set: per alpha its program, IC / RankIC (and IRs) on every split and
    its max |mean daily corr| with the rest of the set on ``corr_split``."""
    aset = AlphaSet("alpha2", formulas)
    if not formulas:
        return aset
    vals = aset.values(panel, Evaluator(panel))
    tab = split_summary(vals, target, ranges, aset.names, min_stocks)
    t0, t1 = ranges[corr_split]
    cm = correlation_matrix(vals[:, t0:t1], min_stocks).abs().numpy()
    np.fill_diagonal(cm, np.nan)
    tab["max_corr_to_rest"] = np.nanmax(cm, axis=1) if len(formulas) > 1 else np.nan
    out = aset.with_metrics(tab)
    out.meta = {"programs": list(programs or [])}
    return out
