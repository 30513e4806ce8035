"""PUCT search over alpha programs with Alpha2's top-k value backup (paper §4.3.1).

A node is a program state. Its children's statistics live in arrays over the node's legal
actions (priors, visit counts, Q), so selection is one vectorised PUCT step per level:

    score(a) = Q̂(s, a) + P(s, a) · √N(s) / (1 + N(s, a)) · c(s)
    c(s) = log((N(s) + c_base + 1) / c_base) + c_init

with Q̂ the Q values min–max normalised over the tree. An unvisited action scores Q̂ = 0
(``fpu: zero``, AlphaZero's convention) or, with ``fpu: parent`` (first-play urgency, as in
Leela/KataGo), the parent's own backed-up value normalised the same way minus
``fpu_reduction``: with hundreds of legal actions and near-uniform priors the exploration term is
tiny, so under ``zero`` one child with a positive Q takes every later simulation and the search
never looks at its siblings; under ``parent`` a visited child that is worse than its parent's
value loses the next simulation to an untried sibling. The
backup keeps, per node, the k largest returns that passed through it (a min-heap ``V_s``) and
sets

    Q(s, a) = r(s, a) + γ · (β · mean(V_s') + (1 − β) · max(V_s'))      (s' the child)

so β = 1 is the usual mean backup and β = 0 the optimistic max backup: a good alpha is found once
and then kept, rather than averaged away by its many poor siblings (the paper's argument).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from alphaminer.mining.alpha2.program import ProgramState

__all__ = ["MinMaxStats", "Node", "SearchConfig", "TopK", "run_search"]


class TopK:
    """The ``k`` largest values pushed so far, in a min-heap (``heap[0]`` is the smallest kept)."""

    __slots__ = ("heap", "k")

    def __init__(self, k: int) -> None:
        if k < 1:
            raise ValueError("k must be >= 1")
        self.k = int(k)
        self.heap: list[float] = []

    def push(self, v: float) -> None:
        if len(self.heap) < self.k:
            heapq.heappush(self.heap, float(v))
        elif v > self.heap[0]:
            heapq.heapreplace(self.heap, float(v))

    def __len__(self) -> int:
        return len(self.heap)

    def mean(self) -> float:
        return sum(self.heap) / len(self.heap)

    def max(self) -> float:
        return max(self.heap)

    def backed(self, beta: float) -> float:
        """``β · mean + (1 − β) · max`` of the kept values (0 when nothing was backed up)."""
        if not self.heap:
            return 0.0
        return beta * self.mean() + (1.0 - beta) * self.max()


class MinMaxStats:
    """Running bounds of the tree's Q values for normalisation to [0, 1]."""

    __slots__ = ("hi", "lo")

    def __init__(self) -> None:
        self.lo, self.hi = math.inf, -math.inf

    def update(self, v: float) -> None:
        self.lo, self.hi = min(self.lo, v), max(self.hi, v)

    def normalize(self, q: np.ndarray) -> np.ndarray:
        if self.hi > self.lo:
            return (q - self.lo) / (self.hi - self.lo)
        return np.zeros_like(q)


class Node:
    """A search node: its state, the reward of the move into it and its children's arrays."""

    __slots__ = ("N", "Q", "actions", "children", "heap", "parent", "perf", "priors", "reward",
                 "slot", "state", "value", "visits")

    def __init__(self, state: ProgramState, reward: float = 0.0, perf: float = 0.0,
                 k: int = 5, parent: Node | None = None, slot: int = -1) -> None:
        self.state = state
        self.reward = float(reward)
        self.perf = float(perf)
        self.parent = parent
        self.slot = slot  # index of this node in the parent's action arrays
        self.heap = TopK(k)
        self.visits = 0
        self.value = 0.0
        self.actions: np.ndarray | None = None  # legal action ids (None: not expanded)
        self.priors = np.zeros(0)
        self.N = np.zeros(0, dtype=np.int64)
        self.Q = np.zeros(0)
        self.children: dict[int, Node] = {}

    @property
    def expanded(self) -> bool:
        return self.actions is not None

    @property
    def terminal(self) -> bool:
        return self.state.done or (self.actions is not None and len(self.actions) == 0)

    def expand(self, actions: np.ndarray, priors: np.ndarray, value: float) -> None:
        self.actions = np.asarray(actions, dtype=np.int64)
        p = np.asarray(priors, dtype=np.float64)
        s = p.sum()
        self.priors = p / s if s > 0 else np.full(len(p), 1.0 / max(len(p), 1))
        self.N = np.zeros(len(self.actions), dtype=np.int64)
        self.Q = np.zeros(len(self.actions))
        self.value = float(value)

    def q_value(self, beta: float, gamma: float) -> float:
        """``Q(parent, a) = r + γ · (β · mean(V_s) + (1 − β) · max(V_s))`` for this node."""
        return self.reward + gamma * self.heap.backed(beta)


@dataclass(frozen=True)
class SearchConfig:
    """PUCT constants (paper: c_base 20000, c_init 1.0), backup (β, k, γ), root noise, and
    the CPU-size exploration switches: ``fpu`` / ``fpu_reduction`` (value of an untried move)
    and ``end_first`` (try ``end_action``, set by the miner to the table's End id, first)."""

    simulations: int = 32
    pb_c_base: float = 20000.0
    pb_c_init: float = 1.0
    beta: float = 0.5
    top_k: int = 5
    gamma: float = 1.0
    dirichlet_alpha: float = 0.1
    exploration_fraction: float = 0.25
    fpu: str = "zero"
    fpu_reduction: float = 0.0
    end_first: bool = False
    end_action: int = -1

    def __post_init__(self) -> None:
        if self.fpu not in ("zero", "parent"):
            raise ValueError(f"fpu must be 'zero' or 'parent', got {self.fpu!r}")


def add_root_noise(node: Node, cfg: SearchConfig, rng: np.random.Generator) -> None:
    """Mix Dirichlet(α) noise into the root priors (fraction ``exploration_fraction``)."""
    if not node.expanded or len(node.actions) == 0 or cfg.exploration_fraction <= 0:
        return
    noise = rng.dirichlet([cfg.dirichlet_alpha] * len(node.actions))
    f = cfg.exploration_fraction
    node.priors = (1 - f) * node.priors + f * noise


def select_child(node: Node, cfg: SearchConfig, mm: MinMaxStats) -> int:
    """Index (into ``node.actions``) of the PUCT-best action (``end_first``: an untried
    ``end_action`` first, so every node knows the value of stopping there)."""
    if cfg.end_first and len(node.actions) and node.actions[-1] == cfg.end_action \
            and node.N[-1] == 0:
        return len(node.actions) - 1
    n = max(node.visits, 1)
    pb_c = math.log((n + cfg.pb_c_base + 1) / cfg.pb_c_base) + cfg.pb_c_init
    u = pb_c * node.priors * math.sqrt(n) / (1 + node.N)
    unvisited = 0.0
    if cfg.fpu == "parent" and len(node.heap):
        unvisited = float(mm.normalize(np.array([node.heap.backed(cfg.beta)]))[0]) \
            - cfg.fpu_reduction
    q = np.where(node.N > 0, mm.normalize(node.Q), unvisited)
    return int(np.argmax(q + u))


def backup(path: Sequence[Node], value: float, cfg: SearchConfig, mm: MinMaxStats) -> None:
    """Push the return through each node of ``path`` (root first) into its top-k heap and
    refresh the parent's Q entry: ``G_leaf = value``, ``G_parent = r_child + γ·G_child``."""
    g = float(value)
    for node in reversed(path):
        node.heap.push(g)
        node.visits += 1
        parent = node.parent
        if parent is not None and node.slot >= 0:
            parent.N[node.slot] += 1
            q = node.q_value(cfg.beta, cfg.gamma)
            parent.Q[node.slot] = q
            mm.update(q)
        g = node.reward + cfg.gamma * g


#: expands a batch of leaves: each gets (legal actions, priors over them, value estimate)
Expander = Callable[[list[Node]], None]


def run_search(roots: Sequence[Node], cfg: SearchConfig, expand: Expander,
               make_child: Callable[[Node, int, int], Node], rng: np.random.Generator,
               noise: bool = True) -> list[MinMaxStats]:
    """``cfg.simulations`` simulations on every root, the roots advancing in lockstep so each
    simulation step expands one leaf per root in one batched call (network and scorer).

    ``make_child(node, slot, action)`` builds the child state (its reward comes with it);
    ``expand(leaves)`` sets each leaf's legal actions, priors and value. Roots are expanded
    first if needed; Dirichlet noise goes on the roots when ``noise``.
    """
    todo = [r for r in roots if not r.expanded]
    if todo:
        expand(todo)
        for r in todo:
            backup([r], 0.0 if r.terminal else r.value, cfg, MinMaxStats())
    if noise:
        for r in roots:
            add_root_noise(r, cfg, rng)
    stats = [MinMaxStats() for _ in roots]
    for r, mm in zip(roots, stats):
        for i in np.flatnonzero(r.N > 0):
            mm.update(float(r.Q[i]))
    for _ in range(cfg.simulations):
        paths, leaves = [], []
        for r, mm in zip(roots, stats):
            if r.terminal:
                continue
            node, path = r, [r]
            while node.expanded and not node.terminal:
                slot = select_child(node, cfg, mm)
                a = int(node.actions[slot])
                child = node.children.get(a)
                if child is None:
                    child = make_child(node, slot, a)
                    node.children[a] = child
                node = child
                path.append(node)
            paths.append((path, mm))
            if not node.expanded:
                leaves.append(node)
        if not paths:
            break
        if leaves:
            expand(leaves)
        for path, mm in paths:
            leaf = path[-1]
            backup(path, 0.0 if leaf.terminal else leaf.value, cfg, mm)
    return stats
