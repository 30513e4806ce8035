"""AlphaForge-style dynamic per-day linear combination.

For every day ``t`` the model looks at a trailing window of days whose labels are fully known by
day ``t``'s close. A label of day ``s`` is known at the close of ``s + horizon``; the window ends
one day earlier still, at ``s = t - (horizon + 1)`` (the default ``shift``), so the model never
sees a label that is not yet published when the day-``t`` signal is formed.

Inside the window it selects factors by trailing RankIC (top ``n_select`` by |RankIC|) among
those whose |ICIR| reaches ``icir_threshold`` and whose IC and RankIC agree in sign, fits OLS (no
intercept: factors and target are per-day standardised) of the target on the selected factors'
z-scores and predicts day ``t``.

Everything is batched: the per-day IC series and per-day Gram matrices ``X'X`` / ``X'y`` are
computed once; window sums are differences of float64 cumulative sums; all days' small ``K × K``
ridge systems are solved in one ``torch.linalg.solve`` call.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from alphaminer.combination.base import (
    TARGETS,
    CombinationInputs,
    CombinationResult,
    jsonable,
)

#: Days per block when accumulating per-day Gram matrices (bounds the [T, K, S] copies).
_GRAM_BLOCK = 256


@dataclass
class DynamicLinearConfig:
    """Dynamic linear model (and its optuna search space).

    Attributes:
        window: trailing days of labels used per fit.
        min_periods: fewest usable days in a window (``None`` → ``window``): earlier days get NaN.
        n_select: most factors in each day's regression.
        icir_threshold: minimum |ICIR| (Pearson IC mean / std over the window).
        ridge: ridge epsilon, relative to the mean diagonal of the window's Gram matrix.
        target: regression target, ``zscore`` | ``rank`` | ``raw`` per-day transform of the label.
        n_trials: optuna trials on the validation IC (0 → use the values above).
        seed: TPE sampler seed.
        window_range / n_select_range / icir_threshold_range: optuna search space.
        progress: show a tqdm bar over optuna trials.
    """

    window: int = 60
    min_periods: int | None = None
    n_select: int = 10
    icir_threshold: float = 0.0
    ridge: float = 1e-6
    target: str = "zscore"
    n_trials: int = 10
    seed: int = 0
    window_range: tuple[int, int] = (20, 120)
    n_select_range: tuple[int, int] = (1, 20)
    icir_threshold_range: tuple[float, float] = (0.0, 1.0)
    progress: bool = True

    def __post_init__(self) -> None:
        if self.window < 2:
            raise ValueError(f"window must be >= 2 (ICIR needs two days), got {self.window}")
        if self.min_periods is not None and not 2 <= self.min_periods <= self.window:
            raise ValueError(
                f"min_periods must be in [2, window={self.window}], got {self.min_periods}"
            )
        if self.n_select < 1:
            raise ValueError(f"n_select must be >= 1, got {self.n_select}")
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {self.target!r}")
        if self.ridge < 0:
            raise ValueError(f"ridge must be >= 0, got {self.ridge}")


def fit_windows(
    T: int,
    horizon: int,
    window: int,
    *,
    min_periods: int | None = None,
    shift: int | None = None,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Label window used to predict each day: ``(start, end, ok)``, each ``[T]``.

    Day ``t`` fits on label days ``[start[t], end[t])`` with ``end[t] = t - shift + 1`` (so the
    last label day is ``t - shift``) and ``start[t] = max(0, end[t] - window)``; ``ok[t]`` says
    the window has at least ``min_periods`` days. ``shift`` defaults to ``horizon + 1``; smaller
    values leak future labels and exist only so tests can prove the leak is detectable.
    """
    shift = horizon + 1 if shift is None else int(shift)
    if shift < 0:
        raise ValueError(f"shift must be >= 0, got {shift}")
    min_periods = window if min_periods is None else int(min_periods)
    t = torch.arange(T, device=device)
    end = (t - shift + 1).clamp(0, T)
    start = (end - window).clamp_min(0)
    ok = (end - start) >= min_periods
    return start, end, ok


def _window_sum(cum: torch.Tensor, start: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
    """Sum over days ``[start, end)`` from a cumulative sum ``cum`` with a leading zero row."""
    return cum[end] - cum[start]


def _cumsum0(x: torch.Tensor) -> torch.Tensor:
    """Cumulative sum over dim 0 in float64 with a zero row prepended (``[T+1, ...]``)."""
    x = x.to(torch.float64)
    zero = torch.zeros((1, *x.shape[1:]), dtype=x.dtype, device=x.device)
    return torch.cat([zero, torch.cumsum(x, dim=0)], dim=0)


class DynamicLinearState:
    """Per-day statistics computed once per (inputs, target) and shared by optuna trials."""

    def __init__(self, inputs: CombinationInputs, target: str) -> None:
        self.inputs = inputs
        z = inputs.z  # [K, T, S]
        yt = inputs.target(target)  # [T, S]
        m = ~torch.isnan(yt)
        self.x0 = torch.nan_to_num(z, nan=0.0)  # NaN → 0 after z-scoring (neutral exposure)
        self.has_x = (~torch.isnan(z)).any(dim=0)  # [T, S]
        y0 = torch.where(m, yt, torch.zeros_like(yt))
        K, T, _ = z.shape
        gram = torch.empty((T, K, K), dtype=torch.float64, device=z.device)
        xy = torch.empty((T, K), dtype=torch.float64, device=z.device)
        for b0 in range(0, T, _GRAM_BLOCK):
            sl = slice(b0, min(T, b0 + _GRAM_BLOCK))
            xb = self.x0[:, sl].permute(1, 0, 2) * m[sl].unsqueeze(1)  # [B, K, S]
            gram[sl] = torch.bmm(xb, xb.transpose(1, 2)).to(torch.float64)
            xy[sl] = torch.einsum("bks,bs->bk", xb, y0[sl]).to(torch.float64)
        self.gram_cum = _cumsum0(gram)  # [T+1, K, K]
        self.xy_cum = _cumsum0(xy)  # [T+1, K]
        ic = inputs.factor_ic.T  # [T, K]
        ric = inputs.factor_rank_ic.T
        self.ic_cum = _cumsum0(torch.nan_to_num(ic))
        self.ic2_cum = _cumsum0(torch.nan_to_num(ic) ** 2)
        self.ic_n_cum = _cumsum0((~torch.isnan(ic)).to(torch.float64))
        self.ric_cum = _cumsum0(torch.nan_to_num(ric))
        self.ric_n_cum = _cumsum0((~torch.isnan(ric)).to(torch.float64))

    def trailing_stats(
        self, start: torch.Tensor, end: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``[T, K]`` trailing mean IC, ICIR and mean RankIC over each day's window."""
        n = _window_sum(self.ic_n_cum, start, end)
        s1 = _window_sum(self.ic_cum, start, end)
        s2 = _window_sum(self.ic2_cum, start, end)
        nan = torch.full_like(s1, float("nan"))
        mean = torch.where(n > 0, s1 / n.clamp_min(1), nan)
        var = (s2 - n * mean * mean) / (n - 1).clamp_min(1)
        std = torch.sqrt(var.clamp_min(0))
        icir = torch.where((n > 1) & (std > 0), mean / std, nan)
        rn = _window_sum(self.ric_n_cum, start, end)
        rmean = torch.where(rn > 0, _window_sum(self.ric_cum, start, end) / rn.clamp_min(1), nan)
        return mean, icir, rmean

    def select(
        self, start: torch.Tensor, end: torch.Tensor, n_select: int, icir_threshold: float
    ) -> torch.Tensor:
        """``[T, K]`` bool: factors chosen for each day (sign-consistent, |ICIR| ≥ threshold)."""
        mean, icir, rmean = self.trailing_stats(start, end)
        eligible = (
            torch.isfinite(rmean)
            & torch.isfinite(icir)
            & (icir.abs() >= icir_threshold)
            & (torch.sign(mean) == torch.sign(rmean))
            & (rmean != 0)
        )
        score = torch.where(eligible, rmean.abs(), torch.full_like(rmean, -1.0))
        k = min(int(n_select), score.shape[1])
        # Stable tie-break on factor position: sort descending score, ascending index.
        order = torch.sort(score, dim=1, descending=True, stable=True).indices[:, :k]
        sel = torch.zeros_like(eligible)
        sel.scatter_(1, order, True)
        return sel & eligible

    def solve(
        self, start: torch.Tensor, end: torch.Tensor, sel: torch.Tensor, ridge: float
    ) -> torch.Tensor:
        """``[T, K]`` ridge-OLS weights on the selected factors (0 elsewhere) for every day."""
        G = _window_sum(self.gram_cum, start, end)  # [T, K, K]
        b = _window_sum(self.xy_cum, start, end)  # [T, K]
        selp = sel.to(torch.float64)
        pair = selp.unsqueeze(2) * selp.unsqueeze(1)
        G = G * pair
        diag = torch.diagonal(G, dim1=1, dim2=2)
        nsel = selp.sum(dim=1).clamp_min(1)
        scale = (diag.sum(dim=1) / nsel).clamp_min(1e-12)  # mean selected diagonal
        eps = ridge * scale + 1e-12
        add = torch.where(sel, eps.unsqueeze(1).expand_as(selp), torch.ones_like(selp))
        A = G + torch.diag_embed(add)
        w = torch.linalg.solve(A, (b * selp).unsqueeze(-1)).squeeze(-1)
        return w * selp


def dynamic_linear_weights(
    state: DynamicLinearState,
    *,
    window: int,
    n_select: int,
    icir_threshold: float,
    ridge: float = 1e-6,
    min_periods: int | None = None,
    shift: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``([T, K] weights, [T] ok)``: per-day weights (NaN rows where no fit is possible)."""
    inputs = state.inputs
    start, end, ok = fit_windows(
        inputs.T, inputs.horizon, window, min_periods=min_periods, shift=shift,
        device=inputs.values.device,
    )
    sel = state.select(start, end, n_select, icir_threshold)
    w = state.solve(start, end, sel, ridge)
    ok = ok & sel.any(dim=1) & torch.isfinite(w).all(dim=1)
    w = torch.where(ok.unsqueeze(1), w, torch.full_like(w, float("nan")))
    return w, ok


def predict_linear(x0: torch.Tensor, has_x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``[T, S]`` signal ``Σ_k w[t, k] · x0[k, t, s]`` (NaN where no factor or no weights)."""
    sig = torch.einsum("tk,kts->ts", w.to(torch.float32), x0)
    return torch.where(has_x, sig, torch.full_like(sig, float("nan")))


def fit_dynamic_linear(
    inputs: CombinationInputs,
    config: DynamicLinearConfig,
    state: DynamicLinearState | None = None,
    shift: int | None = None,
) -> CombinationResult:
    """Run the dynamic linear model with fixed hyper-parameters (no tuning).

    ``shift`` overrides the label lag (default ``horizon + 1``) — for leakage tests only.
    """
    state = state if state is not None else DynamicLinearState(inputs, config.target)
    w, ok = dynamic_linear_weights(
        state,
        window=config.window,
        n_select=config.n_select,
        icir_threshold=config.icir_threshold,
        ridge=config.ridge,
        min_periods=config.min_periods,
        shift=shift,
    )
    signal = predict_linear(state.x0, state.has_x, w)
    t0, t1 = inputs.splits.test
    wt = w[t0:t1][ok[t0:t1]]
    chosen = (wt != 0) & torch.isfinite(wt)
    params = {
        "window": config.window,
        "min_periods": config.min_periods,
        "n_select": config.n_select,
        "icir_threshold": config.icir_threshold,
        "ridge": config.ridge,
        "target": config.target,
    }
    model = {
        "method": "dynamic_linear",
        "names": inputs.names,
        "horizon": inputs.horizon,
        "label_shift": inputs.horizon + 1 if shift is None else int(shift),
        "params": params,
        "test_mean_weight": jsonable(
            torch.nan_to_num(wt).mean(dim=0) if len(wt) else torch.zeros(inputs.K)
        ),
        "test_selection_rate": jsonable(
            chosen.to(torch.float32).mean(dim=0) if len(wt) else torch.zeros(inputs.K)
        ),
        "last_weights": jsonable(w[-1] if bool(ok[-1]) else torch.zeros(inputs.K)),
        "config": jsonable(asdict(config)),
    }
    used = (torch.nan_to_num(w) != 0).any(dim=0)
    return CombinationResult(
        method="dynamic_linear",
        signal=signal,
        model=model,
        metrics=inputs.metrics(signal),
        params=params,
        selected=[n for n, u in zip(inputs.names, used.tolist()) if u],
        daily_weights=w.to(torch.float32),
    )


def suggest_dynamic_linear(trial: Any, config: DynamicLinearConfig, K: int) -> dict[str, Any]:
    """Optuna search space for :class:`DynamicLinearConfig`."""
    lo, hi = config.n_select_range
    hi = max(1, min(hi, K))
    lo = max(1, min(lo, hi))
    w_lo, w_hi = config.window_range
    return {
        "window": trial.suggest_int("window", max(2, w_lo), max(2, w_hi)),
        "n_select": trial.suggest_int("n_select", lo, hi),
        "icir_threshold": trial.suggest_float("icir_threshold", *config.icir_threshold_range),
    }
