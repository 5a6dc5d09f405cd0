"""What time means to a partition: event time or the wall clock, injected into the processor.

The :class:`~streams.core.processor.PartitionProcessor` never asks which mode it runs in; it
asks its :class:`Timekeeper`, and for each batch the timekeeper's rules at the time the driver
read (:meth:`Timekeeper.at`, a :class:`BatchTime`):

- :class:`EventTime`: each partition has an orders clock that follows the slowest of its order
  topics (:class:`~streams.core.event_clock.PartitionClock`) and a stock clock that follows its
  inventory partition; aggregate partitions learn the sources' clocks from the watermarks they
  announce. It needs no time from the driver. :class:`StreamTime` is replay's: one stream, one
  clock for everything.
- :class:`WallTime`: event time capped by the wall clock. A partition's clock follows its inputs
  as in event time, except that an input with nothing unread does not hold it back, and it never
  runs ahead of the time the driver read. A backlog (a restart, an outage, a burst of history)
  is therefore read before anything it could meet fires; read live, the clock is the time. The
  partitions announce their inputs' event time to the aggregates (the time itself once quiet).
  It is a ``Timekeeper[datetime]``: a batch without the time is a type error.

Neither reads a clock itself: the driver passes the time it read (``now``) with each batch, and
(wall clock) tells when an input had nothing unread (:meth:`Timekeeper.caught_up`).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Protocol, Self, TypeVar

from streams.core.dates import EPOCH
from streams.core.event_clock import PartitionClock, partition_clock

__all__ = [
    "STOCK_TOPIC",
    "STREAM",
    "BatchTime",
    "EventTime",
    "StreamTime",
    "Timekeeper",
    "WallTime",
    "capped_clock",
]

#: The name the stock clock knows the inventory topic by.
STOCK_TOPIC = "inventory"
#: The one input replay's clock follows (:class:`StreamTime`).
STREAM = "stream"

N_contra = TypeVar("N_contra", contravariant=True)


class BatchTime(Protocol):
    """The time rules for one batch (or tick), at the time the driver read for it."""

    def order_time(self, topic: str, occurred_at: datetime) -> datetime:
        """The clock an order event read from ``topic`` is applied at (after noting it)."""
        ...

    def note_stock(self, occurred_at: datetime) -> datetime | None:
        """A stock level was read on this partition's inventory topic: the orders clock when
        that moved it too (one clock for both, :class:`StreamTime`), else None."""
        ...

    def latest_order(self) -> datetime | None:
        """What an order event may not be far ahead of (None: nothing yet, or no screen)."""
        ...

    def latest_stock(self) -> datetime | None:
        """What a stock level may not be far ahead of (None: nothing yet, or no screen)."""
        ...

    def orders_clock(self) -> datetime:
        """The time due deadlines are fired at."""
        ...

    def hold(self) -> datetime | None:
        """Wall clock: an order read now is decided in event time
        (:meth:`Timekeeper.held_clock`) until every input was caught up at or after this time;
        None: no hold (event time)."""
        ...


class Timekeeper(Protocol[N_contra]):
    """The clocks of one partition, as its processor keeps them between batches.

    ``N`` is what the driver reads with each batch and gives :meth:`at`: the time
    (:class:`WallTime` needs it), or nothing at all (replay: None).
    """

    def at(self, now: N_contra) -> BatchTime:
        """The time rules for a batch read at ``now``."""
        ...

    def clock(self) -> datetime:
        """The orders clock as it stands (no time read)."""
        ...

    def marks(self) -> tuple[datetime, datetime]:
        """(orders, stock) clocks to announce to the aggregate partitions."""
        ...

    def advance(self, target: datetime) -> bool:
        """``advance-clock``: move both clocks forward to ``target``; False when the
        timekeeper ignores it (the wall clock moves by itself)."""
        ...

    def lift(self, topic: str, floor: datetime) -> bool:
        """An input with nothing unread holds the orders clock no further back than ``floor``
        (plus the lateness); True when the clock moved."""
        ...

    def caught_up(self, topic: str, at: datetime, leading: datetime | None = None) -> None:
        """Wall clock: every message of ``topic`` (:data:`STOCK_TOPIC`: the inventory topic)
        written before the time ``at`` has been handled; ``leading``: the partition's latest
        ``occurred_at`` read before ``at`` was taken (:meth:`leading`)."""
        ...

    def leading(self) -> datetime | None:
        """The latest ``occurred_at`` read on the partition's order inputs (None: none yet)."""
        ...

    def caught_up_since(self) -> datetime | None:
        """Wall clock: every order input had nothing unread at this time (None: not known)."""
        ...

    def held_clock(self) -> datetime | None:
        """Wall clock: the clock held orders fire at (None: nothing fires them yet)."""
        ...

    @property
    def moved(self) -> bool:
        """A clock moved since the driver last :meth:`settled` (it keeps the clocks)."""
        ...

    def settled(self) -> None: ...


class EventTime:
    """Event time: clocks that follow the events of one partition's inputs.

    ``inputs`` are the order topics the orders clock waits for; the stock clock follows the
    inventory topic. It reads no time: :meth:`at` gives itself, whatever the driver read.
    """

    __slots__ = ("_lateness", "_moved", "inputs", "orders", "stock")

    def __init__(
        self,
        lateness: timedelta,
        inputs: Collection[str],
        *,
        orders: PartitionClock | None = None,
        stock: PartitionClock | None = None,
    ) -> None:
        self._lateness = lateness
        self.inputs = inputs
        self.orders = orders or PartitionClock()
        self.stock = stock or PartitionClock()
        self._moved = False

    def at(self, now: datetime | None = None) -> Self:
        return self

    def clock(self) -> datetime:
        return self.orders.value

    def order_time(self, topic: str, occurred_at: datetime) -> datetime:
        if self.orders.observe(topic, occurred_at, self._lateness, self.inputs):
            self._moved = True
        return self.orders.value

    def note_stock(self, occurred_at: datetime) -> datetime | None:
        if self.stock.observe(STOCK_TOPIC, occurred_at, self._lateness, (STOCK_TOPIC,)):
            self._moved = True
        return None

    def latest_order(self) -> datetime | None:
        return _latest(self.orders)

    def latest_stock(self) -> datetime | None:
        return _latest(self.stock)

    def orders_clock(self) -> datetime:
        return self.orders.value

    def hold(self) -> datetime | None:
        return None

    def marks(self) -> tuple[datetime, datetime]:
        return self.orders.value, self.stock.value

    def advance(self, target: datetime) -> bool:
        for clock in (self.orders, self.stock):
            if target > clock.value:
                clock.value = target
                self._moved = True
        return True

    def lift(self, topic: str, floor: datetime) -> bool:
        if self.orders.lift(topic, floor, self._lateness, self.inputs):
            self._moved = True
            return True
        return False

    def caught_up(self, topic: str, at: datetime, leading: datetime | None = None) -> None:
        return None  # event time: idle inputs are lifted by their events' time (lift)

    def leading(self) -> datetime | None:
        return _latest(self.orders)

    def caught_up_since(self) -> datetime | None:
        return None

    def held_clock(self) -> datetime | None:
        return None

    @property
    def moved(self) -> bool:
        return self._moved

    def settled(self) -> None:
        self._moved = False


class StreamTime(EventTime):
    """Replay's event time: one ordered stream, so one clock for orders and stock levels.

    No event is too far ahead here: replay refuses those lines itself, with their number
    (:func:`~streams.core.event_clock.from_the_future` against :attr:`latest`).
    """

    __slots__ = ()

    def __init__(self, lateness: timedelta) -> None:
        super().__init__(lateness, (STREAM,))
        self.stock = self.orders

    @property
    def latest(self) -> datetime | None:
        """The largest ``occurred_at`` seen so far."""
        seen = self.orders.seen
        return seen[STREAM] if seen else None

    def note_stock(self, occurred_at: datetime) -> datetime | None:
        return self.order_time(STREAM, occurred_at)

    def latest_order(self) -> datetime | None:
        return None

    def latest_stock(self) -> datetime | None:
        return None


class WallTime:
    """Event time capped by the wall clock (see the module doc).

    Each input's mark is its latest ``occurred_at`` less the allowed lateness, or the time it
    was last found with nothing unread (:meth:`caught_up`), whichever is later; the clock is the
    smallest mark of the inputs (a topic beyond ``inputs`` joins once seen), never past the time
    the driver read, and never back. Which inputs were caught up is learnt again after a
    restart: until then a restored clock stands still.

    An order just read is *held* (:meth:`hold`): a burst of history or a backlog may still be
    being written behind it, so its deadlines fire in event time (:meth:`held_clock`) until
    every input had nothing unread ``grace`` after it was read. A burst is then decided as
    replay decides it, not breached for being read after its deadlines.
    """

    __slots__ = (
        "_caught",
        "_caught_stock",
        "_grace",
        "_idle",
        "_last_read",
        "_last_stock",
        "_lateness",
        "_moved",
        "_quiet",
        "_slack",
        "inputs",
        "orders",
        "stock",
    )

    def __init__(
        self,
        lateness: timedelta,
        inputs: Collection[str],
        *,
        slack: timedelta = timedelta(days=1),
        grace: timedelta = timedelta(seconds=5),
        quiet: timedelta = timedelta(minutes=1),
        orders: PartitionClock | None = None,
        stock: PartitionClock | None = None,
    ) -> None:
        self._lateness = lateness
        self._slack = slack
        self._grace = grace
        self._quiet = quiet
        #: The time an order event / a stock level was last read (or, before any, first
        #: found caught up): when the partition went quiet.
        self._last_read: datetime | None = None
        self._last_stock: datetime | None = None
        self.inputs = inputs
        self.orders = orders or PartitionClock()
        self.stock = stock or PartitionClock()
        self._caught: dict[str, datetime] = {}
        self._caught_stock: dict[str, datetime] = {}
        #: Event time's idle floors, for held orders (see :meth:`held_clock`).
        self._idle: dict[str, datetime] = {}
        self._moved = False

    def at(self, now: datetime) -> BatchTime:
        return _WallBatch(self, now)

    def clock(self) -> datetime:
        return self.orders.value

    def order_time(self, topic: str, occurred_at: datetime, now: datetime) -> datetime:
        """The clock an order event read from ``topic`` at ``now`` is applied at."""
        self._last_read = now
        seen = self.orders.seen
        if occurred_at > seen.get(topic, EPOCH):
            seen[topic] = occurred_at
            # Only a new mark can move the clock between ticks (which follow the time too).
            self._follow(self.orders, self.inputs, self._caught, now)
        return self.orders.value

    def note_stock(self, occurred_at: datetime, now: datetime) -> None:
        """A stock level was read on the partition's inventory topic at ``now``."""
        self._last_stock = now
        seen = self.stock.seen
        if occurred_at > seen.get(STOCK_TOPIC, EPOCH):
            seen[STOCK_TOPIC] = occurred_at
            self._follow(self.stock, (STOCK_TOPIC,), self._caught_stock, now)

    def orders_clock(self, now: datetime) -> datetime:
        """The orders clock, following the inputs as far as ``now``."""
        self._follow(self.orders, self.inputs, self._caught, now)
        self._follow(self.stock, (STOCK_TOPIC,), self._caught_stock, now)
        return self.orders.value

    def marks(self) -> tuple[datetime, datetime]:
        """What the aggregates may count on: no fact or stock level this partition sends
        later is dated before it. That is its inputs' event time (an input with nothing
        unread lifted to the idle slack behind the leading one), never past the clock; a
        burst of history read later is then still ahead of it. Only once the partition has
        been quiet for ``quiet`` (every input with nothing unread, no event read) does it
        announce the wall clock itself, so that idle partitions do not hold the aggregates."""
        orders, stock = self.orders, self.stock
        if _quiet(self.caught_up_since(), self._last_read, self._quiet):
            orders_mark = _on_grid(orders.value)
        else:
            held = partition_clock(orders.seen, self._idle, self.inputs, self._lateness)
            orders_mark = EPOCH if held is None else min(held, orders.value)
        if _quiet(self._caught_stock.get(STOCK_TOPIC), self._last_stock, self._quiet):
            stock_mark = _on_grid(stock.value)
        else:
            level = stock.seen.get(STOCK_TOPIC)
            stock_mark = EPOCH if level is None else min(level - self._lateness, stock.value)
        return orders_mark, stock_mark

    def advance(self, target: datetime) -> bool:
        return False  # the wall clock moves by itself: an advance would fire early

    def lift(self, topic: str, floor: datetime) -> bool:
        return False  # idle inputs are known by what was read, not lifted by event time

    def caught_up(self, topic: str, at: datetime, leading: datetime | None = None) -> None:
        caught = self._caught_stock if topic == STOCK_TOPIC else self._caught
        if at > caught.get(topic, EPOCH):
            caught[topic] = at
        if topic == STOCK_TOPIC:
            if self._last_stock is None:
                self._last_stock = at
            return
        if self._last_read is None:
            self._last_read = at
        # Event time's idle lift, for held orders: the leading mark was taken before the end
        # was read, so whatever this input gets later is at most the slack behind it.
        if leading is not None:
            floor = leading - self._slack
            if floor > self._idle.get(topic, EPOCH):
                self._idle[topic] = floor

    def leading(self) -> datetime | None:
        return _latest(self.orders)

    def hold(self, now: datetime) -> datetime:
        """An order read at ``now`` is held until every input was caught up after this."""
        return now + self._grace

    def held_clock(self) -> datetime | None:
        """Event time (an input with nothing unread lifted to the idle slack behind the
        leading one, as the event-time worker lifts it), never past the wall clock's."""
        held = partition_clock(self.orders.seen, self._idle, self.inputs, self._lateness)
        if held is None:
            return None
        return min(held, self.orders.value)

    def caught_up_since(self) -> datetime | None:
        caught = self._caught
        at: datetime | None = None
        for topic in {*self.inputs, *self.orders.seen}:
            mark = caught.get(topic)
            if mark is None:
                return None
            if at is None or mark < at:
                at = mark
        return at

    def _follow(
        self,
        clock: PartitionClock,
        inputs: Collection[str],
        caught: dict[str, datetime],
        now: datetime,
    ) -> None:
        moved = capped_clock(clock.seen, caught, inputs, self._lateness, now)
        if moved is not None and moved > clock.value:
            clock.value = moved
            self._moved = True

    @property
    def moved(self) -> bool:
        return self._moved

    def settled(self) -> None:
        self._moved = False


def capped_clock(
    seen: dict[str, datetime],
    caught: dict[str, datetime],
    inputs: Collection[str],
    lateness: timedelta,
    now: datetime,
) -> datetime | None:
    """The wall clock's partition clock: the smallest input mark, capped by ``now``.

    An input's mark is its latest ``occurred_at`` (``seen``) less ``lateness``, or the time it
    had nothing unread (``caught``), whichever is later. None while one of ``inputs`` (or a
    topic seen) has neither.
    """
    clock = now
    for topic in {*inputs, *seen}:
        at = seen.get(topic)
        mark = caught.get(topic)
        if at is not None:
            at -= lateness
            if mark is None or at > mark:
                mark = at
        if mark is None:
            return None
        if mark < clock:
            clock = mark
    return clock


#: A quiet partition's watermark moves in steps of this many seconds: announced to every
#: aggregate partition, the time itself would be a message per source per tick.
QUIET_STEP_SECONDS = 5


def _on_grid(at: datetime) -> datetime:
    """``at`` rounded down to a whole :data:`QUIET_STEP_SECONDS`."""
    return at - timedelta(seconds=at.second % QUIET_STEP_SECONDS, microseconds=at.microsecond)


def _quiet(caught_up: datetime | None, last_read: datetime | None, quiet: timedelta) -> bool:
    """Had the inputs nothing unread ``quiet`` after the last read?"""
    return caught_up is not None and last_read is not None and caught_up >= last_read + quiet


def _latest(clock: PartitionClock) -> datetime | None:
    return max(clock.seen.values()) if clock.seen else None


class _WallBatch:
    """A :class:`WallTime` at the time the driver read for one batch (see
    :meth:`WallTime.at`): an order or stock level may not be ahead of that time."""

    __slots__ = ("_now", "_time")

    def __init__(self, time: WallTime, now: datetime) -> None:
        self._time = time
        self._now = now

    def order_time(self, topic: str, occurred_at: datetime) -> datetime:
        return self._time.order_time(topic, occurred_at, self._now)

    def note_stock(self, occurred_at: datetime) -> datetime | None:
        self._time.note_stock(occurred_at, self._now)
        return None

    def latest_order(self) -> datetime | None:
        return self._now

    def latest_stock(self) -> datetime | None:
        return self._now

    def orders_clock(self) -> datetime:
        return self._time.orders_clock(self._now)

    def hold(self) -> datetime | None:
        return self._time.hold(self._now)
