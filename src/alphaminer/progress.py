"""Progress reporting: tqdm bars on a terminal, periodic log lines everywhere else.

A tqdm bar written into a log file or a CI log is hundreds of ``\\r`` updates on one line. When
stderr is not a terminal, :func:`progress` returns a :class:`LogProgress` instead, which logs
``<desc>: <n>/<total> <unit> (<pct>), <elapsed>`` through the ``alphaminer.progress`` logger
every ``ALPHAMINER_PROGRESS_INTERVAL`` seconds (default 30) and once at the end of a loop that
took longer than a few seconds. ``ALPHAMINER_PROGRESS=bar|log|off`` forces one behaviour.

Rich (Kedro's ``RichHandler``) wraps every log line at 80 columns when its output is a file or a
pipe. Kedro 1.7 does not let ``conf/logging.yml`` name a handler factory (no ``()`` key, classes
only from ``logging``/``kedro.logging``), so the project widens the consoles instead:
:func:`widen_log_consoles`, called from ``settings.py`` (after Kedro has configured logging,
from Kedro's default config or ``KEDRO_LOGGING_CONFIG``), gives every Rich handler that does not
write to a terminal the width :func:`log_width` (``ALPHAMINER_LOG_WIDTH``, else ``COLUMNS``,
else 200) and exports ``COLUMNS`` when stdout is not a terminal,
so consoles made later (ParallelRunner's spawned workers configure logging anew) are wide too.
On a terminal nothing changes. :func:`wide_rich_handler` builds such a handler in code.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

log = logging.getLogger(__name__)

#: seconds between two log lines of one loop (``ALPHAMINER_PROGRESS_INTERVAL``)
DEFAULT_INTERVAL_S = 30.0
#: a loop shorter than this logs no closing line (it would only add noise)
MIN_SUMMARY_S = 5.0


def progress_mode() -> str:
    """``bar``, ``log`` or ``off``: ``ALPHAMINER_PROGRESS``, else ``bar`` on a terminal."""
    mode = os.environ.get("ALPHAMINER_PROGRESS", "auto").strip().lower()
    if mode in ("bar", "log", "off"):
        return mode
    isatty = getattr(sys.stderr, "isatty", None)
    return "bar" if callable(isatty) and isatty() else "log"


def _interval() -> float:
    try:
        return max(0.0, float(os.environ.get("ALPHAMINER_PROGRESS_INTERVAL", DEFAULT_INTERVAL_S)))
    except ValueError:
        return DEFAULT_INTERVAL_S


def _seconds(s: float) -> str:
    return f"{s:.1f} s" if s < 120 else f"{s / 60:.1f} min"


class LogProgress:
    """The part of tqdm's interface the project uses (iterate, ``update``, ``close``,
    ``set_postfix``, context manager), reporting through logging."""

    def __init__(self, iterable: Iterable[Any] | None = None, *, desc: str = "",
                 total: float | None = None, initial: float = 0, unit: str = "it",
                 disable: bool = False, interval: float | None = None,
                 logger: logging.Logger | None = None) -> None:
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.total, self.n, self.initial = total, initial, initial
        self.desc, self.unit, self.disable = desc, unit, disable
        self.interval = _interval() if interval is None else interval
        self.logger = logger or log
        self.postfix = ""
        self._t0 = self._last = time.monotonic()
        self._logged = False
        self._closed = False

    def __iter__(self) -> Iterator[Any]:
        if self.iterable is None:
            raise TypeError("LogProgress made without an iterable is not iterable")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __len__(self) -> int:
        return int(self.total) if self.total is not None else 0

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def line(self) -> str:
        """The progress line as logged."""
        done = f"{self.n:g}" if self.total is None else f"{self.n:g}/{self.total:g}"
        pct = f" ({100 * self.n / self.total:.0f} %)" if self.total else ""
        extra = f", {self.postfix}" if self.postfix else ""
        return (f"{self.desc}: {done} {self.unit}{pct}, "
                f"{_seconds(time.monotonic() - self._t0)}{extra}")

    def update(self, n: float = 1) -> None:
        self.n += n
        now = time.monotonic()
        if not self.disable and now - self._last >= self.interval:
            self._last = now
            self._logged = True
            self.logger.info("%s", self.line())

    def set_postfix(self, ordered_dict: dict[str, Any] | None = None, refresh: bool = True,
                    **kwargs: Any) -> None:
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                 for k, v in items.items())

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = s

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        self.desc = desc or ""

    def refresh(self) -> None:
        """tqdm compatibility (nothing to redraw)."""

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        took = time.monotonic() - self._t0
        if not self.disable and self.n > self.initial and (self._logged or took >= MIN_SUMMARY_S):
            self.logger.info("%s (done)", self.line())


def progress(iterable: Iterable[Any] | None = None, *, desc: str = "",
             total: float | None = None, initial: float = 0, unit: str = "it",
             disable: bool = False, leave: bool = True, **tqdm_kwargs: Any) -> Any:
    """A tqdm bar on a terminal, else a :class:`LogProgress` (see the module docstring).

    Takes tqdm's arguments; those without a log equivalent (``leave``, ``dynamic_ncols``, ...)
    only reach the bar.
    """
    mode = progress_mode()
    if mode == "bar":
        from tqdm.auto import tqdm

        return tqdm(iterable, desc=desc, total=total, initial=initial, unit=unit,
                    disable=disable, leave=leave, **tqdm_kwargs)
    return LogProgress(iterable, desc=desc, total=total, initial=initial, unit=unit,
                       disable=disable or mode == "off")


#: width of log lines off a terminal when neither ``COLUMNS`` nor ``ALPHAMINER_LOG_WIDTH`` says
DEFAULT_LOG_WIDTH = 200


def log_width() -> int:
    """Columns for log output that is not a terminal: ``ALPHAMINER_LOG_WIDTH``, else
    ``COLUMNS`` (Rich's own setting), else 200; never under Rich's default 80."""
    for var in ("ALPHAMINER_LOG_WIDTH", "COLUMNS"):
        text = os.environ.get(var, "").strip()
        if text.isdigit():
            return max(80, int(text))
    return DEFAULT_LOG_WIDTH


def _isatty(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(callable(isatty) and isatty())
    except ValueError:  # a closed stream
        return False


def _handlers() -> Iterator[logging.Handler]:
    loggers = [logging.getLogger()] + [lg for lg in logging.Logger.manager.loggerDict.values()
                                       if isinstance(lg, logging.Logger)]
    seen: set[int] = set()
    for lg in loggers:
        for handler in lg.handlers:
            if id(handler) not in seen:
                seen.add(id(handler))
                yield handler


def widen_log_consoles() -> int:
    """Give every configured Rich log handler that does not write to a terminal the width
    :func:`log_width`, and export ``COLUMNS`` when stdout is not a terminal (for handlers made
    later, in this process or a child). Returns the number of handlers widened."""
    if not _isatty(sys.stdout):
        os.environ.setdefault("COLUMNS", str(log_width()))
    try:
        from rich.logging import RichHandler
    except ImportError:
        return 0
    width, widened = log_width(), 0
    for handler in _handlers():
        console = getattr(handler, "console", None)
        if isinstance(handler, RichHandler) and console is not None \
                and not console.is_terminal and console.width != width:
            console.width = width
            widened += 1
    return widened


def _wide_console(stderr: bool = False) -> Any:
    from rich.console import Console

    console = Console(stderr=stderr)
    if not console.is_terminal:
        console = Console(stderr=stderr, width=log_width())
    return console


def wide_rich_handler(**kwargs: Any) -> logging.Handler:
    """Kedro's ``RichHandler`` whose console does not wrap log lines at 80 columns when the
    output is a file or a pipe (:func:`log_width` columns)."""
    from kedro.logging import RichHandler

    return RichHandler(console=_wide_console(kwargs.pop("stderr", False)), **kwargs)


__all__ = ["LogProgress", "log_width", "progress", "progress_mode", "wide_rich_handler",
           "widen_log_consoles"]
