"""A batch's acknowledgement: outputs before state, and applied inputs kept until committed."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from streams.settings import load_settings
from streams.worker import OrderwatchWorker, partition_for
from streams.worker.acknowledge import AppliedInputs


@dataclass
class _Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None

    @property
    def tp(self) -> tuple[str, int]:
        return (self.topic, self.partition)


def _placed(order_id: str) -> bytes:
    return json.dumps(
        {
            "event_id": f"{order_id}-e1",
            "type": "order.placed",
            "occurred_at": datetime.now(UTC).isoformat(),
            "merchant_id": "m-1",
            "order_id": order_id,
            "sku": "sku-1",
            "quantity": 1,
            "unit_price": "10.00",
            "currency": "USD",
            "destination_country": "US",
            "program": "standard",
        }
    ).encode()


def test_a_batch_sends_its_outputs_then_waits_for_kafka_then_writes_its_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = OrderwatchWorker(load_settings(broker="127.0.0.1:9", data_dir=tmp_path))
    steps: list[str] = []

    async def send(topic: str, *_: object) -> None:
        steps.append("state" if topic.endswith("-changelog") else "output")

    async def delivered() -> None:
        steps.append("delivered")

    monkeypatch.setattr(worker.publisher, "send", send)
    monkeypatch.setattr(worker.publisher, "delivered", delivered)
    partition = partition_for("o-1", worker.partitions)
    message = _Message("orders", partition, 7, b"o-1", _placed("o-1"))
    asyncio.run(worker.loops.order_batch([message]))
    assert steps[0] == "output"  # the placed order's facts
    first_state = steps.index("state")
    assert "delivered" in steps[:first_state]
    assert "output" not in steps[first_state:]


def test_an_applied_input_is_deletable_only_once_its_message_is_committed() -> None:
    applied = AppliedInputs()
    applied.note("aggregate-inputs", 1, 10, b"1/i/a")
    applied.note("aggregate-inputs", 1, 11, b"1/i/b")
    applied.note("inventory", 1, 3, b"1/i/c")
    applied.note("aggregate-inputs", 2, 5, b"2/i/d")
    assert applied.deletable(1) == []  # nothing committed yet

    applied.committed("aggregate-inputs", 1, 11)  # offsets up to 10 are committed
    assert applied.deletable(1) == [b"1/i/a"]
    assert applied.deletable(1) == []  # handed out once
    applied.committed("aggregate-inputs", 1, 12)
    applied.committed("inventory", 1, 4)
    assert sorted(applied.deletable(1)) == [b"1/i/b", b"1/i/c"]
    assert applied.deletable(2) == []  # partition 2's message is not committed


def test_moved_partitions_forget_what_they_applied() -> None:
    applied = AppliedInputs()
    applied.note("aggregate-inputs", 0, 1, b"0/i/a")
    applied.clear()
    applied.committed("aggregate-inputs", 0, 5)
    assert applied.deletable(0) == []
