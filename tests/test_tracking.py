"""Run tracking (alphaminer.tracking): each kedro run is one MLflow run in a SQLite store under
the run's data root, with its parameters, per-method backtest metrics and the report."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from kedro.io import DataCatalog
from kedro_datasets.json import JSONDataset
from kedro_datasets.text import TextDataset
from mlflow import MlflowClient

from alphaminer.tracking import TRACKING_ENV, TrackingConfig, TrackingHooks

sys.path.insert(0, str(Path(__file__).resolve().parent / "pipelines"))
from project_utils import REPO, latest, scratch_project  # noqa: E402

SID = "2026-01-02T03.04.05.678Z"


def _hooks(project: Path, conf: dict) -> TrackingHooks:
    hooks = TrackingHooks()
    loader = {"mlflow": conf}
    hooks.after_context_created(SimpleNamespace(project_path=project, config_loader=loader))
    return hooks


def _run_params(**extra) -> dict:
    return {"run_id": SID, "env": "test", "pipeline_names": ["backtest"], "runtime_params": {},
            "runner": "<kedro.runner.thread_runner.ThreadRunner object at 0x7f00>", **extra}


def _catalog(root: Path, metrics: dict[str, dict], report: str | None) -> DataCatalog:
    from kedro.io import Version

    datasets = {f"{m}.backtest_metrics": JSONDataset(
        filepath=str(root / m / "backtest_metrics.json"), version=Version(None, SID))
        for m in metrics}
    datasets["gp.combination_metrics"] = JSONDataset(
        filepath=str(root / "gp" / "combination_metrics.json"), version=Version(None, SID))
    datasets["research_report"] = TextDataset(filepath=str(root / "research_report.html"),
                                              version=Version(None, SID))
    catalog = DataCatalog(datasets=datasets)
    catalog["parameters"] = {
        "seed": 7,
        "backtest": {"segment": "test", "portfolio": {"topk": 10, "n_drop": 2}},
        "big": {f"k{i:03d}": i for i in range(230)},  # > 100 params: several batches
        "long": "x" * 7000,  # over MLflow's 6000-character limit
    }
    for m, values in metrics.items():
        catalog.save(f"{m}.backtest_metrics", values)
    catalog.save("gp.combination_metrics", {"model": "lasso_pool", "valid_ic": 0.07,
                                            "test_rank_icir": 0.35})
    if report is not None:
        catalog.save("research_report", report)
    return catalog


def _pipeline(outputs: set[str]) -> SimpleNamespace:
    return SimpleNamespace(all_outputs=lambda: outputs)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite store for the hook tests (a fresh one takes seconds to create)."""
    return tmp_path_factory.mktemp("tracking") / "09_tracking" / "mlflow.db"


def _only_run(uri: str):
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("alphaminer")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1
    return client, runs[0]


def test_config_switch_and_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TRACKING_ENV, raising=False)
    cfg = TrackingConfig.from_conf({"store": "d/09_tracking/mlflow.db"}, tmp_path)
    assert cfg.enabled
    assert cfg.tracking_uri == f"sqlite:///{tmp_path.resolve()}/d/09_tracking/mlflow.db"
    assert cfg.artifact_location == (tmp_path.resolve() / "d/09_tracking/artifacts").as_uri()
    monkeypatch.setenv(TRACKING_ENV, "0")
    assert not TrackingConfig.from_conf({"enabled": True}, tmp_path).enabled
    monkeypatch.setenv(TRACKING_ENV, "1")
    assert TrackingConfig.from_conf({"enabled": False}, tmp_path).enabled
    other = TrackingConfig.from_conf({"tracking_uri": "http://host:5000"}, tmp_path)
    assert other.tracking_uri == "http://host:5000" and other.store_path is None
    with pytest.raises(ValueError, match="unknown keys"):
        TrackingConfig.from_conf({"enable": True}, tmp_path)


def test_project_conf_base_on_test_off_store_under_data_root() -> None:
    """conf/base tracks into <data_root>/09_tracking; conf/test turns tracking off."""
    from kedro.config import OmegaConfigLoader

    from alphaminer.settings import CONFIG_LOADER_ARGS

    def conf(env: str) -> dict:
        loader = OmegaConfigLoader(str(REPO / "conf"), env=env,
                                   runtime_params={"data_root": "/tmp/elsewhere"},
                                   **{k: v for k, v in CONFIG_LOADER_ARGS.items()
                                      if k != "default_run_env"})
        return dict(loader["mlflow"])

    base, test = conf("base"), conf("test")
    assert base["enabled"] is True and base["store"] == "/tmp/elsewhere/09_tracking/mlflow.db"
    assert test["enabled"] is False and test["store"] == base["store"]


def test_hook_logs_params_metrics_and_report(tmp_path: Path, store: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TRACKING_ENV, raising=False)
    gp = {"segment": "test", "ic": 0.031, "rank_ic": 0.042, "icir": 0.5,
          "sharpe_standard": 1.25, "max_drawdown_standard": -0.08, "n_days": 75,
          "skipped_flag": True, "note": "text", "missing": None}
    mlp = {"ic": -0.01, "rank_ic": 0.002, "icir": float("nan"), "sharpe_standard": -0.3,
           "max_drawdown_standard": -0.2}
    catalog = _catalog(tmp_path / "data", {"gp": gp, "mlp": mlp}, "<html>report</html>")
    hooks = _hooks(tmp_path, {"store": os.path.relpath(store, tmp_path)})  # relative
    outputs = {"gp.backtest_metrics", "mlp.backtest_metrics", "research_report",
               "gp.combination_metrics"}
    hooks.before_pipeline_run(_run_params(), _pipeline(outputs), catalog)
    run_id = hooks.run_id
    assert run_id is not None
    hooks.after_pipeline_run(_run_params(), {}, _pipeline(outputs), catalog)
    assert hooks.run_id is None

    client = MlflowClient(tracking_uri=f"sqlite:///{store.resolve()}")
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.info.experiment_id == client.get_experiment_by_name("alphaminer").experiment_id
    p = run.data.params
    assert p["seed"] == "7" and p["backtest.segment"] == "test"
    assert p["backtest.portfolio.topk"] == "10" and p["backtest.portfolio.n_drop"] == "2"
    assert all(p[f"big.k{i:03d}"] == str(i) for i in range(230))
    assert p["long"] == "x" * 6000
    assert len(p) == 1 + 3 + 230 + 1
    t = run.data.tags
    assert t["kedro.session_id"] == SID and t["kedro.runner"] == "ThreadRunner"
    assert t["kedro.pipelines"] == "backtest" and t["kedro.env"] == "test"
    m = run.data.metrics
    assert {k for k in m if k.startswith("gp.")} == {
        "gp.ic", "gp.rank_ic", "gp.icir", "gp.sharpe_standard", "gp.max_drawdown_standard",
        "gp.n_days", "gp.combination.valid_ic", "gp.combination.test_rank_icir",
    }  # bools, text and None are not metrics
    assert m["gp.combination.valid_ic"] == 0.07 and m["gp.combination.test_rank_icir"] == 0.35
    assert m["gp.ic"] == 0.031 and m["gp.rank_ic"] == 0.042 and m["gp.n_days"] == 75.0
    assert m["mlp.sharpe_standard"] == -0.3 and m["mlp.max_drawdown_standard"] == -0.2
    assert m["mlp.icir"] != m["mlp.icir"]  # NaN kept as NaN
    arts = [a.path for a in client.list_artifacts(run_id)]
    assert arts == ["research_report.html"]
    local = Path(client.download_artifacts(run_id, "research_report.html", str(tmp_path)))
    assert local.read_text() == "<html>report</html>"
    # artifacts next to the store, not in ./mlruns
    assert (store.parent / "artifacts").is_dir()
    assert not (Path.cwd() / "mlruns" / client.get_experiment_by_name("alphaminer")
                .experiment_id).exists()


def test_failed_run_is_marked_failed_with_what_finished(tmp_path: Path, store: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    monkeypatch.delenv(TRACKING_ENV, raising=False)
    catalog = _catalog(tmp_path / "data", {"gp": {"ic": 0.5}}, report=None)
    hooks = _hooks(tmp_path, {"store": str(store)})
    outputs = {"gp.backtest_metrics", "mlp.backtest_metrics", "research_report"}
    hooks.before_pipeline_run(_run_params(), _pipeline(outputs), catalog)
    run_id = hooks.run_id
    hooks.on_pipeline_error(RuntimeError("boom"), _run_params(), _pipeline(outputs), catalog)
    client = MlflowClient(tracking_uri=f"sqlite:///{store.resolve()}")
    run = client.get_run(run_id)
    assert run.info.status == "FAILED"
    assert run.data.metrics == {"gp.ic": 0.5}  # mlp never saved, the report neither
    assert client.list_artifacts(run.info.run_id) == []


def test_switched_off_and_unwritable_store_never_fail_the_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    catalog = _catalog(tmp_path / "data", {"gp": {"ic": 0.5}}, report=None)
    outputs = {"gp.backtest_metrics"}
    monkeypatch.setenv(TRACKING_ENV, "0")
    off = _hooks(tmp_path, {"store": str(tmp_path / "off" / "mlflow.db")})
    off.before_pipeline_run(_run_params(), _pipeline(outputs), catalog)
    off.after_pipeline_run(_run_params(), {}, _pipeline(outputs), catalog)
    assert not (tmp_path / "off").exists()

    monkeypatch.delenv(TRACKING_ENV)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    bad = _hooks(tmp_path, {"store": str(blocker / "09_tracking" / "mlflow.db")})
    with caplog.at_level(logging.WARNING, logger="alphaminer.tracking"):
        bad.before_pipeline_run(_run_params(), _pipeline(outputs), catalog)
        bad.after_pipeline_run(_run_params(), {}, _pipeline(outputs), catalog)
    assert bad.run_id is None
    assert any("tracking off for this run" in r.getMessage() for r in caplog.records)


@pytest.mark.slow
def test_kedro_run_is_tracked_and_metrics_read_back(tmp_path: Path) -> None:
    """`kedro run --env test` (the smallest run writing two methods' backtest metrics) with
    ALPHAMINER_TRACKING=1: the store holds the run's parameters and the numbers of its own
    ``<method>.backtest_metrics`` files."""
    project = scratch_project(tmp_path)
    # the default log width off a terminal, whatever the test process inherited
    env = {**{k: v for k, v in os.environ.items()
              if k not in ("COLUMNS", "ALPHAMINER_LOG_WIDTH", "KEDRO_LOGGING_CONFIG")},
           "KEDRO_DISABLE_TELEMETRY": "1", TRACKING_ENV: "1"}
    methods = ("oracle", "library")
    out = subprocess.run(
        [sys.executable, "-m", "kedro", "run", "--env", "test",
         "--to-outputs=" + ",".join(f"{m}.backtest_metrics" for m in methods)],
        cwd=project, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    assert not (project / "mlruns").exists()  # kedro-mlflow's own hook stays disabled

    client, run = _only_run(f"sqlite:///{project.resolve()}/data/09_tracking/mlflow.db")
    assert run.info.status == "FINISHED"
    # the log is a pipe: the line naming the run is not wrapped at 80 columns (test_logging)
    assert any(f"tracking this run as MLflow run {run.info.run_id}" in line
               for line in out.stdout.splitlines()), out.stdout[-3000:]
    conf = yaml.safe_load((REPO / "conf/test/parameters.yml").read_text())
    bt = yaml.safe_load((REPO / "conf/test/parameters/backtest.yml").read_text())["backtest"]
    p = run.data.params
    assert p["seed"] == str(conf["seed"]) and p["min_stocks"] == str(conf["min_stocks"])
    assert p["backtest.portfolio.topk"] == str(bt["portfolio"]["topk"])
    assert p["backtest.portfolio.n_drop"] == str(bt["portfolio"]["n_drop"])
    assert json.loads(run.data.tags["kedro.to_outputs"]) == [f"{m}.backtest_metrics"
                                                             for m in methods]
    for m in methods:
        path = latest(project / f"data/07_model_output/{m}/backtest_metrics.json")
        assert path.parent.name == run.data.tags["kedro.session_id"]
        saved = json.loads(path.read_text())
        for key in ("ic", "rank_ic", "icir", "sharpe_standard", "max_drawdown_standard"):
            assert run.data.metrics[f"{m}.{key}"] == pytest.approx(saved[key], rel=1e-12), key
        comb = json.loads(latest(project / f"data/07_model_output/{m}/combination_metrics.json")
                          .read_text())
        assert run.data.metrics[f"{m}.combination.valid_ic"] == pytest.approx(comb["valid_ic"],
                                                                              rel=1e-12)
    assert client.list_artifacts(run.info.run_id) == []  # no report in this partial run
