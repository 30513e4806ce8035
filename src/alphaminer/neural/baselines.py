"""ML baselines that predict the forward return straight from raw features (AlphaFormer Table 11).

A sample is one (day ``t``, stock ``s``): the stock's last ``window`` days ``t-window+1 .. t`` of
the raw features (``open high low close volume vwap`` — those the panel has), each feature
**divided by its own value on day t, minus 1** (so day ``t`` is 0 and earlier days are relative
changes; scale-free across stocks and through time). Values are clipped to ``±clip`` so a volume
spike does not dominate an MLP's inputs. A window with any missing or non-finite value, or a zero
value on day ``t``, is incomplete: no sample, NaN signal. Windows are strictly trailing: nothing
after ``t`` enters the sample of day ``t``.

The target is the project's label (``labels`` dataset) z-scored per day, which removes the
day-level return scale (the signal is used cross-sectionally). Fitting uses the train segment's
fit rows (days whose label ends inside it), early stopping the mean daily IC on valid fit rows;
``day_stride`` subsamples training days to keep the default runs short. The torch models (MLP,
LSTM) live here; the tree models on the flattened windows in
:mod:`alphaminer.combination.ml_baselines`.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from alphaminer.data.splits import SEGMENTS, Splits
from alphaminer.evaluation import daily_ic, ic_summary
from alphaminer.expr.kernels import cs_zscore
from alphaminer.panel import Panel
from alphaminer.runtime import resolve_device, seed_everything

log = logging.getLogger(__name__)

#: raw features a window uses, in this order, when the panel has them
RAW_FEATURES: tuple[str, ...] = ("open", "high", "low", "close", "volume", "vwap")


# ----------------------------------------------------------------------------- windows
@dataclass
class WindowConfig:
    """How samples are cut from a panel.

    Attributes:
        window: trailing days per sample (``t-window+1 .. t``).
        features: raw features; empty → those of :data:`RAW_FEATURES` the panel has.
        clip: clip normalised values to ``[-clip, clip]`` (None: no clipping).
        day_stride: use every ``day_stride``-th day of the train/valid fit rows for fitting and
            early stopping (prediction always covers every day).
        universe_only: samples only for stocks in the point-in-time universe on day ``t``.
    """

    window: int = 60
    features: Sequence[str] = ()
    clip: float | None = 10.0
    day_stride: int = 1
    universe_only: bool = True

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError(f"window must be >= 1, got {self.window}")
        if self.day_stride < 1:
            raise ValueError(f"day_stride must be >= 1, got {self.day_stride}")
        if self.clip is not None and self.clip <= 0:
            raise ValueError(f"clip must be > 0 or None, got {self.clip}")
        self.features = tuple(self.features)

    def resolve_features(self, panel: Panel) -> tuple[str, ...]:
        if self.features:
            missing = [f for f in self.features if f not in panel.features]
            if missing:
                raise KeyError(f"features {missing} not in the panel's {list(panel.features)}")
            return tuple(self.features)
        feats = tuple(f for f in RAW_FEATURES if f in panel.features)
        if not feats:
            raise KeyError(f"the panel has none of {list(RAW_FEATURES)}")
        return feats


class Windows:
    """Normalised trailing windows of a panel, cut on demand (never all days at once)."""

    def __init__(self, panel: Panel, config: WindowConfig) -> None:
        self.config = config
        self.features = config.resolve_features(panel)
        idx = [panel.features.index(f) for f in self.features]
        # [S, T, F] contiguous: a window of one stock is one contiguous block of window·F floats
        self.values = panel.values[..., idx].detach().to("cpu", torch.float32) \
            .transpose(0, 1).contiguous()
        self.universe = panel.universe.detach().cpu()
        self.T, self.S = panel.T, panel.S
        # bad_before[s, t]: days < t of stock s with a missing/non-finite feature (prefix count),
        # so "window ending on t is complete" is one subtraction, not a pass over W·F values
        bad = (~torch.isfinite(self.values)).any(dim=2).to(torch.int32)
        self._bad_before = torch.cat([torch.zeros(self.S, 1, dtype=torch.int32),
                                      bad.cumsum(dim=1, dtype=torch.int32)], dim=1)

    @property
    def n_inputs(self) -> int:
        return len(self.features)

    def days(self, days: np.ndarray | Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """``x [D, S, window, F]`` normalised windows ending on ``days`` and ``ok [D, S]``.

        ``ok`` is False where the window is incomplete (or starts before day 0, or the stock is
        outside the universe with ``universe_only``); ``x`` is 0 there.
        """
        W, F, S, T = self.config.window, self.n_inputs, self.S, self.T
        d = torch.as_tensor(np.asarray(days, dtype=np.int64)).reshape(-1)
        full = d >= W - 1
        if not bool(full.all()):  # days before the first complete window: zeros, not ok
            x = torch.zeros(len(d), S, W, F)
            ok = torch.zeros(len(d), S, dtype=torch.bool)
            if bool(full.any()):
                x[full], ok[full] = self.days(d[full].numpy())
            return x, ok
        if len(d) and int(d.max()) >= T:
            raise IndexError(f"day {int(d.max())} beyond the panel's {T} days")
        # overlapping no-copy view [T-W+1, S, W, F] of the [S, T, F] values; window k ends on
        # day k+W-1 and is one contiguous block
        view = self.values.as_strided((max(0, T - W + 1), S, W, F), (F, T * F, F, 1))
        x = view[d - (W - 1)]  # [D, S, W, F] copy
        last = x[:, :, -1:, :].clone()
        x.div_(last).sub_(1.0)
        complete = (self._bad_before[:, d + 1] - self._bad_before[:, d + 1 - W]).T == 0
        ok = complete & (last != 0).flatten(2).all(-1)
        if self.config.universe_only:
            ok &= self.universe[d]
        if self.config.clip is not None:
            x.clamp_(-self.config.clip, self.config.clip)
        else:  # only clipping absorbs an overflow to ±inf
            ok &= torch.isfinite(x).flatten(2).all(-1)
        x.masked_fill_(~ok[:, :, None, None], 0.0)
        return x, ok

    def chunks(self, days: np.ndarray, max_samples: int = 50_000
               ) -> Iterator[tuple[np.ndarray, torch.Tensor, torch.Tensor]]:
        """``(days_chunk, x, ok)`` over ``days`` in chunks of at most ``max_samples`` samples."""
        step = max(1, max_samples // max(1, self.S))
        for i in range(0, len(days), step):
            dd = days[i:i + step]
            x, ok = self.days(dd)
            yield dd, x, ok


def fit_days(splits: Splits, segment: str, horizon: int, stride: int = 1) -> np.ndarray:
    """Every ``stride``-th fit-row day of ``segment`` (its label ends inside the segment)."""
    i0, i1 = splits.fit_rows(segment, horizon)
    return np.arange(i0, i1, stride, dtype=np.int64)


def daily_target(y: torch.Tensor) -> torch.Tensor:
    """The fitting target: the label z-scored per day (NaN stays NaN)."""
    return cs_zscore(y.to(torch.float32))


@dataclass
class SampleSet:
    """Flat samples of a set of days: ``x [N, window, F]``, ``y [N]``, and where they came from."""

    x: torch.Tensor
    y: torch.Tensor
    day: np.ndarray
    stock: np.ndarray


def sample_set(windows: Windows, target: torch.Tensor, days: np.ndarray) -> SampleSet:
    """Complete windows on ``days`` whose target is finite."""
    xs, ys, ds, ss = [], [], [], []
    for dd, x, ok in windows.chunks(days):
        y = target[torch.as_tensor(dd)]
        keep = ok & torch.isfinite(y)
        di, si = torch.nonzero(keep, as_tuple=True)
        xs.append(x[di, si])
        ys.append(y[di, si])
        ds.append(np.asarray(dd)[di.numpy()])
        ss.append(si.numpy())
    W, F = windows.config.window, windows.n_inputs
    if not xs:
        return SampleSet(torch.zeros(0, W, F), torch.zeros(0), np.zeros(0, np.int64),
                         np.zeros(0, np.int64))
    return SampleSet(torch.cat(xs), torch.cat(ys), np.concatenate(ds), np.concatenate(ss))


def scatter_signal(T: int, S: int, day: np.ndarray, stock: np.ndarray,
                   pred: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``[T, S]`` float32, NaN except at ``(day, stock)``."""
    out = torch.full((T, S), float("nan"))
    if len(day):
        out[torch.as_tensor(day), torch.as_tensor(stock)] = torch.as_tensor(
            np.asarray(pred, dtype=np.float32))
    return out


def mean_ic(pred: np.ndarray | torch.Tensor, samples: SampleSet, T: int, S: int,
            min_stocks: int) -> float:
    """Mean daily IC of predictions on ``samples`` against their target (NaN days skipped)."""
    if len(samples.day) == 0:
        return float("nan")
    days = np.unique(samples.day)
    f = scatter_signal(T, S, samples.day, samples.stock, pred)[torch.as_tensor(days)]
    y = scatter_signal(T, S, samples.day, samples.stock, samples.y)[torch.as_tensor(days)]
    ic = daily_ic(f, y, min_stocks=min_stocks)
    ok = torch.isfinite(ic)
    return float(ic[ok].mean()) if bool(ok.any()) else float("nan")


def segment_ics(signal: torch.Tensor, labels: torch.Tensor, splits: Splits, horizon: int,
                min_stocks: int) -> dict[str, float]:
    """IC / RankIC / ICIR of the signal against the raw label on each segment's fit rows."""
    out: dict[str, float] = {}
    for seg in SEGMENTS:
        if seg not in splits.ranges:
            continue
        i0, i1 = splits.fit_rows(seg, horizon)
        stats = ic_summary(signal[i0:i1], labels[i0:i1], min_stocks).to_dict() if i1 > i0 else {}
        for k in ("ic", "rank_ic", "icir", "rank_icir"):
            out[f"{seg}_{k}"] = float(stats.get(k, float("nan")))
    return out


# ----------------------------------------------------------------------------- torch models
class MLP(nn.Module):
    """Flattened window → ``layers`` × (Linear, ReLU, Dropout) → scalar."""

    def __init__(self, window: int, n_inputs: int, hidden: int = 64, layers: int = 2,
                 dropout: float = 0.0) -> None:
        super().__init__()
        mods: list[nn.Module] = []
        width = window * n_inputs
        for _ in range(layers):
            mods += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden
        mods.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x [N, W, F]
        return self.net(x.flatten(1)).squeeze(-1)


class LSTMRegressor(nn.Module):
    """``layers``-layer LSTM over the window's days; the last day's hidden state → scalar."""

    def __init__(self, n_inputs: int, hidden: int = 64, layers: int = 2,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.lstm = nn.LSTM(n_inputs, hidden, num_layers=layers, batch_first=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x [N, W, F]
        h, _ = self.lstm(x)
        return self.head(h[:, -1]).squeeze(-1)


NET_KINDS: tuple[str, ...] = ("mlp", "lstm")


@dataclass
class NetConfig:
    """Torch baseline hyper-parameters (AlphaFormer Table 11: 2 layers, hidden 64, batch 512,
    lr 1e-3).

    Attributes:
        kind: ``mlp`` | ``lstm``.
        hidden, layers, dropout: architecture.
        batch_size, lr, weight_decay: Adam on the MSE to the per-day z-scored label.
        max_epochs: most passes over the training samples.
        patience: epochs without a better valid IC before stopping (the best epoch is kept).
        max_batches_per_epoch: cap on batches per epoch (0 = all), for short default runs.
        device: ``auto`` (cuda if present, else cpu).
        seed: seeds torch/numpy (same seed → same signal on CPU).
    """

    kind: str = "mlp"
    hidden: int = 64
    layers: int = 2
    dropout: float = 0.0
    batch_size: int = 512
    lr: float = 1e-3
    weight_decay: float = 0.0
    max_epochs: int = 20
    patience: int = 3
    max_batches_per_epoch: int = 0
    device: str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in NET_KINDS:
            raise ValueError(f"kind must be one of {NET_KINDS}, got {self.kind!r}")
        if self.max_epochs < 1 or self.batch_size < 1 or self.layers < 1 or self.hidden < 1:
            raise ValueError("max_epochs, batch_size, layers and hidden must be >= 1")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")

    def build(self, window: int, n_inputs: int) -> nn.Module:
        if self.kind == "mlp":
            return MLP(window, n_inputs, self.hidden, self.layers, self.dropout)
        return LSTMRegressor(n_inputs, self.hidden, self.layers, self.dropout)


@dataclass
class BaselineResult:
    """A fitted baseline: the ``[T, S]`` signal (NaN where the window is incomplete), its
    training history and metrics (best iteration/epoch, valid IC, IC per segment)."""

    signal: torch.Tensor
    metrics: dict[str, Any]
    history: list[dict[str, float]]
    model: Any = None


@torch.no_grad()
def _score(model: nn.Module, x: torch.Tensor, device: torch.device, batch: int = 8192
           ) -> torch.Tensor:
    model.eval()
    out = [model(x[i:i + batch].to(device)).float().cpu() for i in range(0, len(x), batch)]
    return torch.cat(out) if out else torch.zeros(0)


def predict_windows(windows: Windows, score: Any, days: np.ndarray | None = None
                    ) -> torch.Tensor:
    """``[T, S]`` signal: ``score(x [N, W, F]) -> [N]`` on every complete window of ``days``
    (default: every day), NaN elsewhere."""
    out = torch.full((windows.T, windows.S), float("nan"))
    days = np.arange(windows.T) if days is None else np.asarray(days)
    for dd, x, ok in windows.chunks(days):
        di, si = torch.nonzero(ok, as_tuple=True)
        if len(di):
            out[torch.as_tensor(dd)[di], si] = torch.as_tensor(
                np.asarray(score(x[di, si]), dtype=np.float32))
    return out


def fit_samples(panel: Panel, labels: torch.Tensor, splits: Splits, window: WindowConfig
                ) -> tuple[Windows, SampleSet, SampleSet]:
    """The windows of ``panel`` and the train / valid fit samples every baseline trains on
    (days whose label ends inside the segment, every ``day_stride``-th); raises when either is
    empty (a panel too short for the window)."""
    win = Windows(panel, window)
    target = daily_target(labels.cpu())
    h = splits.horizon
    train = sample_set(win, target, fit_days(splits, "train", h, window.day_stride))
    valid = sample_set(win, target, fit_days(splits, "valid", h, window.day_stride))
    if len(train.y) == 0 or len(valid.y) == 0:
        raise ValueError(f"no complete {window.window}-day windows with labels in train "
                         f"({len(train.y)}) or valid ({len(valid.y)}): the panel is too short")
    return win, train, valid


def train_net(panel: Panel, labels: torch.Tensor, splits: Splits, window: WindowConfig,
              config: NetConfig, min_stocks: int = 10) -> BaselineResult:
    """Train an MLP/LSTM baseline on train fit rows, early-stop on valid IC, predict every day."""
    seed_everything(config.seed)
    dev = resolve_device(config.device)
    win, train, valid = fit_samples(panel, labels, splits, window)
    model = config.build(window.window, win.n_inputs).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    gen = torch.Generator().manual_seed(config.seed)
    best_ic, best_epoch, best_state, bad = -math.inf, 0, copy.deepcopy(model.state_dict()), 0
    history: list[dict[str, float]] = []
    n = len(train.y)
    for epoch in range(1, config.max_epochs + 1):
        model.train()
        perm = torch.randperm(n, generator=gen)
        n_batches = math.ceil(n / config.batch_size)
        if config.max_batches_per_epoch > 0:
            n_batches = min(n_batches, config.max_batches_per_epoch)
        total = 0.0
        for b in range(n_batches):
            idx = perm[b * config.batch_size:(b + 1) * config.batch_size]
            xb, yb = train.x[idx].to(dev), train.y[idx].to(dev)
            loss = torch.mean((model(xb) - yb) ** 2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach())
        vic = mean_ic(_score(model, valid.x, dev).numpy(), valid, win.T, win.S, min_stocks)
        history.append({"epoch": epoch, "train_loss": total / max(1, n_batches), "valid_ic": vic})
        log.info("%s epoch %d: train MSE %.4f, valid IC %.4f", config.kind, epoch,
                 history[-1]["train_loss"], vic)
        if math.isfinite(vic) and vic > best_ic:
            best_ic, best_epoch, bad = vic, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            bad += 1
            if bad >= config.patience:
                break
    model.load_state_dict(best_state)
    signal = predict_windows(win, lambda x: _score(model, x, dev).numpy())
    metrics = {
        "method": config.kind, "best_epoch": best_epoch, "best_valid_ic": float(best_ic),
        "epochs_run": len(history), "stopped_early": len(history) < config.max_epochs,
        "n_train_samples": int(len(train.y)), "n_valid_samples": int(len(valid.y)),
        "features": list(win.features), "window": window.window, "device": str(dev),
        "config": {**asdict(config), **{f"window_{k}": v for k, v in asdict(window).items()}},
        **segment_ics(signal, labels.cpu(), splits, splits.horizon, min_stocks),
    }
    return BaselineResult(signal, metrics, history, model.cpu())


__all__ = [
    "MLP", "NET_KINDS", "RAW_FEATURES", "BaselineResult", "LSTMRegressor", "NetConfig",
    "SampleSet", "WindowConfig", "Windows", "daily_target", "fit_days", "mean_ic",
    "predict_windows", "sample_set", "scatter_signal", "segment_ics", "train_net",
]
