"""A wall-clock worker's clock is the time: advance-clock messages do not move it."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from streams.core.inbox import inventory_source, order_source
from streams.core.timekeeping import WallTime
from streams.settings import load_settings
from streams.worker import OrderwatchWorker, partition_for, wire


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


def test_on_the_wall_clock_an_aggregate_input_waits_for_every_sources_watermark(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Aggregates follow the partitions' announced clocks on the wall clock too: a tick alone
    (the time passing) applies nothing that a source whose events are unread could precede."""
    worker = OrderwatchWorker(load_settings(clock="wall"))
    sent: list[tuple[str, bytes | None]] = []

    async def send(topic: str, key: bytes | None, value: bytes | None, *_: object) -> None:
        sent.append((topic, key))

    async def delivered() -> None:
        return None

    monkeypatch.setattr(worker.publisher, "send", send)
    monkeypatch.setattr(worker.publisher, "delivered", delivered)
    now = datetime.now(UTC)
    sku = next(f"s{n}" for n in range(1000) if partition_for(f"m1/s{n}", worker.partitions) == 0)
    level = {
        "event_id": "stock-1",
        "type": "inventory.updated",
        "occurred_at": (now - timedelta(hours=1)).isoformat(),
        "merchant_id": "m1",
        "sku": sku,
        "available": 3,
    }
    inventory = worker.topic_names["inventory"]
    asyncio.run(
        worker.loops.aggregate_batch([_Message(inventory, 0, 0, json.dumps(level).encode())])
    )
    monkeypatch.setattr("streams.worker.acknowledge._utc_now", lambda: now + timedelta(minutes=1))
    asyncio.run(worker.loops.tick())
    assert worker.stores.skus.get(f"m1/{sku}") is None  # no source has announced its clock

    topic = worker.topic_names["aggregate-inputs"]
    sources = [f(p) for f in (order_source, inventory_source) for p in range(worker.partitions)]
    marks = [
        _Message(topic, 0, n + 1, wire.pack(wire.WATERMARK, now, source.encode()))
        for n, source in enumerate(sources)
    ]
    asyncio.run(worker.loops.aggregate_batch(marks))
    assert worker.stores.skus.get(f"m1/{sku}") is not None
