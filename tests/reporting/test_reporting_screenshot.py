"""Render a report in headless Chromium: the page paints, every embedded plot decodes, the
factor tear sheet is there for every method, and its sections paint (screenshots are kept under
the test's tmp folder and copied to ``/tmp/tearsheet_shots`` for a person to look at)."""

import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from alphaminer.reporting import FIGURE_KEYS, TEARSHEET_KEYS, build_manifest, build_report
from alphaminer.reporting.report import _slug

#: where one set of section screenshots is copied for people to look at
SHOTS = Path("/tmp/tearsheet_shots")

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")

# Only the TEST copy of the page carries a script: after load it writes each image's status into
# the DOM, which --dump-dom then prints.
_PROBE = """<script>
window.addEventListener('load', function () {
  var out = [];
  for (var i = 0; i < document.images.length; i++) {
    var im = document.images[i];
    out.push(im.complete + ':' + im.naturalWidth + 'x' + im.naturalHeight);
  }
  var pre = document.createElement('pre');
  pre.id = 'imgstatus';
  pre.textContent = out.join(';');
  document.body.appendChild(pre);
  var wrap = document.querySelector('#planted .wide');
  var tab = document.querySelector('#planted table');
  var fit = document.createElement('pre');
  fit.id = 'plantedfit';
  fit.textContent = tab.scrollWidth + 'x' + wrap.clientWidth;
  document.body.appendChild(fit);
});
</script>"""


def _chromium(tmp_path, *args, timeout=120):
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, make_method):
    tmp = tmp_path_factory.mktemp("chromium")
    methods = [make_method("oracle", seed=1), make_method("alpha2", seed=2, n_seeds=3),
               make_method("alphanet", seed=3, attribution=True)]
    methods[2].train_horizon = 5
    methods[1].warnings = ["validation IC -0.0100 <= 0: alpha2 did not learn a signal"]
    manifest = build_manifest({"seed": 1}, "fingerprint0123", repo_dir=tmp)
    long_formula = "Mul(" + ",".join(["CSRank(Corr(Div(Sub(close,open),Sub(high,low)),"
                                      "Log(Add(volume,1)),20d))"] * 8) + ")"
    planted = pd.DataFrame({"name": ["p0", "p1"],
                            "formula": ["Div(Sub(close,open),Sub(high,low))", long_formula],
                            "expr": [long_formula, "Corr(close,volume,20d)"], "ic": [0.05, 0.1]})
    data_report = {"source": "simulator", "rows": {"in": 10, "kept": 10},
                   "coverage": {"dates": 260, "instruments": 50},
                   "missingness_before": {"in_universe": "absent", "close": 0.0},
                   "universe_fraction": 1.0}
    html = build_report(methods, manifest, data_report=data_report, planted=planted,
                        horizons={"IC / RankIC": "20-day label", "quantiles": "1-day returns"})
    page = tmp / "report.html"
    page.write_text(html, encoding="utf-8")
    probe = tmp / "probe.html"
    # negative control: a corrupt data URI must be reported as not decoded (naturalWidth 0)
    broken = '<img alt="broken" src="data:image/png;base64,iVBORw0KGgoAAAAA">'
    probe.write_text(html.replace("</body>", broken + _PROBE + "</body>"), encoding="utf-8")
    return tmp, page, probe, methods


def test_screenshot_is_not_blank(rendered):
    tmp, page, _probe, _methods = rendered
    shot = tmp / "shot.png"
    res = _chromium(tmp, f"--screenshot={shot}", "--window-size=1280,4000",
                    page.resolve().as_uri())
    assert shot.exists(), res.stderr[-2000:]
    img = mpimg.imread(shot)[..., :3]
    assert img.shape[:2] == (4000, 1280)
    non_white = (img < 0.95).any(axis=-1)
    assert non_white.mean() > 0.05  # text, tables and plots painted
    assert img.std() > 0.1
    # the plots are there: many rows contain strongly coloured (non-grey) pixels, e.g. the
    # blue strategy line, the red drawdown fill and the green quintile bars
    colourful = (img.max(axis=-1) - img.min(axis=-1)) > 0.25
    assert colourful.any(axis=1).mean() > 0.2


def test_every_image_decodes_in_the_browser(rendered):
    tmp, _page, probe, methods = rendered
    res = _chromium(tmp, "--dump-dom", "--virtual-time-budget=5000", probe.resolve().as_uri())
    m = re.search(r'<pre id="imgstatus">([^<]*)</pre>', res.stdout)
    assert m, res.stderr[-2000:]
    *status, control = m.group(1).split(";")
    assert control.endswith(":0x0"), control  # the probe does see a failed image
    assert len(status) == len(methods) * (len(FIGURE_KEYS) + len(TEARSHEET_KEYS)) + 1
    sizes = []
    for s in status:
        complete, size = s.split(":")
        w, h = (int(v) for v in size.split("x"))
        assert complete == "true" and w > 0 and h > 0, s
        sizes.append((w, h))
    assert all(w >= 600 and h >= 150 for w, h in sizes)
    # the long planted formulas wrap: the table is no wider than its box
    fit = re.search(r'<pre id="plantedfit">(\d+)x(\d+)</pre>', res.stdout)
    assert fit, res.stdout[-2000:]
    table_w, box_w = int(fit.group(1)), int(fit.group(2))
    assert 0 < table_w <= box_w, (table_w, box_w)


def _between(html: str, start: str, end: str = "</section>") -> str:
    i = html.index(start)
    return html[i:html.index(end, i) + len(end)]


def _section_pages(html: str, methods) -> dict[str, str]:
    """Stand-alone pages (the report's head and CSS) holding one new section each."""
    head = html[:html.index("<body>") + len("<body>")]
    slug = _slug(methods[0].name, 0)
    parts = {
        "warnings_comparison": _between(html, '<div id="warnings">'),  # up to the table's end
        "tearsheet_overview": _between(html, '<section id="tearsheet">'),
        f"{methods[0].name}_tearsheet": _between(html, f'<h3 id="{slug}-tearsheet">'),
        "data_planted": _between(html, '<section id="data">')
        + _between(html, '<section id="planted">'),
    }
    return {k: head + v + "</body></html>" for k, v in parts.items()}


def test_every_tearsheet_figure_is_present(rendered):
    _tmp, page, _probe, methods = rendered
    html = page.read_text(encoding="utf-8")
    for i, m in enumerate(methods):
        slug = _slug(m.name, i)
        assert f'<h3 id="{slug}-tearsheet">Factor tear sheet</h3>' in html
        for key in TEARSHEET_KEYS:  # histogram+QQ, monthly heatmap, decay, quantile
            # cumulative, spread band, rank autocorrelation, excess with/without cost
            assert re.search(rf'<figure id="{slug}-{key}"><img alt="{re.escape(m.name)}: '
                             rf'{key}" src="data:image/png;base64,', html), (m.name, key)
    assert '<figure id="all-ic_decay"><img alt="all methods: ic_decay"' in html
    assert '<tr class="bench"><th>benchmark (equal-weight universe)</th>' in html
    assert html.count('<details class="group">') == 3  # rows, coverage, missingness_before
    assert "survivorship bias" in html and "alpha2: validation IC -0.0100" in html
    assert 'id="horizons"' in html and "20-day label" in html
    assert "alphanet was trained on the 5-day label" in html


def test_new_sections_paint(rendered):
    tmp, page, _probe, methods = rendered
    html = page.read_text(encoding="utf-8")
    shots = tmp / "shots"
    shots.mkdir(exist_ok=True)
    for name, text in _section_pages(html, methods).items():
        sec = tmp / f"{name}.html"
        sec.write_text(text, encoding="utf-8")
        shot = shots / f"{name}.png"
        height = {"tearsheet_overview": 900}.get(
            name, 3000 if name.endswith("_tearsheet") else 1400)
        res = _chromium(tmp, f"--screenshot={shot}", f"--window-size=1280,{height}",
                        sec.resolve().as_uri())
        assert shot.exists(), res.stderr[-2000:]
        img = mpimg.imread(shot)[..., :3]
        non_white = (img < 0.95).any(axis=-1)
        assert non_white.mean() > 0.02, name  # text, tables or plots painted
        colourful = (img.max(axis=-1) - img.min(axis=-1)) > 0.25
        if name.endswith(("_tearsheet", "_overview")):
            assert colourful.any(axis=1).mean() > 0.15, name  # the plots' coloured lines
        if name == "warnings_comparison":  # the red warning boxes are drawn
            red = (img[..., 0] > 0.6) & (img[..., 1] < 0.35) & (img[..., 2] < 0.35)
            assert red.sum() > 50, name
    SHOTS.mkdir(parents=True, exist_ok=True)
    for f in shots.glob("*.png"):
        shutil.copy(f, SHOTS / f.name)
    assert np.all([(SHOTS / f.name).exists() for f in shots.glob("*.png")])
