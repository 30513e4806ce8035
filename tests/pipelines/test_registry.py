"""The registry exposes the documented pipeline names; every node has exactly one of cpu/gpu."""

from __future__ import annotations

import pytest
from kedro.framework.project import configure_project

from alphaminer.pipelines._methods import ALL_METHODS, ALPHA_SET_METHODS

EXPECTED = {"ingestion", "alpha_library", "feature_images", "alphanet_train", "combination",
            "backtest", "reporting", "cpu", "gpu", "__default__"}


@pytest.fixture(scope="module")
def pipelines():
    configure_project("alphaminer")
    from alphaminer.pipeline_registry import register_pipelines

    return register_pipelines()


def test_pipeline_names(pipelines):
    assert set(pipelines) >= EXPECTED


def test_every_node_has_exactly_one_hardware_tag(pipelines):
    for name, p in pipelines.items():
        for n in p.nodes:
            assert len({"cpu", "gpu"} & n.tags) == 1, (name, n.name, n.tags)


def test_cpu_gpu_partition_everything(pipelines):
    every = {n.name for p in pipelines.values() for n in p.nodes}
    cpu = {n.name for n in pipelines["cpu"].nodes}
    gpu = {n.name for n in pipelines["gpu"].nodes}
    assert cpu | gpu == every and not cpu & gpu
    assert any("alphanet" in n for n in gpu)


def test_namespace_templates_per_method(pipelines):
    outs = pipelines["__default__"].all_outputs()
    for m in ALPHA_SET_METHODS:
        assert f"{m}.signal" in outs
    for m in ALL_METHODS:
        assert f"{m}.backtest_metrics" in outs
        assert f"{m}.tearsheet" in outs
    assert "research_report" in outs
    # the report reads every method's tear sheet
    report = next(p for p in pipelines["reporting"].nodes if p.name == "build_research_report")
    assert {f"{m}.tearsheet" for m in ALL_METHODS} <= set(report.inputs)


def test_default_is_connected_end_to_end(pipelines):
    free = pipelines["__default__"].inputs()
    # the free datasets: AlphaFormer's model, which falls back to the shipped pre-trained one,
    # the multi-seed comparison's records (read-only; empty until `kedro compare` has run)
    # and synthetic_generation's quality (null until that pipeline has run)
    assert all(i.startswith("params:") or i in {"parameters", "alphaformer.model",
                                                 "comparison_records", "synthetic_quality"}
               for i in free), free
