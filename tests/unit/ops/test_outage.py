"""Kafka outages are logged once when they begin and once, with their length, when they end."""

from __future__ import annotations

import logging

import pytest

from streams.ops.outage import OutageLog


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
