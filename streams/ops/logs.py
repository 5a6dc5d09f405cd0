"""The worker's log: one line per record on stderr, as text or JSON, never a message payload.

``ORDERWATCH_LOG_LEVEL`` sets orderwatch's own level. The libraries underneath (Faust, mode,
aiokafka, aiohttp) log their warnings and errors at any level, and everything else only at
``debug``: at ``info`` they would add some forty lines of service start-up and shut-down, and
multi-line tables of topics and partitions at every rebalance. ``ORDERWATCH_LOG_FORMAT=json``
writes one JSON object per line (``time``, ``level``, ``logger``, ``message`` and, for an
exception, ``error``) for log pipelines; ``text`` (the default) is for people. A record that
spans lines (a traceback, a table) is kept on one line: its line breaks are written ``\\n``.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Final, Literal, TextIO, TypeAlias

__all__ = ["LIBRARY_LOGGERS", "LogFormat", "LogLevel", "configure_logging", "formatter"]

LogLevel: TypeAlias = Literal["debug", "info", "warning", "error"]
LogFormat: TypeAlias = Literal["text", "json"]

#: Loggers of the libraries orderwatch runs on: quiet below WARNING unless the level is debug.
LIBRARY_LOGGERS: Final = ("faust", "mode", "aiokafka", "aiohttp", "asyncio")


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _one_line(text: str) -> str:
    return text.rstrip("\n").replace("\r", "").replace("\n", "\\n")


class TextFormatter(logging.Formatter):
    """``2026-01-05T10:00:00.123Z INFO orderwatch.worker: message``, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} {record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info:
            line += " | " + self.formatException(record.exc_info)
        elif record.stack_info:
            line += " | " + self.formatStack(record.stack_info)
        return _one_line(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, with the traceback (if any) as ``error``."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        elif record.stack_info:
            entry["error"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False)


def formatter(log_format: LogFormat) -> logging.Formatter:
    """The formatter of ``log_format``."""
    return JsonFormatter() if log_format == "json" else TextFormatter()


def configure_logging(
    level: LogLevel,
    log_format: LogFormat,
    *,
    filters: Iterable[logging.Filter] = (),
    stream: TextIO | None = None,
) -> None:
    """Send every record to ``stream`` (default stderr) in ``log_format``, replacing any
    handler configured before; ``filters`` see every record first."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter(log_format))
    for log_filter in filters:
        handler.addFilter(log_filter)
    root = logging.getLogger()
    root.handlers.clear()
    root.addHandler(handler)
    number = logging.getLevelNamesMapping()[level.upper()]
    root.setLevel(number)
    libraries = number if number <= logging.DEBUG else max(number, logging.WARNING)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(libraries)
