"""The bulk changelog reader on the real broker: what it applies, where it stops, where it
leaves each partition's position, and that a table restored through it equals one restored a
record at a time."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition  # type: ignore[import-untyped]
from aiokafka.admin import (  # type: ignore[import-untyped]
    AIOKafkaAdminClient,
    NewTopic,
    RecordsToDelete,
)
from faust.types import TP

from streams.worker.faust_fixes.restore import ChangelogReader, Record
from streams.worker.tables import STAMP_HEADER, DurableTable, StampedTable, pack_stamp

pytestmark = pytest.mark.broker

PARTITIONS = 3
#: Records a partition gets: more than one fetch of the reader holds.
PER_PARTITION = 60_000


async def _written_topic(bootstrap: str) -> str:
    """A new changelog topic with :func:`_write`'s records."""
    name = f"restore-{uuid.uuid4().hex[:8]}-orders-changelog"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, PARTITIONS, 1)])
    finally:
        await admin.close()
    await _write(bootstrap, name)
    return name


async def _write(bootstrap: str, topic: str) -> None:
    """Each partition: keys k<p>-0..999 written over and over, each a stamped state."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=1 << 20)
    await producer.start()
    try:
        sends = []
        for partition in range(PARTITIONS):
            for n in range(PER_PARTITION):
                key = f"{partition}-{n % 1000}".encode()
                stamp = pack_stamp((1, n))
                value = f"state {n}".encode()
                sends.append(
                    await producer.send(
                        topic, value, key=key, partition=partition, headers=[(STAMP_HEADER, stamp)]
                    )
                )
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


def _table(name: str) -> tuple[StampedTable, DurableTable]:
    app = faust.App(f"restore-{uuid.uuid4().hex[:6]}", broker="kafka://127.0.0.1:1")
    table = StampedTable(app, name=name, key_type=bytes, value_type=bytes, partitions=PARTITIONS)
    return table, DurableTable(table, lambda key: int(key[:1]), _unsent)


async def _unsent(*_: Any) -> None:
    raise AssertionError("nothing is sent")


def test_a_bulk_read_applies_every_record_once_in_order_and_stops_at_the_end(
    kafka_bootstrap: str,
) -> None:
    async def scenario() -> None:
        topic = await _written_topic(kafka_bootstrap)
        tps = [TP(topic, p) for p in range(PARTITIONS)]
        reader = ChangelogReader({"bootstrap_servers": kafka_bootstrap})
        applied: dict[TP, list[int]] = {tp: [] for tp in tps}

        def apply(tp: TP, records: list[Record]) -> None:
            applied[tp].extend(r.message.offset for r in records)

        # Partition 0 from its start, 1 past what its store holds, 2 held to its end already.
        positions: dict[TP, int | None] = {tps[0]: -1, tps[1]: 999, tps[2]: PER_PARTITION - 1}
        # Partition 0 is read to its end; partition 1 only up to 50,000 (a highwater built
        # before more was written).
        ends = {tps[0]: PER_PARTITION, tps[1]: 50_000, tps[2]: PER_PARTITION}
        read = await reader.read(positions, ends, apply, "active")

        assert applied[tps[0]] == list(range(PER_PARTITION))
        assert applied[tps[1]] == list(range(1000, 50_000))
        assert applied[tps[2]] == []
        assert read == PER_PARTITION + 49_000
        assert positions == {tps[0]: PER_PARTITION - 1, tps[1]: 49_999, tps[2]: PER_PARTITION - 1}

        # Nothing to read: no consumer, nothing applied.
        assert await reader.read(positions, {tps[0]: PER_PARTITION}, apply, "standby") == 0

    asyncio.run(scenario())


def test_a_table_restored_in_bulk_equals_one_restored_a_record_at_a_time(
    kafka_bootstrap: str,
) -> None:
    async def scenario() -> None:
        topic = await _written_topic(kafka_bootstrap)
        tps = [TP(topic, p) for p in range(PARTITIONS)]
        bulk, bulk_store = _table("orders")
        single, single_store = _table("orders")
        tables = {bulk: bulk_store, single: single_store}

        def apply_in_bulk(tp: TP, records: list[Record]) -> None:
            bulk.apply_changelog_batch(records)

        def apply_one_by_one(tp: TP, records: list[Record]) -> None:
            for record in records:
                single.apply_changelog_batch([record])

        reader = ChangelogReader({"bootstrap_servers": kafka_bootstrap})
        ends = dict.fromkeys(tps, PER_PARTITION)
        await reader.read(dict.fromkeys(tps, -1), ends, apply_in_bulk, "active")
        await reader.read(dict.fromkeys(tps, -1), ends, apply_one_by_one, "active")

        contents = [
            {key: store.get(key) for key in store.backend.keys(set(range(PARTITIONS)))}
            for store in tables.values()
        ]
        assert contents[0] == contents[1]
        assert len(contents[0]) == PARTITIONS * 1000
        # The newest record of each key: key n % 1000 last written at n = PER_PARTITION - 1000 + n.
        assert contents[0][b"2-7"] == f"state {PER_PARTITION - 1000 + 7}".encode()
        assert bulk.backend is not None
        held = [bulk.backend.held(partition) for partition in range(PARTITIONS)]
        assert [h.offset if h else None for h in held] == [PER_PARTITION - 1] * PARTITIONS

    asyncio.run(scenario())


@pytest.mark.durable_broker("deletes records (DeleteRecords), which Tansu does not serve")
def test_a_read_starts_at_the_log_start_if_retention_passed_it_and_stops_at_a_short_end(
    kafka_bootstrap: str,
) -> None:
    """A store that holds an offset retention has since deleted reads from the log's start,
    not from its end; an end the log no longer reaches ends the read at the log's end."""

    async def scenario() -> None:
        topic = await _written_topic(kafka_bootstrap)
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            await admin.delete_records({TopicPartition(topic, 0): RecordsToDelete(40_000)})
        finally:
            await admin.close()
        tp = TP(topic, 0)
        applied: list[int] = []

        def apply(_: TP, records: list[Record]) -> None:
            applied.extend(r.message.offset for r in records)

        reader = ChangelogReader({"bootstrap_servers": kafka_bootstrap})
        positions: dict[TP, int | None] = {tp: 99}
        read = await asyncio.wait_for(
            reader.read(positions, {tp: PER_PARTITION + 500}, apply, "active"), 60
        )
        assert applied == list(range(40_000, PER_PARTITION))
        assert read == PER_PARTITION - 40_000
        assert positions == {tp: PER_PARTITION - 1}

    asyncio.run(scenario())
