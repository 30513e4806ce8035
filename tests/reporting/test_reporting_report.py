import base64
import io
from html.parser import HTMLParser

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from alphaminer.reporting import FIGURE_KEYS, TEARSHEET_KEYS, build_report


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _parse(text):
    p = _Collector()
    p.feed(text)
    return p.tags


@pytest.fixture(scope="module")
def report(make_method, manifest):
    evil = make_method("a<b & \"c\"", seed=5, n_seeds=3, attribution=True)
    evil.alphas.loc[0, "formula"] = "Greater(close,open)<b>bold</b>"
    evil.notes.append("<script>alert(1)</script>")
    methods = [make_method("oracle", seed=1), make_method("alpha2", seed=2, n_seeds=4), evil]
    data_report = {"source": "simulator", "rows": {"in": 1000, "kept": 990, "rejected": 10},
                   "coverage": {"first_date": "2021-01-04", "instruments": 50}}
    planted = pd.DataFrame({"name": ["p0", "p1"],
                            "formula": ["Div(Sub(close,open),Sub(high,low))",
                                        "Corr(close,volume,20d)"],
                            "strength": [0.02, 0.01]})
    html = build_report(methods, manifest, title="Test <report>", data_report=data_report,
                        planted=planted)
    return methods, html


def test_self_contained(report):
    methods, html = report
    tags = _parse(html)
    assert "http://" not in html and "https://" not in html
    assert not [t for t, _ in tags if t in ("script", "link", "iframe", "object", "embed")]
    imgs = [a for t, a in tags if t == "img"]
    # per method: the backtest figures and the tear sheet; plus the all-methods IC decay
    assert len(imgs) == len(methods) * (len(FIGURE_KEYS) + len(TEARSHEET_KEYS)) + 1
    for a in imgs:
        src = a["src"]
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        arr = mpimg.imread(io.BytesIO(png), format="png")
        assert arr.shape[0] > 100 and arr.shape[1] > 300
        assert arr[..., :3].std() > 0.05  # not a blank image
    for t, a in tags:
        for key in ("src", "href"):
            if key in a and t != "img":
                assert a[key].startswith("#"), (t, a)


def test_sections_tables_and_escaping(report):
    methods, html = report
    assert '<section id="comparison">' in html
    assert html.count('<table class="comparison">') == 1
    for name in ["oracle", "alpha2"]:
        assert f"<h2>Method: {name}</h2>" in html
    assert "<h2>Method: a&lt;b &amp; &quot;c&quot;</h2>" in html
    assert "a<b" not in html
    assert "<code>Div(Sub(close,open),Sub(high,low))</code>" in html
    assert "Greater(close,open)&lt;b&gt;bold&lt;/b&gt;" in html and "<b>bold" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<title>Test &lt;report&gt;</title>" in html
    assert '<section id="data">' in html and "rows.in" in html
    assert '<section id="planted">' in html and "<code>Corr(close,volume,20d)</code>" in html
    assert 'id="definitions"' in html and "docs/backtest.md" in html
    assert "<h3>Attribution</h3>" in html and "BN(ts_max(BN(ts_corr(open,low,10)),3))" in html
    assert "deadbeef" in html and "abc123" in html  # manifest summary
    # mean ± std cells of the seeded methods
    assert html.count('<span class="sd">± ') >= 10
    # every internal link points at an existing id
    ids = {a["id"] for _, a in _parse(html) if "id" in a}
    for _, a in _parse(html):
        if a.get("href", "").startswith("#"):
            assert a["href"][1:] in ids


def test_report_handles_empty_frames(make_method, manifest):
    m = make_method("empty")
    m.alphas = None
    m.quantiles = pd.DataFrame({"date": pd.Series([], dtype="datetime64[ns]")})
    m.ic_series = m.ic_series.iloc[:0]
    m.daily = m.daily.drop(columns=["turnover", "benchmark_return", "excess_return"])
    m.tearsheet = None
    html = build_report([m], manifest)
    assert "No alpha set" in html
    assert html.count("data:image/png;base64,") == len(FIGURE_KEYS) + len(TEARSHEET_KEYS)
    with pytest.raises(ValueError, match="at least one"):
        build_report([], manifest)
    with pytest.raises(TypeError, match="MethodResults"):
        build_report([{"name": "x"}], manifest)


def test_figures_match_hand_computation(make_method):
    from alphaminer.reporting import FigureConfig, method_figures

    m = make_method("fig", seed=11, n_days=120)
    figs = method_figures(m, FigureConfig(rolling_window=10, annualisation=252))
    assert set(figs) == set(FIGURE_KEYS)
    r = m.daily["return"].to_numpy()
    b = m.daily["benchmark_return"].to_numpy()
    wealth, peak, hand_dd = 1.0, 1.0, []
    hand_cum = []
    for x in r:  # plain loop reference
        wealth *= 1 + x
        peak = max(peak, wealth)
        hand_cum.append(wealth - 1)
        hand_dd.append(wealth / peak - 1)
    lines = figs["cumret_vs_benchmark"].axes[0].lines
    np.testing.assert_allclose(lines[0].get_ydata(), hand_cum, rtol=1e-10)
    np.testing.assert_allclose(lines[1].get_ydata(), np.cumprod(1 + b) - 1, rtol=1e-10)
    np.testing.assert_allclose(figs["drawdown"].axes[0].lines[0].get_ydata(), hand_dd,
                               atol=1e-12)
    ic = m.ic_series["ic"].to_numpy()
    roll = figs["ic_series"].axes[0].lines[1].get_ydata()
    assert roll[30] == pytest.approx(ic[21:31].mean())
    bars = [p.get_height() for p in figs["quintiles"].axes[0].patches]
    q = m.quantiles[[f"q{i}" for i in range(1, 6)]].to_numpy()
    np.testing.assert_allclose(bars, q.mean(axis=0) * 252, rtol=1e-10)
    ls = figs["quintiles"].axes[1].lines[0].get_ydata()
    np.testing.assert_allclose(ls, np.cumsum(q[:, 4] - q[:, 0]), rtol=1e-10, atol=1e-15)


def test_backtest_shaped_frames_are_accepted(make_method):
    """Frames as alphaminer.backtest writes them: date index, Q1..Qn, universe, horizon 5."""
    from alphaminer.reporting import MethodResults, comparison_table, method_figures

    base = make_method("shape", seed=4, n_days=80)
    q = base.quantiles.drop(columns="long_short").set_index("date")
    q.columns = [c.upper() for c in q.columns]
    q["universe"] = q.mean(axis=1)
    ic = base.ic_series.set_index("date")
    m = MethodResults(name="bt", alphas=None, daily=base.daily, ic_series=ic, quantiles=q,
                      metrics={"turnover_mean": 0.25, "ic": 0.02}, quantile_horizon=5)
    assert "date" in m.quantiles.columns and "date" in m.ic_series.columns
    figs = method_figures(m)
    ax_bar, ax_ls = figs["quintiles"].axes[:2]
    groups = q[[f"Q{i}" for i in range(1, 6)]].to_numpy()
    np.testing.assert_allclose([p.get_height() for p in ax_bar.patches],
                               groups.mean(axis=0) * 252 / 5, rtol=1e-10)
    (uni,) = [ln for ln in ax_bar.lines if ln.get_label().startswith("universe")]
    np.testing.assert_allclose(uni.get_ydata()[0], q["universe"].mean() * 252 / 5)
    np.testing.assert_allclose(ax_ls.lines[0].get_ydata(),
                               np.cumsum(groups[:, 4] - groups[:, 0]) / 5, atol=1e-15)
    assert comparison_table([m]).loc["bt", "Turnover"] == "25.0%"
    with pytest.raises(ValueError, match="quantile_horizon"):
        MethodResults(name="bad", alphas=None, daily=base.daily, ic_series=ic, quantiles=q,
                      metrics={}, quantile_horizon=0)


def test_all_method_figures_flat_names(make_method):
    from alphaminer.reporting import all_method_figures

    figs = all_method_figures([make_method("a<b c", n_days=30), make_method("gp", n_days=30)])
    assert sorted(figs) == sorted(f"{m}__{k}.png" for m in ("a_b_c", "gp") for k in FIGURE_KEYS)
    with pytest.raises(ValueError, match="same figure file"):
        all_method_figures([make_method("a b", n_days=30), make_method("a_b", n_days=30)])


def test_figure_files_are_the_htmls_own_images(make_method, tmp_path):
    """``build_report(figure_files=...)`` hands back the method figures it embedded, under
    ``all_method_figures``' names; FigureFilesDataset writes those bytes as they are."""
    import base64
    import re

    from kedro.io import DatasetError

    from alphaminer.kedro_figures import FigureFilesDataset
    from alphaminer.reporting import all_method_figures, build_report

    methods = [make_method("a<b c", n_days=30), make_method("gp", n_days=30)]
    files: dict[str, bytes] = {}
    html = build_report(methods, {}, figure_files=files)
    assert sorted(files) == sorted(all_method_figures(methods))
    embedded = {base64.b64decode(b) for b in re.findall(r'src="data:image/png;base64,([^"]+)"',
                                                        html)}
    assert all(png.startswith(b"\x89PNG") and png in embedded for png in files.values())
    ds = FigureFilesDataset(filepath=str(tmp_path / "figs"))
    ds.save(files)
    assert {p.name: p.read_bytes() for p in (tmp_path / "figs").iterdir()} == files
    with pytest.raises(DatasetError, match="not a PNG"):
        ds.save({"x.png": b"GIF89a..."})


def test_figures_are_causal(make_method):
    """Changing data after day t leaves every plotted value at days <= t unchanged."""
    from alphaminer.reporting import method_figures, tearsheet_figures

    m1 = make_method("c", seed=9, n_days=100)
    m2 = make_method("c", seed=9, n_days=100)
    t = 60
    rng = np.random.default_rng(0)
    for frame, cols in ((m2.daily, ["return", "benchmark_return", "excess_return", "turnover"]),
                        (m2.ic_series, ["ic", "rank_ic"]),
                        (m2.quantiles, ["q1", "q2", "q3", "q4", "q5", "long_short"]),
                        (m2.tearsheet, [c for c in m2.tearsheet.columns if c != "date"])):
        for c in cols:
            frame.loc[t + 1:, c] = rng.normal(0, 0.05, len(frame) - t - 1)
    f1 = {**method_figures(m1), **tearsheet_figures(m1)}
    f2 = {**method_figures(m2), **tearsheet_figures(m2)}
    # the IC histogram / QQ plot, the monthly heatmap and the IC decay are not time series
    for key in (*FIGURE_KEYS, "quantile_cumulative", "quantile_spread", "rank_autocorr",
                "excess_cost"):
        for ax1, ax2 in zip(f1[key].axes, f2[key].axes):
            for l1, l2 in zip(ax1.lines, ax2.lines):
                y1, y2 = np.asarray(l1.get_ydata(), float), np.asarray(l2.get_ydata(), float)
                if y1.size == len(m1.daily):  # a time series (not a horizontal reference line)
                    np.testing.assert_array_equal(y1[: t + 1], y2[: t + 1], err_msg=key)
                    assert not np.array_equal(y1, y2) or key == "drawdown"


def test_tearsheet_figures_can_be_switched_off(make_method, manifest):
    from alphaminer.reporting.report import ReportConfig, _slug

    m = make_method("lib", seed=3)
    on = build_report([m], manifest)
    off = build_report([m], manifest, config=ReportConfig(tearsheet_figures=False))
    for key in TEARSHEET_KEYS:
        assert f'id="{_slug("lib", 0)}-{key}"' in on
        assert f'id="{_slug("lib", 0)}-{key}"' not in off
    assert "reporting.tearsheet_figures: false" in off
    assert off.count("<img") < on.count("<img")
