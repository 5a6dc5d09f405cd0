"""A wall-clock worker's clock is the time: advance-clock messages do not move it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from streams import wire
from streams.core.timekeeping import WallTime
from streams.settings import load_settings
from streams.worker import OrderwatchWorker


@dataclass
class _Message:
    topic: str
    partition: int
    offset: int
    value: bytes
    key: bytes | None = None

    @property
    def tp(self) -> tuple[str, int]:
        return (self.topic, self.partition)


def test_a_wall_clock_worker_ignores_advance_clock_with_a_warning(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = OrderwatchWorker(load_settings(clock="wall"))
    future = datetime(2099, 1, 1, tzinfo=UTC)
    sent: list[object] = []

    async def send(*args: object) -> None:
        sent.append(args)

    monkeypatch.setattr(worker.publisher, "send", send)
    message = _Message(worker.topic_names["clock"], 0, 0, wire.pack(wire.ADVANCE, future))

    with caplog.at_level("WARNING", logger="orderwatch.worker"):
        asyncio.run(worker.loops.order_batch([message]))

    assert isinstance(worker.processors.get(0).time, WallTime)
    assert worker.processors.clocks() == {}
    assert sent == []
    assert "runs on the wall clock" in caplog.text
