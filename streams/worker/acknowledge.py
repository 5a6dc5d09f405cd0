"""How a batch is acknowledged: decide, send the outputs, write the state, let the offset be
committed.

A message's offset is committed only once everything its handling caused is in Kafka. That is
what makes "nothing lost" hold: a worker that stops at any moment (killed, fenced, or stopped
on purpose by a failure, :mod:`streams.worker.failures`) restarts from the group's last commit
and reads again every message whose effects might be missing. The agents
(:mod:`streams.worker.agents`) read a batch and hand it here; :class:`Acknowledgement` takes
these steps, in this order, top to bottom in this module:

1. **Decide.** Each partition's reads go through its
   :class:`~streams.core.processor.PartitionProcessor`, which changes the cached states and
   says what to send. Nothing has left the process: a stop here loses nothing.
2. **Send the outputs.** Breaches, recommendations, facts, forwarded events and dead letters are
   handed to the producer in a row (:meth:`~streams.worker.publish.Publisher.carry_out`), once
   the fence (:mod:`streams.worker.fence`) says the batch's assignment is still this worker's:
   a worker the group removed sends nothing. The batch's reads then count as handled for the
   wall clock's read frontier (:mod:`streams.worker.frontier`).
3. **Write the state.** Once Kafka has acknowledged every message handed over in step 2
   (:meth:`~streams.worker.publish.Publisher.delivered`), the states the batch changed go to
   their tables' changelogs, stamped with the batch's assignment
   (:meth:`~streams.worker.tables.DurableTable.flush`). Outputs before state: a state marks its
   events as seen, so had it reached Kafka first, a worker stopped in between would restart
   with the events seen and never decide them again, and their outputs would be lost. In this
   order a stop in between leaves outputs without the state: the events are read and decided
   again (at worst an output is delivered twice), never skipped. The aggregates' states go in
   steps of their own (:meth:`Acknowledgement.flush_aggregates`): ledger pages before the heads
   that list them, the inbox last.
4. **Let the offset be committed.** The batch's function returns and the agent asks for the next
   batch: only then does Faust acknowledge this one (``Stream.take_events`` acks a batch's events
   once the agent's body is done with it). Faust's consumer commits acknowledged offsets on its
   own schedule; before it commits it flushes the producer, so every changelog record handed
   over in step 3 is delivered by then. A commit ahead of step 3 could cover messages whose
   state is not in Kafka: a worker killed then would restart past them with state that lacks
   them, lost for good. (Faust's own table writes are buffered in a way its pre-commit flush can
   leave behind; the worker's tables write around that: :mod:`streams.worker.tables`.) A
   failure in steps 1 to 3 stops the worker
   before the agent asks for the next batch (:meth:`Acknowledgement.settled`): nothing of the
   batch is acknowledged, and the restart reads it again.
5. **After the commit.** Faust tells the tables which offsets it committed; the worker follows
   that (:mod:`streams.worker.faust_fixes.commits`) into :meth:`Acknowledgement.committed`. An
   aggregate input leaves the inbox table only once the message whose handling applied it is
   committed (:class:`AppliedInputs`; deleted with the partition's next batch): until then a
   restart may handle that message again, and it must find the inputs it applied the first time
   (applying one twice changes nothing: every aggregate input is idempotent).

A wall-clock tick (:meth:`Acknowledgement.tick`) decides, sends and writes the same way; no
offset covers it, so the inputs it releases leave the inbox once Kafka has the states they
changed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Iterable
from datetime import UTC, datetime
from typing import Any

from streams.core.processor import Actions, Read
from streams.ops.metrics import Metrics
from streams.worker.failures import stop_worker
from streams.worker.fence import Fence, Term
from streams.worker.frontier import ReadFrontier
from streams.worker.inbox_table import Ref
from streams.worker.partitions import Partitions, Processor
from streams.worker.publish import Publisher, where
from streams.worker.stores import Stores
from streams.worker.tables import DurableTable, StateStore

__all__ = ["Acknowledgement", "AppliedInputs"]

log = logging.getLogger("orderwatch.worker")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Acknowledgement:
    """The steps of a batch's acknowledgement, over the worker's partitions, producer, stores
    and fence."""

    def __init__(
        self,
        *,
        partitions: Partitions,
        publisher: Publisher,
        stores: Stores,
        fence: Fence,
        frontier: ReadFrontier,
        metrics: Metrics,
    ) -> None:
        self.partitions = partitions
        self.publisher = publisher
        self.stores = stores
        self.fence = fence
        self.frontier = frontier
        self.metrics = metrics
        #: Inbox keys applied by messages not yet committed (step 5).
        self.applied = AppliedInputs()
        #: Watermarks the partitions reached, their facts sent, not yet announced.
        self.unannounced: dict[str, datetime] = {}

    # -- a batch, step by step --------------------------------------------------------------

    async def order_batch(
        self,
        term: Term,
        by_partition: dict[int, list[Read[Ref]]],
        failed: list[tuple[Any, Exception]],
        messages: list[Any],
    ) -> None:
        """Steps 1 to 3 for a batch of the order agent; returning lets Faust acknowledge it."""
        await self.decide_and_send(term, by_partition, failed, messages)
        await self.settled(self.write(term, [self.stores.orders]), messages)

    async def aggregate_batch(
        self,
        term: Term,
        by_partition: dict[int, list[Read[Ref]]],
        failed: list[tuple[Any, Exception]],
        messages: list[Any],
    ) -> None:
        """Steps 1 to 3 for a batch of the aggregate agent (after step 5 of earlier ones: the
        inputs their committed messages applied leave the inbox with this batch's writes)."""
        inbox = self.stores.inbox_table
        for partition in by_partition:
            for key in self.applied.deletable(partition):
                inbox.pop(key, None)
        await self.decide_and_send(term, by_partition, failed, messages)
        await self.settled(self.flush_aggregates(term), messages)

    # -- 1 and 2: decide, send the outputs ----------------------------------------------------

    async def decide_and_send(
        self,
        term: Term,
        by_partition: dict[int, list[Read[Ref]]],
        failed: list[tuple[Any, Exception]],
        messages: list[Any],
    ) -> None:
        """Each partition's reads through its processor, and what it decided handed to the
        producer; the messages that met a defect dead-lettered; then the batch counts as
        handled."""
        now = _utc_now()
        for partition, reads in by_partition.items():
            processor = self.partitions.get(partition)
            actions = processor.handle(reads, now)
            await self.settled(self.carry_out(term, partition, processor, actions), messages)
        if failed:
            await self.settled(self.fence.check(term), messages)
        for message, error in failed:
            await self.settled(self.publisher.failed(message, error), messages)
        self.frontier.handled(messages)

    async def carry_out(
        self, term: Term, partition: int, processor: Processor, actions: Actions[Ref, bytes]
    ) -> None:
        """Send what ``processor`` decided (the fence checked first), and note what it
        applied."""
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

    # -- 3: write the state -----------------------------------------------------------------

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

    async def settled(self, sending: Awaitable[Any], messages: list[Any]) -> None:
        """Await a step's sends and writes; any failure there stops the worker, leaving the
        batch unacknowledged (read again after the restart)."""
        try:
            await sending
        except Exception as error:
            stop_worker(error, where(messages[0]) if messages else "a batch")

    # -- 4 is Faust's; 5: after the commit ----------------------------------------------------

    def committed(self, topic: str, partition: int, offset: int) -> None:
        """Faust committed ``offset`` (the next to read) of ``topic[partition]``."""
        self.applied.committed(topic, partition, offset)

    def forget_applied(self) -> None:
        """Partitions moved: whoever owns them now finds the inputs in the table."""
        self.applied.clear()

    # -- outside a batch ----------------------------------------------------------------------

    async def tick(self, term: Term) -> None:
        """Wall clock: fire what each partition's clock reached, and the aggregates' checks;
        send, write, and only then drop the inputs the tick released (no commit covers a
        tick)."""
        now = _utc_now()
        released: list[bytes] = []
        for partition, processor in self.partitions:
            actions = processor.tick(now)
            released += [key for ref, key in actions.applied if ref is None]
            await self.carry_out(term, partition, processor, actions)
        await self.flush_states(term)
        if released:
            await self.publisher.delivered()
            for key in released:
                self.stores.inbox_table.pop(key, None)
            await self.write(term, [self.stores.inbox_table])

    async def catch_up(self) -> None:
        """Fire and send what each restored event-time clock has already reached (written
        by the rebuild that follows)."""
        term = self.fence.term
        for partition, processor in self.partitions:
            await self.carry_out(term, partition, processor, processor.catch_up())


def _dirty(store: StateStore[Any] | DurableTable) -> bool:
    return store.dirty if isinstance(store, StateStore) else store.pending > 0


class AppliedInputs:
    """Inbox keys applied while handling a message, kept until that message is committed.

    An input leaves the inbox table only once the message whose handling applied it is
    committed (Faust flushes the producer first, so the aggregate states it changed are in
    their changelogs by then). A worker that restarts from the last commit finds the input
    again and applies it again, which changes nothing: every aggregate input is idempotent.
    """

    def __init__(self) -> None:
        self._applied: dict[tuple[str, int], list[tuple[int, bytes]]] = {}
        self._committed: dict[tuple[str, int], int] = {}

    def note(self, topic: str, partition: int, offset: int, key: bytes) -> None:
        """``key`` was applied while handling ``topic[partition]@offset``."""
        self._applied.setdefault((topic, partition), []).append((offset, key))

    def committed(self, topic: str, partition: int, offset: int) -> None:
        """Faust committed ``offset`` (the next to read) of ``topic[partition]``."""
        self._committed[(topic, partition)] = offset

    def deletable(self, partition: int) -> list[bytes]:
        """Keys applied by committed messages of this partition (any topic); forgotten here."""
        keys: list[bytes] = []
        for source, applied in self._applied.items():
            committed = self._committed.get(source)
            if source[1] != partition or committed is None or not applied:
                continue
            keys += [key for offset, key in applied if offset < committed]
            self._applied[source] = [(o, key) for o, key in applied if o >= committed]
        return keys

    def clear(self) -> None:
        """Partitions moved: whoever owns them now finds the inputs in the table."""
        self._applied.clear()
