"""The worker's loops: batches of Kafka messages read into the partitions' core processors.

Each agent takes its stream in batches (``take_events``). A batch's messages are checked for
skipped offsets (:class:`~streams.worker.watch.ConsumerWatch`) and turned into the processor's
reads, by partition; the batch is then acknowledged step by step (decide, send the outputs,
write the state) by :class:`~streams.worker.acknowledge.Acknowledgement`, and only when that
returns does the agent take the next batch, which is when Faust acknowledges this one.

Every batch, tick and announcement runs under the assignment (:data:`~streams.worker.fence.Term`)
current when it began: it is checked (:class:`~streams.worker.fence.Fence`) before anything is
sent, and its changelog records are stamped with it.

- The order agent reads ``orders``, ``tracking``, ``complaints``, the forwarded ``order-events``
  and the ``clock`` topic (``advance-clock``, idle inputs).
- The aggregate agent reads ``inventory`` and ``aggregate-inputs`` (facts, forwarded stock
  levels, watermarks).
- Timers: the partitions' clocks are announced to every aggregate partition a few times a
  second; on the wall clock a tick first notes which inputs were read to their ends
  (:mod:`streams.worker.frontier`), then fires what each partition's clock reached.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from streams.core.events import InventoryUpdated, decode_event
from streams.core.outputs import Rejection
from streams.core.processor import (
    AggregateRead,
    ClockRead,
    OrderRead,
    Read,
    StockRead,
    Unreadable,
    WatermarkRead,
)
from streams.core.timekeeping import STOCK_TOPIC
from streams.ops.metrics import Metrics
from streams.worker import wire
from streams.worker.acknowledge import Acknowledgement
from streams.worker.fence import Fence, Term
from streams.worker.inbox_table import Ref, decode_item
from streams.worker.partitions import Partitions
from streams.worker.publish import Publisher
from streams.worker.stores import Stores
from streams.worker.watch import ConsumerWatch

__all__ = ["WRONG_TOPIC", "Loops"]

WRONG_TOPIC = Rejection(
    "wrong_topic",
    "The inventory topic carries only inventory.updated events, not {type}; send order events "
    "to the orders, tracking or complaints topic.",
)


def _advances(read: Read[Ref]) -> bool:
    """Is this read an ``advance-clock`` message?"""
    return isinstance(read, ClockRead) and read.idle_topic is None


class Loops:
    """The agents' and timers' bodies, over the worker's partitions, stores and producer."""

    def __init__(
        self,
        *,
        partitions: Partitions,
        acknowledgement: Acknowledgement,
        publisher: Publisher,
        watch: ConsumerWatch,
        stores: Stores,
        metrics: Metrics,
        topics: dict[str, str],
        batch_size: int,
        batch_seconds: float,
        fence: Fence,
    ) -> None:
        self.partitions = partitions
        self.acknowledgement = acknowledgement
        self.publisher = publisher
        self.watch = watch
        self.stores = stores
        self.metrics = metrics
        self.topics = topics
        self.batch_size = batch_size
        self.batch_seconds = batch_seconds
        self.fence = fence

    # -- the order agent --------------------------------------------------------------------

    async def order_agent(self, stream: Any) -> None:
        async for events in stream.take_events(self.batch_size, within=self.batch_seconds):
            await self.order_batch([event.message for event in events])

    async def order_batch(self, messages: list[Any]) -> None:
        started = time.perf_counter()
        term = self.fence.term
        by_partition: dict[int, list[Read[Ref]]] = {}
        failed: list[tuple[Any, Exception]] = []
        for message in messages:
            await self.watch.check_order(message)
            try:
                read = self._order_read(message)
            except Exception as error:  # a defect met by this message (streams.worker.failures)
                failed.append((message, error))
                continue
            by_partition.setdefault(message.partition, []).append(read)
        advances = any(_advances(read) for reads in by_partition.values() for read in reads)
        await self.acknowledgement.order_batch(term, by_partition, failed, messages)
        if advances:
            # A backfill's last step: its closing watermarks go out now, not at the next tick.
            await self.acknowledgement.settled(self.announce(term), messages)
        self.metrics.set_open_orders(self.partitions.open_orders())
        self._timed(started, len(messages))

    def _order_read(self, message: Any) -> Read[Ref]:
        ref = Ref(message)
        value = message.value or b""
        if message.topic == self.topics["clock"]:
            kind, moment, payload = wire.unpack(value)
            return ClockRead(ref, moment, payload.decode() if kind == wire.IDLE else None)
        decoded = decode_event(value)
        if isinstance(decoded, Rejection):
            return Unreadable(ref, decoded)
        if message.topic != self.topics["order-events"]:  # counted once, where it arrived
            self.metrics.observe_event(message.topic, decoded.type, decoded.occurred_at)
        if isinstance(decoded, InventoryUpdated):
            # Inventory belongs on its own topic; accept it here all the same.
            return StockRead(ref, decoded, on_inventory=False)
        return OrderRead(ref, message.topic, decoded)

    # -- the aggregate agent ----------------------------------------------------------------

    async def aggregate_agent(self, stream: Any) -> None:
        async for events in stream.take_events(self.batch_size, within=self.batch_seconds):
            await self.aggregate_batch([event.message for event in events])

    async def aggregate_batch(self, messages: list[Any]) -> None:
        started = time.perf_counter()
        term = self.fence.term
        by_partition: dict[int, list[Read[Ref]]] = {}
        failed: list[tuple[Any, Exception]] = []
        for message in messages:
            await self.watch.check_order(message)
            reads = by_partition.setdefault(message.partition, [])
            try:
                reads.extend(self._aggregate_reads(message))
            except Exception as error:  # a defect met by this message (streams.worker.failures)
                failed.append((message, error))
        await self.acknowledgement.aggregate_batch(term, by_partition, failed, messages)
        self._timed(started, len(messages))

    def _aggregate_reads(self, message: Any) -> list[Read[Ref]]:
        value = message.value or b""
        if message.topic == self.topics["inventory"]:
            decoded = decode_event(value)
            if isinstance(decoded, Rejection):
                return [Unreadable(Ref(message), decoded)]
            if not isinstance(decoded, InventoryUpdated):
                rejection = Rejection(
                    WRONG_TOPIC.reason, WRONG_TOPIC.error.format(type=decoded.type)
                )
                return [Unreadable(Ref(message), rejection)]
            self.metrics.observe_event(message.topic, decoded.type, decoded.occurred_at)
            return [StockRead(Ref(message), decoded)]
        kind, moment, payload = wire.unpack(value)
        if kind == wire.WATERMARK:
            return [WatermarkRead(Ref(message), payload.decode("utf-8"), moment)]
        envelopes = wire.split_batch(payload) if kind == wire.BATCH else [value]
        return [
            AggregateRead(Ref(message, envelope), decode_item(envelope)) for envelope in envelopes
        ]

    def _timed(self, started: float, messages: int) -> None:
        if messages:
            share = (time.perf_counter() - started) / messages
            for _ in range(messages):
                self.metrics.observe_processing(share)

    # -- timers -----------------------------------------------------------------------------

    async def tick(self) -> None:
        """Wall clock: note the inputs the agents have read to the ends found, then fire what
        each partition's clock reached, and the aggregates' checks."""
        term = self.fence.term
        inventory = self.topics["inventory"]
        for (topic, partition), at, leading in self.watch.frontier.ripe():
            processor = self.partitions.processors.get(partition)
            if processor is not None:
                processor.caught_up(STOCK_TOPIC if topic == inventory else topic, at, leading)
        await self.acknowledgement.tick(term)

    async def announce(self, term: Term | None = None) -> None:
        """Tell every aggregate partition how far each source's clock got.

        Runs on a timer (and after a batch with an ``advance-clock``), so a busy partition
        announces a few times a second rather than once per event. Every fact a source sent
        before is ahead of it on the topic, so the watermark never overtakes an item. The
        partition clocks are written to their table here too.
        """
        term = self.fence.term if term is None else term
        acknowledgement = self.acknowledgement
        await acknowledgement.write(term, [self.stores.clocks])
        pending: dict[str, datetime] = acknowledgement.unannounced
        acknowledgement.unannounced = {}
        if pending:
            await self.fence.check(term)
        topic = self.topics["aggregate-inputs"]
        for source, watermark in pending.items():
            value = wire.pack(wire.WATERMARK, watermark, source.encode())
            for partition in range(self.partitions.count):
                await self.publisher.send(topic, None, value, partition)

    async def repair(self, owned: set[int]) -> int:
        """Rewrite the keys of ``owned`` partitions whose last changelog record is older than
        their newest (:meth:`~streams.worker.tables.DurableTable.repair`); how many."""
        term = self.fence.term
        stores = self.stores
        tables = [store.table for store in stores.all()] + [stores.inbox_table]
        if not any(table.stamps.shadowed for table in tables):
            return 0
        await self.fence.check(term)
        stamp = self.fence.stamp(term)
        return sum([await table.repair(stamp, owned) for table in tables])
