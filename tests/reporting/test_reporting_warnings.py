"""The report's horizons come from parameters; warnings ("did not learn", survivorship); the
benchmark row of the comparison table."""

from __future__ import annotations

import math

import numpy as np
import pytest

from alphaminer.pipelines._methods import ALL_METHODS
from alphaminer.pipelines.reporting.nodes import (
    horizons_table,
    label_horizons,
    learning_warning,
    method_results,
)
from alphaminer.reporting import FigureConfig, ReportConfig, comparison_table
from alphaminer.reporting import build_report as _build_report
from alphaminer.reporting.report import survivorship_warning
from alphaminer.reporting.tables import BENCHMARK_ROW

PARAMS = {"ingestion": {"labels": {"horizon": 10, "kind": "vwap_lag"}},
          "feature_images": {"horizon": 5}, "backtest": {"n_groups": 4, "segment": "test",
                                                         "portfolio": {"deal_price": "vwap"}}}


def build_report(*args, **kwargs) -> str:
    """Small, low-resolution figures: these tests read the HTML text, not the pictures."""
    return _build_report(*args, config=ReportConfig(figures=FigureConfig(
        width=3, height=1.5, dpi=30)), **kwargs)


def _data(make_method) -> dict:
    data = {f"{m}__backtest_metrics": {"skipped": "not run"} for m in ALL_METHODS}
    for name, valid in (("alphanet", 0.03), ("mlp", -0.01)):
        m = make_method(name, seed=len(name), n_days=60)
        data.update({f"{name}__backtest_metrics": m.metrics, f"{name}__backtest_daily": m.daily,
                     f"{name}__ic_series": m.ic_series, f"{name}__quantiles": m.quantiles,
                     f"{name}__tearsheet": m.tearsheet,
                     f"{name}__train_metrics": {"best_valid_ic": valid, "best_epoch": 3,
                                                "epochs_run": 5}})
    data["alphanet__attribution"] = None
    return data


def test_horizons_are_read_from_parameters(make_method, manifest):
    h = label_horizons(PARAMS)
    assert (h["label_horizon"], h["label_kind"], h["alphanet_horizon"]) == (10, "vwap_lag", 5)
    assert h["decay_horizons"] == [1, 5, 10, 20] and h["n_groups"] == 4
    rows = horizons_table(h)
    assert "10-day label Sub(Div(Ref(vwap,-11d),Ref(vwap,-1d)),1)" in "".join(rows.values())
    assert "next day's vwap, 4 groups" in rows["quantiles (bars, cumulative, spread)"]
    methods = method_results(_data(make_method), PARAMS)
    assert [m.name for m in methods] == ["alphanet", "mlp"]
    net, mlp = methods
    assert (net.label_horizon, net.train_horizon, mlp.train_horizon) == (10, 5, None)
    assert net.tearsheet is not None and net.quantile_horizon == 1
    html = build_report(methods, manifest, horizons=rows)
    assert "daily IC vs the 10-day label" not in html  # titles are in the PNGs, captions in text
    assert "against the 10-day label" in html and "alphanet was trained on the 5-day label" in html
    assert "1-day forward returns" in html and "20-day label" not in html
    # another label horizon: every caption follows
    other = method_results(_data(make_method), {**PARAMS, "ingestion": {"labels": {
        "horizon": 20, "kind": "close"}}})
    assert other[0].label_horizon == 20


def test_did_not_learn_warning(make_method, manifest):
    assert learning_warning("x", 0.02) is None
    assert "-0.0100 <= 0" in learning_warning("x", -0.01)
    assert "0.0000 <= 0" in learning_warning("x", 0.0)
    assert "not finite" in learning_warning("x", float("nan"))
    assert "not finite" in learning_warning("x", None)
    net, mlp = method_results(_data(make_method), PARAMS)
    assert net.warnings == [] and len(mlp.warnings) == 1 and "did not learn" in mlp.warnings[0]
    html = build_report([net, mlp], manifest, data_report={"universe_fraction": 0.9})
    assert html.count('class="warn"') == 2  # under the method heading and at the top
    assert html.index('id="warnings"') < html.index('id="comparison"')
    assert "mlp: validation IC -0.0100 &lt;= 0" in html


@pytest.mark.parametrize("report,warned", [
    ({"missingness_before": {"in_universe": "absent"}, "universe_fraction": 1.0}, True),
    ({"missingness_before": {"in_universe": "absent"}}, True),
    # membership given by the source, every row a member: trusted (the small simulator)
    ({"missingness_before": {"in_universe": 0.0}, "universe_fraction": 1.0}, False),
    ({"missingness_before": {"in_universe": 0.0}, "universe_fraction": 0.93}, False),
    ({}, False), (None, False)])
def test_survivorship_warning(report, warned):
    w = survivorship_warning(report)
    assert (w is not None) == warned
    assert w is None or "survivorship bias" in w


def test_survivorship_warning_tops_the_report(make_method, manifest):
    report = {"missingness_before": {"in_universe": "absent"}, "universe_fraction": 1.0}
    html = build_report([make_method("a", n_days=40)], manifest, data_report=report)
    assert html.count("survivorship bias") == 1
    assert html.index("survivorship bias") < html.index('id="comparison"')


def test_benchmark_row(make_method):
    a, b = make_method("a", seed=1), make_method("b", seed=2)
    t = comparison_table([a, b], numeric=True, benchmark=True)
    assert list(t.index) == ["a", "b", BENCHMARK_ROW]
    bench = t.loc[BENCHMARK_ROW]
    assert bench["CAGR"] == a.metrics["benchmark_cagr_standard"]
    assert bench["Vol"] == a.metrics["benchmark_ann_vol_standard"]
    assert bench["Sharpe"] == a.metrics["benchmark_sharpe_standard"]
    assert bench["MDD"] == a.metrics["benchmark_max_drawdown_standard"]
    assert math.isnan(bench["IC"]) and math.isnan(bench["Turnover"])
    text = comparison_table([a, b], benchmark=True)
    assert text.loc[BENCHMARK_ROW, "Vol"] == "16.00%" and text.loc[BENCHMARK_ROW, "IC"] == "–"
    assert list(comparison_table([a, b]).index) == ["a", "b"]  # no row unless asked
    for m in (a, b):
        m.metrics = {k: v for k, v in m.metrics.items() if not k.startswith("benchmark_")}
    assert list(comparison_table([a, b], benchmark=True).index) == ["a", "b"]
    assert "Vol" not in comparison_table([a, b], benchmark=True).columns  # optional, absent


def test_benchmark_row_is_never_bold(make_method, manifest):
    a, b = make_method("a", seed=1, n_days=40), make_method("b", seed=2, n_days=40)
    for m in (a, b):
        m.metrics["cagr_standard"] = -0.5  # the benchmark's 5 % is the column's maximum
    html = build_report([a, b], manifest)
    row = html[html.index('<tr class="bench">'):]
    row = row[:row.index("</tr>")]
    assert "best" not in row and "5.00%" in row and "16.00%" in row
    assert np.isfinite(a.metrics["benchmark_sharpe_standard"])
