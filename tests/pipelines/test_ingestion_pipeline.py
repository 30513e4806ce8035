"""`kedro run --pipeline=ingestion`: the simulator in conf/test, and the shared real panels."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from project_utils import REPO, latest, run_project, scratch_project

from alphaminer.panel import Panel


def _shared_data() -> Path | None:
    env = os.environ.get("ALPHAMINER_SHARED_DATA")
    for p in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data"]:
        if p.is_dir():
            return p
    return None


def test_ingestion_on_simulator(tmp_path: Path):
    proj = scratch_project(tmp_path)
    run_project(proj, "ingestion")
    panel = Panel.load(proj / "data/03_primary/market_panel.parquet")
    assert panel.T == 320 and 0 < panel.S <= 40  # some simulated names list after the end
    assert panel.meta.get("vwap_fallback") is False
    report = json.loads(latest(proj / "data/08_reporting/data_report.json").read_text())
    rows = report.get("rows", report)
    text = json.dumps(rows)
    assert "rejected" in text
    labels = pd.read_parquet(proj / "data/03_primary/labels.parquet")
    # an independent recomputation of the 5-day label from the panel's adjusted closes
    close = pd.DataFrame(panel.feature("close").numpy(), index=panel.dates,
                         columns=panel.instruments)
    ref = (close.shift(-5) / close - 1).where(panel.universe.numpy())
    got = labels.pivot(index="datetime", columns="instrument", values="label")
    got = got.reindex(index=ref.index, columns=ref.columns)
    np.testing.assert_allclose(got.to_numpy(), ref.to_numpy(), rtol=1e-5, atol=1e-7)
    planted = pd.read_parquet(latest(proj / "data/03_primary/planted_alphas.parquet"))
    assert {"formula", "strength", "oracle_ic_train", "oracle_ic_valid", "oracle_ic_test"} \
        <= set(planted.columns)
    splits = json.loads((proj / "data/03_primary/splits.json").read_text())
    seg = splits["segments"]
    assert seg["valid"]["start_index"] - seg["train"]["end_index"] >= 5  # purge = horizon


@pytest.mark.realdata
@pytest.mark.parametrize("name, columns, clean", [
    ("us_sp500_yahoo_2015_2020.parquet", {"datetime": "date"}, {}),
    ("cn_all_tushare_2017_2019.parquet", {"datetime": "date"}, {"market": "cn"}),
])
def test_ingestion_on_shared_panels(tmp_path: Path, name: str, columns: dict, clean: dict):
    data = _shared_data()
    if data is None or not (data / name).exists():
        pytest.skip("shared real data not available")
    proj = scratch_project(tmp_path)
    src = {"ingestion": {"source": {"kind": "parquet", "path": str(data / name),
                                    "columns": columns, "simulator": {}},
                         "labels": {"horizon": 20, "kind": "close"},
                         "splits": {"fractions": [0.6, 0.2, 0.2]}}}
    if clean:
        src["ingestion"]["clean"] = clean
    run_project(proj, "ingestion", extra_params=src)
    panel = Panel.load(proj / "data/03_primary/market_panel.parquet")
    assert panel.meta["vwap_fallback"] is True
    assert panel.has_feature("limit_up") == bool(clean)
    raw_rows = len(pd.read_parquet(data / name, columns=["instrument"]))
    rejected = pd.read_csv(proj / "data/02_intermediate/rejected_rows.csv")
    assert int(panel.observed.sum()) + len(rejected) == raw_rows
    report = json.loads(latest(proj / "data/08_reporting/data_report.json").read_text())
    assert "vwap" in json.dumps(report)
