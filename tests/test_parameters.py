"""Typed parameters (alphaminer.parameters): every env's files validate, bad values fail naming
their YAML path (also at ``kedro run`` start, before any node), models mirror the library's
config dataclasses, and a validated tree serialises exactly as written."""

from __future__ import annotations

import dataclasses
import json
import pickle
import sys
from pathlib import Path

import pytest
from kedro.config import OmegaConfigLoader
from kedro.framework.project import configure_project

from alphaminer import parameters as P
from alphaminer.backtest import BacktestConfig
from alphaminer.data import CleanConfig, SourceConfig, SplitConfig
from alphaminer.mining.gp.miner import GPConfig
from alphaminer.reporting.manifest import canonical_json

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "pipelines"))


def load_params(env: str, runtime: dict | None = None) -> dict:
    """The merged parameters of ``env`` exactly as the project's settings load them."""
    from alphaminer import settings

    args = dict(settings.CONFIG_LOADER_ARGS)
    args["default_run_env"] = env
    return OmegaConfigLoader(str(REPO / "conf"), runtime_params=runtime or {}, **args)[
        "parameters"]


@pytest.fixture(scope="module", params=["base", "test", "paper"])
def env_params(request) -> dict:
    return load_params(request.param)


def test_every_env_validates_and_serialises_as_written(env_params: dict) -> None:
    model = P.validate_parameters(env_params)
    # the manifest hashes `parameters`: a validated tree must hash like the YAML it came from
    assert canonical_json(model) == canonical_json(env_params)
    # every top-level block of the files is modelled (none passes as an opaque dict)
    assert set(env_params) <= set(P.ProjectParams.model_fields)
    assert pickle.loads(pickle.dumps(model)).model_dump() == model.model_dump()


def test_serialises_as_written_not_as_coerced_or_defaulted() -> None:
    raw = {"seed": 3, "backtest": {"portfolio": {"buy_cost": 0, "topk": 5}}}
    model = P.validate_parameters(raw)
    assert isinstance(model.backtest.portfolio.buy_cost, float)  # validated value: 0.0
    assert model.backtest.n_groups == 5  # defaults are there to read ...
    assert model.model_dump() == raw  # ... but not written back (nor 0 turned into 0.0)
    assert canonical_json(model) == canonical_json(raw)


def test_runtime_params_and_comparison_block_are_accepted() -> None:
    params = load_params("test", {"data_root": "data/sim_seed1",
                                  "comparison": {"methods": ["gp", "alpha2"], "seeds": [0, 1],
                                                 "resume": True}})
    model = P.validate_parameters(params)
    assert model.data_root == "data/sim_seed1"
    assert model.comparison.methods == ["gp", "alpha2"] and model.comparison.seeds == [0, 1]
    with pytest.raises(P.ParameterError, match=r"comparison.seeds.*\[1\]"):
        P.validate_parameters({"comparison": {"seeds": [0, "x"]}})


@pytest.mark.parametrize("override, path, words", [
    ({"backtest": {"portfolio": {"topk": -1}}}, "backtest.portfolio.topk", "positive integer"),
    ({"backtest": {"portfolio": {"topk": "ten"}}}, "backtest.portfolio.topk", "valid integer"),
    ({"backtest": {"portfolio": {"n_drop": 99}}}, "backtest.portfolio.n_drop", "[0, topk"),
    ({"backtest": {"n_groups": 1}}, "backtest.n_groups", "greater than or equal to 2"),
    ({"backtest": {"portfolo": {}}}, "backtest", "unknown BacktestParams key(s) ['portfolo']"),
    ({"backtst": {}}, "(top level)", "['backtst']"),
    ({"alpha_library": {"include_classic": "yes"}}, "alpha_library.include_classic", "boolean"),
    ({"alpha_library": {"syntax": "sql"}}, "alpha_library.syntax", "'infix'"),
    ({"ingestion": {"labels": {"kind": "open"}}}, "ingestion.labels", "label kind"),
    ({"ingestion": {"clean": {"ohlc_policy": "fix"}}}, "ingestion.clean.ohlc_policy", "fix"),
    ({"gp": {"mining": {"miner": {"population": 1}}}}, "gp.mining.miner.population", ">= 2"),
    ({"library": {"combination": {"model": "svm"}}}, "library.combination.model", "lasso_pool"),
    ({"ml_baselines": {"lstm": {"window": {"day_strid": 2}}}}, "ml_baselines.lstm.window",
     "day_strid"),
    ({"synthetic": {"models": {"gru": {"cell": "lstm"}}}}, "synthetic.models.gru", "cell"),
])
def test_bad_values_name_their_yaml_path(override: dict, path: str, words: str) -> None:
    params = load_params("test", override)
    with pytest.raises(P.ParameterError) as err:
        P.validate_parameters(params)
    line = next(ln.strip() for ln in str(err.value).splitlines() if ln.strip().startswith(path))
    assert words in line, line


def _dataclass_models() -> list[type]:
    return [m for m in vars(P).values() if isinstance(m, type)
            and issubclass(m, P.DataclassModel) and m is not P.DataclassModel
            and not m.__name__.startswith("_")]


@pytest.mark.parametrize("model", _dataclass_models(), ids=lambda m: m.__name__)
def test_models_take_their_dataclass_defaults(model: type) -> None:
    """One source of truth: an empty block gives exactly the library dataclass's defaults."""
    dc = model.config_class
    excluded = {f.name for f in dataclasses.fields(dc)} - set(model.model_fields)
    built = model.model_validate({}).to_config(
        **{n: getattr(dc(), n) for n in excluded})  # fields the node always sets
    assert built == dc()
    for f in dataclasses.fields(dc):
        mf = model.model_fields.get(f.name)
        # a field the model overrides with its own type (a default_factory) is checked above
        if mf is not None and mf.default_factory is None and f.default is not dataclasses.MISSING:
            assert mf.default == f.default, f.name


def test_nodes_get_the_library_configs() -> None:
    bt = P.BacktestParams.coerce({"segment": "valid", "portfolio": {"topk": 5, "n_drop": 1}})
    assert bt.portfolio.to_config() == BacktestConfig(topk=5, n_drop=1)
    assert bt.segment == "valid" and bt.n_groups == 5
    src = P.SourceParams.coerce({"kind": "parquet", "path": "x.parquet",
                                 "columns": {"datetime": "date"}})
    assert src.to_config() == SourceConfig(kind="parquet", path="x.parquet",
                                           columns={"datetime": "date"})
    sim = P.SourceParams.coerce({"simulator": {"n_stocks": 40}}).to_config()
    assert sim.simulator == {"n_stocks": 40}  # a nested block reaches the library as written
    # the node's defaults (the run's seed) lose to what the parameters say
    gp = P.GPMiningParams.coerce({"miner": {"population": 30, "seed": 7}})
    assert gp.miner.to_config({"seed": 1}) == GPConfig(population=30, seed=7)
    assert P.GPMiningParams.coerce({}).miner.to_config({"seed": 1}) == GPConfig(seed=1)
    # the flat split form SplitConfig.from_dict accepts, and the label-derived purge default
    flat = P.SplitParams.coerce({"train": ["2012-01-01", "2015-12-31"]})
    assert flat.to_config({"horizon": 5}) == SplitConfig.from_dict(
        {"horizon": 5, "segments": {"train": ["2012-01-01", "2015-12-31"]}})
    assert P.CleanParams.coerce({"market": "cn"}).to_config() == CleanConfig(market="cn")
    lib = P.CombinationParams.coerce({"model": "xgboost", "xgboost": {"top_k": 3}})
    assert lib.combiner_config().top_k == 3


def test_kedro_typed_parameters_cover_every_block() -> None:
    """Kedro's own validator finds a model for every mapping-valued ``params:`` node input of
    the registered pipelines (scalars such as ``seed`` stay plain), and rejects a bad value."""
    from kedro.validation import ParameterValidationError, ParameterValidator

    configure_project("alphaminer")
    from alphaminer.pipeline_registry import register_pipelines

    pipelines = register_pipelines()
    typed = ParameterValidator(pipelines).type_extractor.extract_types_from_pipelines()
    params = load_params("base")
    untyped = set()
    for n in pipelines["__default__"].nodes + pipelines["synthetic_generation"].nodes:
        for i in n.inputs:
            key = i.removeprefix("params:")
            if i.startswith("params:") and isinstance(_get(params, key), dict) \
                    and key not in typed:
                untyped.add(key)
    # alphanet_train and feature_images take plain dicts (their nodes belong to another
    # change); ProjectParams still checks both blocks at start
    assert untyped <= {"alphanet", "feature_images"}, untyped
    assert typed["backtest"] is P.BacktestParams
    assert typed["ingestion.source"] is P.SourceParams
    assert typed["gp.combination"] is P.CombinationParams
    bad = load_params("base", {"backtest": {"portfolio": {"topk": 0}}})
    with pytest.raises(ParameterValidationError, match="backtest"):
        ParameterValidator(pipelines).validate_raw_params(bad)
    ok = ParameterValidator(pipelines).validate_raw_params(params)
    assert isinstance(ok["backtest"], P.BacktestParams)
    assert json.loads(canonical_json(ok)) == json.loads(canonical_json(params))


def _get(d: dict, dotted: str):
    for k in dotted.split("."):
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def test_bad_parameter_fails_before_the_first_node(tmp_path: Path) -> None:
    from project_utils import run_project, scratch_project

    proj = scratch_project(tmp_path)
    with pytest.raises(P.ParameterError, match=r"backtest\.portfolio\.topk: topk must be"):
        run_project(proj, extra_params={"backtest": {"portfolio": {"topk": -1}}})
    written = [p for p in (proj / "data").rglob("*") if p.is_file()]
    assert written == [], written  # nothing ran: no dataset, not even the run lock
