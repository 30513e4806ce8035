"""The alpha pool: a capped set of factors combined by an L1-penalised linear model.

AlphaFormer's Algorithm 1 / AlphaGen's linear pool (docs/metrics.md, "Alpha pool").
The pool is agnostic to what a member *is*: it stores a name (``str(name)``, e.g. a formula
string) and the factor's values.

Conventions (see ``docs/metrics.md`` for the formulas):

- **Sample cells.** The target ``y`` is z-scored per day (ddof=1) over its finite cells; a day with
  fewer than ``min_stocks`` finite targets (or a constant target) is dropped. The remaining cells
  are the *sample cells*; ``N`` is their count.
- **Members.** A factor is restricted to the sample cells, z-scored per day over its finite cells
  there (:func:`~alphaminer.expr.kernels.cs_zscore`), then NaN → 0 (missing = neutral).
- **Fit.** ``w = argmin mean_cells((Σ_k w_k f_k − y)²) + λ‖w‖₁`` computed from the Gram matrix
  ``G_ij = mean_cells(f_i f_j)`` and ``b_i = mean_cells(f_i y)`` by exact cyclic coordinate
  descent (warm-started), finished by solving the KKT system on the active set.
- **Cache.** Per day ``t`` the pool keeps ``n_t``, ``Σ y``, ``Σ y²``, and for members ``Σ f_i``,
  ``Σ f_i y`` and ``Σ f_i f_j`` (and their sums over days, the Gram matrix). A candidate's new
  Gram row is one batched per-day matrix product with the member buffer (``[T, K+1, S]``; no
  ``[K, T, S]`` temporary); its duplicate check, refit and pool IC then use only these per-day
  sums, and a dry run never copies the ``[T, K, K]`` cache (:meth:`AlphaPool.evaluate_many`
  scores a batch of candidates in one pass).
- **Pool IC** = mean over days of the daily Pearson IC of ``Σ w_k f_k`` with ``y`` on the sample
  cells, exactly :func:`~alphaminer.evaluation.metrics.daily_ic` of :meth:`AlphaPool.combined`.
- **Duplicates.** A candidate whose mean daily correlation (same cells, NaN → 0 values) with a
  member exceeds ``dup_threshold`` in absolute value is rejected.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from alphaminer.evaluation._jit_zscore import zscore_with_sums
from alphaminer.evaluation.metrics import (
    _run_blocks,
    cpu_workers,
    daily_ic,
    daily_rank_ic,
    ic_stats,
)
from alphaminer.expr.kernels import cs_zscore

_FORMAT = "alphaminer.alpha_pool"
_VERSION = 1
_NAN = float("nan")


@dataclass(frozen=True)
class PoolConfig:
    """Pool hyper-parameters. ``l1`` is λ of ``mean(residual²) + λ‖w‖₁``."""

    capacity: int = 10
    l1: float = 0.005
    dup_threshold: float = 0.99
    min_stocks: int = 10
    tol: float = 1e-8
    max_iter: int = 10_000
    compute_rank_ic: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.capacity, int) or self.capacity < 1:
            raise ValueError(f"capacity must be an int >= 1, got {self.capacity!r}")
        if not self.l1 >= 0:
            raise ValueError(f"l1 must be >= 0, got {self.l1!r}")
        if not 0 < self.dup_threshold <= 1:
            raise ValueError(f"dup_threshold must be in (0, 1], got {self.dup_threshold!r}")
        if not isinstance(self.min_stocks, int) or self.min_stocks < 2:
            raise ValueError(f"min_stocks must be an int >= 2, got {self.min_stocks!r}")
        if not self.tol > 0 or not isinstance(self.max_iter, int) or self.max_iter < 1:
            raise ValueError(f"tol must be > 0 and max_iter >= 1, got {self.tol}, {self.max_iter}")


@dataclass
class PoolMember:
    """One factor of the pool and its metrics on the fitting target (raw values, not z-scores)."""

    name: str
    weight: float
    ic: float
    rank_ic: float


@dataclass(frozen=True)
class AddResult:
    """Outcome of :meth:`AlphaPool.try_add` (or of the dry run :meth:`AlphaPool.evaluate`)."""

    name: str
    accepted: bool
    reason: str
    pool_ic: float
    evicted: str | None = None
    duplicate_of: str | None = None
    max_corr: float = _NAN
    weights: dict[str, float] = field(default_factory=dict)


# ----------------------------------------------------------------------------- lasso
def lasso_cd(gram: np.ndarray, xty: np.ndarray, l1: float, w0: np.ndarray | None = None,
             *, tol: float = 1e-8, max_iter: int = 10_000) -> np.ndarray:
    """Minimise ``w'Gw − 2b'w + l1‖w‖₁`` (= ``mean((Xw − y)²) + l1‖w‖₁`` up to a constant).

    Cyclic coordinate descent with soft-thresholding until the largest update is below ``tol``
    (or ``max_iter`` sweeps), then the active set's KKT system is solved exactly and kept when it
    satisfies the optimality conditions (it does whenever CD found the right support and signs).
    """
    G = np.asarray(gram, dtype=np.float64)
    b = np.asarray(xty, dtype=np.float64)
    K = b.shape[0]
    if G.shape != (K, K):
        raise ValueError(f"gram must be [{K}, {K}], got {G.shape}")
    w = np.zeros(K) if w0 is None else np.array(w0, dtype=np.float64, copy=True)
    if K == 0:
        return w
    half = 0.5 * l1
    if w0 is not None:
        # a pool refit after one candidate changes little: the warm start's support (plus the
        # coordinates whose gradient now exceeds the threshold) is usually the optimum's, and
        # then the KKT system gives the exact solution without any sweep.
        grad0 = b - G @ w
        active = (w != 0.0) | (np.abs(grad0) > half)
        sign = np.where(w != 0.0, np.sign(w), np.sign(grad0))
        fast = _kkt_solution(G, b, np.flatnonzero(active), sign[active], half)
        if fast is not None:
            return fast
    diag = np.diag(G).copy()
    grad = b - G @ w  # b - G w, kept current as w changes
    Gl = G.tolist()
    wl = w.tolist()
    gl = grad.tolist()
    for _ in range(max_iter):
        max_delta = 0.0
        for j in range(K):
            d = diag[j]
            if d <= 0.0:
                new = 0.0
            else:
                rho = gl[j] + d * wl[j]
                if rho > half:
                    new = (rho - half) / d
                elif rho < -half:
                    new = (rho + half) / d
                else:
                    new = 0.0
            delta = new - wl[j]
            if delta != 0.0:
                wl[j] = new
                row = Gl[j]
                for i in range(K):
                    gl[i] -= row[i] * delta
                max_delta = max(max_delta, abs(delta))
        if max_delta < tol:
            break
    w = np.asarray(wl)
    return _kkt_polish(G, b, w, half)


def _kkt_solution(G: np.ndarray, b: np.ndarray, active: np.ndarray, sign: np.ndarray,
                  half: float) -> np.ndarray | None:
    """The lasso optimum if its support is ``active`` with signs ``sign``, else None.

    Solves the active set's stationarity ``G_AA w_A = b_A − half·sign`` and accepts it only when
    it satisfies every KKT condition (signs kept, ``|b_j − G_j w| ≤ half`` off the support), in
    which case it is the (unique, for a positive definite ``G``) minimiser.
    """
    w = np.zeros(b.shape[0])
    scale = max(1.0, float(np.abs(b).max())) if b.size else 1.0
    if active.size == 0:
        return w if b.size == 0 or float(np.abs(b).max()) <= half + 1e-9 * scale else None
    try:
        wa = np.linalg.solve(G[np.ix_(active, active)], b[active] - half * sign)
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(wa)) or np.any(np.sign(wa) != sign):
        return None
    w[active] = wa
    grad = b - G @ w
    inactive = np.setdiff1d(np.arange(w.size), active)
    if inactive.size and np.abs(grad[inactive]).max() > half + 1e-9 * scale:
        return None
    return w


def _kkt_polish(G: np.ndarray, b: np.ndarray, w: np.ndarray, half: float) -> np.ndarray:
    active = np.flatnonzero(w != 0.0)
    if active.size == 0:
        return w
    exact = _kkt_solution(G, b, active, np.sign(w[active]), half)
    return w if exact is None else exact


# ----------------------------------------------------------------------------- sample cells
class SampleCells:
    """The fitting target's sample cells, and z-scoring of factors on them (module docstring).

    ``y`` is the per-day z-scored target, NaN outside the sample cells; ``y0`` the same with 0
    there; ``n``, ``ysum``, ``yy`` its per-day count, sum and sum of squares (float64 numpy).
    Shared by the pool and the candidate scorer, so both see factors the same way.
    """

    def __init__(self, target: torch.Tensor, min_stocks: int = 10,
                 device: str | torch.device | None = None) -> None:
        y = torch.as_tensor(target)
        if y.ndim != 2:
            raise ValueError(f"target must be [T, S], got shape {tuple(y.shape)}")
        if device is not None:
            y = y.to(device)
        y = y.to(torch.float32)
        y = torch.where(torch.isfinite(y), y, torch.full_like(y, _NAN))
        z = cs_zscore(y)
        mask = torch.isfinite(z)
        mask &= (mask.sum(dim=-1) >= min_stocks).unsqueeze(-1)
        self.min_stocks = int(min_stocks)
        self.mask = mask
        self.y = torch.where(mask, z, torch.full_like(z, _NAN))
        self.y0 = torch.where(mask, z, torch.zeros_like(z))
        self.n = mask.sum(dim=-1).double().cpu().numpy()
        self.ysum = self.y0.sum(dim=-1).double().cpu().numpy()
        self.yy = (self.y0 * self.y0).sum(dim=-1).double().cpu().numpy()
        self._np: tuple[np.ndarray, np.ndarray] | None = None  # CPU mask / y0 for the kernel
        if self.n.sum() == 0:
            raise ValueError(f"target has no day with >= min_stocks={min_stocks} finite values")

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.y.shape[0]), int(self.y.shape[1]))

    @property
    def device(self) -> torch.device:
        return self.y.device

    def same_as(self, other: SampleCells) -> bool:
        """True when both select the same cells with the same target z-scores."""
        return (self.shape == other.shape and self.min_stocks == other.min_stocks
                and bool(torch.equal(self.mask, other.mask))
                and bool(torch.equal(self.y0, other.y0.to(self.device))))

    def standardise(self, values: torch.Tensor, name: str = "values") -> torch.Tensor:
        """``[..., T, S]`` factor(s) → per-day z-scores over their finite sample cells, 0 elsewhere
        (float32)."""
        v = torch.as_tensor(values)
        if tuple(v.shape[-2:]) != self.shape or v.ndim not in (2, 3):
            raise ValueError(
                f"values of {name!r} have shape {tuple(v.shape)}, expected [T, S] = "
                f"{self.shape} (the fitting target's shape)"
            )
        v = v.to(device=self.device, dtype=torch.float32)
        v = torch.where(self.mask & torch.isfinite(v), v, torch.full_like(v, _NAN))
        return torch.nan_to_num(cs_zscore(v), nan=0.0, posinf=0.0, neginf=0.0)

    def sums(self, z: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-day ``Σ z``, ``Σ z²``, ``Σ z·y`` of z-scores ``[C, T, S]`` → float64 ``[C, T]``."""
        s = z.sum(dim=-1).double().cpu().numpy()
        dd = (z * z).sum(dim=-1).double().cpu().numpy()
        b = (z * self.y0).sum(dim=-1).double().cpu().numpy()
        return s, dd, b

    def standardise_sums(self, values: torch.Tensor, name: str = "values",
                         rows: Sequence[int] | None = None
                         ) -> tuple[torch.Tensor, np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`standardise` of ``[C, T, S]`` (or ``[T, S]``) and :meth:`sums` of the result,
        fused on CPU (one numba kernel, three passes per row instead of ~15 torch passes).
        ``rows``: only these candidates of ``values`` (read in place on CPU, not copied)."""
        v = torch.as_tensor(values)
        if v.ndim == 2:
            v = v.unsqueeze(0)
        if v.ndim != 3 or tuple(v.shape[1:]) != self.shape:
            raise ValueError(
                f"values of {name!r} have shape {tuple(v.shape)}, expected [T, S] = "
                f"{self.shape} (the fitting target's shape)"
            )
        if self.device.type != "cpu" or v.device.type != "cpu" or v.requires_grad:
            if rows is not None:
                v = v[list(rows)]
            z = self.standardise(v, name)
            return (z, *self.sums(z))
        if self._np is None:
            self._np = (self.mask.numpy(), self.y0.numpy())
        C, T, S = v.shape
        x = v.detach().to(torch.float32).contiguous().numpy().reshape(C * T, S)
        z, s, dd, b = zscore_with_sums(x, *self._np, threads=cpu_workers(), rows=rows)
        C = z.shape[0] // T
        return (torch.from_numpy(z).reshape(C, T, S), s.reshape(C, T), dd.reshape(C, T),
                b.reshape(C, T))


def cross_sums(z: torch.Tensor, members: torch.Tensor) -> np.ndarray:
    """Per-day ``Σ_s z_c · m_k``: candidates ``z [C, T, S]``, member buffer ``[T, K, S]`` → float64
    ``[C, T, K]``.

    One batched matrix product over days (``[T, C, S] @ [T, S, K]``): no ``[K, T, S]`` product is
    ever materialised, whatever the number of members.
    """
    C, T, _ = z.shape
    K = members.shape[1]
    if C == 0 or K == 0:
        return np.zeros((C, T, K))
    zt, mt = z.transpose(0, 1), members.transpose(1, 2)
    if z.device.type != "cpu" or z.requires_grad or members.requires_grad:
        out = torch.bmm(zt, mt)  # [T, C, K]
        return out.double().cpu().numpy().transpose(1, 0, 2)
    # CPU: day blocks side by side on worker threads (each product is one day's, so the
    # blocking does not change a value)
    out = torch.empty((T, C, K), dtype=torch.result_type(z, members))
    step = max(1, -(-T // (4 * cpu_workers())))

    def run(t0: int) -> None:
        torch.bmm(zt[t0:t0 + step], mt[t0:t0 + step], out=out[t0:t0 + step])

    _run_blocks(run, list(range(0, T, step)), z.device)
    return out.double().numpy().transpose(1, 0, 2)


def mean_daily_corr(n: np.ndarray, s_c: np.ndarray, dd_c: np.ndarray, s_m: np.ndarray,
                    dd_m: np.ndarray, cross: np.ndarray, min_stocks: int) -> np.ndarray:
    """Mean over days of the Pearson correlation of candidates with members, on sample cells.

    Inputs are per-day sums of z-scored, NaN → 0 factors over the sample cells: ``n [T]``,
    candidates ``s_c, dd_c [C, T]``, members ``s_m, dd_m [T, K]``, ``cross [C, T, K]``. A day
    counts where it has ``min_stocks`` cells and both sides vary; a pair with no such day → 0.
    Returns signed ``[C, K]``. This is the scorer's ``max_corr`` and the pool's duplicate rule.
    """
    C, K = cross.shape[0], s_m.shape[1]
    if C == 0 or K == 0:
        return np.zeros((C, K))
    nn = n[None, :, None]
    nz = np.maximum(nn, 1)
    mvar = (dd_m - s_m * s_m / nz[0])[None]  # [1, T, K]
    cvar = (dd_c - s_c * s_c / nz[..., 0])[..., None]  # [C, T, 1]
    cov = cross - s_c[..., None] * s_m[None] / nz
    ok = (nn >= min_stocks) & (mvar > 1e-9 * nn) & (cvar > 1e-9 * nn)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(ok, cov / np.sqrt(np.where(ok, mvar * cvar, 1.0)), 0.0)
    cnt = ok.sum(axis=1)
    return np.where(cnt > 0, r.sum(axis=1) / np.maximum(cnt, 1), 0.0)


def _daily_ic_from_sums(cells: SampleCells, cs: np.ndarray, num: np.ndarray, quad: np.ndarray
                        ) -> np.ndarray:
    """Daily IC of a combination from its per-day ``Σ c``, ``Σ c·y`` and ``Σ c²``."""
    n = cells.n
    nz = np.maximum(n, 1)
    cov = num - cs * cells.ysum / nz
    cvar = quad - cs * cs / nz
    yvar = cells.yy - cells.ysum ** 2 / nz
    ok = (n >= cells.min_stocks) & (cvar > 1e-12 * n) & (yvar > 1e-12 * n)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(ok, cov / np.sqrt(np.where(ok, cvar * yvar, 1.0)), np.nan)
    return np.clip(r, -1.0, 1.0)


def _quad_form(D: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per-day ``w' D_t w`` of ``D [T, K, K]``.

    ``einsum`` on the flattened ``[T, K*K]`` view, not ``@``: the matrix-vector product would go
    to a multi-threaded BLAS whose threads, for a product this small, cost more than they save
    (and far more on a loaded host: measured 6–12 ms instead of 0.6 ms at T = 1492, K = 20).
    """
    T, K = D.shape[0], w.shape[0]
    return np.einsum("ij,j->i", D.reshape(T, K * K), np.outer(w, w).reshape(-1))


@dataclass
class _CandStats:
    """Per-day sums of one z-scored candidate: ``s, dd, b [T]`` and ``cross [T, K]`` with the
    members (pool order)."""

    s: np.ndarray
    dd: np.ndarray
    b: np.ndarray
    cross: np.ndarray


# ----------------------------------------------------------------------------- the pool
class AlphaPool:
    """Capped L1-weighted factor pool with an incremental Gram cache (see module docstring).

    Typical use::

        pool = AlphaPool(capacity=10, target=y_train)
        res = pool.try_add("Div(Sub(close,open),Sub(high,low))", values)   # [T, S] tensor
        reward = pool.evaluate_candidate(other_values)                    # no mutation
        results = pool.evaluate_many(names, values_batch)                  # [C, T, S], batched
        pool.save("pool.json")
    """

    def __init__(self, capacity: int = 10, l1: float = 0.005, dup_threshold: float = 0.99,
                 min_stocks: int = 10, *, target: torch.Tensor | None = None,
                 tol: float = 1e-8, max_iter: int = 10_000, compute_rank_ic: bool = True,
                 device: str | torch.device | None = None) -> None:
        self.config = PoolConfig(capacity, l1, dup_threshold, min_stocks, tol, max_iter,
                                 compute_rank_ic)
        self._device = torch.device(device) if device is not None else None
        self.members: list[PoolMember] = []
        self._slots: list[int] = []
        self._buf: torch.Tensor | None = None  # [T, capacity + 1, S] z-scores, slot-indexed
        self._cells: SampleCells | None = None
        self._D = np.zeros((0, 0, 0))  # [T, K, K] per-day Σ f_i f_j
        self._s = np.zeros((0, 0))  # [T, K] per-day Σ f_i
        self._b = np.zeros((0, 0))  # [T, K] per-day Σ f_i y
        self._G = np.zeros((0, 0))  # [K, K] Σ_t D (the Gram matrix times N)
        self._bsum = np.zeros(0)  # [K] Σ_t b
        self._cur_ic: float | None = None  # pool IC of the current weights (None: stale)
        self._loaded_pool_ic: float = _NAN
        if target is not None:
            self.set_target(target)

    @classmethod
    def from_config(cls, config: PoolConfig, target: torch.Tensor | None = None) -> AlphaPool:
        return cls(**{k: v for k, v in asdict(config).items()}, target=target)

    # ------------------------------------------------------------------ properties
    def __len__(self) -> int:
        return len(self.members)

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.members]

    @property
    def weights(self) -> np.ndarray:
        return np.array([m.weight for m in self.members], dtype=np.float64)

    @property
    def has_values(self) -> bool:
        """False for a pool restored from JSON until :meth:`refit` gives it values."""
        return self._cells is not None and len(self._slots) == len(self.members)

    @property
    def cells(self) -> SampleCells | None:
        """The fitting target's sample cells (None before a target is set)."""
        return self._cells

    @property
    def _y(self) -> torch.Tensor | None:
        return None if self._cells is None else self._cells.y

    @property
    def _n(self) -> np.ndarray:
        assert self._cells is not None
        return self._cells.n

    @property
    def n_cells(self) -> int:
        return int(self._n.sum()) if self._cells is not None else 0

    @property
    def gram(self) -> np.ndarray:
        """``G_ij = mean over sample cells of f_i f_j`` (``[K, K]``)."""
        self._need_values()
        return self._G / self.n_cells

    @property
    def xty(self) -> np.ndarray:
        """``b_i = mean over sample cells of f_i y`` (``[K]``)."""
        self._need_values()
        return self._bsum / self.n_cells

    def values(self) -> torch.Tensor:
        """The members' z-scored, NaN → 0 values on the fitting target's cells, ``[K, T, S]``."""
        self._need_values()
        assert self._cells is not None
        if not self._slots:
            return torch.zeros((0, *self._cells.shape), dtype=torch.float32,
                               device=self._cells.device)
        assert self._buf is not None
        return self._buf[:, self._slots].transpose(0, 1).contiguous()

    # ------------------------------------------------------------------ target
    def set_target(self, target: torch.Tensor) -> None:
        """Set the fitting target ``[T, S]`` (only while the pool is empty; see :meth:`refit`)."""
        if self.members:
            raise RuntimeError("set_target needs an empty pool; use refit(target, values)")
        self._cells = SampleCells(target, self.config.min_stocks, self._device)
        T = self._cells.shape[0]
        self._D = np.zeros((T, 0, 0))
        self._s = np.zeros((T, 0))
        self._b = np.zeros((T, 0))
        self._G = np.zeros((0, 0))
        self._bsum = np.zeros(0)
        self._buf = None
        self._slots = []
        self._cur_ic = None

    def _need_values(self) -> None:
        if self._cells is None and self.members:
            raise RuntimeError(
                "this pool was loaded without factor values or target; call "
                "refit(target, values) with the members' values (order of pool.names) first"
            )
        if self._cells is None:
            raise RuntimeError("the pool has no target yet: pass target= or call set_target()")
        if len(self._slots) != len(self.members):
            raise RuntimeError(
                "this pool was loaded without factor values; call refit(target, values) with the "
                "members' values (in the order of pool.names) first"
            )

    # ------------------------------------------------------------------ candidate stats
    def _standardise(self, values: torch.Tensor | Sequence[torch.Tensor], name: str
                     ) -> tuple[torch.Tensor, np.ndarray, np.ndarray, np.ndarray]:
        """Raw values ``[T, S]`` or ``[C, T, S]`` → z-scores ``[C, T, S]`` on the sample cells
        and their per-day ``Σ z, Σ z², Σ z·y``."""
        assert self._cells is not None
        if not isinstance(values, torch.Tensor):
            values = torch.stack([torch.as_tensor(v) for v in values])
        return self._cells.standardise_sums(values, name)

    def _batch_stats(self, z: torch.Tensor, s: np.ndarray, dd: np.ndarray, b: np.ndarray
                     ) -> list[_CandStats]:
        """Per-candidate per-day sums of z-scores ``[C, T, S]`` with the target and members."""
        K = len(self._slots)
        if K:
            assert self._buf is not None
            hi = max(self._slots) + 1
            cross = cross_sums(z, self._buf[:, :hi])[:, :, self._slots]
        else:
            cross = np.zeros((z.shape[0], z.shape[1], 0))
        return [_CandStats(s[c], dd[c], b[c], cross[c]) for c in range(z.shape[0])]

    def _daily_corr_with_members(self, st: _CandStats) -> np.ndarray:
        """Mean daily correlation of the candidate with each member on the sample cells."""
        return self._corr_with_members_many([st])[0]

    def _corr_with_members_many(self, stats: Sequence[_CandStats]) -> np.ndarray:
        """:meth:`_daily_corr_with_members` of several candidates ``[C, K]`` in one vectorised
        pass (each candidate's values are the same as alone: the sums run per candidate)."""
        dd_m = np.einsum("tkk->tk", self._D)
        return mean_daily_corr(self._n, np.stack([st.s for st in stats]),
                               np.stack([st.dd for st in stats]), self._s, dd_m,
                               np.stack([st.cross for st in stats]), self.config.min_stocks)

    # ------------------------------------------------------------------ fitting / IC from cache
    def _fit(self, G: np.ndarray, bsum: np.ndarray, w0: np.ndarray | None) -> np.ndarray:
        """Lasso weights from the summed Gram ``G`` ``[K, K]`` and ``Σ b`` ``[K]``."""
        N = self._n.sum()
        return lasso_cd(G / N, bsum / N, self.config.l1, w0,
                        tol=self.config.tol, max_iter=self.config.max_iter)

    def _daily_ic_cached(self, D: np.ndarray, s: np.ndarray, b: np.ndarray,
                         w: np.ndarray) -> np.ndarray:
        assert self._cells is not None
        T, K = s.shape
        return _daily_ic_from_sums(self._cells, s @ w, b @ w, _quad_form(D, w))

    def _daily_ic_with(self, st: _CandStats, w: np.ndarray) -> np.ndarray:
        """Daily IC of members + candidate weighted by ``w`` (``[K + 1]``, candidate last;
        a zero weight drops a member) without building the grown ``[T, K+1, K+1]`` cache."""
        assert self._cells is not None
        wm, wc = w[:-1], float(w[-1])
        T, K = self._s.shape
        quad = _quad_form(self._D, wm) if K else np.zeros(T)
        quad = quad + 2.0 * wc * (st.cross @ wm) + wc * wc * st.dd
        return _daily_ic_from_sums(self._cells, self._s @ wm + wc * st.s,
                                   self._b @ wm + wc * st.b, quad)

    @staticmethod
    def _mean_ic(daily: np.ndarray) -> float:
        fin = np.isfinite(daily)
        return float(daily[fin].mean()) if fin.any() else 0.0

    # ------------------------------------------------------------------ add / evaluate
    def _plan(self, name: str, st: _CandStats, corr: np.ndarray | None = None
              ) -> tuple[AddResult, dict[str, Any]]:
        """What adding the candidate would do; ``corr``: its mean daily correlation with each
        member when already computed (batched by :meth:`evaluate_many`)."""
        name = str(name)
        cur_w = self.weights
        K = len(self.members)
        cur_ic = self._current_ic()

        def current_weights() -> dict[str, float]:
            return dict(zip(self.names, cur_w.tolist()))

        if name in self.names:
            return AddResult(name, False, f"already in pool: {name!r}", cur_ic,
                             weights=current_weights()), {}
        if st.dd.sum() <= 1e-9 * self._n.sum():
            return AddResult(name, False,
                             "degenerate: no cross-sectional variation on the target's cells",
                             cur_ic, weights=current_weights()), {}
        if corr is None:
            corr = self._daily_corr_with_members(st)
        max_corr = float(np.abs(corr).max()) if K else 0.0
        if K and max_corr > self.config.dup_threshold:
            j = int(np.abs(corr).argmax())
            dup = self.names[j]
            return AddResult(name, False, f"duplicate of {dup} (corr {corr[j]:.4f})", cur_ic,
                             duplicate_of=dup, max_corr=max_corr,
                             weights=current_weights()), {}
        # the grown Gram only: per-day caches are combined on the fly (no [T, K+1, K+1] copy)
        g = st.cross.sum(axis=0)
        G = np.empty((K + 1, K + 1))
        G[:K, :K] = self._G
        G[K, :K] = G[:K, K] = g
        G[K, K] = st.dd.sum()
        bsum = np.append(self._bsum, st.b.sum())
        w = self._fit(G, bsum, np.append(cur_w, 0.0))
        keep = np.arange(K + 1)
        evicted: str | None = None
        names = [*self.names, name]
        if self.config.capacity < K + 1:
            aw = np.abs(w)
            drop = int(np.flatnonzero(aw == aw.min())[-1])  # ties: drop the newest
            evicted = names[drop]
            if evicted == name:
                return AddResult(name, False,
                                 f"evicted itself: smallest |w| over capacity "
                                 f"{self.config.capacity}",
                                 cur_ic, evicted=name, max_corr=max_corr,
                                 weights=current_weights()), {}
            keep = np.delete(keep, drop)
            w = self._fit(G[np.ix_(keep, keep)], bsum[keep], w[keep])
        w_full = np.zeros(K + 1)
        w_full[keep] = w
        new_ic = self._mean_ic(self._daily_ic_with(st, w_full))
        weights = dict(zip([names[i] for i in keep], w.tolist()))
        reason = "added" if evicted is None else f"added, evicted {evicted}"
        res = AddResult(name, True, reason, new_ic, evicted=evicted, max_corr=max_corr,
                        weights=weights)
        return res, {"w": w, "keep": keep}

    def _current_ic(self) -> float:
        if not self.members:
            return 0.0
        if self._cur_ic is None:
            self._cur_ic = self._mean_ic(self._daily_ic_cached(self._D, self._s, self._b,
                                                               self.weights))
        return self._cur_ic

    def evaluate(self, name: str, values: torch.Tensor) -> AddResult:
        """What :meth:`try_add` would do, without changing the pool."""
        self._need_values()
        return self._plan(name, self._batch_stats(*self._standardise(values, name))[0])[0]

    def evaluate_many(self, names: Sequence[str], values: torch.Tensor | Sequence[torch.Tensor],
                      standardised: bool = False,
                      sums: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
                      ) -> list[AddResult]:
        """:meth:`evaluate` for a batch of candidates ``[C, T, S]`` (each against the current
        pool, independently). The per-day sums of all candidates with the target and every
        member are a few batched reductions, so a candidate costs far less than one
        :meth:`evaluate` call. ``standardised=True``: ``values`` are already
        ``pool.cells.standardise(raw)`` (the scorer shares them with its reference set), and
        ``sums`` may give their ``pool.cells.sums``."""
        self._need_values()
        names = [str(n) for n in names]
        if isinstance(values, torch.Tensor) and values.ndim == 2:
            values = values.unsqueeze(0)
        if len(names) != len(values):
            raise ValueError(f"{len(names)} names for {len(values)} value tensors")
        if not names:
            return []
        if standardised:
            assert self._cells is not None
            z = torch.as_tensor(values) if isinstance(values, torch.Tensor) else torch.stack(
                list(values))
            if tuple(z.shape[1:]) != self._cells.shape:
                raise ValueError(f"z-scores of shape {tuple(z.shape)} do not match the target's "
                                 f"[T, S] = {self._cells.shape}")
            zs = (z, *self._cells.sums(z)) if sums is None else (z, *sums)
        else:
            zs = self._standardise(values, names[0])
        stats = self._batch_stats(*zs)
        if not self.members:
            return [self._plan(n, st)[0] for n, st in zip(names, stats)]
        corr = self._corr_with_members_many(stats)
        return [self._plan(n, st, corr[i])[0] for i, (n, st) in enumerate(zip(names, stats))]

    def evaluate_candidate(self, values: torch.Tensor) -> float:
        """Pool IC the pool would have after ``try_add`` of ``values`` (the pool is unchanged).

        Duplicates / rejected candidates return the current pool IC — the RL reward of a
        candidate that changes nothing.
        """
        return self.evaluate("\x00candidate", values).pool_ic

    def try_add(self, name: str, values: torch.Tensor) -> AddResult:
        """Add ``values`` (``[T, S]`` on the fitting target's grid) as ``name`` if it helps.

        Rejects duplicates (|mean daily corr| > ``dup_threshold`` with a member) and degenerate
        factors; over capacity, refits and drops the smallest |w| (possibly the newcomer), refits.
        """
        self._need_values()
        zs = self._standardise(values, name)
        z = zs[0]
        st = self._batch_stats(*zs)[0]
        res, plan = self._plan(name, st)
        if not res.accepted:
            return res
        self._append(st, z[0])
        ic, ric = self._member_metrics(values)
        self.members.append(PoolMember(str(name), 0.0, ic, ric))
        self._select(plan["keep"])
        for m, wk in zip(self.members, plan["w"].tolist()):
            m.weight = wk
        self._cur_ic = None
        return res

    def _append(self, st: _CandStats, z: torch.Tensor) -> None:
        """Store a new member's z-scores and grow the per-day caches by its row/column."""
        assert self._cells is not None
        T, S = self._cells.shape
        if self._buf is None:
            self._buf = torch.zeros((T, self.config.capacity + 1, S), dtype=torch.float32,
                                    device=self._cells.device)
        free = sorted(set(range(self.config.capacity + 1)) - set(self._slots))[0]
        self._buf[:, free] = z
        K = len(self._slots)
        D = np.empty((T, K + 1, K + 1))
        D[:, :K, :K] = self._D
        D[:, K, :K] = st.cross
        D[:, :K, K] = st.cross
        D[:, K, K] = st.dd
        self._D = D
        self._s = np.concatenate([self._s, st.s[:, None]], axis=1)
        self._b = np.concatenate([self._b, st.b[:, None]], axis=1)
        self._G = D.sum(axis=0)
        self._bsum = self._b.sum(axis=0)
        self._slots.append(free)
        self._cur_ic = None

    def _select(self, keep: np.ndarray) -> None:
        """Keep members ``keep`` (indices in pool order) and their caches."""
        keep = np.asarray(keep)
        if keep.size == len(self.members) and np.array_equal(keep, np.arange(keep.size)):
            return
        self.members = [self.members[i] for i in keep]
        self._slots = [self._slots[i] for i in keep]
        # (advanced indexing on inner axes can return a non-C-ordered array; the per-day
        # quadratic forms reshape D to [T, K*K], which must not copy)
        self._D = np.ascontiguousarray(self._D[:, keep][:, :, keep])
        self._s, self._b = self._s[:, keep], self._b[:, keep]
        self._G = self._G[np.ix_(keep, keep)]
        self._bsum = self._bsum[keep]
        self._cur_ic = None

    def _member_metrics(self, values: torch.Tensor) -> tuple[float, float]:
        assert self._cells is not None
        y = self._cells.y
        v = torch.as_tensor(values).to(device=y.device, dtype=torch.float32)
        ms = self.config.min_stocks
        ic = float(ic_stats(daily_ic(v, y, ms))[0])
        ric = _NAN
        if self.config.compute_rank_ic:
            ric = float(ic_stats(daily_rank_ic(v, y, ms))[0])
        return ic, ric

    def remove(self, name: str) -> None:
        """Drop member ``name`` and refit the remaining weights."""
        self._need_values()
        if name not in self.names:
            raise KeyError(f"{name!r} is not in the pool; members: {self.names}")
        i = self.names.index(name)
        self._select(np.delete(np.arange(len(self.members)), i))
        self._refit_weights()

    def _refit_weights(self) -> None:
        w = self._fit(self._G, self._bsum, self.weights) if self.members else np.zeros(0)
        for m, wk in zip(self.members, w.tolist()):
            m.weight = wk
        self._cur_ic = None

    def refit(self, target: torch.Tensor, values: Sequence[torch.Tensor] | torch.Tensor) -> None:
        """Rebuild every cache on ``target`` from the members' ``values`` (pool order), refit the
        weights and the members' metrics. Used after :meth:`load` or to move to a new period."""
        vals = list(values)
        if len(vals) != len(self.members):
            raise ValueError(f"refit needs {len(self.members)} value tensors (one per member in "
                             f"pool order {self.names}), got {len(vals)}")
        members = self.members
        self.members = []
        self.set_target(target)
        for m, v in zip(members, vals):
            zs = self._standardise(v, m.name)
            self._append(self._batch_stats(*zs)[0], zs[0][0])
            m.ic, m.rank_ic = self._member_metrics(v)
            self.members.append(m)
        self._refit_weights()

    # ------------------------------------------------------------------ outputs
    def daily_pool_ic(self, target: torch.Tensor | None = None,
                      factors_values: Sequence[torch.Tensor] | torch.Tensor | None = None
                      ) -> np.ndarray:
        """Daily IC ``[T]`` of the weighted combination (training cache, or another split)."""
        if (target is None) != (factors_values is None):
            raise ValueError("pass both target and factors_values (another split) or neither")
        if target is None:
            self._need_values()
            if not self.members:
                return np.full(self._n.shape[0], np.nan)
            return self._daily_ic_cached(self._D, self._s, self._b, self.weights)
        comb = self.combined(factors_values, target=target)
        return daily_ic(comb, torch.as_tensor(target).to(comb.device),
                        self.config.min_stocks).cpu().numpy()

    def pool_ic(self, target: torch.Tensor | None = None,
                factors_values: Sequence[torch.Tensor] | torch.Tensor | None = None) -> float:
        """Mean daily IC of the combination; 0.0 when it carries no signal (empty pool,
        all-zero weights). With ``target`` and ``factors_values`` (members' raw values on that
        split, pool order) it is computed there with the current weights."""
        if target is None and factors_values is None:
            if self._cells is None:
                return self._loaded_pool_ic if self.members else 0.0
            self._need_values()
            return self._current_ic()
        return self._mean_ic(self.daily_pool_ic(target, factors_values))

    def combined(self, values_list: Sequence[torch.Tensor] | torch.Tensor | None = None,
                 target: torch.Tensor | None = None) -> torch.Tensor:
        """``Σ_k w_k z_k`` ``[T, S]`` float32, ``z_k`` = per-day z-score of member k, NaN → 0.

        ``values_list``: raw member values in pool order (default: the stored training values).
        With ``target``, each factor is first restricted to the target's finite cells (as when
        fitting), so ``pool_ic(target, values)`` reproduces the training pool IC on that data.
        """
        w = torch.as_tensor(self.weights, dtype=torch.float32)
        if values_list is None:
            vals = self.values()
            return (vals * w.to(vals.device)[:, None, None]).sum(dim=0)
        vals = list(values_list)
        if len(vals) != len(self.members):
            raise ValueError(f"values_list needs {len(self.members)} tensors (pool order "
                             f"{self.names}), got {len(vals)}")
        if not vals:
            raise ValueError("the pool is empty: nothing to combine")
        first = torch.as_tensor(vals[0])
        out = torch.zeros(first.shape, dtype=torch.float32, device=first.device)
        tmask = None
        if target is not None:
            tmask = torch.isfinite(torch.as_tensor(target).to(first.device))
        for wk, raw in zip(w.tolist(), vals):
            v = torch.as_tensor(raw).to(device=first.device, dtype=torch.float32)
            if v.shape != first.shape:
                raise ValueError(f"all values must share one shape, got {tuple(v.shape)} and "
                                 f"{tuple(first.shape)}")
            ok = torch.isfinite(v) if tmask is None else torch.isfinite(v) & tmask
            z = torch.nan_to_num(cs_zscore(torch.where(ok, v, torch.full_like(v, _NAN))), nan=0.0)
            out += wk * z
        return out

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        def clean(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None

        pool_ic = self.pool_ic()
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "config": asdict(self.config),
            "pool_ic": clean(pool_ic),
            "members": [
                {"name": m.name, "weight": m.weight, "ic": clean(m.ic),
                 "rank_ic": clean(m.rank_ic)}
                for m in self.members
            ],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlphaPool:
        if data.get("format") != _FORMAT:
            raise ValueError(f"not an alpha pool document (format={data.get('format')!r})")
        if data.get("version") != _VERSION:
            raise ValueError(f"unsupported alpha pool version {data.get('version')!r}")
        pool = cls.from_config(PoolConfig(**data["config"]))

        def num(x: float | None) -> float:
            return _NAN if x is None else float(x)

        pool.members = [PoolMember(str(m["name"]), float(m["weight"]), num(m.get("ic")),
                                   num(m.get("rank_ic"))) for m in data["members"]]
        pool._loaded_pool_ic = num(data.get("pool_ic"))
        return pool

    @classmethod
    def from_json(cls, text: str) -> AlphaPool:
        return cls.from_dict(json.loads(text))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> AlphaPool:
        return cls.from_json(Path(path).read_text())

    def __repr__(self) -> str:
        body = ", ".join(f"{m.name}: {m.weight:+.4f}" for m in self.members)
        return f"AlphaPool({len(self)}/{self.config.capacity}; {body})"
