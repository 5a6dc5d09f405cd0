"""The broker contract orderwatch relies on, checked against a real broker with aiokafka.

Runs on Apache Kafka (``ORDERWATCH_TEST_BROKER``) and on the embedded Tansu broker; the
``durable_broker`` test needs transactions and is skipped on Tansu. Consumers use the session
timeout and heartbeat the worker uses (6 s, 1 s): Tansu answers a group join only after half the
session timeout. Every test uses fresh topic and group names, so the tests share one broker.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiokafka import (  # type: ignore[import-untyped]
    AIOKafkaConsumer,
    AIOKafkaProducer,
    TopicPartition,
)

from streams.kafka.admin import create_topics
from streams.worker import partition_for

SESSION_TIMEOUT_MS = 6000
HEARTBEAT_INTERVAL_MS = 1000
# Generous: a group join on Tansu alone takes half the session timeout.
CONSUME_TIMEOUT_S = 60.0


def _name(kind: str) -> str:
    return f"orderwatch-test-{kind}-{uuid.uuid4().hex[:10]}"


@asynccontextmanager
async def consumer(
    bootstrap: str, topic: str, group: str, **config: Any
) -> AsyncIterator[AIOKafkaConsumer]:
    """A started consumer of ``topic`` in ``group``, with the worker's session timeouts."""
    client = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        client_id=f"{group}-consumer",
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **config,
    )
    try:
        await client.start()
        yield client
    finally:
        await client.stop()


async def consume(
    client: AIOKafkaConsumer, count: int, timeout: float = CONSUME_TIMEOUT_S
) -> list[Any]:
    """At least ``count`` records (all a fetch returned), or AssertionError after ``timeout``."""
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(records) < count:
        assert time.monotonic() < deadline, f"consumed {len(records)}/{count} in {timeout:g} s"
        for batch in (await client.getmany(timeout_ms=500)).values():
            records.extend(batch)
    return records


async def produce(bootstrap: str, topic: str, messages: Iterable[tuple[bytes, bytes]]) -> list[Any]:
    """Send keyed messages (acks=all); the RecordMetadata of each, in order."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", client_id=f"{topic}-producer"
    )
    try:
        await producer.start()
        futures = [await producer.send(topic, key=key, value=value) for key, value in messages]
        return list(await asyncio.gather(*futures))
    finally:
        await producer.stop()


def test_the_workers_partition_of_a_key_is_the_java_clients() -> None:
    """Keys go where a Java producer puts them: ``toPositive(murmur2(key)) % partitions``, the
    hashes being Kafka's ``UtilsTest.testMurmur2`` vectors."""
    vectors = {
        "21": -973932308,
        "foobar": -790332482,
        "a-little-bit-long-string": -985981536,
        "a-little-bit-longer-string": -1486304829,
        "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
        "abc": 479470107,
    }
    for key, java_hash in vectors.items():
        for partitions in (1, 3, 4, 12, 1000):
            java_partition = (java_hash & 0x7FFFFFFF) % partitions
            assert partition_for(key, partitions) == java_partition, (key, partitions)


@pytest.mark.broker
async def test_keyed_messages_round_trip_through_a_consumer_group(kafka_bootstrap: str) -> None:
    partitions, count, keys = 4, 200, 23
    topic, group = _name("keyed"), _name("group")
    assert await create_topics(kafka_bootstrap, {topic: partitions}) == [topic]

    sent = [(f"order-{i % keys}".encode(), f"event-{i:03d}".encode()) for i in range(count)]
    metadata = await produce(kafka_bootstrap, topic, sent)
    for (key, value), meta in zip(sent, metadata, strict=True):
        assert meta.partition == partition_for(key.decode(), partitions), (key, value, meta)
    assert len({meta.partition for meta in metadata}) == partitions, "keys did not spread"

    async with consumer(kafka_bootstrap, topic, group) as client:
        records = await consume(client, count)
        # Nothing beyond what was sent (no duplicates on a clean run).
        for batch in (await client.getmany(timeout_ms=1000)).values():
            records.extend(batch)

        assert sorted((r.key, r.value) for r in records) == sorted(sent)
        partition_of: dict[bytes, set[int]] = defaultdict(set)
        for record in records:
            assert record.topic == topic
            assert record.partition == partition_for(record.key.decode(), partitions), record
            partition_of[record.key].add(record.partition)
        assert all(len(ps) == 1 for ps in partition_of.values()), dict(partition_of)
        # Each key's records come back in the order they were sent (one partition, in order).
        for key in partition_of:
            got = [r.value for r in records if r.key == key]
            assert got == [value for k, value in sent if k == key], key

        # Commit exactly what was consumed, and read it back from the group coordinator. (Not
        # compared with end offsets: Tansu can report them a little short.)
        positions: dict[TopicPartition, int] = {}
        for record in records:
            tp = TopicPartition(topic, record.partition)
            positions[tp] = max(positions.get(tp, 0), record.offset + 1)
        await client.commit(positions)
        for tp, offset in positions.items():
            assert await client.committed(tp) == offset, tp
        assert sum(positions.values()) == count  # offsets start at 0 in a fresh topic


@pytest.mark.broker
async def test_committed_offsets_outlive_the_consumer_that_committed_them(
    kafka_bootstrap: str,
) -> None:
    """A worker that stops after committing part of its input resumes exactly after it.

    The first consumer processes 60 of 100 records, commits the positions it processed and
    leaves the group; a new consumer in the same group (``auto_offset_reset="earliest"``, so a lost
    commit would show as redelivery from offset 0) must get exactly the other 40. About 15 s on
    Tansu: the first consumer's leave is not sent from generation 0 (see
    ``streams.tools.embedded_broker``), so the second one waits for its session to expire.
    """
    partitions, count, processed_count = 4, 100, 60
    topic, group = _name("resume"), _name("group")
    await create_topics(kafka_bootstrap, {topic: partitions})
    sent = [(f"order-{i % 17}".encode(), f"event-{i:03d}".encode()) for i in range(count)]
    await produce(kafka_bootstrap, topic, sent)

    async with consumer(kafka_bootstrap, topic, group) as first:
        processed = (await consume(first, processed_count))[:processed_count]
        committed: dict[TopicPartition, int] = {}
        for record in processed:
            tp = TopicPartition(topic, record.partition)
            committed[tp] = max(committed.get(tp, 0), record.offset + 1)
        await first.commit(committed)

    async with consumer(kafka_bootstrap, topic, group) as second:
        for tp in (TopicPartition(topic, p) for p in range(partitions)):
            assert await second.committed(tp) == committed.get(tp), tp
        rest = await consume(second, count - processed_count)
        for batch in (await second.getmany(timeout_ms=1000)).values():
            rest.extend(batch)

    for record in rest:
        start = committed.get(TopicPartition(topic, record.partition), 0)
        assert record.offset >= start, f"redelivered a committed record: {record}"
    assert sorted((r.key, r.value) for r in processed + rest) == sorted(sent)


@pytest.mark.broker
@pytest.mark.durable_broker
async def test_transactions_hide_aborted_records_and_offsets(kafka_bootstrap: str) -> None:
    """What Faust's ``exactly_once`` needs, and Tansu lacks: atomic output plus input offsets.

    A transactional producer commits a batch together with an input offset, aborts a second
    batch with a later offset, then commits a third batch. A ``read_committed`` consumer sees the
    first and third batches only, and the group's committed input offset is the first one.
    """
    source, output, group = _name("tx-in"), _name("tx-out"), _name("tx-group")
    await create_topics(kafka_bootstrap, {source: 1, output: 1})
    source_tp = TopicPartition(source, 0)

    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap,
        transactional_id=_name("tx"),
        enable_idempotence=True,
        acks="all",
    )
    try:
        await producer.start()  # InitProducerId: where Tansu fails
        async with producer.transaction():
            for i in range(10):
                await producer.send(output, key=b"order-1", value=f"first-{i}".encode())
            await producer.send_offsets_to_transaction({source_tp: 10}, group)

        await producer.begin_transaction()
        for i in range(10):
            await producer.send(output, key=b"order-1", value=f"aborted-{i}".encode())
        await producer.send_offsets_to_transaction({source_tp: 20}, group)
        await producer.abort_transaction()

        async with producer.transaction():
            for i in range(10):
                await producer.send(output, key=b"order-1", value=f"third-{i}".encode())
    finally:
        await producer.stop()

    async with consumer(
        kafka_bootstrap, output, _name("reader"), isolation_level="read_committed"
    ) as reader:
        records = await consume(reader, 20)
        for batch in (await reader.getmany(timeout_ms=1000)).values():
            records.extend(batch)
    expected = [f"first-{i}".encode() for i in range(10)] + [
        f"third-{i}".encode() for i in range(10)
    ]
    assert [r.value for r in records] == expected

    async with consumer(kafka_bootstrap, source, group) as worker:
        assert await worker.committed(source_tp) == 10
