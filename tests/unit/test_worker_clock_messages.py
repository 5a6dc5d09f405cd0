"""A wall-clock worker's clock is the time: advance-clock messages do not move it."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from streams import wire
from streams.core.timekeeping import WallTime
from streams.settings import load_settings
from streams.worker import OrderwatchWorker, partition_for


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


def test_a_tick_drops_the_inputs_it_applied_only_after_kafka_has_their_states(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On the wall clock an input dated ahead waits in the inbox table until a tick applies it;
    no commit covers a tick, so its key goes only once the aggregate's state is delivered."""
    worker = OrderwatchWorker(load_settings(clock="wall"))
    calls: list[tuple[str, bytes | None]] = []

    async def send(topic: str, key: bytes | None, value: bytes | None, *_: object) -> None:
        calls.append((topic, None if value is None else key))

    async def delivered() -> None:
        calls.append(("delivered", None))

    monkeypatch.setattr(worker.publisher, "send", send)
    monkeypatch.setattr(worker.publisher, "delivered", delivered)
    now = datetime.now(UTC)
    sku = next(f"s{n}" for n in range(1000) if partition_for(f"m1/s{n}", worker.partitions) == 0)
    level = {
        "event_id": "stock-1",
        "type": "inventory.updated",
        "occurred_at": (now + timedelta(seconds=30)).isoformat(),
        "merchant_id": "m1",
        "sku": sku,
        "available": 3,
    }
    message = _Message(worker.topic_names["inventory"], 0, 0, json.dumps(level).encode())
    asyncio.run(worker.loops.aggregate_batch([message]))
    [waiting] = [key for key in worker.stores.inbox_table.keys() if b"/i/" in key]  # noqa: SIM118
    assert worker.stores.skus.get(f"m1/{sku}") is None  # not yet: it is dated ahead
    calls.clear()

    later = now + timedelta(minutes=1)
    monkeypatch.setattr("streams.worker.agents._utc_now", lambda: later)
    asyncio.run(worker.loops.tick())

    assert worker.stores.skus.get(f"m1/{sku}") is not None
    skus_changelog = next(topic for topic, key in calls if topic.endswith("skus-changelog"))
    state_written = calls.index((skus_changelog, f"m1/{sku}".encode()))
    tombstone = next(i for i, (topic, key) in enumerate(calls) if key is None and "inbox" in topic)
    acknowledged = [i for i, call in enumerate(calls) if call == ("delivered", None)]
    # Outputs before state, and the state acknowledged before its inputs are dropped.
    assert acknowledged[0] < state_written
    assert any(state_written < i < tombstone for i in acknowledged)
    assert worker.stores.inbox_table.get(waiting) is None
