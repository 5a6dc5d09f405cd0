"""The worker's error policy: Kafka failing stops the worker; a defect dead-letters the message.

Unit tests of the shell: the agent is driven with a stand-in stream, and the process exit is
intercepted. (That a stopped worker loses nothing is the fault suite's job, on a real broker.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, ProducerFenced
from faust.exceptions import ProducerSendError

from streams import failures
from streams.settings import load_settings
from streams.worker import PROCESSING_FAILED, OrderwatchWorker


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


@dataclass
class _Event:
    message: _Message


class _Stream:
    def __init__(self, *messages: _Message) -> None:
        self._messages = messages

    async def events(self) -> AsyncIterator[_Event]:
        for message in self._messages:
            yield _Event(message)


class _Exited(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


def _worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception) -> Any:
    worker = OrderwatchWorker(load_settings(broker="127.0.0.1:9", data_dir=tmp_path))
    rejected: list[tuple[str, str]] = []

    async def fail(message: Any) -> None:
        raise error

    async def reject(message: Any, reason: str) -> None:
        rejected.append((f"{message.topic}@{message.offset}", reason))

    async def flush() -> None:
        return None

    def exit_(code: int) -> None:
        raise _Exited(code)

    monkeypatch.setattr(worker, "_order_message", fail)
    monkeypatch.setattr(worker, "_reject", reject)
    monkeypatch.setattr(worker.orders, "flush", flush)
    monkeypatch.setattr(failures.os, "_exit", exit_)
    worker.rejected = rejected
    return worker


def _committed_at(worker: Any, monkeypatch: pytest.MonkeyPatch, offset: int) -> None:
    """The group's committed offset, as the worker's offset reader reads it."""

    class Reader:
        async def committed(self, tp: Any) -> int:
            return offset

    async def reader() -> Reader:
        return Reader()

    monkeypatch.setattr(worker, "_offset_reader_started", reader)


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
    stream = _Stream(_Message("orders", 0, 7), _Message("orders", 0, 8))
    with pytest.raises(_Exited) as exited:
        asyncio.run(worker._order_agent(stream))
    assert exited.value.code == failures.EXIT_KAFKA_UNAVAILABLE
    assert worker.rejected == []


def test_a_skipped_offset_stops_the_worker_before_the_message_is_handled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = _worker(tmp_path, monkeypatch, ArithmeticError("not reached"))
    worker._offsets.reset({("orders", 0): 7})
    _committed_at(worker, monkeypatch, 7)  # the group's commit says so too
    with pytest.raises(_Exited) as exited:
        asyncio.run(worker._order_agent(_Stream(_Message("orders", 0, 9))))
    assert exited.value.code == failures.EXIT_KAFKA_UNAVAILABLE
    assert worker.rejected == []


def test_a_first_message_at_a_commit_seen_late_is_no_skip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The group's commit was not visible at the assignment (read as the log's start)."""
    worker = _worker(tmp_path, monkeypatch, ArithmeticError("handled"))
    worker._offsets.reset({("orders", 0): 0})
    _committed_at(worker, monkeypatch, 9)
    asyncio.run(worker._order_agent(_Stream(_Message("orders", 0, 9))))
    assert worker.rejected == [("orders@9", PROCESSING_FAILED)]  # handled, not stopped


def test_a_defect_met_by_one_message_dead_letters_it_and_the_partition_flows_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = _worker(tmp_path, monkeypatch, ArithmeticError("a bug"))
    asyncio.run(worker._order_agent(_Stream(_Message("orders", 0, 7), _Message("orders", 0, 8))))
    assert worker.rejected == [("orders@7", PROCESSING_FAILED), ("orders@8", PROCESSING_FAILED)]


def test_the_offset_reader_is_stopped_at_shutdown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = _worker(tmp_path, monkeypatch, ArithmeticError("unused"))
    stopped: list[bool] = []

    class Reader:
        async def stop(self) -> None:
            stopped.append(True)

    worker._offset_reader = Reader()
    asyncio.run(worker._close_offset_reader())
    asyncio.run(worker._close_offset_reader())  # twice: stopped once
    assert stopped == [True]
    assert worker._offset_reader is None
