"""The embedded market simulator: the project's default, seed-deterministic data source.

A synthetic equity market realistic enough that mining methods have something real to find and a
researcher can check that they found it. Full model, equations and the target-IC derivation:
``docs/simulator.md``. In short, for stock ``i`` on day ``t+1``::

    r[i,t+1] = mu[i,t+1] + beta_i * f[t+1] + gamma_i * g[sector(i), t+1] + sigma[i,t+1] * eps[i,t+1]

- ``f`` (market), ``g`` (sectors) and the idiosyncratic part each have GARCH(1,1) variance and
  Student-t shocks scaled to unit variance (fat tails, volatility clustering);
- ``mu`` is the *planted alpha* term: every planted formula (written in :mod:`alphaminer.expr`) is
  evaluated causally on the adjusted history up to day ``t``, z-scored across the universe and
  mixed so that each formula's expected daily cross-sectional IC against the next day's return
  equals its ``strength`` (its ``target_ic``) in the one-day model (``alpha_horizon=1``). By
  default (``alpha_kernel="flat"``, ``alpha_horizon=20``) every day's mix feeds the next ``H``
  days' expected returns equally, so the exact known-at-t part of the ``H``-day forward return is
  ``WMA(mix, Hd)`` and the ground-truth predictor is ``Σ_k c_k WMA(CSZScore(f_k), Hd)`` (the
  planted table's ``oracle_formula``); ``alpha_kernel="exponential"`` keeps the older mode where
  lagged mixes decay and are orthogonalised to today's formulas;
- log-volume is AR(1) and loads on the standardised ``|return|``; OHLC and vwap are generated
  around the close-to-close move so that ``low <= open, close, vwap <= high``;
- listings, delistings, suspensions (flat OHLC at the previous close, zero volume) and splits
  (``adj_factor``) exercise the cleaning path.

Determinism and no look-ahead: static per-stock draws come from one generator and each day's
shocks from a generator seeded by ``(seed, day)``; nothing drawn depends on ``n_days``, so a
longer simulation reproduces a shorter one exactly on their common days.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from alphaminer.progress import progress

log = logging.getLogger(__name__)

#: Order of the features in the evaluation window (the panel's base features).
SIM_FEATURES: tuple[str, ...] = ("open", "high", "low", "close", "volume", "vwap", "amount")
_STREAM_STATIC = 0
_STREAM_DAY = 1
_DAYS_PER_YEAR = 252.0
#: Cap on q = s' R^-1 s, the share of next-day cross-sectional variance the alphas explain.
_Q_MAX = 0.5


@dataclass(frozen=True)
class PlantedAlpha:
    """A formula whose cross-sectional z-score drives next-day expected returns.

    Attributes:
        formula: expression in the project's language, e.g. ``"Neg(TsReturn(close,5d))"``.
        strength: the formula's target daily IC against the next day's return (signed).
        name: short label (defaults to the formula).
        half_life: days; how long this formula's past mixes keep feeding expected returns
            (see ``SimulatorConfig.alpha_horizon``). ``None`` → the config's
            ``alpha_half_life``; ``0`` → a one-day effect for this formula.
    """

    formula: str
    strength: float
    name: str = ""
    half_life: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.formula, str) or not self.formula.strip():
            raise ValueError(
                f"PlantedAlpha.formula must be a non-empty string, got {self.formula!r}")
        if not math.isfinite(float(self.strength)) or abs(float(self.strength)) >= 0.5:
            raise ValueError(
                f"PlantedAlpha.strength must be finite with |strength| < 0.5 (it is a daily IC); "
                f"got {self.strength!r} for {self.formula!r}"
            )
        if self.half_life is not None and not (
                math.isfinite(float(self.half_life)) and float(self.half_life) >= 0):
            raise ValueError(f"PlantedAlpha.half_life must be None or >= 0 (days); got "
                             f"{self.half_life!r} for {self.formula!r}")
        if not self.name:
            object.__setattr__(self, "name", self.formula)


#: The built-in planted set: four price–volume signals of 2–4 operators with 1-day ICs of
#: 0.025–0.04 (findable, not trivial). See docs/simulator.md for their economic story. The
#: short-term reversal fades fast (half-life 1 day); the others persist (config half-life).
DEFAULT_PLANTED: tuple[PlantedAlpha, ...] = (
    PlantedAlpha("Neg(TsReturn(close,5d))", 0.016, "reversal_5d", half_life=0.0),
    # Corr(close,volume,10d) moves slowly: with persistence on (alpha_horizon > 1) a long
    # half-life would accumulate to an unrealistic 20-day IC (~0.3), hence a short one.
    PlantedAlpha("Neg(Corr(close,volume,10d))", 0.012, "price_volume_corr_10d", half_life=3.0),
    PlantedAlpha("CSRank(Div(Sub(close,open),Sub(high,low)))", 0.010, "close_location"),
    PlantedAlpha("Neg(TsZScore(Div(vwap,close),20d))", 0.012, "vwap_gap_20d"),
)


@dataclass
class SimulatorConfig:
    """Parameters of :func:`simulate_market` (all volatilities are daily, in log-return units).

    Market structure:
        n_stocks: instruments ever simulated (late listers included). n_days: trading days
        (business days from ``start_date``). n_sectors: sector factors; stocks are assigned
        uniformly at random.
    Returns:
        market_drift / market_vol: market factor mean and unconditional volatility;
        sector_vol: unconditional sector-factor volatility; idio_vol: median unconditional
        idiosyncratic volatility, log-normally dispersed across stocks by ``idio_vol_dispersion``;
        beta_mean/beta_sd, sector_loading_sd: factor loadings (normal, clipped to [0.1, 2.5]);
        garch_alpha / garch_persistence: GARCH(1,1) ``alpha`` and ``alpha + beta`` (shared by the
        market, sector and idiosyncratic processes); tail_df: Student-t degrees of freedom (> 2).
    Prices and intraday:
        price_min / price_max: initial prices are log-uniform in this range; overnight_share:
        share of the close-to-close move realised at the open; overnight_noise / range_scale:
        extra open noise and the high–low excursion, in units of the stock's volatility.
    Volume:
        amount_median / amount_dispersion: base daily traded amount (log-normal across stocks);
        volume_ar: AR(1) coefficient of log volume; volume_abs_return: loading of log volume
        on the standardised ``|return|``; volume_noise: sd of the log-volume innovation.
    Life cycle:
        late_listing_frac: share of stocks listing after the start, on a day uniform in
        ``[1, listing_horizon_days]``; delisting_rate: annual delisting hazard;
        suspension_rate: daily probability a trading stock is suspended; suspension_mean_days:
        mean suspension length; split_rate: annual split hazard while the raw price is at least
        ``split_min_price``; split ratios are 2:1 (80 %) or 3:1.
    Universe:
        seasoning_days: a stock joins the universe after this many listed days;
        universe_size: ``None`` → every seasoned listed stock; an integer → an index-like
        membership: the ``universe_size`` seasoned stocks with the largest trailing
        ``universe_rebalance_days``-day mean amount, reselected every ``universe_rebalance_days``
        days (a delisted member leaves at once).
    Planted alphas:
        planted: ``None`` → :data:`DEFAULT_PLANTED`; ``[]`` → no planted signal.
        alpha_horizon: ``H``, days over which a planted signal keeps feeding expected returns.
            ``1`` → a one-day effect (the original model, reproduced exactly, either kernel).
        alpha_kernel: how the mix computed on day t feeds days t+1 … t+H (H > 1):
            ``"flat"`` (default) → equally, ``mu[t+1] = lam_t · Σ_{j=1..H} mix[t+1-j] / H`` with
            no orthogonalisation, so the exact predictor of the H-day return is
            ``WMA(CSZScore(formula), Hd)`` mixed (``planted.oracle_formula``);
            ``"exponential"`` → day t+1 at full weight and days t+2 … t+H with weights
            ``0.5 ** ((j - 1) / alpha_half_life)``, the lagged part made orthogonal to today's
            formulas so each formula's 1-day IC stays its ``strength``.
        alpha_half_life: half-life in days of the exponential kernel's lagged weights (> 0).
        progress: show a tqdm bar over days.
    """

    n_stocks: int = 300
    n_days: int = 2520
    start_date: str = "2012-01-04"
    seed: int = 0
    n_sectors: int = 10
    # returns
    market_drift: float = 0.0003
    market_vol: float = 0.011
    sector_vol: float = 0.007
    idio_vol: float = 0.018
    idio_vol_dispersion: float = 0.3
    beta_mean: float = 1.0
    beta_sd: float = 0.3
    sector_loading_sd: float = 0.25
    garch_alpha: float = 0.08
    garch_persistence: float = 0.97
    tail_df: float = 5.0
    # prices and intraday
    price_min: float = 8.0
    price_max: float = 120.0
    overnight_share: float = 0.3
    overnight_noise: float = 0.25
    range_scale: float = 0.6
    # volume
    amount_median: float = 3e7
    amount_dispersion: float = 0.8
    volume_ar: float = 0.7
    volume_abs_return: float = 0.35
    volume_noise: float = 0.25
    # life cycle
    late_listing_frac: float = 0.1
    listing_horizon_days: int = 2000
    delisting_rate: float = 0.02
    suspension_rate: float = 0.001
    suspension_mean_days: float = 5.0
    split_rate: float = 0.08
    split_min_price: float = 40.0
    # universe
    seasoning_days: int = 20
    universe_size: int | None = None
    universe_rebalance_days: int = 63
    # planted alphas
    planted: list[PlantedAlpha] | None = None
    alpha_horizon: int = 20
    alpha_kernel: str = "flat"
    alpha_half_life: float = 10.0
    progress: bool = True

    def __post_init__(self) -> None:
        def need(ok: bool, what: str) -> None:
            if not ok:
                raise ValueError(f"SimulatorConfig: {what}")

        for name in ("n_stocks", "n_days", "n_sectors", "listing_horizon_days",
                     "universe_rebalance_days", "alpha_horizon"):
            v = getattr(self, name)
            need(isinstance(v, int | np.integer) and v >= 1,
                 f"{name} must be an int >= 1, got {v!r}")
        need(self.n_stocks >= 2, f"n_stocks must be >= 2, got {self.n_stocks}")
        need(isinstance(self.seed, int | np.integer) and self.seed >= 0,
             f"seed must be a non-negative int, got {self.seed!r}")
        try:
            pd.Timestamp(self.start_date)
        except (ValueError, TypeError) as e:
            raise ValueError(
                f"SimulatorConfig: start_date {self.start_date!r} is not a date") from e
        for name in ("market_vol", "sector_vol", "idio_vol", "price_min", "amount_median",
                     "suspension_mean_days", "split_min_price"):
            v = float(getattr(self, name))
            need(math.isfinite(v) and v > 0, f"{name} must be > 0, got {v!r}")
        need(self.price_max >= self.price_min,
             f"price_max ({self.price_max}) must be >= price_min ({self.price_min})")
        for name in ("idio_vol_dispersion", "beta_sd", "sector_loading_sd", "overnight_noise",
                     "range_scale", "amount_dispersion", "volume_noise", "volume_abs_return",
                     "seasoning_days"):
            v = float(getattr(self, name))
            need(math.isfinite(v) and v >= 0, f"{name} must be >= 0, got {v!r}")
        for name in ("late_listing_frac", "delisting_rate", "suspension_rate", "split_rate",
                     "overnight_share"):
            v = float(getattr(self, name))
            need(0.0 <= v <= 1.0, f"{name} must be in [0, 1], got {v!r}")
        need(0.0 <= self.volume_ar < 1.0, f"volume_ar must be in [0, 1), got {self.volume_ar}")
        need(0.0 <= self.garch_alpha <= self.garch_persistence < 1.0,
             f"need 0 <= garch_alpha <= garch_persistence < 1, got "
             f"{self.garch_alpha}, {self.garch_persistence}")
        need(math.isfinite(float(self.alpha_half_life)) and self.alpha_half_life > 0,
             f"alpha_half_life must be > 0 (days), got {self.alpha_half_life!r}")
        need(self.alpha_kernel in ("flat", "exponential"),
             f"alpha_kernel must be 'flat' or 'exponential', got {self.alpha_kernel!r}")
        need(self.tail_df > 2.0, f"tail_df must be > 2 (finite variance), got {self.tail_df}")
        need(abs(self.market_drift) < 0.01, f"market_drift is daily; got {self.market_drift}")
        if self.universe_size is not None:
            need(isinstance(self.universe_size, int | np.integer) and self.universe_size >= 2,
                 f"universe_size must be None or an int >= 2, got {self.universe_size!r}")
        if self.planted is not None:
            items = []
            for k, item in enumerate(self.planted):
                p = PlantedAlpha(**item) if isinstance(item, dict) else item
                if not isinstance(p, PlantedAlpha):
                    raise TypeError(
                        f"SimulatorConfig.planted[{k}] must be a PlantedAlpha or a dict with "
                        f"formula/strength/name, got {type(p).__name__}")
                items.append(p)
            names = [p.name for p in items]
            dup = sorted({n for n in names if names.count(n) > 1})
            need(not dup, f"planted alpha names must be unique; duplicated: {dup}")
            strengths = np.array([p.strength for p in items], dtype=float)
            need(float((strengths**2).sum()) < _Q_MAX,
                 f"sum of squared planted strengths must be < {_Q_MAX} "
                 f"(they are daily ICs), got {float((strengths**2).sum()):.3f}")
            self.planted = items

    @property
    def planted_alphas(self) -> list[PlantedAlpha]:
        return list(DEFAULT_PLANTED) if self.planted is None else list(self.planted)

    @property
    def flat_persistence(self) -> bool:
        """True when the flat kernel is active (``alpha_kernel="flat"`` and ``H > 1``)."""
        return self.alpha_kernel == "flat" and self.alpha_horizon > 1

    def oracle_formula(self, formula: str) -> str:
        """The exact ground-truth predictor of the ``H``-day return contributed by ``formula``.

        Flat kernel with ``H > 1``: ``WMA(CSZScore(formula),Hd)`` (a mix feeds the next H days
        equally, so its known share of the H-day return has weights 1..H, newest largest — the
        ``WMA`` operator); otherwise the formula itself.
        """
        if self.flat_persistence:
            return f"WMA(CSZScore({formula}),{self.alpha_horizon}d)"
        return formula

    @property
    def alpha_lag_weights(self) -> np.ndarray:
        """``[H-1, K]``: ``w[j-2, k] = 0.5 ** ((j-1) / half_life_k)``, j = 2 … H.

        The weight with which formula k's share of the mix computed on day ``t+1-j`` feeds day
        ``t+1`` (``w_1 = 1``, the fresh mix, is implicit); no rows when ``alpha_horizon == 1``
        or with the flat kernel (which weights every lag equally, see :func:`_flat_alpha_term`).
        """
        if self.alpha_kernel == "flat":
            return np.zeros((0, len(self.planted_alphas)))
        j = np.arange(2, self.alpha_horizon + 1, dtype=float)[:, None]
        hl = np.array([self.alpha_half_life if a.half_life is None else a.half_life
                       for a in self.planted_alphas], dtype=float)[None, :]
        return np.where(hl > 0, 0.5 ** ((j - 1.0) / np.where(hl > 0, hl, 1.0)), 0.0)


@dataclass
class SimulatedMarket:
    """Result of :func:`simulate_market`.

    Attributes:
        raw: long frame, one row per existing (``datetime``, ``instrument``), sorted, with
            unadjusted ``open high low close volume vwap amount``, ``adj_factor``,
            ``is_suspended`` and ``in_universe``.
        planted: ground truth, one row per planted alpha: ``name, formula, oracle_formula,
            strength, target_ic, lookback, realised_ic_1d, realised_icir_1d, realised_ic_20d``
            (whole sample; ``target_ic`` is NaN for the flat kernel with H > 1, where the 1-day
            IC has no closed form — see docs/simulator.md).
        meta: configuration, counts (rows, listings, delistings, splits, suspended rows),
            per-instrument sector/beta, the split table and calibration diagnostics.
    """

    raw: pd.DataFrame
    planted: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)


# ============================================================================ planted signals
class _PlantedEvaluator:
    """Evaluates the planted formulas on a trailing window with :mod:`alphaminer.expr`."""

    def __init__(self, alphas: list[PlantedAlpha], instruments: pd.Index) -> None:
        from alphaminer.expr import max_lookback, parse

        self.alphas = alphas
        self.instruments = instruments
        self.exprs = []
        for a in alphas:
            try:
                self.exprs.append(parse(a.formula))
            except Exception as e:  # re-raise naming the planted alpha
                raise ValueError(
                    f"planted alpha {a.name!r}: cannot parse {a.formula!r}: {e}") from e
        self.lookbacks = [int(max_lookback(e)) for e in self.exprs]
        self.window = max(self.lookbacks, default=0) + 1
        # formulas grouped by lookback: each group runs on just the rows it needs
        self.groups: dict[int, list[int]] = {}
        for k, lb in enumerate(self.lookbacks):
            self.groups.setdefault(lb, []).append(k)

    def __call__(self, values: torch.Tensor, dates: pd.DatetimeIndex, observed: torch.Tensor,
                 universe: torch.Tensor, tradable: torch.Tensor) -> np.ndarray:
        """``values [W, S, F]`` (W = :attr:`window`) → today's factor values ``[K, S]``."""
        from alphaminer.expr import Evaluator
        from alphaminer.panel import Panel

        out = np.empty((len(self.exprs), values.shape[1]))
        for lb, idx in self.groups.items():
            sl = slice(self.window - lb - 1, self.window)
            panel = Panel(values=values[sl], dates=dates[sl], instruments=self.instruments,
                          features=SIM_FEATURES, observed=observed[sl], universe=universe[sl],
                          tradable=tradable[sl])
            # a fresh evaluator per day: its sub-expression cache must never outlive the window
            vals = Evaluator(panel, cache_bytes=1 << 24).evaluate_many(
                [self.exprs[k] for k in idx])
            out[idx] = vals[:, -1].to(torch.float64).numpy()
        return out


# ============================================================================ helpers
def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


def _t_shocks(rng: np.random.Generator, df: float, size: int | tuple[int, ...]) -> np.ndarray:
    """Student-t draws scaled to unit variance."""
    return rng.standard_t(df, size=size) * math.sqrt((df - 2.0) / df)


def _expected_abs_t(df: float) -> float:
    """E|X| for a unit-variance Student-t X (centres the volume's |return| loading)."""
    return (math.sqrt((df - 2.0) / df) * 2.0 * math.sqrt(df) * math.exp(
        math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / (math.sqrt(math.pi) * (df - 1.0)))


@dataclass
class _Static:
    sector: np.ndarray
    beta: np.ndarray
    gamma: np.ndarray
    idio_var: np.ndarray       # unconditional idiosyncratic variance
    garch_beta: float
    log_p0: np.ndarray
    log_v0: np.ndarray         # base log share volume
    list_day: np.ndarray
    delist_day: np.ndarray     # first day with no row (may exceed n_days)


def _draw_static(cfg: SimulatorConfig) -> _Static:
    """Per-stock parameters; draw order and sizes never depend on ``n_days``."""
    rng = _rng(cfg.seed, _STREAM_STATIC)
    S = cfg.n_stocks
    sector = rng.integers(0, cfg.n_sectors, size=S)
    beta = np.clip(rng.normal(cfg.beta_mean, cfg.beta_sd, size=S), 0.1, 2.5)
    gamma = np.clip(rng.normal(1.0, cfg.sector_loading_sd, size=S), 0.1, 2.5)
    idio_sd = cfg.idio_vol * np.exp(cfg.idio_vol_dispersion * rng.standard_normal(S))
    log_p0 = rng.uniform(math.log(cfg.price_min), math.log(cfg.price_max), size=S)
    log_amt = math.log(cfg.amount_median) + cfg.amount_dispersion * rng.standard_normal(S)
    late = rng.random(S) < cfg.late_listing_frac
    late_day = rng.integers(1, cfg.listing_horizon_days + 1, size=S)
    list_day = np.where(late, late_day, 0)
    p_delist = 1.0 - (1.0 - cfg.delisting_rate) ** (1.0 / _DAYS_PER_YEAR)
    never = np.full(S, np.iinfo(np.int64).max // 4)
    life = rng.geometric(p_delist, size=S) if p_delist > 0 else never
    # at least 60 listed days, so every delisted stock has a usable history
    delist_day = list_day + np.maximum(life, 60)
    return _Static(sector=sector, beta=beta, gamma=gamma, idio_var=idio_sd**2,
                   garch_beta=cfg.garch_persistence - cfg.garch_alpha, log_p0=log_p0,
                   log_v0=log_amt - log_p0, list_day=list_day.astype(np.int64),
                   delist_day=delist_day.astype(np.int64))


def _expected_cs_noise_var(U: np.ndarray, st: _Static, *, f2: float, g_var: np.ndarray,
                           idio_var: np.ndarray, n_sectors: int) -> float:
    """E[cross-sectional variance (ddof=1) over ``U`` of next day's non-alpha return].

    ``f2 = E[f^2]`` of the market factor, ``g_var`` the sector variances, ``idio_var`` the
    conditional idiosyncratic variances (all known at the end of today: GARCH is predictable).
    """
    n = int(U.sum())
    beta, gamma, sec = st.beta[U], st.gamma[U], st.sector[U]
    market = f2 * beta.var(ddof=1)
    gsum = np.bincount(sec, weights=gamma, minlength=n_sectors)
    sector = ((gamma**2 * g_var[sec]).sum() - (g_var * gsum**2).sum() / n) / (n - 1)
    return float(market + sector + idio_var[U].mean())


def _alpha_term(z: np.ndarray, U: np.ndarray, s: np.ndarray, noise_var: float,
                stats: dict[str, int],
                lagged: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Next-day expected return ``mu = lam · (Z R^-1 s + L⊥)`` on the universe (0 elsewhere).

    ``Z`` are the cross-sectional z-scores (NaN → 0) and ``R = Z'Z/(n-1)``; ``L⊥`` is ``lagged``
    (the weighted earlier mixes, persistence) with its projection on today's z-scores removed, so
    ``Cov_cs(z_k, mu) = lam · s_k`` exactly; ``lam² = D / (1 - q - v)`` with ``q = s'R^-1 s``,
    ``v = Var_cs(L⊥)`` and ``D`` the expected non-alpha cross-sectional variance makes the
    expected total variance ``lam²`` and hence each formula's expected IC ``s_k``
    (docs/simulator.md, "Target IC"). Returns ``(mu, b)`` with ``b[k] = c_k z_k`` (formula k's
    share of the unscaled fresh mix ``Z R^-1 s``, 0 off the universe); later days receive them,
    weighted per formula, as ``lagged``.
    """
    S = z.shape[1]
    mu = np.zeros(S)
    b = np.zeros((len(s), S))
    n = int(U.sum())
    K = len(s)
    if K == 0 or n < K + 3:
        stats["days_without_alpha"] += 1
        return mu, b
    x = z[:, U]
    valid = np.isfinite(x)
    cnt = valid.sum(axis=1, keepdims=True)
    xm = np.where(valid, x, 0.0).sum(axis=1, keepdims=True) / np.maximum(cnt, 1)
    dev = np.where(valid, x - xm, 0.0)
    sd = np.sqrt((dev**2).sum(axis=1, keepdims=True) / np.maximum(cnt - 1, 1))
    ok = (cnt[:, 0] >= 3) & (sd[:, 0] > 0)
    Z = np.where(ok[:, None], dev / np.where(sd > 0, sd, 1.0), 0.0)  # [K, n], NaN → 0
    if not ok.any():
        stats["days_without_alpha"] += 1
        return mu, b
    R = Z @ Z.T / (n - 1)
    R[~ok, :] = 0.0
    R[:, ~ok] = 0.0
    R[~ok, ~ok] = 1.0
    s_eff = np.where(ok, s, 0.0)
    c = np.linalg.lstsq(R + 1e-9 * np.eye(K), s_eff, rcond=None)[0]
    q = float(s_eff @ c)
    if not (0.0 <= q < _Q_MAX):
        stats["days_capped"] += 1
        c = c * math.sqrt(_Q_MAX / q) if q > 0 else np.zeros(K)
        q = min(max(q, 0.0), _Q_MAX)
    fresh = c @ Z
    b[:, U] = c[:, None] * Z
    if lagged is None:  # alpha_horizon == 1: the one-day model, bit for bit
        lam = math.sqrt(noise_var / (1.0 - q))
        mu[U] = lam * fresh
        return mu, b
    x = lagged[U] - lagged[U].mean()
    Zo = Z[ok]  # rows have mean zero, so removing them keeps x centred
    coef = np.linalg.lstsq(Zo @ Zo.T + 1e-9 * np.eye(len(Zo)), Zo @ x, rcond=None)[0]
    x = x - coef @ Zo
    v = float(x @ x) / (n - 1)
    room = _Q_MAX - q
    if v > room:  # persistence may not push the alpha share of variance past _Q_MAX
        stats["days_lag_capped"] += 1
        x = x * math.sqrt(max(room, 0.0) / v)
        v = max(room, 0.0)
    lam = math.sqrt(noise_var / (1.0 - q - v))
    mu[U] = lam * (fresh + x)
    return mu, b


def _flat_alpha_term(mix_ring: np.ndarray, today: int, U: np.ndarray,
                     noise_var: float) -> np.ndarray:
    """Flat-kernel expected return for tomorrow: ``mu = lam · (M − mean_U M)`` on ``U``.

    ``mix_ring [H, S]`` holds the unscaled mixes ``a(s) = Σ_k c_k(s) z_k(s)`` of the last H
    days (slot ``today`` is day t's; zeros before the start), so ``M = Σ_j a(t+1-j) / H`` gives
    every day's mix the same weight on each of the next H days. Today's mix has cross-sectional
    variance ``q_t = sᵀR⁻¹s`` (the one-day model's alpha share of variance, after any cap);
    ``lam² = D q_t / ((1 − q_t) V)`` with ``V = Var_cs(M)`` keeps that share:
    ``lam²V / (lam²V + D) = q_t``.
    """
    mu = np.zeros(mix_ring.shape[1])
    n = int(U.sum())
    if n < 3:
        return mu
    a = mix_ring[today, U]
    q = float(a @ a) / (n - 1)  # a is centred over U (z-scores are)
    M = mix_ring[:, U].mean(axis=0)
    M = M - M.mean()
    V = float(M @ M) / (n - 1)
    if q <= 0.0 or V <= 0.0:
        return mu
    mu[U] = math.sqrt(noise_var * q / ((1.0 - q) * V)) * M
    return mu


# ============================================================================ main entry point
def simulate_market(config: SimulatorConfig | None = None, **overrides: Any) -> SimulatedMarket:
    """Simulate a market (see the module docstring and ``docs/simulator.md``).

    Args:
        config: a :class:`SimulatorConfig`; ``None`` → defaults.
        **overrides: field overrides (``simulate_market(n_stocks=50, n_days=300)``), applied on
            top of ``config``; this is how ``load_source(kind="simulator", simulator={...})``
            passes its parameters.
    """
    if config is None:
        config = SimulatorConfig(**overrides)
    elif overrides:
        config = SimulatorConfig(**{**asdict(config), **overrides})
    elif not isinstance(config, SimulatorConfig):
        raise TypeError(f"config must be a SimulatorConfig, got {type(config).__name__}")
    # the per-day tensors are tiny ([window, stocks]): intra-op threads only add overhead (and
    # spin badly on a loaded machine), so evaluate single-threaded and restore the setting after
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _simulate(config)
    finally:
        torch.set_num_threads(n_threads)


def _simulate(cfg: SimulatorConfig) -> SimulatedMarket:
    S, T, N_SEC = cfg.n_stocks, cfg.n_days, cfg.n_sectors
    st = _draw_static(cfg)
    width = max(4, len(str(S)))
    instruments = pd.Index([f"SIM{i + 1:0{width}d}" for i in range(S)], dtype=object)
    dates = pd.bdate_range(pd.Timestamp(cfg.start_date), periods=T)

    alphas = cfg.planted_alphas
    planted_eval = _PlantedEvaluator(alphas, instruments) if alphas else None
    K = len(alphas)
    strengths = np.array([a.strength for a in alphas], dtype=float)
    W = planted_eval.window if planted_eval is not None else 1

    # --- GARCH(1,1): var' = omega + a * var * eps^2 + b * var, omega = v_bar * (1 - a - b)
    a_g, b_g = cfg.garch_alpha, st.garch_beta
    one_m = 1.0 - a_g - b_g
    m_bar, g_bar, i_bar = cfg.market_vol**2, cfg.sector_vol**2, st.idio_var
    m_var, g_var, i_var = m_bar, np.full(N_SEC, g_bar), i_bar.copy()
    df = cfg.tail_df
    e_abs = _expected_abs_t(df)
    p_split = 1.0 - (1.0 - cfg.split_rate) ** (1.0 / _DAYS_PER_YEAR)
    p_resume = min(1.0, 1.0 / cfg.suspension_mean_days)

    # --- state
    latent = st.log_p0.copy()                 # log adjusted latent close
    obs_close = st.log_p0.copy()              # log adjusted observed (last traded) close
    log_vol_dev = np.zeros(S)                 # AR(1) deviation of log volume
    adj = np.ones(S)
    suspended = np.zeros(S, dtype=bool)
    member = np.zeros(S, dtype=bool)
    mu = np.zeros(S)
    amt_hist = np.full((cfg.universe_rebalance_days, S), np.nan)

    # --- outputs [T, S] (adjusted prices; raw = adjusted / adj_factor at the end)
    shape = (T, S)
    out = {k: np.full(shape, np.nan) for k in ("open", "high", "low", "close", "vwap")}
    out_vol = np.zeros(shape)
    out_adj = np.ones(shape)
    out_susp = np.zeros(shape, dtype=bool)
    out_univ = np.zeros(shape, dtype=bool)
    factors = np.full((K, T, S), np.nan, dtype=np.float32)
    splits: list[tuple[int, int, float]] = []
    stats = {"days_without_alpha": 0, "days_capped": 0, "days_lag_capped": 0}
    lag_w = cfg.alpha_lag_weights                 # [H-1, K]: w_2 … w_H per formula
    b_hist = np.zeros((len(lag_w), K, S))         # b_hist[m] = per-formula mix of day t - 1 - m
    flat_kernel = cfg.flat_persistence
    # flat kernel: ring buffer of the last H unscaled mixes, slot t % H holds day t's
    mix_ring = np.zeros((cfg.alpha_horizon if flat_kernel else 0, S))

    win_vals = torch.full((W, S, len(SIM_FEATURES)), float("nan"), dtype=torch.float32)
    win_obs = torch.zeros((W, S), dtype=torch.bool)
    win_univ = torch.zeros((W, S), dtype=torch.bool)
    win_trad = torch.zeros((W, S), dtype=torch.bool)
    # placeholder dates before the start keep the window's date axis strictly increasing
    pre = pd.bdate_range(end=dates[0] - pd.tseries.offsets.BDay(1), periods=W - 1) if W > 1 \
        else pd.DatetimeIndex([])
    all_dates = pre.append(dates)

    for t in progress(range(T), desc="simulating market", unit="day", disable=not cfg.progress,
                  mininterval=1.0):
        rng = _rng(cfg.seed, _STREAM_DAY, t)
        xi_m = float(_t_shocks(rng, df, 1)[0])
        xi_g = _t_shocks(rng, df, N_SEC)
        eps = _t_shocks(rng, df, S)
        nu = rng.standard_normal((4, S))
        w_vwap = rng.random(S)
        u_susp, u_split, u_ratio = rng.random((3, S))

        listed = (st.list_day <= t) & (t < st.delist_day)
        first_day = st.list_day == t

        # ---- universe (point in time: uses data up to yesterday)
        # stocks present at the start count as listed long before it
        seasoned = listed & ((st.list_day == 0) | (t - st.list_day >= cfg.seasoning_days))
        if cfg.universe_size is None:
            member = seasoned
        else:
            if t % cfg.universe_rebalance_days == 0:
                cnt = np.isfinite(amt_hist).sum(axis=0)
                trailing = np.nansum(amt_hist, axis=0) / np.maximum(cnt, 1)
                # before any history: the stock's base amount (known before the sample)
                score = np.where(cnt > 0, trailing, np.exp(st.log_v0 + st.log_p0))
                score = np.where(seasoned, score, -np.inf)
                top = np.argsort(-score, kind="stable")[: cfg.universe_size]
                member = np.zeros(S, dtype=bool)
                member[top] = True
                member &= seasoned
            member = member & listed

        # ---- returns (log, adjusted) for every stock; only listed ones are used
        f = cfg.market_drift + math.sqrt(m_var) * xi_m
        g = np.sqrt(g_var) * xi_g
        e = np.sqrt(i_var) * eps
        r = mu + st.beta * f + st.gamma * g[st.sector] + e
        total_sd = np.sqrt(st.beta**2 * m_var + st.gamma**2 * g_var[st.sector] + i_var)
        std_abs = np.abs(r - mu - st.beta * cfg.market_drift) / total_sd
        sd_i = np.sqrt(i_var)
        # GARCH updates give tomorrow's (predictable) variances
        m_var = m_bar * one_m + a_g * m_var * xi_m**2 + b_g * m_var
        g_var = g_bar * one_m + a_g * g_var * xi_g**2 + b_g * g_var
        i_var = i_bar * one_m + a_g * i_var * eps**2 + b_g * i_var
        log_vol_dev = cfg.volume_ar * log_vol_dev + cfg.volume_abs_return * (std_abs - e_abs) \
            + cfg.volume_noise * nu[3]
        latent = np.where(listed & ~first_day, latent + r, latent)

        # ---- suspensions (Markov): a trading stock is suspended w.p. rate, resumes w.p. 1/len
        was = suspended
        suspended = np.where(was, u_susp >= p_resume, u_susp < cfg.suspension_rate)
        suspended &= listed & ~first_day

        # ---- splits: on a trading day, while the raw price is high enough
        raw_prev = np.exp(obs_close) / adj
        do_split = listed & ~suspended & ~first_day & (raw_prev >= cfg.split_min_price) \
            & (u_split < p_split)
        if do_split.any():
            ratio = np.where(u_ratio < 0.8, 2.0, 3.0)
            adj = np.where(do_split, adj * ratio, adj)
            splits.extend((t, int(i), float(ratio[i])) for i in np.flatnonzero(do_split))

        # ---- bars (adjusted): open/close from the observed move, high/low around them
        trade = listed & ~suspended
        move = latent - obs_close
        gap = cfg.overnight_share * move + cfg.overnight_noise * sd_i * nu[0]
        o = obs_close + gap
        c = latent
        hi = np.maximum(o, c) + cfg.range_scale * sd_i * np.abs(nu[1])
        lo = np.minimum(o, c) - cfg.range_scale * sd_i * np.abs(nu[2])
        O, H, L, C = np.exp(o), np.exp(hi), np.exp(lo), np.exp(c)
        VW = w_vwap * 0.5 * (O + C) + (1.0 - w_vwap) * 0.5 * (H + L)
        flat = np.exp(obs_close)
        O, H, L, C, VW = (np.where(trade, x, flat) for x in (O, H, L, C, VW))
        vol_adj = np.exp(st.log_v0 + log_vol_dev)
        vol_raw = np.where(trade, np.maximum(np.round(vol_adj * adj), 1.0), 0.0)
        obs_close = np.where(trade, c, obs_close)

        for k, x in zip(("open", "high", "low", "close", "vwap"), (O, H, L, C, VW)):
            out[k][t] = np.where(listed, x, np.nan)
        out_vol[t] = np.where(listed, vol_raw, np.nan)
        out_adj[t] = adj
        out_susp[t] = suspended & listed
        out_univ[t] = member & listed
        amt_hist[t % cfg.universe_rebalance_days] = np.where(listed, VW * vol_raw / adj, np.nan)

        # ---- planted alphas: evaluate on the adjusted history up to today → mu for tomorrow
        mu = np.zeros(S)
        if planted_eval is not None:
            # what the cleaned panel holds: raw (float64) × adj_factor, then float32
            raw_p = [np.where(listed, x / adj, np.nan) for x in (O, H, L, C, VW)]
            p_adj = [x * adj for x in raw_p]
            v_adj = np.where(listed, vol_raw / adj, np.nan)
            amount = np.where(listed, raw_p[4] * vol_raw, np.nan)
            today = np.stack([p_adj[0], p_adj[1], p_adj[2], p_adj[3], v_adj, p_adj[4], amount],
                             axis=-1)
            win_vals = torch.cat([win_vals[1:], torch.from_numpy(today.astype(np.float32))[None]])
            win_obs = torch.cat([win_obs[1:], torch.from_numpy(listed)[None]])
            win_univ = torch.cat([win_univ[1:], torch.from_numpy(member & listed)[None]])
            win_trad = torch.cat([win_trad[1:], torch.from_numpy(trade)[None]])
            z = planted_eval(win_vals, all_dates[t:t + W], win_obs, win_univ, win_trad)
            factors[:, t] = z
            U = member & listed
            if U.sum() >= 3:
                f2 = cfg.market_drift**2 + m_var
                noise = _expected_cs_noise_var(U, st, f2=f2, g_var=g_var, idio_var=i_var,
                                               n_sectors=N_SEC)
                # persistence: the mixes of days t-1 … t-H+1 feed day t+1 with w_2 … w_H
                lagged = np.einsum("mk,mks->s", lag_w, b_hist) if len(lag_w) else None
                mu, b = _alpha_term(z, U, strengths, noise, stats, lagged)
                if flat_kernel:
                    mix_ring[t % cfg.alpha_horizon] = b.sum(axis=0)
                    mu = _flat_alpha_term(mix_ring, t % cfg.alpha_horizon, U, noise)
            else:
                stats["days_without_alpha"] += 1
                b = np.zeros((K, S))
                if flat_kernel:
                    mix_ring[t % cfg.alpha_horizon] = 0.0
                    mu = np.zeros(S)
            if len(lag_w):
                b_hist = np.concatenate([b[None], b_hist[:-1]])

    raw = _assemble(out, out_vol, adj=out_adj, susp=out_susp, univ=out_univ, dates=dates,
                    instruments=instruments)
    planted = _planted_table(alphas, planted_eval, factors=factors, close_adj=out["close"],
                             susp=out_susp, univ=out_univ, cfg=cfg)
    meta = _meta(cfg, st, raw=raw, instruments=instruments, dates=dates, splits=splits,
                 stats=stats, ev=planted_eval)
    log.info("simulated %d rows (%d days × %d instruments, %d planted alphas)",
             len(raw), T, S, K)
    return SimulatedMarket(raw=raw, planted=planted, meta=meta)


# ============================================================================ assembly
def _assemble(out: dict[str, np.ndarray], vol: np.ndarray, *, adj: np.ndarray,
              susp: np.ndarray, univ: np.ndarray, dates: pd.DatetimeIndex,
              instruments: pd.Index) -> pd.DataFrame:
    T, S = vol.shape
    exists = np.isfinite(out["close"])
    ti, si = np.nonzero(exists)  # row-major: sorted by (datetime, instrument)
    a = adj[ti, si]
    frame = pd.DataFrame({
        "datetime": dates.values[ti],
        "instrument": np.asarray(instruments, dtype=object)[si],
    })
    for k in ("open", "high", "low", "close"):
        frame[k] = out[k][ti, si] / a
    frame["volume"] = vol[ti, si]
    frame["vwap"] = out["vwap"][ti, si] / a
    frame["amount"] = frame["vwap"].to_numpy() * frame["volume"].to_numpy()
    frame["adj_factor"] = a
    frame["is_suspended"] = susp[ti, si]
    frame["in_universe"] = univ[ti, si]
    return frame


def _planted_table(alphas: list[PlantedAlpha], ev: _PlantedEvaluator | None, *,
                   factors: np.ndarray, close_adj: np.ndarray, susp: np.ndarray,
                   univ: np.ndarray, cfg: SimulatorConfig) -> pd.DataFrame:
    """Ground truth with realised whole-sample ICs (universe, both days trading)."""
    cols = ["name", "formula", "oracle_formula", "strength", "target_ic", "lookback",
            "realised_ic_1d", "realised_icir_1d", "realised_ic_20d"]
    if not alphas:
        return pd.DataFrame({c: pd.Series(dtype=object if c in cols[:3] else float)
                             for c in cols})
    trading = np.isfinite(close_adj) & ~susp
    f = np.where(univ & trading, factors.astype(np.float64), np.nan)
    # the project's one forward-return and IC definitions (imported here so the simulator's
    # ground-truth table quotes exactly the numbers every report uses)
    from alphaminer.data.labels import forward_returns
    from alphaminer.evaluation.metrics import daily_ic, ic_stats

    price = torch.from_numpy(close_adj.astype(np.float64))
    stats = {}
    for h in (1, 20):
        y = forward_returns(price, h, valid=torch.from_numpy(trading))
        ic = daily_ic(torch.from_numpy(f), y, min_stocks=10)
        stats[h] = ic_stats(ic)
    m1, sd1 = stats[1][0].numpy(), stats[1][1].numpy()
    m20 = stats[20][0].numpy()
    return pd.DataFrame({
        "name": [a.name for a in alphas],
        "formula": [a.formula for a in alphas],
        "oracle_formula": [cfg.oracle_formula(a.formula) for a in alphas],
        "strength": [float(a.strength) for a in alphas],
        # flat kernel: the 1-day IC depends on the formulas' memory (no closed form)
        "target_ic": [math.nan if cfg.flat_persistence else float(a.strength) for a in alphas],
        "lookback": [int(x) for x in ev.lookbacks] if ev is not None else [0] * len(alphas),
        "realised_ic_1d": m1,
        "realised_icir_1d": m1 / sd1,
        "realised_ic_20d": m20,
    })


def _meta(cfg: SimulatorConfig, st: _Static, *, raw: pd.DataFrame, instruments: pd.Index,
          dates: pd.DatetimeIndex, splits: list[tuple[int, int, float]],
          stats: dict[str, int], ev: _PlantedEvaluator | None) -> dict[str, Any]:
    T = len(dates)
    conf = asdict(cfg)
    conf["planted"] = [asdict(a) for a in cfg.planted_alphas]
    listed_ever = st.list_day < T
    return {
        "source": "simulator",
        "config": conf,
        "n_rows": len(raw),
        "n_instruments": int(listed_ever.sum()),
        "n_listings_after_start": int(((st.list_day > 0) & listed_ever).sum()),
        "n_delistings": int((st.delist_day < T).sum()),
        "n_splits": len(splits),
        "n_suspended_rows": int(raw["is_suspended"].sum()),
        "splits": [{"datetime": str(dates[t].date()), "instrument": instruments[i], "ratio": r}
                   for t, i, r in splits],
        "sector": dict(zip(instruments, st.sector.tolist())),
        "beta": dict(zip(instruments, np.round(st.beta, 6).tolist())),
        "list_day": dict(zip(instruments, st.list_day.tolist())),
        "eval_window": ev.window if ev is not None else 0,
        "calibration": {"ic_definition": "daily Pearson IC of the formula vs the next day's "
                        "adjusted close-to-close return over in-universe stocks trading on both "
                        "days; target_ic = strength for alpha_horizon 1 and for the exponential "
                        "kernel (its persistent part is orthogonal to today's formulas); NaN for "
                        "the flat kernel with H > 1 (realised only; the exact H-day predictor is "
                        "oracle_formula)",
                        "alpha_horizon": cfg.alpha_horizon, "alpha_kernel": cfg.alpha_kernel,
                        **stats},
    }
