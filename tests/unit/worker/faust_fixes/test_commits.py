"""The worker learns which offsets Faust committed: an applied aggregate input leaves the inbox
table only then."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from faust.types import TP

from streams.core.inbox import inventory_source, order_source
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


def _waiting_inputs(worker: OrderwatchWorker) -> list[bytes]:
    return [key for key in worker.stores.inbox_table.keys() if b"/i/" in key]  # noqa: SIM118


def test_an_applied_input_leaves_the_inbox_once_its_message_is_committed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(clock="wall", store="memory://", data_dir=tmp_path)
    worker = OrderwatchWorker(settings)

    async def send(*_: object) -> None:
        return None

    monkeypatch.setattr(worker.publisher, "send", send)
    monkeypatch.setattr(worker.publisher, "delivered", send)
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
    level_message = _Message(inventory, 0, 0, json.dumps(level).encode())
    asyncio.run(worker.loops.aggregate_batch([level_message]))
    assert len(_waiting_inputs(worker)) == 1  # waits for every source's watermark

    topic = worker.topic_names["aggregate-inputs"]
    sources = [f(p) for f in (order_source, inventory_source) for p in range(worker.partitions)]
    marks = [
        _Message(topic, 0, n, wire.pack(wire.WATERMARK, now, source.encode()))
        for n, source in enumerate(sources)
    ]
    asyncio.run(worker.loops.aggregate_batch(marks))
    assert worker.stores.skus.get(f"m1/{sku}") is not None  # applied by the last watermark
    again = _Message(topic, 0, len(marks), marks[-1].value)
    asyncio.run(worker.loops.aggregate_batch([again]))
    assert len(_waiting_inputs(worker)) == 1  # not committed: a restart may apply it again

    # Faust commits the aggregate-inputs partition past the watermark that applied it.
    worker.app.tables.on_commit({TP(topic, 0): len(marks) + 1})
    asyncio.run(worker.loops.aggregate_batch([_Message(topic, 0, len(marks) + 1, again.value)]))
    assert _waiting_inputs(worker) == []
