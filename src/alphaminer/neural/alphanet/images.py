"""AlphaNet feature images: per (stock, sample day) an ``R × W`` (default 8 × 30) matrix.

Rows (default, in order): ``open high low close vwap volume amount return1`` over days
``t-W+1 .. t`` (oldest left, sample day ``t`` right), where ``return1 = close_t/close_{t-1} - 1``.

Decisions (see ``docs/methods/alphanet.md``):

- **Eighth row = daily return.** A return is scale free, is what the label is made of and adds
  information the price rows (divided by one constant) cannot express as a per-day change; the
  adjusted close would duplicate the ``close`` row after per-image normalisation.
- **Per-image normalisation, no level leak.** Price rows (``open high low close vwap``) are divided
  by the image's last close, so they sit around 1 and keep their mutual ordering (high ≥ close ≥
  low) and ratios (``last/first - 1`` is still a return); ``volume`` and ``amount`` are divided by
  their own mean over the image; ``return1`` is left as is (already dimensionless). No absolute
  price, share count or currency amount survives.
- **Drop, don't fill.** An image containing any NaN/inf (missing day, suspension, listing inside
  the window, zero mean volume) is dropped rather than imputed, and so is a stock outside the
  point-in-time universe on the sample day. What survives is stored sparsely as
  ``(day_index, stock_index)`` pairs: :meth:`FeatureImages.mask` gives the dense ``[T, S]``
  validity mask. Limit-locked / non-tradable sample days are kept and flagged in ``tradable``.
- **Sample-day grid**: ``t = t0 + k·stride`` with ``t0`` the first day with a complete window
  (``W`` days, plus one more when ``return1`` is a row). The grid is global, not per split.
- **Splits**: an image belongs to the segment of its sample day; it is kept only if its label
  window ``t+1 .. t+horizon`` ends before the next segment starts (purge), so no training label
  uses a price from the validation period. :class:`alphaminer.data.Splits` are already purged
  this way (nothing more is lost); plain ``{name: (start, end)}`` ranges get purged here.

Construction is vectorised: the ``[T, S, R]`` day-feature tensor is viewed with ``unfold`` over
time (no copy) and only the sample days of one chunk are materialised at a time, with the chunk
size chosen from a byte budget.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from alphaminer.data.splits import Splits
from alphaminer.panel import Panel
from alphaminer.runtime import config_from

log = logging.getLogger(__name__)

DEFAULT_ROWS: tuple[str, ...] = (
    "open", "high", "low", "close", "vwap", "volume", "amount", "return1",
)
#: How each known row is normalised inside an image (unknown rows default to ``zscore``).
ROW_NORMALISATION: dict[str, str] = {
    "open": "last_close", "high": "last_close", "low": "last_close", "close": "last_close",
    "vwap": "last_close", "volume": "row_mean", "amount": "row_mean", "return1": "none",
}
_NORMS = ("last_close", "row_mean", "zscore", "none")
#: Derived rows computed from panel features (name -> recipe description).
DERIVED_ROWS: dict[str, str] = {"return1": "close_t / close_{t-1} - 1"}
NO_SPLIT = -1


@dataclass(frozen=True)
class ImageConfig:
    """How feature images are built.

    Attributes:
        rows: image rows, panel feature names or a derived row (``return1``).
        window: days per image (W).
        stride: days between consecutive sample days (5 for training, 1 for inference).
        horizon: label horizon in days (label = ``close_{t+h}/close_t - 1``); also the purge gap.
        dtype: storage dtype of the images, ``"float32"`` or ``"float16"``.
        require_label: drop images whose label is NaN (True for training sets).
        chunk_bytes: memory budget for one chunk of materialised images (and temporaries).
        normalisation: per-row overrides of :data:`ROW_NORMALISATION`.
    """

    rows: tuple[str, ...] = DEFAULT_ROWS
    window: int = 30
    stride: int = 5
    horizon: int = 5
    dtype: str = "float32"
    require_label: bool = True
    chunk_bytes: int = 256 * 1024**2
    normalisation: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rows", tuple(self.rows))
        object.__setattr__(self, "normalisation", dict(self.normalisation))
        if self.window < 2:
            raise ValueError(f"window must be >= 2, got {self.window}")
        if self.stride < 1:
            raise ValueError(f"stride must be >= 1, got {self.stride}")
        if self.horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {self.horizon}")
        if self.dtype not in ("float32", "float16"):
            raise ValueError(f"dtype must be 'float32' or 'float16', got {self.dtype!r}")
        if len(set(self.rows)) != len(self.rows) or not self.rows:
            raise ValueError(f"rows must be non-empty and unique, got {self.rows}")
        for name, how in self.normalisation.items():
            if how not in _NORMS:
                raise ValueError(f"normalisation[{name!r}]={how!r}; choose from {_NORMS}")

    def norms(self) -> tuple[str, ...]:
        """Normalisation kind of every row, in row order."""
        return tuple(self.normalisation.get(r, ROW_NORMALISATION.get(r, "zscore"))
                     for r in self.rows)

    def with_(self, **changes: Any) -> ImageConfig:
        d = asdict(self)
        d.update(changes)
        return ImageConfig(**d)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rows"] = list(self.rows)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ImageConfig:
        d = dict(d)
        if "rows" in d:
            d["rows"] = tuple(d["rows"])
        return config_from(cls, d)


@dataclass(eq=False)
class FeatureImages:
    """A compact, sparse set of feature images with labels.

    Attributes:
        images: ``[N, R, W]`` float tensor.
        labels: ``[N]`` float32, the ``horizon``-day forward return at the sample day (may be NaN
            when built with ``require_label=False``).
        day_index / stock_index: ``[N]`` int64 positions into :attr:`dates` / :attr:`instruments`
            (the panel's full axes). Images are ordered by day, then stock.
        split: ``[N]`` int8 segment codes into :attr:`split_names` (``-1`` = no split).
        tradable: ``[N]`` bool, the stock was tradable on the sample day.
        dates / instruments: the source panel's axes.
        rows: image row names.
        split_names: names of the split codes.
        config: the :class:`ImageConfig` used.
    """

    images: torch.Tensor
    labels: torch.Tensor
    day_index: torch.Tensor
    stock_index: torch.Tensor
    split: torch.Tensor
    tradable: torch.Tensor
    dates: pd.DatetimeIndex
    instruments: pd.Index
    rows: tuple[str, ...]
    split_names: tuple[str, ...] = ()
    config: ImageConfig = field(default_factory=ImageConfig)

    def __post_init__(self) -> None:
        n = self.images.shape[0]
        if self.images.ndim != 3:
            raise ValueError(f"images must be [N, R, W], got {tuple(self.images.shape)}")
        for name in ("labels", "day_index", "stock_index", "split", "tradable"):
            t = getattr(self, name)
            if tuple(t.shape) != (n,):
                raise ValueError(f"{name} has shape {tuple(t.shape)}, expected ({n},)")
        if self.images.shape[1] != len(self.rows):
            raise ValueError(f"images have {self.images.shape[1]} rows, names {self.rows}")
        self.dates = pd.DatetimeIndex(self.dates)
        self.instruments = pd.Index([str(i) for i in self.instruments], dtype=object)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape)  # type: ignore[return-value]

    def split_code(self, name: str) -> int:
        try:
            return self.split_names.index(name)
        except ValueError:
            raise KeyError(f"split {name!r} not in {self.split_names}") from None

    def select(self, keep: torch.Tensor) -> FeatureImages:
        """Subset by a boolean ``[N]`` mask or an index tensor (order preserved)."""
        return FeatureImages(
            images=self.images[keep], labels=self.labels[keep], day_index=self.day_index[keep],
            stock_index=self.stock_index[keep], split=self.split[keep],
            tradable=self.tradable[keep], dates=self.dates, instruments=self.instruments,
            rows=self.rows, split_names=self.split_names, config=self.config,
        )

    def subset(self, split: str) -> FeatureImages:
        """The images of one segment (``"train"``, ``"valid"``, ``"test"``...)."""
        return self.select(self.split == self.split_code(split))

    def mask(self) -> torch.Tensor:
        """Dense ``[T, S]`` bool mask of the (day, stock) pairs that have an image."""
        m = torch.zeros(len(self.dates), len(self.instruments), dtype=torch.bool)
        m[self.day_index, self.stock_index] = True
        return m

    def to_dense(self, values: torch.Tensor) -> torch.Tensor:
        """Scatter per-image ``values [N]`` into a NaN-filled ``[T, S]`` float32 tensor."""
        out = torch.full((len(self.dates), len(self.instruments)), float("nan"))
        out[self.day_index, self.stock_index] = values.detach().to("cpu", torch.float32)
        return out

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        """Write ``path`` (safetensors) and ``path`` with suffix ``.json`` (axes, config)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {
            "images": self.images.contiguous(), "labels": self.labels.contiguous(),
            "day_index": self.day_index.contiguous(), "stock_index": self.stock_index.contiguous(),
            "split": self.split.contiguous(), "tradable": self.tradable.contiguous(),
        }
        save_file(tensors, str(path), metadata={"format": "alphaminer.feature_images.v1"})
        sidecar = {
            "format": "alphaminer.feature_images.v1",
            "dates": [d.isoformat() for d in self.dates],
            "instruments": list(self.instruments),
            "rows": list(self.rows),
            "split_names": list(self.split_names),
            "config": self.config.to_dict(),
            "n_images": len(self),
        }
        _sidecar(path).write_text(json.dumps(sidecar))

    @classmethod
    def load(cls, path: str | Path) -> FeatureImages:
        path = Path(path)
        if not path.exists() or not _sidecar(path).exists():
            raise FileNotFoundError(f"feature images need {path} and {_sidecar(path)}")
        t = load_file(str(path))
        meta = json.loads(_sidecar(path).read_text())
        return cls(
            images=t["images"], labels=t["labels"], day_index=t["day_index"],
            stock_index=t["stock_index"], split=t["split"], tradable=t["tradable"],
            dates=pd.DatetimeIndex(pd.to_datetime(meta["dates"])),
            instruments=pd.Index(meta["instruments"], dtype=object),
            rows=tuple(meta["rows"]), split_names=tuple(meta["split_names"]),
            config=ImageConfig.from_dict(meta["config"]),
        )


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


# ---------------------------------------------------------------------- building blocks
def forward_return(panel: Panel, horizon: int) -> torch.Tensor:
    """``[T, S]`` label ``Ref(close, -h) / close - 1`` from the project's label code.

    Delegates to :func:`alphaminer.data.make_labels` (expression-evaluator semantics: NaN past
    the end of the data and outside the universe), so there is one definition of a label.
    """
    from alphaminer.data import make_labels

    return make_labels(panel, horizon=horizon, kind="close").to("cpu", torch.float32)


def day_features(panel: Panel, rows: tuple[str, ...]) -> torch.Tensor:
    """``[T, S, R]`` float32 per-day values of the image rows (raw, un-normalised)."""
    cols = []
    for r in rows:
        if r == "return1":
            close = panel.feature("close").to("cpu", torch.float32)
            prev = torch.cat([torch.full_like(close[:1], float("nan")), close[:-1]], dim=0)
            ret = close / prev - 1.0
            cols.append(torch.where(torch.isfinite(ret), ret, torch.full_like(ret, float("nan"))))
        elif panel.has_feature(r):
            cols.append(panel.feature(r).to("cpu", torch.float32))
        else:
            raise KeyError(
                f"image row {r!r} is neither a panel feature ({', '.join(panel.features)}) "
                f"nor a derived row ({', '.join(DERIVED_ROWS)})"
            )
    return torch.stack(cols, dim=-1)


def first_sample_day(config: ImageConfig) -> int:
    """Index of the first day whose window is complete (``return1`` needs one extra day)."""
    return config.window - 1 + (1 if "return1" in config.rows else 0)


def sample_days(n_days: int, config: ImageConfig) -> np.ndarray:
    """The global sample-day grid ``t0, t0+stride, ...`` below ``n_days``."""
    return np.arange(first_sample_day(config), n_days, config.stride, dtype=np.int64)


def _split_positions(dates: pd.DatetimeIndex, splits: Any
                     ) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """(names, starts, ends) of the segments (any form :meth:`Splits.coerce` accepts)."""
    if splits is None or (isinstance(splits, Mapping) and not splits):
        return (), np.zeros(0, np.int64), np.zeros(0, np.int64)
    sp = Splits.coerce(splits, dates)
    starts = np.asarray([i0 for i0, _ in sp.ranges.values()], np.int64)
    ends = np.asarray([i1 for _, i1 in sp.ranges.values()], np.int64)
    return tuple(sp.names), starts, ends


def normalise_windows(win: torch.Tensor, norms: tuple[str, ...], close_last: torch.Tensor
                      ) -> torch.Tensor:
    """Normalise ``win [..., R, W]`` per image; ``close_last [...]`` is the sample-day close."""
    out = torch.empty_like(win)
    for r, how in enumerate(norms):
        x = win[..., r, :]
        if how == "last_close":
            out[..., r, :] = x / close_last.unsqueeze(-1)
        elif how == "row_mean":
            out[..., r, :] = x / x.mean(dim=-1, keepdim=True)
        elif how == "zscore":
            mu = x.mean(dim=-1, keepdim=True)
            out[..., r, :] = (x - mu) / x.std(dim=-1, keepdim=True)
        else:
            out[..., r, :] = x
    return out


def iter_image_chunks(
    panel: Panel, config: ImageConfig, days: np.ndarray, labels: torch.Tensor | None = None,
    progress: bool = True,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield ``(images [n, R, W], day_index [n], stock_index [n], valid_label [n])`` per chunk.

    Only valid images (finite, stock in the universe on the sample day) are yielded; ``labels``
    (``[T, S]``) is only used to report the sample's label in the 4th element (NaN if absent).
    """
    X = day_features(panel, config.rows)  # [T, S, R]
    T, S, R = X.shape
    W = config.window
    norms = config.norms()
    close = panel.feature("close").to("cpu", torch.float32)
    universe = panel.universe.cpu()
    views = X.unfold(0, W, 1)  # [T-W+1, S, R, W], no copy
    # bytes per sample day: the copy, the normalised copy and the finite mask, all [S, R, W]
    per_day = S * R * W * (4 + 4 + 1) + 1
    step = max(1, int(config.chunk_bytes // per_day))
    days = np.asarray(days, dtype=np.int64)
    if len(days) and (days.min() < W - 1 or days.max() >= T):
        raise ValueError(f"sample days must lie in [{W - 1}, {T - 1}], got "
                         f"{days.min()}..{days.max()}")
    starts = range(0, len(days), step)
    it = tqdm(starts, desc="feature images", unit="chunk", disable=not progress or len(starts) < 2)
    for c0 in it:
        d = torch.from_numpy(days[c0:c0 + step])
        win = views[d - (W - 1)]  # [n, S, R, W] copy
        img = normalise_windows(win, norms, close[d])
        del win
        ok = torch.isfinite(img).flatten(2).all(dim=-1) & universe[d]  # [n, S]
        di, si = torch.nonzero(ok, as_tuple=True)
        out = img[di, si]
        del img
        day = d[di]
        lab = labels[day, si] if labels is not None else torch.full((len(day),), float("nan"))
        yield out, day, si.to(torch.int64), lab


def build_feature_images(
    panel: Panel,
    splits: Mapping[str, tuple[Any, Any]] | Any | None = None,
    config: ImageConfig | None = None,
    *,
    labels: torch.Tensor | None = None,
    progress: bool = True,
) -> FeatureImages:
    """Build the AlphaNet image set of ``panel`` (one call = the ``feature_images`` node).

    Args:
        panel: the cleaned, adjusted panel (needs the row features and ``close``).
        splits: :class:`alphaminer.data.Splits` or ``{"train": (start, end), ...}`` (see
            :meth:`alphaminer.data.Splits.coerce`); ``None`` keeps every day in one unnamed
            segment (code -1).
        config: :class:`ImageConfig` (defaults: 8 × 30, stride 5, horizon 5).
        labels: optional precomputed ``[T, S]`` forward return; default :func:`forward_return`.
        progress: show a tqdm bar over chunks.
    """
    config = config or ImageConfig()
    if not panel.has_feature("close"):
        raise KeyError(f"feature images need a 'close' feature; panel has {panel.features}")
    if labels is None:
        labels = forward_return(panel, config.horizon)
    labels = labels.to("cpu", torch.float32)
    if tuple(labels.shape) != (panel.T, panel.S):
        raise ValueError(f"labels must be [{panel.T}, {panel.S}], got {tuple(labels.shape)}")
    names, starts, ends = _split_positions(panel.dates, splits)
    days = sample_days(panel.T, config)
    code = np.full(len(days), NO_SPLIT, dtype=np.int8)
    if names:
        keep = np.zeros(len(days), dtype=bool)
        for k, (a, b) in enumerate(zip(starts, ends)):
            # belongs to segment k, and the label window t+1..t+h does not reach the start of
            # the next segment (purge; already-purged data Splits lose nothing more)
            later = starts[starts > a]
            nxt = int(later.min()) if len(later) else panel.T
            inside = (days >= a) & (days < b) & (days + config.horizon < nxt)
            code[inside] = k
            keep |= inside
        days, code = days[keep], code[keep]
    code_of_day = np.full(panel.T, NO_SPLIT, dtype=np.int8)
    code_of_day[days] = code
    dtype = torch.float16 if config.dtype == "float16" else torch.float32
    parts: list[tuple[torch.Tensor, ...]] = []
    for chunk in iter_image_chunks(panel, config, days, labels, progress):
        if config.require_label:
            ok = torch.isfinite(chunk[3])
            parts.append((chunk[0][ok].to(dtype), *(t[ok] for t in chunk[1:])))
        else:
            parts.append((chunk[0].to(dtype), *chunk[1:]))
    R, W = len(config.rows), config.window
    if parts:
        images = torch.cat([p[0] for p in parts])
        day_index = torch.cat([p[1] for p in parts])
        stock_index = torch.cat([p[2] for p in parts])
        lab_all = torch.cat([p[3] for p in parts])
    else:
        images = torch.zeros(0, R, W, dtype=dtype)
        day_index = stock_index = torch.zeros(0, dtype=torch.int64)
        lab_all = torch.zeros(0)
    del parts
    split = torch.from_numpy(code_of_day)[day_index]
    tradable = panel.tradable.cpu()[day_index, stock_index]
    out = FeatureImages(
        images=images, labels=lab_all, day_index=day_index, stock_index=stock_index,
        split=split, tradable=tradable, dates=panel.dates, instruments=panel.instruments,
        rows=config.rows, split_names=names, config=config,
    )
    counts = {n: int((split == k).sum()) for k, n in enumerate(names)} or {"all": len(out)}
    log.info("feature images: %d images of %dx%d over %d sample days %s", len(out), R, W,
             len(days), counts)
    if len(out) == 0:
        log.warning("no feature image survived (panel too short or all windows incomplete)")
    return out


def image_count_bound(panel: Panel, config: ImageConfig) -> int:
    """Upper bound on the number of images (sample days × stocks), for sizing."""
    return int(len(sample_days(panel.T, config)) * panel.S)


__all__ = [
    "DEFAULT_ROWS", "FeatureImages", "ImageConfig", "build_feature_images", "day_features",
    "first_sample_day", "forward_return", "image_count_bound", "iter_image_chunks",
    "normalise_windows", "sample_days",
]
