"""Render a report in headless Chromium: the page paints and every embedded plot decodes."""

import re
import shutil
import subprocess

import matplotlib.image as mpimg
import pandas as pd
import pytest

from alphaminer.reporting import FIGURE_KEYS, build_manifest, build_report

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
    manifest = build_manifest({"seed": 1}, "fingerprint0123", repo_dir=tmp)
    planted = pd.DataFrame({"name": ["p0"], "formula": ["Div(Sub(close,open),Sub(high,low))"]})
    html = build_report(methods, manifest, data_report={"rows": {"in": 10, "kept": 10}},
                        planted=planted)
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
    assert len(status) == len(methods) * len(FIGURE_KEYS)
    sizes = []
    for s in status:
        complete, size = s.split(":")
        w, h = (int(v) for v in size.split("x"))
        assert complete == "true" and w > 0 and h > 0, s
        sizes.append((w, h))
    assert all(w >= 600 and h >= 200 for w, h in sizes)
