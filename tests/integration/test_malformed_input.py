"""Malformed input against the worker on the real broker: each message dead-lettered once, as the
contract's decoder words it, with its source; valid traffic is not needed for any of it.

Hypothesis draws the payloads (valid events with one field deleted, replaced by any JSON value,
by a number no float holds or by any instant of years 1 to 9999; cut short; bytes corrupted;
arbitrary bytes) in batches of 100 and keeps those the decoder rejects; a failing batch shrinks.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # type: ignore[import-untyped]
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from orderwatch_lives import Event, mutated_line, single_order
from worker_harness import WorkerRun, message_of

from streams.core.events import decode_event
from streams.core.outputs import Rejection

pytestmark = pytest.mark.broker

BATCH = 100
BATCHES = 100  # 10,000 malformed messages in all


class DeadLetters:
    """A producer of test input and a reader of the worker's dead-letter topic, on one loop."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        self.bootstrap, self.prefix = bootstrap, prefix
        self.loop = asyncio.new_event_loop()
        self.seen: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
        self.producer: AIOKafkaProducer | None = None
        self.consumer: AIOKafkaConsumer | None = None

    def __enter__(self) -> DeadLetters:
        self.loop.run_until_complete(self._start())
        return self

    def __exit__(self, *_: object) -> None:
        self.loop.run_until_complete(self._stop())
        self.loop.close()

    async def _start(self) -> None:
        self.producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5)
        await self.producer.start()
        self.consumer = AIOKafkaConsumer(
            self.prefix + "dead-letter",
            bootstrap_servers=self.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
        )
        await self.consumer.start()

    async def _stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()
        if self.producer is not None:
            await self.producer.stop()

    def send(self, messages: list[tuple[str, bytes | None, bytes]]) -> list[tuple[str, int, int]]:
        """Produce (topic, key, value) messages; their (topic, partition, offset) each."""
        return self.loop.run_until_complete(self._send(messages))

    async def _send(
        self, messages: list[tuple[str, bytes | None, bytes]]
    ) -> list[tuple[str, int, int]]:
        assert self.producer is not None
        futures = [
            await self.producer.send(self.prefix + topic, value, key=key)
            for topic, key, value in messages
        ]
        return [(m.topic, m.partition, m.offset) for m in await asyncio.gather(*futures)]

    def wait_for(self, sources: list[tuple[str, int, int]], timeout: float) -> None:
        """Read dead letters until one for each of ``sources`` has come, or time is up."""
        self.loop.run_until_complete(self._read(set(sources), timeout))

    def read_on(self, seconds: float) -> None:
        """Read what else comes in ``seconds`` (a second copy of anything would)."""
        self.loop.run_until_complete(self._read(None, seconds))

    async def _read(self, sources: set[tuple[str, int, int]] | None, timeout: float) -> None:
        assert self.consumer is not None
        deadline = self.loop.time() + timeout
        while self.loop.time() < deadline and (sources is None or not sources <= self.seen.keys()):
            batch = await self.consumer.getmany(timeout_ms=250)
            for records in batch.values():
                for record in records:
                    rejected = json.loads(record.value)
                    source = rejected["source"]
                    at = (source["topic"], source["partition"], source["offset"])
                    self.seen.setdefault(at, []).append(rejected)


@pytest.fixture(scope="module")
def worker(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerRun]:
    run = WorkerRun(kafka_bootstrap, tmp_path_factory.mktemp("malformed"))
    try:
        run.start()
        yield run
    finally:
        run.stop()


def _rejected(line: bytes) -> bool:
    return isinstance(decode_event(line), Rejection)


def _malformed_batch(events: list[Event]) -> st.SearchStrategy[list[tuple[bytes, bytes]]]:
    """(original event line, malformed line) pairs the decoder rejects."""
    broken = st.sampled_from(events).flatmap(
        lambda event: st.tuples(
            st.just(event.line), mutated_line(event) | st.binary(min_size=1, max_size=64)
        )
    )
    return st.lists(broken.filter(lambda pair: _rejected(pair[1])), min_size=BATCH, max_size=BATCH)


def test_ten_thousand_malformed_messages_are_each_dead_lettered_once_as_the_decoder_says(
    worker: WorkerRun,
) -> None:
    produced: list[tuple[str, int, int]] = []
    with DeadLetters(worker.bootstrap, worker.prefix) as letters:

        @settings(
            max_examples=BATCHES,
            deadline=None,
            database=None,
            suppress_health_check=[
                HealthCheck.too_slow,
                HealthCheck.data_too_large,
                HealthCheck.filter_too_much,
            ],
        )
        @given(data=st.data(), events=single_order())
        def batch(data: st.DataObject, events: list[Event]) -> None:
            pairs = data.draw(_malformed_batch(events), label="batch")
            messages = []
            for original, line in pairs:
                topic, key = message_of(original)  # where the intact event would go
                messages.append((topic, key if data.draw(st.booleans()) else None, line))
            sources = letters.send(messages)
            letters.wait_for(sources, timeout=60)
            for (_, _, line), at in zip(messages, sources, strict=True):
                assert at in letters.seen, f"{at} was not dead-lettered: {line!r}"
                rejected = letters.seen[at][0]
                expected = decode_event(line)
                assert isinstance(expected, Rejection), line
                assert rejected["error"] == expected.error, line
                assert rejected["reason"] == expected.reason, line
                assert rejected["type"] == "event.rejected"
                assert rejected["raw"] or not line.strip()
            produced.extend(sources)

        batch()
        letters.read_on(3.0)
        assert worker.process is not None
        assert worker.process.poll() is None, "the worker died"
        assert worker.get("/ready")[0] == 200

    assert len(produced) >= BATCH * BATCHES
    twice = {at: len(letters.seen[at]) for at in produced if len(letters.seen[at]) != 1}
    assert not twice, f"dead-lettered more than once: {twice}"
    assert sum(len(copies) for copies in letters.seen.values()) == len(produced)
    assert "Traceback" not in worker.log_text()
