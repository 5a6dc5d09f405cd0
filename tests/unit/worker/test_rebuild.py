"""A worker's deadline index is rebuilt from the due times stored beside the orders, not by
decoding every order (the cost of a restart with many open orders)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from streams.core import order
from streams.core.engine import Engine
from streams.core.events import decode_event
from streams.policy_files import load_policy
from streams.settings import load_settings
from streams.worker import OrderwatchWorker
from streams.worker.stores import DueIndex

ORDERS = 40


def _states() -> dict[str, order.OrderState]:
    """Open orders, placed in the last hours, as the core keeps them."""
    engine = Engine(load_policy())
    now = datetime.now(UTC)
    for number in range(ORDERS):
        placed = {
            "event_id": f"e-{number}",
            "type": "order.placed",
            "occurred_at": (now - timedelta(hours=number % 7)).isoformat(),
            "merchant_id": "m-1",
            "order_id": f"o-{number}",
            "sku": "sku-1",
            "quantity": 1,
            "unit_price": "12.50",
            "currency": "USD",
            "destination_country": "US",
        }
        engine.process(decode_event(json.dumps(placed).encode()))  # type: ignore[arg-type]
    return dict(engine.orders.items())


def _worker_with(
    tmp_path: Path, store: str, states: dict[str, order.OrderState]
) -> tuple[Any, list[bytes]]:
    """A worker (no broker) whose orders table holds ``states``; the decodes it makes."""
    worker: Any = OrderwatchWorker(load_settings(broker="127.0.0.1:9", store=store))

    async def send(*_: Any) -> None:
        return None

    orders = worker.stores.orders
    orders.table._send = send
    orders.table.table.owned = set(range(worker.partitions))
    for order_id, state in states.items():
        orders.put(order_id, state)
    asyncio.run(orders.flush((1, 1)))
    orders.forget()
    decoded: list[bytes] = []
    decode = orders._decode

    def counting(data: bytes) -> Any:
        decoded.append(data)
        return decode(data)

    orders._decode = counting
    return worker, decoded


def _scheduled(worker: Any) -> dict[str, datetime]:
    return {
        order_id: due
        for _, processor in worker.processors
        for order_id, due in processor.orders.deadlines._scheduled.items()
    }


@pytest.mark.parametrize("store", ["rocksdb://", "memory://"])
def test_the_deadline_index_is_rebuilt_without_decoding_an_order(
    tmp_path: Path, store: str
) -> None:
    states = _states()
    worker, decoded = _worker_with(tmp_path, store, states)
    worker.processors.rebuild(set(range(worker.partitions)))
    policy = worker.policy
    assert _scheduled(worker) == {i: order.next_due(s, policy) for i, s in states.items()}
    assert worker.processors.open_orders() == ORDERS
    assert decoded == []


def test_due_times_stored_under_another_policy_are_not_trusted(tmp_path: Path) -> None:
    """A restart with another policy reads every order's state again: the stored times are
    its writer's policy's."""
    states = _states()
    worker, decoded = _worker_with(tmp_path, "rocksdb://", states)
    worker.stores.due = DueIndex(worker.policy, b"\xff\xff\xff\xff")
    worker.processors.rebuild(set(range(worker.partitions)))
    policy = worker.policy
    assert _scheduled(worker) == {i: order.next_due(s, policy) for i, s in states.items()}
    assert len(decoded) == ORDERS


def test_a_due_index_round_trips_and_refuses_what_it_cannot_read() -> None:
    due = DueIndex(load_policy(), b"\x01\x02\x03\x04")
    state = next(iter(_states().values()))
    index = due.index(state)
    assert len(index) == 12
    assert due.read(index) == order.next_due(state, load_policy())
    assert DueIndex(load_policy(), b"\x09\x09\x09\x09").read(index) is None
    assert due.read(b"") is None
    assert due.read(index[:-1]) is None
