"""The alpha pool: a capped set of factors combined by an L1-penalised linear model.

AlphaFormer's Algorithm 1 / AlphaGen's linear pool (DESIGN §5). The pool is agnostic to what a
member *is*: it stores a name (``str(name)``, e.g. a formula string) and the factor's values.

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
  ``Σ f_i y`` and ``Σ f_i f_j``. Adding a factor costs one pass over ``[T, S]`` per member (its new
  Gram row); pool IC, mutual correlations and refits after that never touch ``[T, S]`` data.
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

from alphaminer.evaluation.metrics import daily_ic, daily_rank_ic, ic_stats
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


def _kkt_polish(G: np.ndarray, b: np.ndarray, w: np.ndarray, half: float) -> np.ndarray:
    active = np.flatnonzero(w != 0.0)
    if active.size == 0:
        return w
    sign = np.sign(w[active])
    try:
        wa = np.linalg.solve(G[np.ix_(active, active)], b[active] - half * sign)
    except np.linalg.LinAlgError:
        return w
    if not np.all(np.isfinite(wa)) or np.any(np.sign(wa) != sign):
        return w
    cand = np.zeros_like(w)
    cand[active] = wa
    grad = b - G @ cand
    inactive = np.setdiff1d(np.arange(w.size), active)
    scale = max(1.0, float(np.abs(b).max()))
    if inactive.size and np.abs(grad[inactive]).max() > half + 1e-9 * scale:
        return w
    return cand


# ----------------------------------------------------------------------------- the pool
class AlphaPool:
    """Capped L1-weighted factor pool with an incremental Gram cache (see module docstring).

    Typical use::

        pool = AlphaPool(capacity=10, target=y_train)
        res = pool.try_add("Div(Sub(close,open),Sub(high,low))", values)   # [T, S] tensor
        reward = pool.evaluate_candidate(other_values)                    # no mutation
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
        self._buf: torch.Tensor | None = None
        self._y: torch.Tensor | None = None  # z-scored target, NaN outside the sample cells
        self._y0: torch.Tensor | None = None  # same, 0 outside
        self._mask: torch.Tensor | None = None
        self._D = np.zeros((0, 0, 0))  # [T, K, K] per-day Σ f_i f_j
        self._s = np.zeros((0, 0))  # [T, K] per-day Σ f_i
        self._b = np.zeros((0, 0))  # [T, K] per-day Σ f_i y
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
        return self._y is not None and len(self._slots) == len(self.members)

    @property
    def n_cells(self) -> int:
        return int(self._n.sum()) if self._y is not None else 0

    @property
    def gram(self) -> np.ndarray:
        """``G_ij = mean over sample cells of f_i f_j`` (``[K, K]``)."""
        self._need_values()
        return self._D.sum(axis=0) / self.n_cells

    @property
    def xty(self) -> np.ndarray:
        """``b_i = mean over sample cells of f_i y`` (``[K]``)."""
        self._need_values()
        return self._b.sum(axis=0) / self.n_cells

    def values(self) -> torch.Tensor:
        """The members' z-scored, NaN → 0 values on the fitting target's cells, ``[K, T, S]``."""
        self._need_values()
        assert self._buf is not None and self._y is not None
        if not self._slots:
            return self._buf.new_zeros((0, *self._y.shape))
        return self._buf[self._slots]

    # ------------------------------------------------------------------ target
    def set_target(self, target: torch.Tensor) -> None:
        """Set the fitting target ``[T, S]`` (only while the pool is empty; see :meth:`refit`)."""
        if self.members:
            raise RuntimeError("set_target needs an empty pool; use refit(target, values)")
        y = torch.as_tensor(target)
        if y.ndim != 2:
            raise ValueError(f"target must be [T, S], got shape {tuple(y.shape)}")
        if self._device is not None:
            y = y.to(self._device)
        y = y.to(torch.float32)
        y = torch.where(torch.isfinite(y), y, torch.full_like(y, _NAN))
        z = cs_zscore(y)
        mask = torch.isfinite(z)
        day_ok = mask.sum(dim=-1) >= self.config.min_stocks
        mask &= day_ok.unsqueeze(-1)
        self._mask = mask
        self._y = torch.where(mask, z, torch.full_like(z, _NAN))
        self._y0 = torch.where(mask, z, torch.zeros_like(z))
        self._n = mask.sum(dim=-1).double().cpu().numpy()
        self._ysum = self._y0.sum(dim=-1).double().cpu().numpy()
        self._yy = (self._y0 * self._y0).sum(dim=-1).double().cpu().numpy()
        if self._n.sum() == 0:
            raise ValueError(
                f"target has no day with >= min_stocks={self.config.min_stocks} finite values"
            )
        T = y.shape[0]
        self._D = np.zeros((T, 0, 0))
        self._s = np.zeros((T, 0))
        self._b = np.zeros((T, 0))
        self._buf = None
        self._slots = []

    def _need_values(self) -> None:
        if self._y is None and self.members:
            raise RuntimeError(
                "this pool was loaded without factor values or target; call "
                "refit(target, values) with the members' values (order of pool.names) first"
            )
        if self._y is None:
            raise RuntimeError("the pool has no target yet: pass target= or call set_target()")
        if len(self._slots) != len(self.members):
            raise RuntimeError(
                "this pool was loaded without factor values; call refit(target, values) with the "
                "members' values (in the order of pool.names) first"
            )

    # ------------------------------------------------------------------ candidate stats
    def _standardise(self, values: torch.Tensor, name: str) -> torch.Tensor:
        assert self._y is not None and self._mask is not None
        v = torch.as_tensor(values)
        if tuple(v.shape) != tuple(self._y.shape):
            raise ValueError(
                f"values of {name!r} have shape {tuple(v.shape)}, expected [T, S] = "
                f"{tuple(self._y.shape)} (the fitting target's shape)"
            )
        v = v.to(device=self._y.device, dtype=torch.float32)
        v = torch.where(self._mask & torch.isfinite(v), v, torch.full_like(v, _NAN))
        return torch.nan_to_num(cs_zscore(v), nan=0.0, posinf=0.0, neginf=0.0)

    def _candidate_stats(self, z: torch.Tensor) -> dict[str, np.ndarray]:
        assert self._y0 is not None
        s = z.sum(dim=-1).double().cpu().numpy()
        dd = (z * z).sum(dim=-1).double().cpu().numpy()
        b = (z * self._y0).sum(dim=-1).double().cpu().numpy()
        K = len(self._slots)
        T = z.shape[0]
        cross = np.zeros((T, K))
        if K:
            assert self._buf is not None
            hi = max(self._slots) + 1
            c = (self._buf[:hi] * z).sum(dim=-1).double().cpu().numpy()  # [hi, T]
            cross = c[self._slots].T
        return {"s": s, "dd": dd, "b": b, "cross": cross}

    def _daily_corr_with_members(self, st: dict[str, np.ndarray]) -> np.ndarray:
        """Mean daily correlation of the candidate with each member on the sample cells."""
        K = len(self._slots)
        if K == 0:
            return np.zeros(0)
        n = self._n[:, None]
        nz = np.maximum(n, 1)
        ms = self._s
        mvar = np.einsum("tkk->tk", self._D) - ms * ms / nz
        cvar = (st["dd"] - st["s"] ** 2 / nz[:, 0])[:, None]
        cov = st["cross"] - st["s"][:, None] * ms / nz
        ok = (n >= self.config.min_stocks) & (mvar > 1e-9 * n) & (cvar > 1e-9 * n)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.where(ok, cov / np.sqrt(np.where(ok, mvar * cvar, 1.0)), np.nan)
        cnt = ok.sum(axis=0)
        mean = np.where(cnt > 0, np.nansum(r, axis=0) / np.maximum(cnt, 1), 0.0)
        return mean

    # ------------------------------------------------------------------ fitting / IC from cache
    def _fit(self, D: np.ndarray, b: np.ndarray, w0: np.ndarray | None) -> np.ndarray:
        N = self._n.sum()
        return lasso_cd(D.sum(axis=0) / N, b.sum(axis=0) / N, self.config.l1, w0,
                        tol=self.config.tol, max_iter=self.config.max_iter)

    def _daily_ic_cached(self, D: np.ndarray, s: np.ndarray, b: np.ndarray,
                         w: np.ndarray) -> np.ndarray:
        n = self._n
        nz = np.maximum(n, 1)
        cs = s @ w
        num = b @ w - cs * self._ysum / nz
        cvar = np.einsum("tij,i,j->t", D, w, w) - cs * cs / nz
        yvar = self._yy - self._ysum ** 2 / nz
        ok = (n >= self.config.min_stocks) & (cvar > 1e-12 * n) & (yvar > 1e-12 * n)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.where(ok, num / np.sqrt(np.where(ok, cvar * yvar, 1.0)), np.nan)
        return np.clip(r, -1.0, 1.0)

    @staticmethod
    def _mean_ic(daily: np.ndarray) -> float:
        fin = np.isfinite(daily)
        return float(daily[fin].mean()) if fin.any() else 0.0

    # ------------------------------------------------------------------ add / evaluate
    def _plan(self, name: str, values: torch.Tensor) -> tuple[AddResult, dict[str, Any]]:
        self._need_values()
        name = str(name)
        cur_w = self.weights
        K = len(self.members)
        cur_ic = self._current_ic()
        if name in self.names:
            return AddResult(name, False, f"already in pool: {name!r}", cur_ic,
                             weights=dict(zip(self.names, cur_w.tolist()))), {}
        z = self._standardise(values, name)
        st = self._candidate_stats(z)
        if st["dd"].sum() <= 1e-9 * self._n.sum():
            return AddResult(name, False,
                             "degenerate: no cross-sectional variation on the target's cells",
                             cur_ic, weights=dict(zip(self.names, cur_w.tolist()))), {}
        corr = self._daily_corr_with_members(st)
        max_corr = float(np.abs(corr).max()) if K else 0.0
        if K and max_corr > self.config.dup_threshold:
            j = int(np.abs(corr).argmax())
            dup = self.names[j]
            return AddResult(name, False, f"duplicate of {dup} (corr {corr[j]:.4f})", cur_ic,
                             duplicate_of=dup, max_corr=max_corr,
                             weights=dict(zip(self.names, cur_w.tolist()))), {}
        # grow the cached statistics by the candidate's row/column
        T = self._n.shape[0]
        D = np.zeros((T, K + 1, K + 1))
        D[:, :K, :K] = self._D
        D[:, K, :K] = st["cross"]
        D[:, :K, K] = st["cross"]
        D[:, K, K] = st["dd"]
        s = np.concatenate([self._s, st["s"][:, None]], axis=1)
        b = np.concatenate([self._b, st["b"][:, None]], axis=1)
        w = self._fit(D, b, np.append(cur_w, 0.0))
        keep = np.arange(K + 1)
        evicted: str | None = None
        names = [*self.names, name]
        if self.config.capacity < K + 1:
            aw = np.abs(w)
            drop = int(np.flatnonzero(aw == aw.min())[-1])  # ties: drop the newest
            evicted = names[drop]
            keep = np.delete(keep, drop)
            D = D[:, keep][:, :, keep]
            s, b = s[:, keep], b[:, keep]
            w = self._fit(D, b, w[keep])
        new_ic = self._mean_ic(self._daily_ic_cached(D, s, b, w))
        kept_names = [names[i] for i in keep]
        weights = dict(zip(kept_names, w.tolist()))
        if evicted == name:
            res = AddResult(name, False,
                            f"evicted itself: smallest |w| over capacity {self.config.capacity}",
                            cur_ic, evicted=name, max_corr=max_corr,
                            weights=dict(zip(self.names, cur_w.tolist())))
            return res, {}
        reason = "added" if evicted is None else f"added, evicted {evicted}"
        res = AddResult(name, True, reason, new_ic, evicted=evicted, max_corr=max_corr,
                        weights=weights)
        return res, {"z": z, "D": D, "s": s, "b": b, "w": w, "keep": keep}

    def _current_ic(self) -> float:
        if not self.members:
            return 0.0
        return self._mean_ic(self._daily_ic_cached(self._D, self._s, self._b, self.weights))

    def evaluate(self, name: str, values: torch.Tensor) -> AddResult:
        """What :meth:`try_add` would do, without changing the pool."""
        return self._plan(name, values)[0]

    def evaluate_candidate(self, values: torch.Tensor) -> float:
        """Pool IC the pool would have after ``try_add`` of ``values`` (the pool is unchanged).

        Duplicates / rejected candidates return the current pool IC — the RL reward of a
        candidate that changes nothing.
        """
        return self._plan("\x00candidate", values)[0].pool_ic

    def try_add(self, name: str, values: torch.Tensor) -> AddResult:
        """Add ``values`` (``[T, S]`` on the fitting target's grid) as ``name`` if it helps.

        Rejects duplicates (|mean daily corr| > ``dup_threshold`` with a member) and degenerate
        factors; over capacity, refits and drops the smallest |w| (possibly the newcomer), refits.
        """
        res, plan = self._plan(name, values)
        if not res.accepted:
            return res
        assert self._y is not None
        if self._buf is None:
            self._buf = torch.zeros((self.config.capacity + 1, *self._y.shape),
                                    dtype=torch.float32, device=self._y.device)
        free = sorted(set(range(self.config.capacity + 1)) - set(self._slots))[0]
        self._buf[free] = plan["z"]
        ic, ric = self._member_metrics(values)
        members = [*self.members, PoolMember(str(name), 0.0, ic, ric)]
        slots = [*self._slots, free]
        keep = plan["keep"]
        self.members = [members[i] for i in keep]
        self._slots = [slots[i] for i in keep]
        self._D, self._s, self._b = plan["D"], plan["s"], plan["b"]
        for m, wk in zip(self.members, plan["w"].tolist()):
            m.weight = wk
        return res

    def _member_metrics(self, values: torch.Tensor) -> tuple[float, float]:
        assert self._y is not None
        v = torch.as_tensor(values).to(device=self._y.device, dtype=torch.float32)
        ms = self.config.min_stocks
        ic = float(ic_stats(daily_ic(v, self._y, ms))[0])
        ric = _NAN
        if self.config.compute_rank_ic:
            ric = float(ic_stats(daily_rank_ic(v, self._y, ms))[0])
        return ic, ric

    def remove(self, name: str) -> None:
        """Drop member ``name`` and refit the remaining weights."""
        self._need_values()
        if name not in self.names:
            raise KeyError(f"{name!r} is not in the pool; members: {self.names}")
        i = self.names.index(name)
        keep = np.delete(np.arange(len(self.members)), i)
        self.members = [self.members[j] for j in keep]
        self._slots = [self._slots[j] for j in keep]
        self._D = self._D[:, keep][:, :, keep]
        self._s, self._b = self._s[:, keep], self._b[:, keep]
        self._refit_weights()

    def _refit_weights(self) -> None:
        w = self._fit(self._D, self._b, self.weights) if self.members else np.zeros(0)
        for m, wk in zip(self.members, w.tolist()):
            m.weight = wk

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
        assert self._y is not None
        K = len(vals)
        T = self._y.shape[0]
        self._buf = torch.zeros((self.config.capacity + 1, *self._y.shape),
                                dtype=torch.float32, device=self._y.device)
        self._D = np.zeros((T, K, K))
        self._s = np.zeros((T, K))
        self._b = np.zeros((T, K))
        for k, (m, v) in enumerate(zip(members, vals)):
            z = self._standardise(v, m.name)
            st = self._candidate_stats(z)
            self._D[:, k, :k] = st["cross"]
            self._D[:, :k, k] = st["cross"]
            self._D[:, k, k] = st["dd"]
            self._s[:, k] = st["s"]
            self._b[:, k] = st["b"]
            self._buf[k] = z
            self._slots.append(k)
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
        if target is None and factors_values is None and self._y is None:
            return self._loaded_pool_ic if self.members else 0.0
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
