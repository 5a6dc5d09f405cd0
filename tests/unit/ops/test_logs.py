"""The worker's log: one line per record, as text or JSON; the libraries quiet unless debug."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from streams.ops.logs import LIBRARY_LOGGERS, configure_logging


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in LIBRARY_LOGGERS}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, saved in levels.items():
        logging.getLogger(name).setLevel(saved)


def _log_a_failure() -> None:
    try:
        raise ValueError("first line\nsecond line")
    except ValueError:
        logging.getLogger("orderwatch.worker").exception("failed to process %s", "orders[0]@7")


def test_text_keeps_a_record_with_a_traceback_on_one_line() -> None:
    out = io.StringIO()
    configure_logging("info", "text", stream=out)

    _log_a_failure()

    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    line = lines[0]
    assert " ERROR orderwatch.worker: failed to process orders[0]@7 | Traceback" in line
    assert "ValueError: first line\\nsecond line" in line
    assert line[:24].endswith("Z")  # 2026-01-05T10:00:00.123Z


def test_json_is_one_object_per_record_with_the_error_apart() -> None:
    out = io.StringIO()
    configure_logging("info", "json", stream=out)

    logging.getLogger("orderwatch.worker").info("ready: %d partitions", 4)
    _log_a_failure()

    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["level"] == "INFO"
    assert first["logger"] == "orderwatch.worker"
    assert first["message"] == "ready: 4 partitions"
    assert "error" not in first
    assert second["level"] == "ERROR"
    assert second["error"].startswith("Traceback")
    assert second["error"].endswith("ValueError: first line\nsecond line")


def test_libraries_log_below_warning_only_at_debug() -> None:
    out = io.StringIO()
    configure_logging("info", "text", stream=out)
    faust = logging.getLogger("faust.transport.consumer")

    faust.info("Updating subscribed topics to:\n+------+\n| orders |")
    faust.warning("Heartbeat failed")
    logging.getLogger("orderwatch.worker").info("ours")

    text = out.getvalue()
    assert "Updating subscribed topics" not in text
    assert "Heartbeat failed" in text
    assert "ours" in text

    configure_logging("debug", "text", stream=out)
    faust.info("Updating subscribed topics to:\n+------+")
    assert "Updating subscribed topics to:\\n+------+" in out.getvalue()


def test_warning_level_hides_our_info_and_filters_see_every_record() -> None:
    out = io.StringIO()
    seen: list[str] = []

    class Recorder(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            seen.append(record.getMessage())
            return "secret" not in record.getMessage()

    configure_logging("warning", "text", filters=[Recorder()], stream=out)
    log = logging.getLogger("orderwatch.worker")
    log.info("not shown")
    log.warning("shown")
    log.warning("a secret one")

    assert out.getvalue().count("\n") == 1
    assert "shown" in out.getvalue()
    assert seen == ["shown", "a secret one"]
