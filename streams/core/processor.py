"""One partition's whole logic: a batch of inputs in, what to do out.

A :class:`PartitionProcessor` owns partition ``p`` of every topic: its orders (their states in
the driver's store, their next deadlines in a :class:`~streams.core.due_index.DeadlineIndex`,
through :class:`~streams.core.partition.OrderPartition`), its clocks (a
:mod:`~streams.core.timekeeping` timekeeper: event time or the wall clock, injected) and the
aggregate inputs waiting for the watermarks of the sources they depend on
(:class:`~streams.core.inbox.AggregateInbox`, released by :func:`~streams.core.aggregates.release`).

It is built one of two ways, each one call: :meth:`PartitionProcessor.for_worker` (one partition
of many: facts and stock levels for other partitions are sent, aggregate inputs wait for every
source's watermark) and :meth:`PartitionProcessor.for_replay` (one stream: the processor is its
own aggregate partition on one clock, :class:`~streams.core.timekeeping.StreamTime`).

It is synchronous and pure: :meth:`PartitionProcessor.handle` takes a batch of decoded reads
and returns :class:`Actions`, which the driver carries out (replay: writes the outputs; the
worker: produces outputs, facts, forwards and dead letters, writes its tables, announces the
watermarks, then acknowledges the batch). States are written through the stores the driver
gives (dictionaries, or changelogged tables written once per batch); waiting aggregate inputs
and watermarks through an :class:`InboxKeeper`.

The reads (``R`` is the driver's handle on where a read came from: a Kafka message, a line):

- :class:`OrderRead`: an order event read on one of the order topics;
- :class:`StockRead`: a stock level read on this partition's inventory topic (taken here when
  its key is this partition's, else forwarded), or on an order topic (``on_inventory`` False:
  only routed to its aggregate partition);
- :class:`AggregateRead`: a fact or a forwarded stock level for this aggregate partition;
- :class:`WatermarkRead`: a source announced its clock;
- :class:`ClockRead`: ``advance-clock``, or an input found idle;
- :class:`Unreadable`: a message that did not decode (it becomes a dead letter in order).

A read whose handling raises is reported in :attr:`Actions.failed` and the batch goes on: the
error policy (log, dead letter, metric) is the driver's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, NamedTuple, Protocol, TypeVar, assert_never

from streams.core import order
from streams.core.aggregates import AggregateStores, release
from streams.core.dates import EPOCH
from streams.core.event_clock import from_the_future
from streams.core.events import InventoryUpdated, OrderEvent
from streams.core.facts import Fact, sku_subject
from streams.core.inbox import AggregateInbox, inventory_source, order_source
from streams.core.outputs import DeadlineName, Rejection
from streams.core.partition import OrderPartition, OrderStates
from streams.core.policy import Policy
from streams.core.sequencer import Item, closing
from streams.core.timekeeping import BatchTime, StreamTime, Timekeeper

__all__ = [
    "Actions",
    "AggregateRead",
    "ClockRead",
    "InboxKeeper",
    "OrderRead",
    "Output",
    "PartitionProcessor",
    "Read",
    "StockRead",
    "Unreadable",
    "WatermarkRead",
]

R = TypeVar("R")
P = TypeVar("P")
N = TypeVar("N")
R_in = TypeVar("R_in", contravariant=True)
P_out = TypeVar("P_out", covariant=True)
Output = order.Output


class OrderRead(NamedTuple, Generic[R]):
    ref: R
    topic: str
    event: OrderEvent


class StockRead(NamedTuple, Generic[R]):
    ref: R
    event: InventoryUpdated
    #: Read on the inventory topic (False: it came on an order topic, and is only routed).
    on_inventory: bool = True


class AggregateRead(NamedTuple, Generic[R]):
    ref: R
    item: Item


class WatermarkRead(NamedTuple, Generic[R]):
    ref: R
    source: str
    watermark: datetime


class ClockRead(NamedTuple, Generic[R]):
    """``advance-clock`` to ``moment`` (``idle_topic`` None), or ``idle_topic`` had nothing
    unread while the leading input was at ``moment`` plus the idle slack."""

    ref: R
    moment: datetime
    idle_topic: str | None = None


class Unreadable(NamedTuple, Generic[R]):
    ref: R
    rejection: Rejection


Read = (
    OrderRead[R] | StockRead[R] | AggregateRead[R] | WatermarkRead[R] | ClockRead[R] | Unreadable[R]
)


class InboxKeeper(Protocol[R_in, P_out]):
    """Where a processor's waiting aggregate inputs and watermarks are kept between runs."""

    def keep(self, item: Item, ref: R_in) -> P_out:
        """Keep an input that now waits (read as ``ref``); the handle it is released with."""
        ...

    def keep_watermark(self, source: str, watermark: datetime) -> None: ...


@dataclass(slots=True)
class Actions(Generic[R, P]):
    """What the driver does after a batch (each list in the order it arose)."""

    #: Breaches, their resolutions and recommendations to publish.
    outputs: list[Output] = field(default_factory=list)
    #: Facts for the aggregate partitions (keyed by their subject).
    facts: list[Fact] = field(default_factory=list)
    #: Order events read on a partition that is not their key's: send each to its own.
    forward: list[tuple[R, OrderEvent]] = field(default_factory=list)
    #: Stock levels for another aggregate partition.
    forward_stock: list[tuple[R, InventoryUpdated]] = field(default_factory=list)
    #: Reads refused, with why (dead letters).
    rejected: list[tuple[R, Rejection]] = field(default_factory=list)
    #: Reads whose handling raised.
    failed: list[tuple[R, Exception]] = field(default_factory=list)
    #: Waiting inputs applied, by the read whose handling applied them (None: a tick).
    applied: list[tuple[R | None, P]] = field(default_factory=list)
    #: Watermarks to announce to every aggregate partition (event time), by source.
    announce: dict[str, datetime] = field(default_factory=dict)
    #: Topics of repeated order events (one entry each).
    duplicates: list[str] = field(default_factory=list)
    #: Deadlines an event arrived too late to meet (one entry each).
    late: list[DeadlineName] = field(default_factory=list)
    #: Clock reads ignored (a wall-clock processor has no clock to move).
    ignored_clock: int = 0


@dataclass(frozen=True, slots=True)
class _Partitioned:
    """The worker's wiring: one partition of ``partitions``; facts and stock levels for other
    aggregate partitions are sent, aggregate inputs wait for every source's watermark."""

    partitions: int


@dataclass(frozen=True, slots=True)
class _Loopback:
    """Replay's wiring: the processor is its own aggregate partition, behind its own clock;
    each fact passes through ``relay`` on its way (a test's stand-in for the bytes a worker's
    facts become)."""

    relay: Callable[[Fact], Fact]


class PartitionProcessor(Generic[R, P, N]):
    """Partition ``partition``'s orders, clocks and aggregate inbox (see the module doc).

    ``R`` is the driver's handle on a read, ``P`` the handle its keeper gives a waiting input,
    ``N`` the time the driver reads with each batch (see
    :class:`~streams.core.timekeeping.Timekeeper`). Build one with :meth:`for_worker` or
    :meth:`for_replay`.
    """

    def __init__(
        self,
        partition: int,
        policy: Policy,
        *,
        orders: OrderStates,
        aggregates: AggregateStores,
        time: Timekeeper[N],
        keeper: InboxKeeper[R, P],
        route: Callable[[str], int],
        wiring: _Partitioned | _Loopback,
    ) -> None:
        self.partition = partition
        self.policy = policy
        self.orders = OrderPartition(policy, orders)
        self.aggregates = aggregates
        self.time = time
        self.keeper = keeper
        self.route = route
        self.inbox: AggregateInbox[tuple[P | None, Item]]
        #: Replay: the relay facts take to this processor itself (None: they are sent).
        self._loopback: Callable[[Fact], Fact] | None
        if isinstance(wiring, _Loopback):
            self.inbox = AggregateInbox.single_clock()
            self._loopback = wiring.relay
        else:
            self.inbox = AggregateInbox(wiring.partitions)
            self._loopback = None
        self._sources = (order_source(partition), inventory_source(partition))
        self._announced: dict[str, datetime] = {}

    @classmethod
    def for_worker(
        cls,
        partition: int,
        policy: Policy,
        *,
        partitions: int,
        orders: OrderStates,
        aggregates: AggregateStores,
        time: Timekeeper[N],
        keeper: InboxKeeper[R, P],
        route: Callable[[str], int],
    ) -> PartitionProcessor[R, P, N]:
        """Partition ``partition`` of ``partitions`` of every topic, as a worker runs it.

        ``route`` gives the partition of an order id or aggregate subject: what is another
        partition's is sent there (:attr:`Actions.forward`, :attr:`Actions.forward_stock`,
        :attr:`Actions.facts`), and aggregate inputs wait for every source's watermark.
        """
        return cls(
            partition,
            policy,
            orders=orders,
            aggregates=aggregates,
            time=time,
            keeper=keeper,
            route=route,
            wiring=_Partitioned(partitions),
        )

    @classmethod
    def for_replay(
        cls,
        policy: Policy,
        *,
        orders: OrderStates,
        aggregates: AggregateStores,
        time: StreamTime,
        relay: Callable[[Fact], Fact] | None = None,
    ) -> PartitionProcessor[R, None, None]:
        """The one partition of a replay: every order, SKU, carrier and merchant, on one
        event-time clock (``time``), with nothing kept between runs and no time read.

        The processor is its own aggregate partition for every fact and stock level, each
        fact passed through ``relay`` on its way (a test's stand-in for the bytes a worker's
        facts become).
        """
        processor: PartitionProcessor[R, None, None] = PartitionProcessor(
            0,
            policy,
            orders=orders,
            aggregates=aggregates,
            time=time,
            keeper=_Nowhere(),
            route=_here,
            wiring=_Loopback(relay or _as_is),
        )
        return processor

    # -- driving ---------------------------------------------------------------------------

    def handle(self, batch: Iterable[Read[R]], now: N) -> Actions[R, P]:
        """Handle reads in order; ``now``: the time the driver read (what the timekeeper
        takes: the wall clock's time, None in replay)."""
        actions: Actions[R, P] = Actions()
        time = self.time.at(now)
        for read in batch:
            try:
                if isinstance(read, OrderRead):
                    self._order(actions, read, time)
                elif isinstance(read, StockRead):
                    self._stock(actions, read, time)
                elif isinstance(read, AggregateRead):
                    self._aggregate(actions, read)
                elif isinstance(read, WatermarkRead):
                    self._watermark(actions, read)
                elif isinstance(read, ClockRead):
                    self._clock(actions, read, time)
                elif isinstance(read, Unreadable):
                    actions.rejected.append((read.ref, read.rejection))
                else:
                    assert_never(read)
            except Exception as error:  # the driver's error policy decides what follows
                actions.failed.append((read.ref, error))
        return actions

    def tick(self, now: N) -> Actions[R, P]:
        """The wall clock moved to ``now``: fire what the partition's clock reached, announce
        it, release what it passed."""
        actions: Actions[R, P] = Actions()
        self._fire(actions, self.time.at(now).orders_clock())
        self._announce(actions, None, *self.time.marks())
        self._release(actions, None)
        return actions

    def caught_up(self, topic: str, at: datetime, leading: datetime | None = None) -> None:
        """Wall clock: every message of ``topic`` on this partition written before ``at`` has
        been handled (the next :meth:`tick` may move the clock up to ``at``); ``leading``:
        what :meth:`leading` said before ``at`` was taken."""
        self.time.caught_up(topic, at, leading)

    def leading(self) -> datetime | None:
        """The latest ``occurred_at`` read on this partition's order inputs."""
        return self.time.leading()

    # -- restoring (after a restart or a rebalance) ------------------------------------------

    def restore_orders(self, order_ids: Iterable[str]) -> None:
        self.orders.restore(order_ids)

    def restore_due(self, order_id: str, due: datetime) -> None:
        self.orders.restore_due(order_id, due)

    def restore_waiting(self, item: Item, handle: P) -> None:
        self.inbox.add(item, (handle, item))

    def restore_watermark(self, source: str, watermark: datetime) -> None:
        self.inbox.observe(source, watermark)

    def schedule_check(self, kind: str, subject: str, at: datetime | None) -> None:
        self.inbox.sequencers[self.inbox.check_group].schedule(kind, subject, at)

    def catch_up(self) -> Actions[R, P]:
        """Fire what the restored clock has already reached (an ``advance-clock`` handled
        before the partition moved here is not lost)."""
        actions: Actions[R, P] = Actions()
        self._fire(actions, self.time.clock())
        return actions

    @property
    def waiting(self) -> int:
        """Aggregate inputs waiting for a watermark."""
        return sum(len(s) for s in self.inbox.sequencers.values())

    def oldest_waiting(self) -> datetime | None:
        return min(
            (at for s in self.inbox.sequencers.values() if (at := s.oldest()) is not None),
            default=None,
        )

    # -- reads -----------------------------------------------------------------------------

    def _order(self, actions: Actions[R, P], read: OrderRead[R], time: BatchTime) -> None:
        ref, topic, event = read
        if self.route(event.order_id) != self.partition:
            actions.forward.append((ref, event))
            return
        if rejection := from_the_future(event.occurred_at, time.latest_order(), self.policy):
            actions.rejected.append((ref, rejection))
            return
        clock = time.order_time(topic, event.occurred_at)
        self._fire(actions, clock)
        step = self.orders.apply(event, clock, hold=time.hold())
        if step.duplicate:
            actions.duplicates.append(topic)
        else:
            actions.late.extend(step.late)
            self._settle(actions, step)
        self._after(actions, ref)

    def _stock(self, actions: Actions[R, P], read: StockRead[R], time: BatchTime) -> None:
        ref, event, on_inventory = read
        if not on_inventory:  # inventory on an order topic: routed to its aggregate as is
            actions.forward_stock.append((ref, event))
            return
        if rejection := from_the_future(event.occurred_at, time.latest_stock(), self.policy):
            actions.rejected.append((ref, rejection))
            return
        if (clock := time.note_stock(event.occurred_at)) is not None:
            self._fire(actions, clock)  # one clock: a stock level moved the orders clock too
        if self.route(sku_subject(event.merchant_id, event.sku)) == self.partition:
            self._wait(event, ref)
        else:
            actions.forward_stock.append((ref, event))
        self._after(actions, ref)

    def _aggregate(self, actions: Actions[R, P], read: AggregateRead[R]) -> None:
        self._wait(read.item, read.ref)
        self._release(actions, read.ref)

    def _watermark(self, actions: Actions[R, P], read: WatermarkRead[R]) -> None:
        _, source, watermark = read
        if self.inbox.observe(source, watermark):
            self.keeper.keep_watermark(source, watermark)
            self._release(actions, read.ref)

    def _clock(self, actions: Actions[R, P], read: ClockRead[R], time: BatchTime) -> None:
        ref, moment, idle_topic = read
        clocks = self.time
        if idle_topic is None:
            if not clocks.advance(moment):
                actions.ignored_clock += 1
                return
            self._fire(actions, time.orders_clock())
            # The moment itself is closed too, for this partition's order and stock sources.
            orders, stock = clocks.marks()
            self._announce(actions, ref, closing(orders), closing(stock))
        elif clocks.lift(idle_topic, moment):
            self._fire(actions, time.orders_clock())
            self._after(actions, ref)

    # -- steps -----------------------------------------------------------------------------

    def _fire(self, actions: Actions[R, P], now: datetime) -> None:
        orders = self.orders
        if orders.held:
            if (caught_up := self.time.caught_up_since()) is not None:
                orders.release(caught_up)
            if orders.held and (held_clock := self.time.held_clock()) is not None:
                for step in orders.fire_held(held_clock):
                    self._settle(actions, step)
        for step in orders.fire(now):
            self._settle(actions, step)

    def _settle(self, actions: Actions[R, P], step: order.Step) -> None:
        actions.outputs.extend(step.outputs)
        if not step.facts:
            return
        relay = self._loopback
        if relay is None:
            actions.facts.extend(step.facts)
        else:
            for fact in step.facts:
                self._wait(relay(fact), None)

    def _after(self, actions: Actions[R, P], ref: R) -> None:
        """An order or stock read was handled: announce the clocks (the facts it sent are
        ahead of the announcement)."""
        self._announce(actions, ref, *self.time.marks())

    def _announce(
        self, actions: Actions[R, P], ref: R | None, orders: datetime, stock: datetime
    ) -> None:
        """Announce the partition's clocks as its sources' watermarks. A processor that is its
        own aggregate partition (replay) hears them itself and releases what the read ``ref``
        let through."""
        loopback = self._loopback is not None
        for source, mark in zip(self._sources, (orders, stock), strict=True):
            if mark > EPOCH and mark > self._announced.get(source, EPOCH):
                self._announced[source] = mark
                actions.announce[source] = mark
                if loopback:
                    self.inbox.observe(source, mark)
        if loopback:
            self._release(actions, ref)

    def _wait(self, item: Item, ref: R | None) -> None:
        handle = self.keeper.keep(item, ref) if ref is not None else None
        self.inbox.add(item, (handle, item))

    def _release(self, actions: Actions[R, P], ref: R | None) -> None:
        """Apply, in event-time order, every waiting input and check its group's watermark
        has passed."""
        inbox = self.inbox
        for group, inputs in inbox.sequencers.items():
            boundary = inbox.boundary(group)
            if boundary is None or not inputs.waiting_before(boundary):
                continue  # the common case: nothing is due yet
            for payload, outputs in release(inputs, boundary, self.aggregates, self.policy, _item):
                if payload is not None and payload[0] is not None:
                    actions.applied.append((ref, payload[0]))
                actions.outputs.extend(outputs)


class _Nowhere:
    """Replay keeps nothing between runs: waiting inputs and watermarks live in memory."""

    def keep(self, item: Item, ref: object) -> None:
        return None

    def keep_watermark(self, source: str, watermark: datetime) -> None:
        return None


def _here(key: str) -> int:
    """Replay's route: every key is the one partition's."""
    return 0


def _as_is(fact: Fact) -> Fact:
    return fact


def _item(payload: tuple[object, Item]) -> Item:
    return payload[1]
