"""The worker's loops: batches of Kafka messages through the partitions' core processors.

Each agent takes its stream in batches (``take_events``). A batch's messages are checked for
skipped offsets (:class:`~streams.worker.watch.ConsumerWatch`), turned into the processor's
reads, handed to their partition's :class:`~streams.core.processor.PartitionProcessor`, and
what it decided is carried out: outputs, facts, forwards and dead letters to the producer
(:class:`~streams.worker.publish.Publisher`); once Kafka has acknowledged them, every state the
batch changed is written once to its table and changelog (outputs before state: a state that
marks an event as seen never reaches Kafka ahead of what the event produced, whichever broker
leads which partition). Only then does the agent take the next batch, which is when Faust
acknowledges this one: no offset is committed ahead of the state and outputs it covers.

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

import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from streams.core.events import InventoryUpdated, decode_event
from streams.core.outputs import Rejection
from streams.core.processor import (
    Actions,
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
from streams.worker.failures import stop_worker
from streams.worker.fence import Fence, Term
from streams.worker.inbox_table import AppliedInputs, Ref, decode_item
from streams.worker.partitions import Partitions, Processor
from streams.worker.publish import Publisher, where
from streams.worker.stores import Stores
from streams.worker.tables import DurableTable, StateStore
from streams.worker.watch import ConsumerWatch

__all__ = ["WRONG_TOPIC", "Loops"]

log = logging.getLogger("orderwatch.worker")

WRONG_TOPIC = Rejection(
    "wrong_topic",
    "The inventory topic carries only inventory.updated events, not {type}; send order events "
    "to the orders, tracking or complaints topic.",
)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _advances(read: Read[Ref]) -> bool:
    """Is this read an ``advance-clock`` message?"""
    return isinstance(read, ClockRead) and read.idle_topic is None


class Loops:
    """The agents' and timers' bodies, over the worker's partitions, stores and producer."""

    def __init__(
        self,
        *,
        partitions: Partitions,
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
        self.publisher = publisher
        self.watch = watch
        self.stores = stores
        self.metrics = metrics
        self.topics = topics
        self.batch_size = batch_size
        self.batch_seconds = batch_seconds
        self.fence = fence
        self.applied = AppliedInputs()
        #: Watermarks the partitions reached and the announce timer has not sent yet.
        self.unannounced: dict[str, datetime] = {}

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
        await self._handle(term, by_partition, failed, messages)
        self.watch.frontier.handled(messages)
        await self._settled(self.write(term, [self.stores.orders]), messages)
        if any(_advances(read) for reads in by_partition.values() for read in reads):
            # A backfill's last step: its closing watermarks go out now, not at the next tick.
            await self._settled(self.announce(term), messages)
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
        inbox = self.stores.inbox_table
        by_partition: dict[int, list[Read[Ref]]] = {}
        failed: list[tuple[Any, Exception]] = []
        for message in messages:
            await self.watch.check_order(message)
            partition = message.partition
            if partition not in by_partition:
                by_partition[partition] = []
                for key in self.applied.deletable(partition):
                    inbox.pop(key, None)
            try:
                by_partition[partition].extend(self._aggregate_reads(message))
            except Exception as error:  # a defect met by this message (streams.worker.failures)
                failed.append((message, error))
        await self._handle(term, by_partition, failed, messages)
        self.watch.frontier.handled(messages)
        await self._settled(self.flush_aggregates(term), messages)
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

    # -- both -------------------------------------------------------------------------------

    async def _handle(
        self,
        term: Term,
        by_partition: dict[int, list[Read[Ref]]],
        failed: list[tuple[Any, Exception]],
        messages: list[Any],
    ) -> None:
        """Each partition's reads through its processor, and what it decided carried out."""
        now = _utc_now()
        for partition, reads in by_partition.items():
            processor = self.partitions.get(partition)
            actions = processor.handle(reads, now)
            await self._settled(self._carry_out(term, partition, processor, actions), messages)
        if failed:
            await self._settled(self.fence.check(term), messages)
        for message, error in failed:
            await self._settled(self.publisher.failed(message, error), messages)

    async def _carry_out(
        self, term: Term, partition: int, processor: Processor, actions: Actions[Ref, bytes]
    ) -> None:
        await self.fence.check(term)
        await self.publisher.carry_out(actions)
        if actions.failed:
            # A failed read may have left a cached state half changed: read it again from
            # the table (what earlier reads changed and is not written yet stays).
            for store in self.stores.all():
                store.forget_clean()
        for ref, key in actions.applied:
            if ref is not None:
                message = ref.message
                self.applied.note(message.topic, message.partition, message.offset, key)
        self.partitions.keep_clocks(partition, processor)
        # Only now: the facts and stock levels it sent are ahead of the announcement.
        self.unannounced.update(actions.announce)
        for topic in actions.duplicates:
            self.metrics.observe_duplicate(topic)
        for deadline in actions.late:
            self.metrics.observe_late_event(deadline)
        if actions.ignored_clock:
            # The time moves a wall clock, nothing else: an advance would fire early.
            log.warning("ignored a clock message: this worker runs on the wall clock")

    async def _settled(self, sending: Any, messages: list[Any]) -> None:
        """Await a batch's sends and writes; any failure there stops the worker, leaving the
        batch unacknowledged (streams.worker.failures: read again after the restart)."""
        try:
            await sending
        except Exception as error:
            stop_worker(error, where(messages[0]) if messages else "a batch")

    def _timed(self, started: float, messages: int) -> None:
        if messages:
            share = (time.perf_counter() - started) / messages
            for _ in range(messages):
                self.metrics.observe_processing(share)

    # -- timers and state -------------------------------------------------------------------

    async def tick(self) -> None:
        """Wall clock: note the inputs the agents have read to the ends found, then fire what
        each partition's clock reached, and the aggregates' checks."""
        term = self.fence.term
        now = _utc_now()
        inventory = self.topics["inventory"]
        for (topic, partition), at, leading in self.watch.frontier.ripe():
            processor = self.partitions.processors.get(partition)
            if processor is not None:
                processor.caught_up(STOCK_TOPIC if topic == inventory else topic, at, leading)
        released: list[bytes] = []
        for partition, processor in self.partitions:
            actions = processor.tick(now)
            released += [key for ref, key in actions.applied if ref is None]
            await self._carry_out(term, partition, processor, actions)
        await self.flush_states(term)
        if released:
            # Dropped only once Kafka has the states they changed: no commit covers a tick.
            await self.publisher.delivered()
            for key in released:
                self.stores.inbox_table.pop(key, None)
            await self.write(term, [self.stores.inbox_table])

    async def announce(self, term: Term | None = None) -> None:
        """Tell every aggregate partition how far each source's clock got.

        Runs on a timer (and after a batch with an ``advance-clock``), so a busy partition
        announces a few times a second rather than once per event. Every fact a source sent
        before is ahead of it on the topic, so the watermark never overtakes an item. The
        partition clocks are written to their table here too.
        """
        term = self.fence.term if term is None else term
        await self.write(term, [self.stores.clocks])
        pending, self.unannounced = self.unannounced, {}
        if pending:
            await self.fence.check(term)
        topic = self.topics["aggregate-inputs"]
        for source, watermark in pending.items():
            value = wire.pack(wire.WATERMARK, watermark, source.encode())
            for partition in range(self.partitions.count):
                await self.publisher.send(topic, None, value, partition)

    async def catch_up(self) -> None:
        """Fire what each restored event-time clock has already reached."""
        term = self.fence.term
        for partition, processor in self.partitions:
            await self._carry_out(term, partition, processor, processor.catch_up())

    async def write(self, term: Term, stores: Iterable[StateStore[Any] | DurableTable]) -> None:
        """Outputs before state: once Kafka has acknowledged every output, fact, forward and
        dead letter handed over so far, send the changed states of ``stores``, stamped with
        ``term`` (if this worker still holds it)."""
        stores = [store for store in stores if _dirty(store)]
        if not stores:
            return
        await self.publisher.delivered()
        await self.fence.check(term)
        stamp = self.fence.stamp(term)
        for store in stores:
            await store.flush(stamp)

    async def flush_states(self, term: Term) -> None:
        """Every state changed and not yet written (outside an agent: timers, rebalances)."""
        stores = self.stores
        await self.write(term, [stores.orders, stores.clocks])
        await self.flush_aggregates(term)

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

    async def flush_aggregates(self, term: Term) -> None:
        """The aggregates' changed states, each step once Kafka has the one before: the
        ledgers' and queues' pages and timelines; then the SKUs', carriers' and merchants'
        heads (a head never lands without what it lists: :mod:`streams.worker.ledgers`); then
        the keys the heads no longer need, and the inbox (an input leaves it once its effect
        is in)."""
        stores = self.stores
        ledgers = stores.ledgers
        await self.write(term, [*ledgers.stores()])
        await self.write(term, [stores.skus, stores.carriers, stores.merchants])
        ledgers.retire()
        await self.write(term, [*ledgers.stores(), stores.inbox_table])
        processors = [processor for _, processor in self.partitions]
        self.metrics.set_aggregate_inputs_waiting(
            sum(p.waiting for p in processors),
            min((at for p in processors if (at := p.oldest_waiting()) is not None), default=None),
        )


def _dirty(store: StateStore[Any] | DurableTable) -> bool:
    return store.dirty if isinstance(store, StateStore) else store.pending > 0
