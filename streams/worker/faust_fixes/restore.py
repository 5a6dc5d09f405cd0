"""Reading a table's changelog into its store in bulk, with a consumer of its own.

Works around: faust-streaming 0.15.3's recovery applying changelog records one at a time (a
restart's time grew with all the state kept; correct, only slow). Fails without it:
``tests/unit/worker/faust_fixes/test_recovery.py::test_actives_are_read_in_bulk_up_to_faust_s_highwater_before_faust_seeks``;
on a broker, ``tests/integration/test_restore.py`` (the reader itself).

Faust's recovery hands each changelog record through its conductor, one at a time, and checks
after each whether recovery is done: a memory store was measured restoring 3,600–9,200 records a
second, so that a worker's restart took time in proportion to all the state it kept. Before
Faust's recovery reads a partition (``GuardedRecovery``), this reader fetches the partition from
where the store holds it up to the end Faust will wait for, in large fetches, and applies the
records in large batches through the table's own rule (``StampedTable.apply_changelog_batch``).
Faust's recovery then starts at the offset the reader reached, finds the partition read, and
goes on as it would.

A rebalance cancels a read where it stands: each applied batch has moved the partition's start
offset with it, so nothing is read twice and nothing is skipped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any, NamedTuple

from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]

__all__ = ["ChangelogReader", "Record"]

log = logging.getLogger("orderwatch.worker")

#: Records a fetch returns at most (about 10 MB of order states).
FETCH_RECORDS = 50_000
#: Seconds between two progress lines of a long read.
PROGRESS_EVERY = 5.0


class Record(NamedTuple):
    """A changelog record as Faust's recovery hands it to a table: an event with a message."""

    message: Any


#: Applies a partition's records (in log order) to the table that owns the changelog.
Apply = Callable[[Any, list[Record]], None]


class ChangelogReader:
    """Reads changelog partitions to their end with its own consumer (no group)."""

    def __init__(self, client_options: Mapping[str, Any]) -> None:
        self._options = dict(client_options)

    async def read(
        self,
        positions: MutableMapping[Any, int | None],
        ends: Mapping[Any, int],
        apply: Apply,
        title: str,
    ) -> int:
        """Read each partition of ``ends`` (Faust's ``TP``) from its position (the offset of
        the last record its store holds, -1 or None for none) up to its end (exclusive),
        applying the records in batches and moving ``positions`` past each batch applied.
        Returns the records read."""
        starts = {tp: _next(positions.get(tp)) for tp in ends}
        wanted = {tp: end for tp, end in ends.items() if end > starts[tp]}
        if not wanted:
            return 0
        consumer = AIOKafkaConsumer(
            **self._options,
            group_id=None,
            enable_auto_commit=False,
            # A start before the log's start (retention deleted it) reads from the log's start:
            # aiokafka's default would jump to the end and skip the partition's state.
            auto_offset_reset="earliest",
            fetch_max_bytes=64 << 20,
            max_partition_fetch_bytes=16 << 20,
        )
        await consumer.start()
        # aiokafka's consumer without a group starts a task that its stop() awaits after
        # cancelling it: cancelled before it first ran, the stop raises CancelledError.
        await asyncio.sleep(0)
        try:
            return await self._read(consumer, starts, wanted, positions, apply, title)
        finally:
            await consumer.stop()

    async def _read(
        self,
        consumer: Any,
        starts: Mapping[Any, int],
        ends: Mapping[Any, int],
        positions: MutableMapping[Any, int | None],
        apply: Apply,
        title: str,
    ) -> int:
        by_kafka = {TopicPartition(tp.topic, tp.partition): tp for tp in ends}
        consumer.assign(list(by_kafka))
        for kafka_tp, tp in by_kafka.items():
            consumer.seek(kafka_tp, starts[tp])
        total = sum(end - starts[tp] for tp, end in ends.items())
        read = 0
        began = last_report = time.monotonic()
        remaining = set(by_kafka)
        while remaining:
            fetched = await consumer.getmany(*remaining, timeout_ms=500, max_records=FETCH_RECORDS)
            for kafka_tp, records in fetched.items():
                tp = by_kafka[kafka_tp]
                end = ends[tp]
                batch = [Record(r) for r in records if r.offset < end]
                if batch and tp in positions:  # not revoked meanwhile
                    apply(tp, batch)
                    positions[tp] = batch[-1].message.offset
                    read += len(batch)
            for kafka_tp in list(remaining):
                position = await consumer.position(kafka_tp)
                # Done at the end asked for, or at the log's end now if that is short of it
                # (a log truncated since the end was read: nothing more will come).
                log_end = consumer.highwater(kafka_tp)
                if position >= ends[by_kafka[kafka_tp]] or (
                    log_end is not None and position >= log_end
                ):
                    remaining.discard(kafka_tp)
            now = time.monotonic()
            if remaining and now - last_report >= PROGRESS_EVERY:
                last_report = now
                log.info(
                    "recovery: read %d of about %d %s changelog records (%.0f/s)",
                    read,
                    total,
                    title,
                    read / (now - began),
                )
        elapsed = time.monotonic() - began
        log.info(
            "recovery: read %d %s changelog records of %d partitions in %.1f s (%.0f/s)",
            read,
            title,
            len(ends),
            elapsed,
            read / elapsed if elapsed else 0.0,
        )
        return read


def _next(position: int | None) -> int:
    """The offset to read from after ``position`` (Faust's: -1 or None when nothing is held)."""
    return 0 if position is None or position < 0 else position + 1
