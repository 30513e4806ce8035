"""Progress output (alphaminer.progress): bars only on a terminal, periodic log lines otherwise,
and a Rich log handler that does not wrap at 80 columns off a terminal."""

from __future__ import annotations

import io
import logging

import pytest

from alphaminer import progress as pg


def _records(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "alphaminer.progress"]


def test_mode_follows_the_terminal_and_the_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALPHAMINER_PROGRESS", raising=False)

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert pg.progress_mode() == "log"
    assert isinstance(pg.progress(range(3), desc="x"), pg.LogProgress)
    monkeypatch.setattr("sys.stderr", Tty())
    assert pg.progress_mode() == "bar"
    bar = pg.progress(range(3), desc="x")
    assert type(bar).__module__.startswith("tqdm")
    bar.close()
    for forced in ("log", "off", "bar"):
        monkeypatch.setenv("ALPHAMINER_PROGRESS", forced)
        assert pg.progress_mode() == forced


def test_periodic_lines_and_a_closing_line(caplog: pytest.LogCaptureFixture,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALPHAMINER_PROGRESS", "log")
    monkeypatch.setenv("ALPHAMINER_PROGRESS_INTERVAL", "0")
    caplog.set_level(logging.INFO, logger="alphaminer.progress")
    out = list(pg.progress(range(4), desc="gp generations", unit="gen"))
    assert out == [0, 1, 2, 3]  # iterating yields the items unchanged
    lines = _records(caplog)
    assert len(lines) == 5  # one per update (interval 0), then the closing line
    for i, line in enumerate(lines[:4], start=1):
        assert line.startswith(f"gp generations: {i}/4 gen ({25 * i} %), "), line
        assert line.endswith(" s")  # elapsed time
    assert lines[-1].startswith("gp generations: 4/4 gen (100 %)") and lines[-1].endswith("(done)")
    assert not any("\r" in ln for ln in lines)


def test_quiet_when_short_or_disabled(caplog: pytest.LogCaptureFixture,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALPHAMINER_PROGRESS", "log")
    monkeypatch.delenv("ALPHAMINER_PROGRESS_INTERVAL", raising=False)  # 30 s
    caplog.set_level(logging.INFO, logger="alphaminer.progress")
    list(pg.progress(range(100), desc="fast"))  # well under 30 s and MIN_SUMMARY_S
    bar = pg.progress(total=10, desc="manual", initial=2, disable=True)
    bar.update(5)
    bar.set_postfix(loss=0.5)
    bar.close()
    assert _records(caplog) == []
    monkeypatch.setenv("ALPHAMINER_PROGRESS_INTERVAL", "0")
    with pg.progress(total=10, desc="steps", initial=2) as bar:  # resumed at step 2
        bar.set_postfix(loss=0.123456)
        bar.update(3)
    assert _records(caplog)[0].startswith("steps: 5/10 it (50 %)")
    assert _records(caplog)[0].endswith("loss=0.1235")


def test_wide_rich_handler_off_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALPHAMINER_LOG_WIDTH", "180")
    handler = pg.wide_rich_handler(rich_tracebacks=True)
    assert not handler.console.is_terminal  # pytest captures the output
    assert handler.console.width == 180
    monkeypatch.setenv("ALPHAMINER_LOG_WIDTH", "40")
    assert pg.wide_rich_handler().console.width == 80  # never narrower than Rich's default
