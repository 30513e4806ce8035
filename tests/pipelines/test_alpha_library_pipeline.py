"""`kedro run --pipeline=alpha_library` with the Alpha158 set on the simulator panel (conf/test)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from project_utils import latest, run_project, scratch_project

from alphaminer.expr import parse_qlib
from alphaminer.expr.alpha158 import alpha158_qlib
from alphaminer.expr.classic import classic_alphas
from alphaminer.pipelines.alpha_library.nodes import collect_formulas

# runtime parameters merge into conf's alpha_library (its two infix formulas stay)
PARAMS = {"include_classic": False, "include_alpha158": True}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    proj = scratch_project(tmp_path_factory.mktemp("alpha_library"))
    run_project(proj, "ingestion")
    run_project(proj, "alpha_library", extra_params={"alpha_library": PARAMS})
    return proj


def test_alpha158_set_evaluates_on_the_simulator(project: Path) -> None:
    table = pd.read_parquet(latest(project / "data/04_feature/library/ic_table.parquet"))
    names = [n for n, _ in alpha158_qlib()]
    assert table["name"].tolist() == ["range_position", "volume_shock", *names]
    # every field yields a finite IC on the training split (it evaluated to real numbers)
    train = table.set_index("name").filter(like="ic_train")
    assert train.shape[1] >= 1 and np.isfinite(train.to_numpy()).all()
    alphas = json.loads(latest(project / "data/04_feature/library/alphas.json").read_text())
    formulas = {a["name"]: a["formula"] for a in alphas["alphas"]}
    assert formulas["KMID"] == str(parse_qlib("($close-$open)/$open"))


def test_collect_formulas_sets_and_errors() -> None:
    both = collect_formulas({"include_classic": True, "include_alpha158": True})
    assert len(both) == len(classic_alphas()) + 158
    assert len(collect_formulas({})) == len(classic_alphas())  # defaults: classic only
    with pytest.raises(ValueError, match="include_alpha15"):
        collect_formulas({"include_alpha15": True})  # a typo fails loudly
    with pytest.raises(ValueError, match="duplicate alpha names"):
        collect_formulas({"syntax": "qlib", "formulas": {"KMID": "$close/$open"},
                          "include_alpha158": True})
    with pytest.raises(ValueError, match="min_periods"):
        collect_formulas({"min_periods": 0})
    with pytest.raises(ValueError, match="include_alpha158"):
        collect_formulas({"include_alpha158": "yes"})
