"""Typed parameters: one pydantic model per parameter block, checked before any node runs.

Kedro 1.7 validates a node's ``params:<key>`` input against the pydantic model its function is
annotated with (``kedro.validation.ParameterValidator``), when the run's catalog is built, so a
bad value fails at start rather than inside a node. :class:`ParameterHooks` additionally checks
the whole parameter tree against :class:`ProjectParams` as soon as the context exists, so the
error names the full YAML path (``backtest.portfolio.topk``) and covers the blocks of every
pipeline, whichever ones the run selected.

One source of truth for defaults and rules: where the library already has a config dataclass
(``BacktestConfig``, ``CleanConfig``, ``GPConfig``, ...), the model is *built from it*
(:func:`model_of`): same field names, types and defaults, and validation ends by constructing
the dataclass, so its ``__post_init__`` checks apply unchanged. Nodes take the model and hand
the library ``model.to_config()``.

A validated model serialises (``model_dump``) as the YAML wrote it, not with every default
filled in: the run manifest hashes ``parameters``, and that hash must not depend on which
pipelines' nodes happened to convert a block into a model.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, get_args, get_origin, get_type_hints

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    ValidationError,
    create_model,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

from alphaminer.backtest import BacktestConfig
from alphaminer.combination import METHODS as COMBINATION_METHODS
from alphaminer.combination import DynamicLinearConfig, GBMConfig, LassoPoolConfig
from alphaminer.combination.base import TARGETS as COMBINATION_TARGETS
from alphaminer.combination.ml_baselines import TreeConfig
from alphaminer.combination.rank_average import RankAverageConfig
from alphaminer.combination.registry import AutoConfig
from alphaminer.data import CleanConfig, SourceConfig, SplitConfig
from alphaminer.data.labels import label_expression, make_labels
from alphaminer.data.simulator import SimulatorConfig
from alphaminer.data.splits import SEGMENTS
from alphaminer.evaluation.distributed import ScoringConfig
from alphaminer.evaluation.pool import PoolConfig
from alphaminer.mining.alpha2.miner import Alpha2Config
from alphaminer.mining.alphaformer.infer import InferConfig
from alphaminer.mining.alphaformer.model import AlphaFormerConfig
from alphaminer.mining.alphaformer.pretrain import PretrainConfig
from alphaminer.mining.alphagen.miner import AlphaGenConfig
from alphaminer.mining.gp.miner import GPConfig
from alphaminer.neural.alphanet import AlphaNetConfig, ImageConfig, TrainConfig
from alphaminer.neural.alphanet import attribution_table as _attribution_table
from alphaminer.neural.baselines import NetConfig, WindowConfig
from alphaminer.pipelines._methods import ALPHA_SET_METHODS
from alphaminer.synthetic import FitConfig, MarketConfig, QualityConfig, TransformerConfig
from alphaminer.synthetic.csdi import CSDIConfig
from alphaminer.synthetic.recurrent import RecurrentConfig
from alphaminer.synthetic.training import SyntheticTrainConfig


def _plain(value: Any) -> Any:
    """``value`` with every :class:`ConfigModel` inside replaced by its as-written mapping."""
    if isinstance(value, ConfigModel):
        return value.as_written()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    return value


class ConfigModel(BaseModel):
    """Base of every parameter model.

    Unknown keys fail naming the valid ones (a misspelt ``formuals`` is an error, not a silent
    default). Booleans are strict: ``"yes"`` or ``1`` for a switch is a mistake, not ``True``.
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
    _written: dict[str, Any] | None = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _known_keys_and_keep_written(cls, data: Any, handler: Any) -> Any:
        if isinstance(data, Mapping) and cls.model_config.get("extra") == "forbid":
            unknown = sorted(str(k) for k in data if k not in cls.model_fields)
            if unknown:
                raise PydanticCustomError(
                    "unknown_keys", "unknown {model} key(s) {unknown}; valid: {valid}",
                    {"model": cls.__name__, "unknown": unknown,
                     "valid": sorted(cls.model_fields)})
        model = handler(data)
        if isinstance(data, Mapping) and isinstance(model, ConfigModel):
            model._written = copy.deepcopy(dict(data))
        return model

    @model_serializer(mode="wrap")
    def _serialise_as_written(self, handler: Any) -> Any:
        if self._written is not None:
            return copy.deepcopy(self._written)
        data = handler(self)
        return {k: v for k, v in data.items() if k in self.model_fields_set}

    def as_written(self) -> dict[str, Any]:
        """The mapping this model was validated from (or the fields set in code)."""
        return self.model_dump()

    @classmethod
    def coerce(cls, value: Any) -> Any:
        """``value`` as this model: a model passes through, a mapping (or ``None``) is validated.

        Nodes call this so they also work when called directly with plain dicts.
        """
        if isinstance(value, cls):
            return value
        return cls.model_validate({} if value is None else value)


class DataclassModel(ConfigModel):
    """A model mirroring a library config dataclass (see :func:`model_of`)."""

    config_class: ClassVar[type]
    #: fields of the model that are not fields of the dataclass
    extra_fields: ClassVar[frozenset[str]] = frozenset()

    def to_config(self, base: Mapping[str, Any] | None = None, **force: Any) -> Any:
        """The dataclass from ``base`` (defaults the node supplies, e.g. the run's seed), then the
        fields the parameters set, then ``force`` (values the node always decides)."""
        names = {f.name for f in dataclasses.fields(self.config_class)}
        written = {k: _plain(getattr(self, k)) for k in self.model_fields_set
                   if k in names and k not in self.extra_fields}
        return self.config_class(**{**(base or {}), **written, **force})

    def _fails_alone(self, name: str) -> bool:
        try:
            self.config_class(**{name: _plain(getattr(self, name))})
        except (TypeError, ValueError):
            return True
        return False

    @model_validator(mode="after")
    def _dataclass_accepts(self) -> DataclassModel:
        try:
            self.to_config()
        except (TypeError, ValueError) as e:
            # name the field when a value fails on its own against the defaults
            culprits = [n for n in sorted(self.model_fields_set)
                        if n not in self.extra_fields and self._fails_alone(n)]
            raise PydanticCustomError("config", "{error}",
                                      {"error": str(e), "field": ",".join(culprits)}) from e
        return self


def _strict_bools(tp: Any) -> Any:
    """``bool`` → ``StrictBool`` (also inside ``X | None``); other types unchanged."""
    if tp is bool:
        return StrictBool
    args = get_args(tp)
    if args and type(None) in args and bool in args and len(args) == 2:
        return StrictBool | None
    return tp


def model_of(dc: type, name: str, *, exclude: tuple[str, ...] = (),
             overrides: Mapping[str, Any] | None = None,
             extra: Mapping[str, Any] | None = None, doc: str | None = None
             ) -> type[DataclassModel]:
    """A :class:`DataclassModel` named ``name`` with ``dc``'s fields, types and defaults.

    ``overrides`` replaces a field's ``(type, default)`` (e.g. a nested model for a field the
    dataclass keeps as a dict); ``exclude`` drops fields the node always sets itself (a value
    there would be silently ignored, so it is rejected instead); ``extra`` adds fields the node
    reads that are not the dataclass's. The class must be bound to ``name`` in this module
    (pickling for ParallelRunner's worker processes looks it up there).
    """
    hints = get_type_hints(dc)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(dc):
        if f.name in exclude or not f.init:
            continue
        if f.default is not dataclasses.MISSING:
            default: Any = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = Field(default_factory=f.default_factory)
        else:
            default = ...
        fields[f.name] = (_strict_bools(hints[f.name]), default)
    fields.update(overrides or {})
    fields.update(extra or {})
    model = create_model(name, __base__=DataclassModel, __module__=__name__,
                         __doc__=doc or f"Parameters of ``{dc.__module__}.{dc.__name__}``: its "
                                         f"fields, types and defaults.", **fields)
    model.config_class = dc
    model.extra_fields = frozenset(extra or {})
    return model


def _nested(model: type[BaseModel]) -> tuple[Any, Any]:
    return (model, Field(default_factory=model))


# ----------------------------------------------------------------------------- shared pieces
PoolParams = model_of(PoolConfig, "PoolParams")
#: ``scoring``: where a miner's candidates are scored (in-process, or spread over Dask workers)
ScoringParams = model_of(ScoringConfig, "ScoringParams")
Vocabulary = dict[str, Any]  # ``{}`` = the miner's default vocabulary (Vocabulary.from_config)

# ----------------------------------------------------------------------------- ingestion
SimulatorParams = model_of(SimulatorConfig, "SimulatorParams")
SourceParams = model_of(SourceConfig, "SourceParams",
                        overrides={"simulator": _nested(SimulatorParams)})
CleanParams = model_of(CleanConfig, "CleanParams")
_SplitFields = model_of(SplitConfig, "_SplitFields",
                        extra={k: (list[Any] | None, None) for k in SEGMENTS})


class SplitParams(_SplitFields):  # type: ignore[misc, valid-type]
    """``ingestion.splits`` (``alphaminer.data.SplitConfig``), also in the flat
    ``{train: [a, b], valid: ..., test: ...}`` form ``SplitConfig.from_dict`` accepts."""

    def to_config(self, base: Mapping[str, Any] | None = None, **force: Any) -> Any:
        written = {k: _plain(getattr(self, k)) for k in self.model_fields_set}
        return SplitConfig.from_dict({**(base or {}), **written, **force})

_LABEL_DEFAULTS = {k: p.default for k, p in inspect.signature(make_labels).parameters.items()
                   if p.default is not inspect.Parameter.empty}


class LabelParams(ConfigModel):
    """``ingestion.labels``: the forward-return label (``alphaminer.data.labels``)."""

    horizon: int = _LABEL_DEFAULTS["horizon"]
    kind: str = _LABEL_DEFAULTS["kind"]

    @model_validator(mode="after")
    def _known_label(self) -> LabelParams:
        label_expression(self.horizon, self.kind)  # the library's rule for valid labels
        return self


class IngestionParams(ConfigModel):
    """``ingestion``: source, cleaning, label and splits."""

    source: SourceParams = Field(default_factory=SourceParams)
    clean: CleanParams = Field(default_factory=CleanParams)
    labels: LabelParams = Field(default_factory=LabelParams)
    splits: SplitParams = Field(default_factory=SplitParams)


# ----------------------------------------------------------------------------- alpha_library
class AlphaLibraryParams(ConfigModel):
    """``alpha_library``: user formulas in one syntax, plus the built-in sets."""

    syntax: Literal["infix", "qlib", "alphagen"] = "infix"
    formulas: dict[str, str] = Field(default_factory=dict)
    include_classic: StrictBool = True
    #: qlib's Alpha158 set (alphaminer.expr.alpha158), after the classic set
    include_alpha158: StrictBool = False
    #: rolling windows: None = full windows; 1 = qlib's partial windows (Evaluator(min_periods))
    min_periods: int | None = Field(default=None, ge=1)


# ----------------------------------------------------------------------------- combination
LassoPoolParams = model_of(LassoPoolConfig, "LassoPoolParams")
GBMParams = model_of(GBMConfig, "GBMParams")
DynamicLinearParams = model_of(DynamicLinearConfig, "DynamicLinearParams")
RankAverageParams = model_of(RankAverageConfig, "RankAverageParams")
#: combination method → the model of its block
COMBINER_BLOCKS: dict[str, type[DataclassModel]] = {
    "lasso_pool": LassoPoolParams, "xgboost": GBMParams, "lightgbm": GBMParams,
    "dynamic_linear": DynamicLinearParams, "rank_average": RankAverageParams}
CombinerName = Literal["lasso_pool", "xgboost", "lightgbm", "dynamic_linear", "rank_average"]
assert set(get_args(CombinerName)) == set(COMBINATION_METHODS) == set(COMBINER_BLOCKS)
#: an ``auto`` candidate: a combiner, or ``<combiner>@<target>`` for a combiner with a target
#: treatment (the lasso pool fitted to the ranked label: ``lasso_pool@rank``)
AutoCandidate = Literal[tuple(  # type: ignore[valid-type]
    [*get_args(CombinerName)]
    + [f"{m}@{t}" for m in get_args(CombinerName) for t in COMBINATION_TARGETS
       if "target" in {f.name for f in dataclasses.fields(COMBINER_BLOCKS[m].config_class)}])]
#: ``auto``'s own block: which combiners it compares and by what (their settings are the
#: sibling blocks of the same ``<method>.combination``)
AutoParams = model_of(AutoConfig, "AutoParams", exclude=("configs",),
                      overrides={"candidates": (list[AutoCandidate],
                                                Field(default_factory=lambda: list(
                                                    AutoConfig().candidates)))})


class CombinationParams(ConfigModel):
    """``<method>.combination``: the combiner and its settings (one block per combiner; the one
    named by ``model`` is used, the others may be kept for quick switching)."""

    model: CombinerName | Literal["auto"] = "lasso_pool"
    lasso_pool: LassoPoolParams = Field(default_factory=LassoPoolParams)
    xgboost: GBMParams = Field(default_factory=GBMParams)
    lightgbm: GBMParams = Field(default_factory=GBMParams)
    dynamic_linear: DynamicLinearParams = Field(default_factory=DynamicLinearParams)
    rank_average: RankAverageParams = Field(default_factory=RankAverageParams)
    auto: AutoParams = Field(default_factory=AutoParams)

    def combiner_config(self) -> Any:
        """The chosen combiner's config dataclass (``auto``: its candidates' blocks too)."""
        if self.model == "auto":
            cfg = self.auto.to_config()
            cfg.configs = {n: getattr(self, n.partition("@")[0]).to_config()
                           for n in cfg.candidates}
            return cfg
        return getattr(self, self.model).to_config()


# ----------------------------------------------------------------------------- backtest
BacktestPortfolioParams = model_of(BacktestConfig, "BacktestPortfolioParams")


class BacktestParams(ConfigModel):
    """``backtest``: the traded segment, quantile groups and the portfolio simulator."""

    segment: str = "test"
    n_groups: int = Field(default=5, ge=2)
    portfolio: BacktestPortfolioParams = Field(default_factory=BacktestPortfolioParams)


# ----------------------------------------------------------------------------- baselines
GPParams = model_of(GPConfig, "GPParams")
AlphaGenParams = model_of(AlphaGenConfig, "AlphaGenParams")


class GPMiningParams(ConfigModel):
    """``gp.mining``: vocabulary, the pool it fills, GP settings, checkpoint folder, split."""

    vocabulary: Vocabulary = Field(default_factory=dict)
    pool: PoolParams = Field(default_factory=PoolParams)
    miner: GPParams = Field(default_factory=GPParams)
    checkpoint_dir: str | None = None
    split: str = "train"
    scoring: ScoringParams | None = None  # None: in-process


class AlphaGenMiningParams(ConfigModel):
    """``alphagen.mining``: as :class:`GPMiningParams`, with the AlphaGen PPO settings."""

    vocabulary: Vocabulary = Field(default_factory=dict)
    pool: PoolParams = Field(default_factory=PoolParams)
    miner: AlphaGenParams = Field(default_factory=AlphaGenParams)
    checkpoint_dir: str | None = None
    split: str = "train"
    scoring: ScoringParams | None = None  # None: in-process


# ----------------------------------------------------------------------------- alpha2
Alpha2MinerParams = model_of(Alpha2Config, "Alpha2MinerParams")


class Alpha2MiningParams(ConfigModel):
    """``alpha2.mining``: vocabulary (``{}`` = Alpha2's default), miner, checkpoints, split."""

    vocabulary: Vocabulary = Field(default_factory=dict)
    miner: Alpha2MinerParams = Field(default_factory=Alpha2MinerParams)
    checkpoint_dir: str | None = None
    split: str = "train"
    scoring: ScoringParams | None = None  # None: in-process


class Alpha2AblationParams(ConfigModel):
    """``alpha2.ablations``: off by default (each variant is a full mining run)."""

    enabled: StrictBool = False
    variants: dict[str, dict[str, Any]] | None = None  # None = DEFAULT_VARIANTS
    seeds: list[int] = Field(default_factory=lambda: [0])
    top_k: int = Field(default=5, ge=1)
    miner: dict[str, Any] = Field(default_factory=dict)  # overrides of alpha2.mining.miner


# ----------------------------------------------------------------------------- alphaformer
AlphaFormerModelParams = model_of(AlphaFormerConfig, "AlphaFormerModelParams")
AlphaFormerRunParams = model_of(PretrainConfig, "AlphaFormerRunParams")


class AlphaFormerPretrainParams(ConfigModel):
    """``alphaformer.pretraining``: vocabulary, architecture, Algorithm 3 run, checkpoints."""

    vocabulary: Vocabulary = Field(default_factory=dict)
    model: AlphaFormerModelParams = Field(default_factory=AlphaFormerModelParams)
    run: AlphaFormerRunParams = Field(default_factory=AlphaFormerRunParams)
    checkpoint_dir: str | None = None


AlphaFormerInferParams = model_of(
    InferConfig, "AlphaFormerInferParams", exclude=("seed",),
    extra={"pool": _nested(PoolParams), "split": (str, "train"), "device": (str, "auto"),
           "scoring": (ScoringParams | None, None)},
    doc="``alphaformer.inference``: N (``n_candidates``), batch, temperature "
        "(``InferConfig``), the pool (capacity M, L1), the split it is fitted on, the device, "
        "where candidates are scored (``scoring``).")


# ----------------------------------------------------------------------------- ml_baselines
WindowParams = model_of(WindowConfig, "WindowParams")
_window_override = (WindowParams | None, None)
NetParams = model_of(NetConfig, "NetParams", exclude=("kind",),
                     extra={"window": _window_override})
TreeParams = model_of(TreeConfig, "TreeParams", exclude=("kind",),
                      extra={"window": _window_override})


class MLBaselinesParams(ConfigModel):
    """``ml_baselines``: the shared raw-feature window and one block per model (each may
    override ``window``)."""

    device: str = "auto"
    window: WindowParams = Field(default_factory=WindowParams)
    mlp: NetParams = Field(default_factory=NetParams)
    lstm: NetParams = Field(default_factory=NetParams)
    xgb: TreeParams = Field(default_factory=TreeParams)
    lgbm: TreeParams = Field(default_factory=TreeParams)

    def window_config(self, kind: str) -> WindowConfig:
        """The shared window with model ``kind``'s overrides."""
        own = getattr(self, kind).window
        return self.window.to_config(None, **(own.as_written() if own is not None else {}))


# ----------------------------------------------------------------------------- synthetic
FitParams = model_of(FitConfig, "FitParams")
RecurrentParams = model_of(RecurrentConfig, "RecurrentParams", exclude=("cell",))
TransformerParams = model_of(TransformerConfig, "TransformerParams")
DiffusionParams = model_of(CSDIConfig, "DiffusionParams")


class SyntheticArchParams(ConfigModel):
    """``synthetic.models``: architecture overrides per model."""

    gru: RecurrentParams | None = None
    transformer: TransformerParams | None = None
    diffusion: DiffusionParams | None = None
    evaluator: RecurrentParams | None = None


class SyntheticTrainPerModel(ConfigModel):
    """``synthetic.train_per_model``: overrides of ``train`` per model."""

    gru: FitParams | None = None
    transformer: FitParams | None = None
    diffusion: FitParams | None = None
    evaluator: FitParams | None = None


MarketParams = model_of(MarketConfig, "MarketParams")
QualityParams = model_of(QualityConfig, "QualityParams")
SyntheticParams = model_of(
    SyntheticTrainConfig, "SyntheticParams", exclude=("seed",),
    overrides={"train": _nested(FitParams), "train_per_model": _nested(SyntheticTrainPerModel),
               "models": _nested(SyntheticArchParams)},
    extra={"checkpoint_dir": (str | None, None), "markets": _nested(MarketParams),
           "quality": _nested(QualityParams)},
    doc="``synthetic``: generators, training, markets (Algorithm 2) and the quality report.")


# ----------------------------------------------------------------------------- AlphaNet
FeatureImagesParams = model_of(ImageConfig, "FeatureImagesParams")
AlphaNetTrainParams = model_of(TrainConfig, "AlphaNetTrainParams")
AlphaNetModelParams = model_of(AlphaNetConfig, "AlphaNetModelParams")
_ATTRIBUTION = {k: p.default for k, p in inspect.signature(_attribution_table).parameters.items()
                if p.default is not inspect.Parameter.empty}


class AlphaNetAttributionParams(ConfigModel):
    """``alphanet.attribution`` (``alphaminer.neural.alphanet.attribution_table``)."""

    split: str = _ATTRIBUTION.get("split", "test")
    top_k: int = Field(default=_ATTRIBUTION.get("top_k", 20), ge=1)
    method: str = _ATTRIBUTION.get("method", "grad_x_activation")


class AlphaNetParams(ConfigModel):
    """``alphanet``: training, architecture overrides, checkpoints, attribution."""

    train: AlphaNetTrainParams = Field(default_factory=AlphaNetTrainParams)
    model: AlphaNetModelParams = Field(default_factory=AlphaNetModelParams)
    checkpoint_dir: str | None = None
    attribution: AlphaNetAttributionParams = Field(default_factory=AlphaNetAttributionParams)


# ----------------------------------------------------------------------------- per method
class MethodParams(ConfigModel):
    """``<method>``: a method's combination block (``oracle``, ``library``, ...)."""

    combination: CombinationParams | None = None


class GPMethodParams(MethodParams):
    """``gp``: mining and combination."""

    mining: GPMiningParams | None = None


class AlphaGenMethodParams(MethodParams):
    """``alphagen``: mining and combination."""

    mining: AlphaGenMiningParams | None = None


class Alpha2MethodParams(MethodParams):
    """``alpha2``: mining, ablations and combination."""

    mining: Alpha2MiningParams | None = None
    ablations: Alpha2AblationParams | None = None


class AlphaFormerMethodParams(MethodParams):
    """``alphaformer``: pre-training, inference and combination."""

    pretraining: AlphaFormerPretrainParams | None = None
    inference: AlphaFormerInferParams | None = None


class ComparisonParams(ConfigModel):
    """``comparison`` (the methods × seeds pipeline): methods and seeds; further keys belong to
    that pipeline and are checked by it."""

    model_config = ConfigDict(extra="allow")

    methods: list[str] | None = None
    seeds: list[int] | None = None


class ReportingParams(ConfigModel):
    """``reporting``: what the research report draws."""

    #: the per-method tear-sheet figures (histogram/QQ, monthly heatmap, decay, quantile
    #: curves, spread, rank autocorrelation, excess return); the cross-method tear-sheet table
    #: and decay chart are always drawn. conf/test turns them off: ~12 matplotlib figures per
    #: method are most of the report's time, and the pipeline tests build many reports.
    tearsheet_figures: StrictBool = True
    #: resolution of every embedded PNG (and of the figure files for kedro-viz). conf/test
    #: draws at 60: a PNG's rendering and encoding shrink with its pixels (~0.95 s → ~0.65 s
    #: of figures per method), and the pipeline tests build many reports.
    dpi: int = Field(default=100, ge=20, le=600)


_METHOD_BLOCKS: dict[str, type[MethodParams]] = {
    "gp": GPMethodParams, "alphagen": AlphaGenMethodParams, "alpha2": Alpha2MethodParams,
    "alphaformer": AlphaFormerMethodParams}

ProjectParams = create_model(
    "ProjectParams", __base__=ConfigModel, __module__=__name__,
    __doc__="The whole parameter tree (every env's merged ``parameters*`` files plus "
            "``--params``). Every block is optional: a run needs only its pipelines' blocks.",
    seed=(int, 0), device=(str, "auto"), min_stocks=(int, Field(default=10, ge=1)),
    data_root=(str | None, None), comparison=(ComparisonParams | None, None),
    ingestion=(IngestionParams | None, None), alpha_library=(AlphaLibraryParams | None, None),
    feature_images=(FeatureImagesParams | None, None), alphanet=(AlphaNetParams | None, None),
    backtest=(BacktestParams | None, None), ml_baselines=(MLBaselinesParams | None, None),
    synthetic=(SyntheticParams | None, None), reporting=(ReportingParams | None, None),
    scoring=(ScoringParams | None, None),
    **{m: (_METHOD_BLOCKS.get(m, MethodParams) | None, None) for m in ALPHA_SET_METHODS})


class ParameterError(ValueError):
    """Invalid parameters: one line per problem, each starting with its YAML path."""


def _path(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for p in loc:
        if isinstance(p, int):
            parts.append(f"[{p}]")
        elif parts and parts[-1] and not str(p).isidentifier():
            continue  # a union member's tag (e.g. ``function-after[...]``), not a YAML key
        else:
            parts.append(("." if parts else "") + str(p))
    return "".join(parts)


def describe_errors(error: ValidationError, prefix: str = "") -> list[str]:
    """``path: message`` per error; ``path`` is the dotted YAML path under ``prefix``."""
    lines = []
    for e in error.errors():
        loc = tuple(e["loc"])
        field = (e.get("ctx") or {}).get("field")
        if field:
            loc = (*loc, field)
        path = _path(((prefix,) if prefix else ()) + loc) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] not in ("unknown_keys", "config", "value_error") and "input" in e \
                and not isinstance(e["input"], Mapping):
            msg += f" (got {e['input']!r})"
        lines.append(f"{path}: {msg}")
    return lines


def validate_parameters(params: Mapping[str, Any]) -> Any:
    """The whole tree as a :class:`ProjectParams`, or :class:`ParameterError` naming each bad
    value's YAML path."""
    try:
        return ProjectParams.model_validate(dict(params))
    except ValidationError as e:
        lines = describe_errors(e)
        raise ParameterError("invalid parameters:\n" + "\n".join(f"  {ln}" for ln in lines)
                             ) from None


def unwrap_optional(tp: Any) -> Any:
    """``X | None`` → ``X`` (for tests walking the model tree)."""
    args = [a for a in get_args(tp) if a is not type(None)]
    return args[0] if get_origin(tp) is not None and len(args) == 1 else tp


__all__ = [name for name, obj in list(globals().items())
           if isinstance(obj, type) and issubclass(obj, BaseModel) and obj.__module__ == __name__
           ] + ["ParameterError", "describe_errors", "model_of", "validate_parameters"]
