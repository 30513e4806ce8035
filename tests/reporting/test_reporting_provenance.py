"""Provenance helpers of the run manifest: the reproduce command, relative paths, fingerprints,
inputs written with other parameters, and how the HTML header shows them (issue 16)."""

from __future__ import annotations

import json
import shlex
from html import unescape

import click
import pandas as pd
from kedro.framework.cli.utils import _split_load_versions, _split_params

from alphaminer.reporting import build_manifest, build_report
from alphaminer.reporting.manifest import (
    RUN_CONTEXT_ENV,
    data_fingerprint,
    load_versions_arg,
    params_arg,
    provenance,
    relative_paths,
    reproduce_command,
    run_context,
)

V1, V2 = "2026-01-02T03.04.05.678Z", "2026-02-03T04.05.06.789Z"


def _ctx() -> click.Context:
    return click.Context(click.Command("run"))


def test_params_and_load_versions_round_trip_through_kedros_cli_parsers():
    runtime = {"backtest": {"portfolio": {"topk": 5, "cost": 0.0015}}, "data_root": "data/x",
               "flag": True, "none": None}
    parsed = _split_params(_ctx(), click.Option(["--params"]), params_arg(runtime))
    assert parsed == runtime
    pins = {"oracle.alphas": V1, "data_report": V2, "labels": None}
    assert load_versions_arg(pins) == f"data_report:{V2},oracle.alphas:{V1}"
    assert _split_load_versions(_ctx(), None, load_versions_arg(pins)) == {
        "oracle.alphas": V1, "data_report": V2}


def test_reproduce_command_is_one_shell_line_kedro_parses():
    cmd = reproduce_command("reporting", "test", {"a": {"b": 1}}, {"x.y": V1})
    args = shlex.split(cmd)
    assert args == ["kedro", "run", "--env=test", "--pipelines=reporting",
                    f"--load-versions=x.y:{V1}", "--params=a.b=1"]
    assert reproduce_command("reporting", None, {}, {}) == "kedro run --pipelines=reporting"


def test_relative_paths_rewrites_absolute_paths_only(tmp_path):
    root = tmp_path / "proj"
    data = {"source": f"{root}/data/01_raw/prices.csv",
            "qlib": f"qlib store {tmp_path}/store (csi300)",
            "nested": [f"--params=data_root={root}/data/run1"],
            "keep": ["n/a", "1/2", "a / b", "https://example.org/x", "~/x", "data/rel.csv"],
            "number": 3}
    out = relative_paths(data, root)
    assert out["source"] == "data/01_raw/prices.csv"
    assert out["qlib"] == "qlib store ../store (csi300)"
    assert out["nested"] == ["--params=data_root=data/run1"]
    assert out["keep"] == data["keep"] and out["number"] == 3
    assert str(tmp_path) not in json.dumps(out)


def test_data_fingerprint_follows_content():
    df = pd.DataFrame({"date": pd.to_datetime(["2021-01-04", "2021-01-05"]),
                       "instrument": ["A", "B"], "label": [0.1, -0.2]}).set_index(
        ["date", "instrument"])
    assert data_fingerprint(df) == data_fingerprint(df.copy())
    changed = df.copy()
    changed.iloc[1, 0] = -0.2000001
    assert data_fingerprint(changed) != data_fingerprint(df)
    assert data_fingerprint(df.rename(columns={"label": "y"})) != data_fingerprint(df)
    assert data_fingerprint(df.astype("float32")) != data_fingerprint(df)
    splits = {"train": ["2021-01-04", "2021-06-30"], "test": ["2021-07-01", "2021-12-31"]}
    assert data_fingerprint(splits) == data_fingerprint(dict(reversed(splits.items())))
    assert data_fingerprint({**splits, "test": ["2021-07-02", "2021-12-31"]}) != \
        data_fingerprint(splits)

    class WithOwn:
        def fingerprint(self) -> str:
            return "abc"

    assert data_fingerprint(WithOwn()) == "abc"


def _context() -> dict:
    writers = {V1: {"session_id": V1, "params_sha256": "old", "env": "test",
                    "pipelines": ["__default__"], "runtime_params": {}},
               V2: {"session_id": V2, "params_sha256": "new", "env": "test",
                    "pipelines": ["reporting"], "runtime_params": {"data_root": "/abs/root"}}}
    return {"session_id": V2, "env": "test", "params_sha256": "new",
            "invocation": {"pipeline_names": ["reporting"], "runtime_params":
                           {"data_root": "/abs/root"}, "load_versions": None},
            "datasets": {"oracle.backtest_metrics": {"version": V1, "written_by": V1},
                         "oracle.ic_series": {"version": V2, "written_by": V2},
                         "legacy": {"version": V1, "written_by": None},
                         "market_panel": {"version": None, "written_by": None}},
            "writers": writers}


def test_provenance_pins_versions_and_flags_inputs_from_other_parameters():
    names = ["oracle.backtest_metrics", "oracle.ic_series", "legacy", "market_panel",
             "not_in_context"]
    prov = provenance(_context(), names, "reporting", loaded={"market_panel": "f" * 16})
    assert prov["inputs"]["oracle.backtest_metrics"] == {"version": V1, "written_by": V1}
    assert prov["inputs"]["not_in_context"] == {"version": None, "written_by": None}
    assert set(prov["writers"]) == {V1, V2}
    # by hand: only the input written by the run with params "old" differs from "new"
    assert prov["inputs_with_other_params"] == ["oracle.backtest_metrics"]
    redo = prov["reproduce"]
    assert redo["load_versions"] == {"oracle.backtest_metrics": V1, "oracle.ic_series": V2,
                                     "legacy": V1}
    assert redo["command"] == (
        f"kedro run --env=test --pipelines=reporting --load-versions=legacy:{V1},"
        f"oracle.backtest_metrics:{V1},oracle.ic_series:{V2} --params=data_root=/abs/root")
    assert prov["session_id"] == V2 and prov["loaded_fingerprints"] == {"market_panel": "f" * 16}


def test_run_context_reads_the_file_the_env_names(tmp_path, monkeypatch):
    monkeypatch.delenv(RUN_CONTEXT_ENV, raising=False)
    assert run_context() == {}
    f = tmp_path / "ctx.json"
    f.write_text(json.dumps(_context()))
    monkeypatch.setenv(RUN_CONTEXT_ENV, str(f))
    assert run_context()["session_id"] == V2
    f.unlink()
    assert run_context() == {}


def test_html_header_shows_provenance_but_not_the_runs_own_invocation(make_method):
    names = ["oracle.backtest_metrics", "oracle.ic_series", "market_panel"]
    prov = provenance(_context(), names, "reporting", loaded={"market_panel": "f" * 16})
    manifest = build_manifest({"seed": 1}, "abc", provenance=prov, repo_dir="/nonexistent")
    html = build_report([make_method("oracle")], manifest)
    assert "kedro run --env=test --pipelines=reporting --load-versions=" in html
    assert "written by a run with other parameters" in html
    assert "fingerprint.market_panel" in html and "f" * 16 in html
    assert V1 in html
    full = html.split("Full run manifest")[1].split("<pre>")[1].split("</pre>")[0]
    shown = json.loads(unescape(full))
    assert shown["params_sha256"] == manifest["params_sha256"]
    assert "invocation" not in shown["provenance"] and "session_id" not in shown["provenance"]
    assert shown["provenance"]["inputs"] == prov["inputs"]
    # same inputs, another invocation and session: the same HTML apart from created_utc
    other = dict(_context(), session_id="2030-01-01T00.00.00.000Z",
                 invocation={"pipeline_names": None, "load_versions": {"x": V1},
                             "runtime_params": {"data_root": "/abs/root"}})
    other["writers"] = dict(other["writers"])
    again = build_manifest({"seed": 1}, "abc", repo_dir="/nonexistent",
                           provenance=provenance(other, names, "reporting",
                                                 loaded={"market_panel": "f" * 16}))
    again["created_utc"] = manifest["created_utc"]
    assert build_report([make_method("oracle")], again) == html
