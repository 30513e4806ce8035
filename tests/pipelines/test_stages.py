"""Registry structure behind the run modes (no runs here; tests/pipelines/test_run_modes.py
runs them): the three default stages, selective loading, spawn workers, Kedro warnings, and
kedro-viz layers on every catalog entry."""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path

import pytest
import yaml
from kedro.framework.project import configure_project
from kedro.pipeline import Pipeline, node
from kedro.pipeline.node import Node

from alphaminer.pipeline_registry import DEFAULT_STAGES, hardware_stages

REPO = Path(__file__).resolve().parents[2]
LAYERS = {"01_raw": "raw", "02_intermediate": "intermediate", "03_primary": "primary",
          "04_feature": "feature", "05_model_input": "model_input", "06_models": "models",
          "07_model_output": "model_output", "08_reporting": "reporting"}


@pytest.fixture(scope="module")
def pipelines():
    configure_project("alphaminer")
    from alphaminer.pipeline_registry import register_pipelines

    return register_pipelines()


def _catalog() -> dict:
    out: dict = {}
    for f in sorted((REPO / "conf" / "base").glob("catalog_*.yml")):
        for name, entry in (yaml.safe_load(f.read_text()) or {}).items():
            out[name] = (f.name, entry)
    return out


def test_default_stages_partition_the_default_run(pipelines) -> None:
    default = pipelines["__default__"]
    names = [{n.name for n in pipelines[s].nodes} for s in DEFAULT_STAGES]
    assert set().union(*names) == {n.name for n in default.nodes}
    assert sum(len(s) for s in names) == len(default.nodes)  # disjoint
    before, gpu, after = (pipelines[s] for s in DEFAULT_STAGES)
    assert all("cpu" in n.tags for n in before.nodes + after.nodes)
    assert all("gpu" in n.tags for n in gpu.nodes)
    # the order is a valid schedule: no stage needs an output of a later stage
    made_later = [set(gpu.all_outputs()) | set(after.all_outputs()), set(after.all_outputs())]
    assert not set(before.inputs()) & made_later[0]
    assert not set(gpu.inputs()) & made_later[1]
    # the backtests and report need the GPU side: they are in the last stage
    assert {"build_research_report", "alphanet.backtest_signal", "alpha2.combine_alphas"} <= \
        {n.name for n in after.nodes}
    assert {"load_raw", "gp.mine_gp", "gp.backtest_signal"} <= {n.name for n in before.nodes}


def test_every_dataset_crossing_a_stage_is_a_catalog_file(pipelines) -> None:
    """Stages may run on different hosts: nothing they hand over may live in memory."""
    from kedro.config import OmegaConfigLoader
    from kedro.io import DataCatalog

    from alphaminer import settings

    loader = OmegaConfigLoader(str(REPO / "conf"), **{**settings.CONFIG_LOADER_ARGS,
                                                       "default_run_env": "test"})
    cat = DataCatalog.from_config(loader["catalog"])
    before, gpu, after = (pipelines[s] for s in DEFAULT_STAGES)
    crossing = (set(before.all_outputs()) & (set(gpu.inputs()) | set(after.inputs()))) | \
        (set(gpu.all_outputs()) & set(after.inputs()))
    assert crossing
    for name in sorted(crossing):
        assert name in cat, name  # declared (explicitly or by a factory), so not a MemoryDataset
        assert type(cat.get(name)).__name__ != "MemoryDataset", name


def test_a_fourth_stage_is_refused() -> None:
    def f(x):
        return x

    p = Pipeline([node(f, "a", "b", name="c1", tags="cpu"), node(f, "b", "c", name="g1",
                                                                   tags="gpu"),
                  node(f, "c", "d", name="c2", tags="cpu"), node(f, "d", "e", name="g2",
                                                                   tags="gpu")])
    with pytest.raises(ValueError, match="g2"):
        hardware_stages(p)
    ok = hardware_stages(Pipeline(p.nodes[:3]))
    assert [sorted(n.name for n in ok[s].nodes) for s in DEFAULT_STAGES] == [["c1"], ["g1"],
                                                                             ["c2"]]


def test_derived_pipelines_build_when_requested_alone() -> None:
    """Kedro 1.7 imports only the folder named on the command line (``--pipelines=cpu`` raised
    ImportError); the registry must build every derived pipeline under such a filter."""
    from kedro.framework.project import pipelines as project_pipelines

    configure_project("alphaminer")
    for name in ("cpu", "gpu", *DEFAULT_STAGES):
        project_pipelines.set_requested([name])
        try:
            assert len(project_pipelines[name].nodes) > 0, name
        finally:
            project_pipelines.set_requested(None)


def test_no_dotted_name_warning_and_the_check_still_works() -> None:
    flag = importlib.import_module("kedro.pipeline.node")._DOTTED_DATASET_NAME_WARNED
    setattr(Node, flag, False)
    configure_project("alphaminer")
    from alphaminer.pipeline_registry import register_pipelines

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        register_pipelines()
    assert not [w for w in caught if "dataset names contain '.'" in str(w.message)]
    with warnings.catch_warnings(record=True) as caught:  # a real offender elsewhere still warns
        warnings.simplefilter("always")
        node(lambda x: x, "a", "other.b", name="n")
    assert [w for w in caught if "dataset names contain '.'" in str(w.message)]


def test_parallel_runner_spawns_workers() -> None:
    from kedro.runner import ParallelRunner

    import alphaminer.settings  # noqa: F401 - sets KEDRO_MP_CONTEXT unless exported

    runner = ParallelRunner(max_workers=1)
    try:
        pool = runner._get_executor(1)
        assert pool._mp_context.get_start_method() == "spawn"
        pool.shutdown()
    finally:
        runner._manager.shutdown()


def test_every_catalog_entry_has_its_kedro_viz_layer() -> None:
    entries = _catalog()
    assert len(entries) > 30
    for name, (fname, e) in entries.items():
        layer = ((e.get("metadata") or {}).get("kedro-viz") or {}).get("layer")
        assert layer in LAYERS.values(), (fname, name, layer)
        path = e.get("filepath") or e.get("path")
        folder = (path or "").split("}/", 1)[-1].split("/")[0]
        if folder in LAYERS:  # a file in a layer folder has that folder's layer
            assert LAYERS[folder] == layer, (fname, name, folder, layer)
