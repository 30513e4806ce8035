"""The walkthrough notebook executes from a scratch project on conf/test, so it cannot go stale.

It is run cell by cell with nbclient in a real Jupyter kernel, the way a user runs it: from its
own folder, the environment picked by ``KEDRO_ENV``, starting with no data (the notebook builds
what it needs). The IC table it shows is then checked against a plain numpy/pandas computation
from the parquet files the run wrote.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "pipelines"))
from project_utils import REPO, scratch_project  # noqa: E402

nbformat = pytest.importorskip("nbformat", reason="notebook extra not installed (nbformat)")
nbclient = pytest.importorskip("nbclient", reason="notebook extra not installed (nbclient)")
pytest.importorskip("ipykernel", reason="notebook extra not installed (ipykernel)")

NOTEBOOK = REPO / "notebooks" / "walkthrough.ipynb"
CELL_TIMEOUT_S = 240
MIN_STOCKS = 10  # the library's default, which the notebook uses

# Appended to the executed copy only: hands the notebook's table back in a form that is not
# pandas' text rendering, with the interpreter the kernel ran under.
_PROBE = (
    "import json as _json, sys as _sys\n"
    "print('PROBE' + _json.dumps({'formula': str(formula), 'python': _sys.executable,\n"
    "    'ic_by_split': ic_by_split.to_dict(orient='index')}))"
)


def test_committed_notebook_has_no_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "the walkthrough has no code cells"
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    assert not dirty, f"clear the outputs of cells {dirty} before committing"


def _texts(cell) -> str:
    out = []
    for o in cell.get("outputs", []):
        if o.output_type == "stream":
            out.append(o.text)
        elif o.output_type in ("execute_result", "display_data"):
            out.append(o.get("data", {}).get("text/plain", ""))
    return "".join(out)


def _reference_ic(project: Path, formula: str) -> pd.DataFrame:
    """Daily Pearson / Spearman IC per split, by hand from the files the run wrote."""
    assert formula == "Neg(Div(Delta(close,5d),Ref(close,5d)))", (
        f"the notebook's formula changed to {formula}; update this reference")
    data = project / "data" / "03_primary"
    panel = pd.read_parquet(data / "market_panel.parquet")
    labels = pd.read_parquet(data / "labels.parquet")
    splits = json.loads((data / "splits.json").read_text())
    dates = pd.DatetimeIndex(pd.to_datetime(splits["dates"]))
    close = panel.pivot(index="datetime", columns="instrument", values="close").reindex(dates)
    universe = (panel.pivot(index="datetime", columns="instrument", values="in_universe")
                .reindex(index=dates, columns=close.columns).fillna(False).astype(bool))
    # the 5-day reversal, computed in float64 on the full calendar
    factor = -(close - close.shift(5)) / close.shift(5)
    factor = factor.where(universe)
    y = (labels.pivot(index="datetime", columns="instrument", values="label")
         .reindex(index=dates, columns=close.columns))
    rows = {}
    for name, seg in splits["segments"].items():
        ics, rics = [], []
        for t in range(seg["start_index"], seg["end_index"]):
            f, g = factor.iloc[t].to_numpy(float), y.iloc[t].to_numpy(float)
            ok = np.isfinite(f) & np.isfinite(g)
            if ok.sum() < MIN_STOCKS or np.std(f[ok]) == 0 or np.std(g[ok]) == 0:
                continue
            ics.append(np.corrcoef(f[ok], g[ok])[0, 1])
            rf = pd.Series(f[ok]).rank().to_numpy()
            rg = pd.Series(g[ok]).rank().to_numpy()
            rics.append(np.corrcoef(rf, rg)[0, 1])
        rows[name] = {"ic": np.mean(ics), "ic_std": np.std(ics, ddof=1),
                      "rank_ic": np.mean(rics), "n_days": len(ics)}
    return pd.DataFrame(rows).T


def test_walkthrough_executes_on_conf_test(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = scratch_project(tmp_path)
    (project / "notebooks").mkdir()
    shutil.copy(NOTEBOOK, project / "notebooks" / NOTEBOOK.name)
    nb = nbformat.read(project / "notebooks" / NOTEBOOK.name, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(_PROBE))

    # the kernel inherits this process's environment
    monkeypatch.setenv("KEDRO_ENV", "test")
    monkeypatch.setenv("KEDRO_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("DO_NOT_TRACK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("ALPHAMINER_PROGRESS", "off")
    client = nbclient.NotebookClient(
        nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", startup_timeout=120,
        resources={"metadata": {"path": str(project / "notebooks")}},
    )
    t0 = time.perf_counter()
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(client.setup_kernel())
        except Exception as exc:  # no kernelspec, no zmq sockets, kernel died at start ...
            pytest.skip(f"a Jupyter kernel could not start here: {type(exc).__name__}: {exc}")
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)  # raises CellExecutionError with the traceback
    elapsed = time.perf_counter() - t0

    probe = json.loads(_texts(nb.cells[-1]).split("PROBE", 1)[1])
    # the kernel is this interpreter's environment, not some other Jupyter install
    assert Path(probe["python"]).resolve().parent == Path(sys.executable).resolve().parent

    # the notebook built its inputs in the scratch project, through the catalog
    assert (project / "data" / "03_primary" / "market_panel.parquet").exists()
    assert any((project / "data" / "04_feature" / "library" / "ic_table.parquet").iterdir())
    assert not (REPO / "notebooks" / "data").exists()

    table = pd.DataFrame(probe["ic_by_split"]).T
    assert list(table.index) == ["train", "valid", "test"]
    for col in ("ic", "ic_std", "icir", "rank_ic", "rank_ic_std", "rank_icir"):
        assert np.isfinite(table[col].astype(float)).all(), table
    assert (table["n_days"].astype(int) > 0).all()

    ref = _reference_ic(project, probe["formula"])
    assert table["n_days"].astype(int).tolist() == ref["n_days"].astype(int).tolist()
    np.testing.assert_allclose(table["ic"].astype(float), ref["ic"], atol=1e-5)
    np.testing.assert_allclose(table["ic_std"].astype(float), ref["ic_std"], atol=1e-5)
    np.testing.assert_allclose(table["rank_ic"].astype(float), ref["rank_ic"], atol=1e-5)

    # the table is what the user sees, and the plot was drawn
    ic_cell = next(c for c in nb.cells if "ic_by_split\n" in c.source + "\n"
                   and "ic_summary(" in c.source)
    shown = next(o for o in ic_cell.outputs if o.output_type == "execute_result")
    assert "rank_ic" in shown["data"]["text/plain"] and "test" in shown["data"]["text/plain"]
    images = [o for c in nb.cells for o in c.get("outputs", [])
              if o.output_type == "display_data" and "image/png" in o.get("data", {})]
    assert len(images) == 1
    assert elapsed < 180, f"notebook took {elapsed:.0f} s"
