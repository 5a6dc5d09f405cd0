"""The worker's error policy: Kafka failing stops the worker; a defect dead-letters the message.

Unit tests of the shell: the agent is driven with a stand-in stream, and the process exit is
intercepted. (That a stopped worker loses nothing is the fault suite's job, on a real broker.)
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, ProducerFenced
from faust.exceptions import ProducerSendError

from streams import failures
from streams.core import order
from streams.core.outputs import Rejection
from streams.settings import load_settings
from streams.worker import PROCESSING_FAILED, OrderwatchWorker, partition_for


@dataclass
class _Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None = b"o-1"
    value: bytes | None = b"{}"

    @property
    def tp(self) -> tuple[str, int]:
        return (self.topic, self.partition)


class _Exited(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


def _worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception) -> Any:
    """A worker whose every send meets ``error`` (a Kafka one); dead letters are recorded."""
    worker = OrderwatchWorker(load_settings(broker="127.0.0.1:9", data_dir=tmp_path))
    rejected: list[tuple[str, str]] = []

    async def reject(message: Any, reason: Rejection) -> None:
        rejected.append((f"{message.topic}@{message.offset}", reason))

    async def send(*_: Any) -> None:
        raise error

    def exit_(code: int) -> None:
        raise _Exited(code)

    monkeypatch.setattr(worker.publisher, "reject", reject)
    monkeypatch.setattr(worker.publisher, "send", send)
    monkeypatch.setattr(failures.os, "_exit", exit_)
    worker.rejected = rejected
    return worker


def _defect(worker: Any, monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    """Reading any message meets ``error``; the batch's writes succeed."""

    def read(message: Any) -> Any:
        raise error

    async def flush() -> None:
        return None

    monkeypatch.setattr(worker.loops, "_order_read", read)
    monkeypatch.setattr(worker.stores.orders, "flush", flush)


def _batch(worker: Any, *messages: _Message) -> None:
    asyncio.run(worker.loops.order_batch(list(messages)))


def _committed_at(worker: Any, monkeypatch: pytest.MonkeyPatch, offset: int) -> None:
    """The group's committed offset, as the worker's offset reader reads it."""

    class Reader:
        async def committed(self, tp: Any) -> int:
            return offset

    async def reader() -> Reader:
        return Reader()

    monkeypatch.setattr(worker.watch, "reader", reader)


@pytest.mark.parametrize(
    "error",
    [
        KafkaConnectionError("broker gone"),
        ProducerFenced(),
        ProducerSendError("No transaction producer found for : relapp-0-3"),
        TimeoutError(),
    ],
    ids=["unreachable", "fenced", "no-transaction-producer", "timeout"],
)
def test_a_kafka_failure_stops_the_worker_and_dead_letters_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    worker = _worker(tmp_path, monkeypatch, error)
    partition = partition_for("o-1", worker.partitions)
    with pytest.raises(_Exited) as exited:  # sending the placed order's facts fails
        _batch(worker, _Message("orders", partition, 7, b"o-1", _placed("o-1")))
    assert exited.value.code == failures.EXIT_KAFKA_UNAVAILABLE
    assert worker.rejected == []


def test_a_skipped_offset_stops_the_worker_before_the_message_is_handled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = _worker(tmp_path, monkeypatch, ArithmeticError("not reached"))
    worker.watch.offsets.reset({("orders", 0): 7})
    _committed_at(worker, monkeypatch, 7)  # the group's commit says so too
    with pytest.raises(_Exited) as exited:
        _batch(worker, _Message("orders", 0, 9))
    assert exited.value.code == failures.EXIT_KAFKA_UNAVAILABLE
    assert worker.rejected == []


def test_a_first_message_at_a_commit_seen_late_is_no_skip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The group's commit was not visible at the assignment (read as the log's start)."""
    worker = _worker(tmp_path, monkeypatch, ArithmeticError("unused"))
    _defect(worker, monkeypatch, ArithmeticError("handled"))
    worker.watch.offsets.reset({("orders", 0): 0})
    _committed_at(worker, monkeypatch, 9)
    _batch(worker, _Message("orders", 0, 9))
    assert worker.rejected == [("orders@9", PROCESSING_FAILED)]  # handled, not stopped


def test_a_defect_met_by_one_message_dead_letters_it_and_the_partition_flows_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = _worker(tmp_path, monkeypatch, ArithmeticError("unused"))
    _defect(worker, monkeypatch, ArithmeticError("a bug"))
    _batch(worker, _Message("orders", 0, 7), _Message("orders", 0, 8))
    assert worker.rejected == [("orders@7", PROCESSING_FAILED), ("orders@8", PROCESSING_FAILED)]


def test_a_defect_in_the_core_dead_letters_only_its_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The processor meets a bug on one event; the batch's other events are decided."""
    worker = _worker(tmp_path, monkeypatch, ArithmeticError("unused"))
    sent: list[tuple[str, bytes | None]] = []

    async def send(topic: str, key: bytes | None, *_: Any) -> None:
        sent.append((topic, key))

    async def delivered() -> None:
        sent.append(("(delivered)", None))

    monkeypatch.setattr(worker.publisher, "send", send)
    monkeypatch.setattr(worker.publisher, "delivered", delivered)
    real_apply = order.apply

    def apply(state: Any, event: Any, now: Any, policy: Any) -> Any:
        if event.order_id == "o-bug":
            raise ArithmeticError("a bug")
        return real_apply(state, event, now, policy)

    monkeypatch.setattr(order, "apply", apply)
    good, bad = (_placed(order_id) for order_id in ("o-ok", "o-bug"))
    partition = partition_for("o-ok", worker.partitions)
    bad_partition = partition_for("o-bug", worker.partitions)
    _batch(
        worker,
        _Message("orders", bad_partition, 1, b"o-bug", bad),
        _Message("orders", partition, 2, b"o-ok", good),
    )
    assert worker.rejected == [("orders@1", PROCESSING_FAILED)]
    assert worker.stores.orders.get("o-ok") is not None
    assert worker.stores.orders.get("o-bug") is None
    # Outputs before state: the dead letter and the facts are acknowledged before the order's
    # state is sent.
    topics = [topic for topic, _ in sent]
    state = topics.index(next(t for t in topics if t.endswith("orders-changelog")))
    assert "(delivered)" in topics[:state]
    assert any(t.endswith("aggregate-inputs") for t in topics[: topics.index("(delivered)")])


def _placed(order_id: str) -> bytes:
    return json.dumps(
        {
            "event_id": f"{order_id}-e1",
            "type": "order.placed",
            # Now: on the wall clock an order placed long ago would have expired at once.
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


def test_the_offset_reader_is_stopped_at_shutdown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = _worker(tmp_path, monkeypatch, ArithmeticError("unused"))
    stopped: list[bool] = []

    class Reader:
        async def stop(self) -> None:
            stopped.append(True)

    worker.watch._reader = Reader()
    asyncio.run(worker.watch.close())
    asyncio.run(worker.watch.close())  # twice: stopped once
    assert stopped == [True]
    assert worker.watch._reader is None
