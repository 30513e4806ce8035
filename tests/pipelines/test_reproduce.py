"""A report's manifest names its inputs' versions and the runs that wrote them, and one
documented step reproduces the report byte for byte apart from its creation time (issue 16).

One ``conf/test`` default run (A: a copy of the session's ``kedro run``,
:func:`project_utils.shared_default_run`), then ``reporting`` runs on top of it: with another
``topk`` (B), by the manifest's ``kedro run`` command (C) and by ``kedro reproduce`` (D).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
from pathlib import Path

import pytest
from project_utils import run_project, shared_default_run

STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00")


def _versions(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.is_dir())


def _file(path: Path, version: str) -> Path:
    return path / version / path.name


def _reference_params_hash(project: Path, runtime_params: dict | None = None) -> str:
    """sha256 of the sorted compact JSON of the merged conf/test parameters, computed here
    with Kedro's config loader and hashlib (not the project's hashing code)."""
    from kedro.config import OmegaConfigLoader

    from alphaminer.settings import CONFIG_LOADER_ARGS

    loader = OmegaConfigLoader(str(project / "conf"), env="test",
                               runtime_params=runtime_params or {}, **CONFIG_LOADER_ARGS)
    text = json.dumps(loader["parameters"], sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _kedro_cli(project: Path, args: list[str]) -> None:
    """``kedro <args>`` in-process, from the project root, as a user types it."""
    from kedro.framework.cli.cli import KedroCLI

    old = Path.cwd()
    os.chdir(project)
    try:
        KedroCLI(project_path=project).main(args=args, standalone_mode=False)
    finally:
        os.chdir(old)


REPORT = "data/08_reporting/research_report.html"
MANIFEST = "data/08_reporting/run_manifest.json"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    proj = tmp_path_factory.mktemp("reproduce") / "project"
    shutil.copytree(shared_default_run(tmp_path_factory), proj)  # A: __default__
    (a,) = _versions(proj / MANIFEST)
    run_project(proj, pipeline="reporting", extra_params={
        "backtest": {"portfolio": {"topk": 5}}, "data_root": str(proj / "data")})  # B
    b = _versions(proj / MANIFEST)[-1]
    return {"project": proj, "a": a, "b": b}


def _manifest(runs: dict, key: str) -> dict:
    return json.loads(_file(runs["project"] / MANIFEST, runs[key]).read_text())


def test_every_versioned_save_has_a_sidecar_naming_its_run(runs):
    proj, a = runs["project"], runs["a"]
    want = _reference_params_hash(proj)
    saved = [p.parent for p in (proj / "data").rglob(a) if p.is_dir()]
    assert len(saved) > 50
    for ds_dir in saved:
        side = ds_dir / a / (ds_dir.name + ".run.json")
        facts = json.loads(side.read_text())
        assert facts["session_id"] == a and facts["version"] == a
        assert facts["params_sha256"] == want
        assert facts["env"] == "test" and facts["pipelines"] == ["__default__"]


def test_manifest_names_exact_input_versions_and_writer_params(runs):
    proj, a = runs["project"], runs["a"]
    man = _manifest(runs, "a")
    prov = man["provenance"]
    assert prov["session_id"] == a and prov["env"] == "test"
    assert prov["invocation"]["pipeline_names"] == []  # plain `kedro run` (the CLI's [])
    assert man["params_sha256"] == _reference_params_hash(proj)
    versioned = {k: v for k, v in prov["inputs"].items() if v["version"]}
    assert len(versioned) > 40
    from kedro.config import OmegaConfigLoader

    from alphaminer.settings import CONFIG_LOADER_ARGS

    catalog = OmegaConfigLoader(str(proj / "conf"), env="test", **CONFIG_LOADER_ARGS)["catalog"]
    for name, entry in prov["inputs"].items():
        if entry["version"] is None:
            continue
        # the version on disk: the only one the default run wrote
        assert _versions(proj / _catalog_path(catalog, name)) == [entry["version"]] == [a], name
        assert entry["written_by"] == a
    assert prov["writers"][a]["params_sha256"] == man["params_sha256"]
    assert prov["inputs_with_other_params"] == []
    for unversioned in ("market_panel", "labels", "splits"):
        assert prov["inputs"][unversioned]["version"] is None
        assert len(prov["loaded_fingerprints"][unversioned]) == 16


def _catalog_path(catalog: dict, name: str) -> Path:
    """Where a dataset (or its ``{method}.<part>`` factory pattern) saves, from the catalog."""
    if name in catalog:
        return Path(catalog[name]["filepath"])
    method, part = name.split(".", 1)
    return Path(catalog["{method}." + part]["filepath"].replace("{method}", method))


def test_report_on_old_inputs_says_they_came_from_other_parameters(runs):
    """Issue 16: after ``--params backtest.portfolio.topk=5`` and a rerun of ``reporting``
    only, the manifest must show that the backtests were written with the old parameters."""
    proj, a, b = runs["project"], runs["a"], runs["b"]
    man = _manifest(runs, "b")
    prov = man["provenance"]
    assert man["params"]["backtest"]["portfolio"]["topk"] == 5
    assert prov["inputs"]["oracle.backtest_metrics"] == {"version": a, "written_by": a}
    assert prov["writers"][a]["params_sha256"] == _reference_params_hash(proj)
    assert man["params_sha256"] == _reference_params_hash(
        proj, {"backtest": {"portfolio": {"topk": 5}}, "data_root": str(proj / "data")})
    assert man["params_sha256"] != prov["writers"][a]["params_sha256"]
    assert "oracle.backtest_metrics" in prov["inputs_with_other_params"]
    assert prov["invocation"]["pipeline_names"] == ["reporting"]
    assert prov["session_id"] == b
    html = _file(proj / REPORT, b).read_text()
    assert "written by a run with other parameters" in html


def test_html_shows_no_absolute_local_path(runs):
    proj, b = runs["project"], runs["b"]
    man = _manifest(runs, "b")
    # the manifest file keeps the run's own (absolute) data_root ...
    assert man["provenance"]["reproduce"]["runtime_params"]["data_root"] == str(proj / "data")
    html = _file(proj / REPORT, b).read_text()
    # ... the HTML shows it relative to the project, and the command still works from there
    assert str(proj) not in html and str(proj.resolve()) not in html
    assert "--params=backtest.portfolio.topk=5,data_root=data" in html


def _masked(path: Path) -> tuple[str, int]:
    text = path.read_text()
    return STAMP.subn("<created>", text)


def test_one_step_reproduces_the_report_byte_identically(runs):
    proj, a = runs["project"], runs["a"]
    original, n = _masked(_file(proj / REPORT, a))
    assert n == 2  # created_utc: key table and full manifest JSON
    command = _manifest(runs, "a")["provenance"]["reproduce"]["command"]
    assert "--pipelines=reporting" in command and "--load-versions=" in command
    args = shlex.split(command)
    assert args[0] == "kedro"
    _kedro_cli(proj, args[1:])  # C
    c = _versions(proj / REPORT)[-1]
    redone, m = _masked(_file(proj / REPORT, c))
    assert c not in (runs["a"], runs["b"]) and m == 2
    assert redone == original
    _kedro_cli(proj, ["reproduce", str(_file(proj / MANIFEST, a))])  # D
    d = _versions(proj / REPORT)[-1]
    assert d != c and _masked(_file(proj / REPORT, d))[0] == original
    man_d = json.loads(_file(proj / MANIFEST, d).read_text())
    assert man_d["provenance"]["inputs"] == _manifest(runs, "a")["provenance"]["inputs"]
    assert man_d["provenance"]["invocation"]["load_versions"]["oracle.backtest_metrics"] == a


def test_reproduce_refuses_a_changed_unversioned_input(runs, tmp_path):
    proj = runs["project"]
    man = _manifest(runs, "a")
    man["provenance"]["loaded_fingerprints"]["splits"] = "0" * 16
    edited = tmp_path / "run_manifest.json"
    edited.write_text(json.dumps(man))
    import click

    before = _versions(proj / REPORT)
    with pytest.raises(click.ClickException, match="splits changed"):
        _kedro_cli(proj, ["reproduce", str(edited)])
    assert _versions(proj / REPORT) == before


def test_parallel_runner_report_has_the_same_provenance(runs):
    """ParallelRunner runs no node or dataset hooks in its (spawned) workers: the report there
    still gets the run's context, and the sidecars are written when the pipeline ends."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project
    from kedro.runner import ParallelRunner

    proj, a = runs["project"], runs["a"]
    pins = _manifest(runs, "a")["provenance"]["reproduce"]["load_versions"]
    old = Path.cwd()
    os.chdir(proj)
    try:
        bootstrap_project(proj)
        with KedroSession.create(project_path=proj, env="test") as session:
            session.run(pipeline_names=["reporting"], runner=ParallelRunner(max_workers=1),
                        load_versions=pins)
    finally:
        os.chdir(old)
    p = _versions(proj / MANIFEST)[-1]
    man = json.loads(_file(proj / MANIFEST, p).read_text())
    prov = man["provenance"]
    assert prov["session_id"] == p and prov["invocation"]["runner"] == "ParallelRunner"
    assert prov["inputs"] == _manifest(runs, "a")["provenance"]["inputs"]
    side = json.loads((proj / MANIFEST / p / "run_manifest.json.run.json").read_text())
    assert side["session_id"] == p and side["pipelines"] == ["reporting"]
    assert _masked(_file(proj / REPORT, p))[0] == _masked(_file(proj / REPORT, a))[0]
