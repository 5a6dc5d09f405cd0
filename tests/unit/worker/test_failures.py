"""The worker's error policy: Kafka failing stops the worker; a defect dead-letters the message.

Unit tests of the shell: the agent is driven with a stand-in stream, and the process exit is
intercepted. (That a stopped worker loses nothing is the fault suite's job, on a real broker.)
"""

from __future__ import annotations

import asyncio
import inspect
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faust
import pytest
from aiokafka.errors import (  # type: ignore[import-untyped]
    KafkaConnectionError,
    ProducerFenced,
)
from faust.exceptions import ProducerSendError

from streams.core import order
from streams.core.outputs import Rejection
from streams.errors import ConfigurationError, IncompatibleSetting
from streams.settings import load_settings
from streams.worker import PROCESSING_FAILED, OrderwatchWorker, failures, partition_for
from streams.worker.backends import StoreFailure


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
    worker: Any = OrderwatchWorker(load_settings(broker="127.0.0.1:9", data_dir=tmp_path))
    rejected: list[tuple[str, Rejection]] = []

    async def reject(message: Any, reason: Rejection) -> None:
        rejected.append((f"{message.topic}@{message.offset}", reason))

    async def send(*_: Any) -> None:
        raise error

    def exit_(code: int) -> None:
        raise _Exited(code)

    monkeypatch.setattr(worker.publisher, "reject", reject)
    monkeypatch.setattr(worker.publisher, "send", send)
    monkeypatch.setattr("streams.worker.failures.os._exit", exit_)
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


def _committed_at(
    worker: Any, monkeypatch: pytest.MonkeyPatch, offset: int, log_start: int = 0
) -> None:
    """The group's committed offset and the log's start, as the worker's offset reader reads
    them."""

    class Reader:
        async def committed(self, tp: Any) -> int:
            return offset

        async def beginning_offsets(self, parts: list[Any]) -> dict[Any, int]:
            return dict.fromkeys(parts, log_start)

    async def reader() -> Reader:
        return Reader()

    monkeypatch.setattr(worker.watch, "reader", reader)


def test_a_local_store_failure_stops_the_worker_and_dead_letters_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk under the state failing while a message is handled is not the message's fault:
    the worker stops (exit 75) before anything of the batch is sent, and reads it again."""
    worker = _worker(tmp_path, monkeypatch, AssertionError("nothing may be sent"))

    def get(key: bytes) -> bytes | None:
        raise StoreFailure("the local state store failed to read: IO error: No space left")

    monkeypatch.setattr(worker.stores.orders.table.backend, "get", get)
    partition = partition_for("o-1", worker.partitions)
    with pytest.raises(_Exited) as exited:
        _batch(worker, _Message("orders", partition, 7, b"o-1", _placed("o-1")))
    assert exited.value.code == failures.EXIT_KAFKA_UNAVAILABLE
    assert worker.rejected == []


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


def test_offsets_retention_deleted_before_they_were_read_are_counted_and_passed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Committed at 7, the log now starts at 9: 7 and 8 are gone for good, no restart can read
    them, so the message at 9 is handled (here: meets a defect) and the loss counted once."""
    worker = _worker(tmp_path, monkeypatch, ArithmeticError("unused"))
    _defect(worker, monkeypatch, ArithmeticError("handled"))
    worker.watch.offsets.reset({("orders", 0): 7})
    _committed_at(worker, monkeypatch, 7, log_start=9)
    _batch(worker, _Message("orders", 0, 9), _Message("orders", 0, 10))
    assert worker.rejected == [("orders@9", PROCESSING_FAILED), ("orders@10", PROCESSING_FAILED)]
    expired = worker.metrics.registry.get_sample_value(
        "orderwatch_offsets_expired_total", {"topic": "orders"}
    )
    assert expired == 2
    # Assigned again before a commit moved past them: not counted twice.
    worker.watch.offsets.reset({("orders", 0): 7})
    _batch(worker, _Message("orders", 0, 9))
    assert (
        worker.metrics.registry.get_sample_value(
            "orderwatch_offsets_expired_total", {"topic": "orders"}
        )
        == 2
    )


def test_a_partition_whose_unread_input_all_expired_is_caught_up_and_not_stalled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Committed at 7, the log starts and ends at 30: nothing is left to read, so the wall
    clock's frontier counts it caught up and the progress check sees no stall."""
    worker = _worker(tmp_path, monkeypatch, ArithmeticError("unused"))
    tp = ("tracking", 0)

    async def resume_offsets() -> tuple[dict[Any, int], dict[Any, int]]:
        return {tp: 7}, {tp: 30}

    monkeypatch.setattr(worker.watch, "_resume_offsets", resume_offsets)
    asyncio.run(worker.watch.resume())
    at = datetime(2026, 1, 5, tzinfo=UTC)
    worker.watch.frontier.found({tp: 30}, at)
    assert list(worker.watch.frontier.ripe()) == [(tp, at, None)]
    assert worker.watch.offsets.stalled({tp: 30}) == []
    assert worker.watch.offsets.stalled({tp: 30}) == []


def test_a_skip_over_messages_still_in_the_log_stops_the_worker_even_after_some_expired(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Committed at 7, the log starts at 9, the first message is 12: 9 to 11 can be read."""
    worker = _worker(tmp_path, monkeypatch, ArithmeticError("not reached"))
    worker.watch.offsets.reset({("orders", 0): 7})
    _committed_at(worker, monkeypatch, 7, log_start=9)
    with pytest.raises(_Exited) as exited:
        _batch(worker, _Message("orders", 0, 12))
    assert exited.value.code == failures.EXIT_KAFKA_UNAVAILABLE
    assert worker.rejected == []


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

    def apply(state: Any, event: Any, now: Any, policy: Any, **options: Any) -> Any:
        if event.order_id == "o-bug":
            raise ArithmeticError("a bug")
        return real_apply(state, event, now, policy, **options)

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


# ---- outside a message: rebalance callbacks, rebuild, catch-up; Faust's own stops ---------------


def test_a_kafka_failure_in_the_assignment_callback_stops_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = _worker(tmp_path, monkeypatch, KafkaConnectionError("flush refused"))
    with pytest.raises(_Exited) as exited:  # writing the last batch's states fails
        asyncio.run(_flushing_then(worker, worker._on_assigned(None, set())))
    assert exited.value.code == failures.EXIT_KAFKA_UNAVAILABLE


async def _flushing_then(worker: Any, callback: Any) -> None:
    async def flush(*_: Any) -> None:
        raise KafkaConnectionError("flush refused")

    worker.acknowledgement.flush_states = flush
    await callback


@pytest.mark.parametrize("clock", ["event", "wall"])
def test_a_kafka_failure_in_the_rebuild_or_catch_up_stops_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: str
) -> None:
    worker = OrderwatchWorker(load_settings(broker="127.0.0.1:9", data_dir=tmp_path, clock=clock))

    def exit_(code: int) -> None:
        raise _Exited(code)

    async def fails(*_: Any) -> None:
        raise ProducerSendError("catch-up's breach not sent")

    monkeypatch.setattr("streams.worker.failures.os._exit", exit_)
    monkeypatch.setattr(worker, "_owned", set)
    # Event time: what the restored clocks reached.
    monkeypatch.setattr(worker.acknowledgement, "catch_up", fails)
    monkeypatch.setattr(worker.acknowledgement, "flush_states", fails)
    for callback in (worker._on_orders_recovered(), worker._on_rebalance_complete(None)):
        with pytest.raises(_Exited) as exited:
            asyncio.run(callback)
        assert exited.value.code == failures.EXIT_KAFKA_UNAVAILABLE


def test_another_error_in_a_rebalance_callback_is_left_to_faust(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = _worker(tmp_path, monkeypatch, ArithmeticError("unused"))

    async def flush(*_: Any) -> None:
        raise ArithmeticError("a bug")

    monkeypatch.setattr(worker.acknowledgement, "flush_states", flush)
    with pytest.raises(ArithmeticError):  # Faust crashes on it: exit_code_of_stop makes it 75
        asyncio.run(worker._on_assigned(None, set()))


@pytest.mark.parametrize(
    ("code", "error", "expected"),
    [
        (0, None, 0),  # stopped by a signal, cleanly
        (None, None, 0),
        (1, RuntimeError("a crashed service"), 75),
        (1, ValueError("Offset must be a positive integer"), 75),
        (1, None, 75),
        (71, MemoryError(), 75),  # mode's exit on MemoryError
        (1, ConfigurationError("ORDERWATCH_BROKER is wrong"), 1),
        (1, IncompatibleSetting("the group runs the event clock"), 2),
    ],
)
def test_what_stopped_faust_decides_the_exit_status(
    code: object, error: BaseException | None, expected: int
) -> None:
    assert failures.exit_code_of_stop(code, error) == expected


@pytest.mark.parametrize("clock", ["event", "wall"])
def test_no_timer_takes_a_parameter_faust_would_fill_with_the_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: str
) -> None:
    """Faust hands a timer that takes a parameter the app: a timer whose optional parameter
    means something else (the watermark timer's fence term) would crash every tick."""
    timers: list[Any] = []
    real_timer = faust.App.timer

    def timer(app: Any, interval: Any, **options: Any) -> Any:
        decorate = real_timer(app, interval, **options)

        def record(fun: Any) -> Any:
            timers.append(fun)
            return decorate(fun)

        return record

    monkeypatch.setattr(faust.App, "timer", timer)
    OrderwatchWorker(load_settings(broker="127.0.0.1:9", data_dir=tmp_path, clock=clock))
    assert len(timers) >= 4
    takes = [fun for fun in timers if inspect.signature(fun).parameters]
    assert takes == []
