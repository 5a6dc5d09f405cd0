"""Kafka outages are logged once when they begin and once, with their length, when they end."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

import pytest

from streams.ops.outage import CoordinatorWait, OutageLog


def _record(name: str, message: str, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, (), None)


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_outage_is_one_line_at_its_start_and_one_at_its_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = _Clock()
    outage = OutageLog(quiet=3.0, clock=clock)
    failure = "Unable connect to node with id 1: [Errno 111] Connect call failed"
    first = _record("aiokafka.conn", failure)
    assert outage.filter(first)
    assert first.getMessage().startswith("Kafka unreachable (Unable connect to node")
    passed = 0
    for step in range(3000):  # ten seconds of a flood
        clock.now += 10 / 3000
        name = "aiokafka.client" if step % 2 else "aiokafka.conn"
        passed += outage.filter(_record(name, failure if step % 2 else "Unable to update metadata"))
    assert passed == 0
    assert outage.active
    clock.now += 1.0
    with caplog.at_level(logging.WARNING, logger="orderwatch.worker"):
        outage.check()  # one second quiet: not over yet
        assert caplog.messages == []
        clock.now += 2.5
        outage.check()
    assert caplog.messages == [
        "Kafka reachable again: connection errors for 10.0 s (3000 more of them not logged)"
    ]
    assert not outage.active


def test_other_records_pass_untouched() -> None:
    outage = OutageLog()
    ours = _record("orderwatch.worker", "Unable connect to node: not from a Kafka client")
    info = _record("aiokafka.conn", "Unable connect to node", level=logging.INFO)
    other = _record("aiokafka.consumer", "Heartbeat failed for group because it is rebalancing")
    assert all(outage.filter(record) for record in (ours, info, other))
    assert not outage.active


# What aiokafka's group coordinator logs while a new group's coordinator is being elected.
_NO_COORDINATOR = "Group Coordinator Request failed: [Error 15] GroupCoordinatorNotAvailableError"
_COORDINATOR_LOGGER = "aiokafka.consumer.group_coordinator"


@pytest.fixture
def info_level() -> Iterator[None]:
    root = logging.getLogger()
    before = root.level
    root.setLevel(logging.INFO)
    yield
    root.setLevel(before)


def test_a_coordinator_wait_is_one_info_line_not_errors(info_level: None) -> None:
    clock = _Clock()
    wait = CoordinatorWait(clock=clock)
    first = _record(_COORDINATOR_LOGGER, _NO_COORDINATOR)
    assert wait.filter(first)
    assert first.levelno == logging.INFO
    assert first.levelname == "INFO"
    assert first.getMessage().startswith("waiting for the group coordinator")
    assert "GroupCoordinatorNotAvailableError" in first.getMessage()
    passed = 0
    for _ in range(250):  # aiokafka retries every 100 ms: 25 s of them
        clock.now += 0.1
        passed += wait.filter(_record(_COORDINATOR_LOGGER, _NO_COORDINATOR))
    assert passed == 0
    assert wait.waiting


def test_a_wait_that_lasts_is_a_warning_every_30_s(info_level: None) -> None:
    clock = _Clock()
    wait = CoordinatorWait(remind=30.0, clock=clock)
    assert wait.filter(_record(_COORDINATOR_LOGGER, _NO_COORDINATOR))
    told = []
    for _ in range(700):  # 70 s
        clock.now += 0.1
        record = _record(_COORDINATOR_LOGGER, _NO_COORDINATOR)
        if wait.filter(record):
            told.append(record)
    assert [record.levelno for record in told] == [logging.WARNING, logging.WARNING]
    assert told[0].levelname == "WARNING"
    assert told[0].getMessage().startswith("still no group coordinator after 30 s (")
    assert told[1].getMessage().startswith("still no group coordinator after 60 s (")


def test_a_later_wait_is_a_new_info_line(info_level: None) -> None:
    clock = _Clock()
    wait = CoordinatorWait(quiet=10.0, clock=clock)
    assert wait.filter(_record(_COORDINATOR_LOGGER, _NO_COORDINATOR))
    clock.now += 1.0
    assert not wait.filter(_record(_COORDINATOR_LOGGER, _NO_COORDINATOR))
    clock.now += 11.0  # found meanwhile: the coordinator moved later
    assert not wait.waiting
    again = _record(_COORDINATOR_LOGGER, _NO_COORDINATOR, level=logging.WARNING)
    assert wait.filter(again)
    assert again.levelno == logging.INFO


def test_the_info_line_follows_the_log_level() -> None:
    root = logging.getLogger()
    before = root.level
    root.setLevel(logging.WARNING)
    try:
        wait = CoordinatorWait(clock=_Clock())
        assert not wait.filter(_record(_COORDINATOR_LOGGER, _NO_COORDINATOR))
    finally:
        root.setLevel(before)


def test_other_errors_pass_the_coordinator_filter_untouched() -> None:
    wait = CoordinatorWait(clock=_Clock())
    records = [
        _record("orderwatch.worker", _NO_COORDINATOR),  # not aiokafka's
        _record(_COORDINATOR_LOGGER, _NO_COORDINATOR, level=logging.INFO),
        _record(_COORDINATOR_LOGGER, "Heartbeat failed: NotCoordinatorForGroupError"),
        _record("aiokafka.conn", "Unable connect to node with id 1"),
    ]
    levels = [record.levelno for record in records]
    messages = [record.getMessage() for record in records]
    assert all(wait.filter(record) for record in records)
    assert [record.levelno for record in records] == levels
    assert [record.getMessage() for record in records] == messages
    assert not wait.waiting


class _Installed(Exception):
    """Stops the worker command once its log filters are known."""


def test_the_worker_command_installs_the_coordinator_filter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import socket

    from click.testing import CliRunner

    from streams import cli
    from streams.ops import logs

    installed: list[logging.Filter] = []

    def configure(*_: object, filters: Iterable[logging.Filter] = (), **__: object) -> None:
        installed.extend(filters)
        raise _Installed

    monkeypatch.setattr(logs, "configure_logging", configure)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = CliRunner().invoke(
        cli.main,
        ["worker", "--broker", "127.0.0.1:1", "--store", "memory://", "--web-port", str(port)],
    )
    assert isinstance(result.exception, _Installed), result.output
    assert any(isinstance(log_filter, CoordinatorWait) for log_filter in installed)
