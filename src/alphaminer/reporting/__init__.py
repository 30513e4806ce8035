"""Figures, the self-contained HTML research report and the run manifest.

Plain-data API (no kedro, no dependency on backtest/evaluation objects)::

    from alphaminer.reporting import MethodResults, build_manifest, build_report
    html = build_report([oracle, alpha2], build_manifest(params, panel.fingerprint()))

See ``docs/report.md``.
"""

from alphaminer.reporting.figures import (
    FIGURE_KEYS,
    TEARSHEET_KEYS,
    FigureConfig,
    all_method_figures,
    figure_to_base64_png,
    method_figures,
    tearsheet_figures,
)
from alphaminer.reporting.manifest import (
    build_manifest,
    canonical_json,
    git_state,
    package_versions,
    params_hash,
)
from alphaminer.reporting.report import ReportConfig, build_report, frame_table
from alphaminer.reporting.results import ALPHA_COLUMNS, MethodResults
from alphaminer.reporting.tables import COLUMNS, Column, comparison_table

__all__ = [
    "ALPHA_COLUMNS",
    "COLUMNS",
    "FIGURE_KEYS",
    "TEARSHEET_KEYS",
    "Column",
    "all_method_figures",
    "FigureConfig",
    "MethodResults",
    "ReportConfig",
    "build_manifest",
    "build_report",
    "canonical_json",
    "comparison_table",
    "figure_to_base64_png",
    "frame_table",
    "git_state",
    "method_figures",
    "package_versions",
    "params_hash",
    "tearsheet_figures",
]
