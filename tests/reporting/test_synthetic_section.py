"""The report's synthetic-markets section on a small hand-made quality dict."""

from __future__ import annotations

import base64
import re

import pytest

from alphaminer.reporting.synthetic import facts_table, synthetic_section, target_line
from alphaminer.reporting.tables import MISSING

SOURCES = ["real", "gru", "transformer", "diffusion", "selected"]


def _row(source: str, kurt: float, auc: float, share: float) -> dict:
    return {"source": source, "ret_std": 0.02, "ret_skew": -0.1, "ret_excess_kurtosis": kurt,
            "z_q01": -2.9, "z_q99": 2.8, "acf_ret_1": 0.01, "acf_abs_ret_1": 0.2,
            "acf_abs_ret_mean": 0.15, "vol_absret_corr": 0.3, "cross_corr": 0.05,
            "discriminator_auc": auc, "win_share": share, "windows": 400}


def quality(selected_auc: float = 0.926) -> dict:
    facts = [_row("real", 6.5, float("nan"), float("nan")),
             _row("gru", 1.5, 0.97, 0.034), _row("transformer", 4.4, 0.925, 0.889),
             _row("diffusion", 2.0, 0.95, 0.077), _row("selected", 4.1, selected_auc, float("nan"))]
    auc = {r["source"]: r["discriminator_auc"] for r in facts[1:]}
    acf = {s: {"ret": [0.01, 0.0, -0.01], "abs_ret": [0.2, 0.15, 0.1]} for s in SOURCES}
    return {"facts": facts, "auc": auc, "acf": acf,
            "auc_std": {"gru": 0.004, "transformer": 0.006, "diffusion": 0.005,
                        "selected": 0.007},
            "wins": {"gru": 3, "transformer": 80, "diffusion": 7},
            "win_share": {"gru": 3 / 90, "transformer": 80 / 90, "diffusion": 7 / 90},
            "target": {"selected_auc": selected_auc, "best_generator": "transformer",
                       "best_generator_auc": 0.925, "met": selected_auc <= 0.925},
            "config": {"markets": 4, "window": 20, "classifier": "gbm", "folds": 5},
            "markets": [{"market": "market_0000", "stocks": 40, "days": 450,
                         "context_end": "2019-05-02", "gru": 1, "transformer": 36,
                         "diffusion": 3}]}


def _rows(html: str) -> list[list[str]]:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", r) for r in body.split("</tr>") if r]


def test_not_run_says_how_to_run() -> None:
    sid, title, html = synthetic_section(None)
    assert (sid, title) == ("synthetic-markets", "Synthetic markets")
    assert "Not run" in html and "kedro run --pipelines=ingestion,synthetic_generation" in html
    assert "<table" not in html


def test_facts_table_one_row_per_source_in_order() -> None:
    t = facts_table(quality())
    assert t["source"].tolist() == SOURCES
    assert t["excess kurtosis"].tolist() == [6.5, 1.5, 4.4, 2.0, 4.1]
    assert t["AUC std"].tolist()[1:] == [0.004, 0.006, 0.005, 0.007]
    # real is the reference: no AUC, no win share
    assert t.loc[0, ["discriminator AUC", "AUC std", "win share"]].isna().all()


def test_section_html_table_target_and_figure() -> None:
    png = b"\x89PNG\r\n\x1a\nfake"
    _, _, html = synthetic_section(quality(), figure=png)
    rows = _rows(html)
    assert [r[0] for r in rows[:5]] == SOURCES
    header = re.findall(r"<th>(.*?)</th>", html.split("<thead>", 1)[1].split("</thead>")[0])
    auc_col, share_col = header.index("discriminator AUC"), header.index("win share")
    assert rows[2][auc_col] == "0.9250" and rows[2][share_col] == "0.8890"
    assert rows[0][auc_col] == MISSING
    assert "<b>missed</b>" in html and "0.926 ± 0.007" in html and "0.925 ± 0.006" in html
    assert "difference +0.001" in html  # no paired statistics in this dict: the plain gap
    assert f"base64,{base64.b64encode(png).decode()}" in html
    assert "market_0000" in html  # the per-market table


def test_target_met_and_absent() -> None:
    assert "<b>met</b>" in target_line(quality(selected_auc=0.90))
    q = quality()
    q["target"] = {}
    assert "not evaluated" in target_line(q)


def test_target_reports_paired_noise() -> None:
    q = quality()
    q["target"].update(difference=0.0012, difference_se=0.0009, folds_total=15, decisive=False)
    line = target_line(q)
    assert "+0.001 ± 0.001" in line and "15 folds" in line and "not decisive" in line
    q["target"].update(difference=-0.02, difference_se=0.002, decisive=True)
    assert "-0.020 ± 0.002" in target_line(q) and "not decisive" not in target_line(q)


def test_figure_rebuilt_from_quality_when_absent() -> None:
    _, _, html = synthetic_section(quality())
    b64 = re.search(r'src="data:image/png;base64,([^"]+)"', html).group(1)
    assert base64.b64decode(b64)[:8] == b"\x89PNG\r\n\x1a\n"


def test_names_are_escaped_and_bad_figure_rejected() -> None:
    q = quality()
    q["target"]["best_generator"] = "<b>x</b>"
    assert "&lt;b&gt;x&lt;/b&gt;" in target_line(q)
    with pytest.raises(TypeError):
        synthetic_section(quality(), figure=42)
