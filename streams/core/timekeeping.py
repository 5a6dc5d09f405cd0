"""What time means to a partition: event time or the wall clock, injected into the processor.

The :class:`~streams.core.processor.PartitionProcessor` never asks which mode it runs in; it
asks its timekeeper:

- :class:`EventTime`: each partition has an orders clock that follows the slowest of its order
  topics (:class:`~streams.core.clock.PartitionClock`) and a stock clock that follows its
  inventory partition; aggregate partitions learn the sources' clocks from the watermarks they
  announce. Replay has one stream and one clock for everything (``shared``).
- :class:`WallTime`: the time is what the driver read from the system clock, for orders and
  aggregates alike; nothing is announced.

Neither reads a clock itself: the driver passes the time it read (``now``) with each batch.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Protocol

from streams.core.clock import PartitionClock

__all__ = ["STOCK_TOPIC", "EventTime", "Timekeeper", "WallTime"]

#: The name the stock clock knows the inventory topic by.
STOCK_TOPIC = "inventory"


class Timekeeper(Protocol):
    """The time rules a partition processor follows."""

    def order_time(self, topic: str, occurred_at: datetime, now: datetime | None) -> datetime:
        """The clock an order event read from ``topic`` is applied at (after noting it)."""
        ...

    def note_stock(self, occurred_at: datetime) -> None:
        """A stock level was read on this partition's inventory topic."""
        ...

    def latest_order(self, now: datetime | None) -> datetime | None:
        """What an order event may not be far ahead of (None: nothing yet)."""
        ...

    def latest_stock(self, now: datetime | None) -> datetime | None:
        """What a stock level may not be far ahead of (None: nothing yet)."""
        ...

    def orders_clock(self, now: datetime | None) -> datetime:
        """The time due deadlines are fired at."""
        ...

    def marks(self) -> tuple[datetime, datetime] | None:
        """(orders, stock) clocks to announce to the aggregate partitions; None: the time
        itself is every source's watermark (:meth:`watermark`)."""
        ...

    def watermark(self, now: datetime | None) -> datetime | None:
        """Every source's watermark when the time is the driver's; None in event time."""
        ...

    def advance(self, target: datetime) -> bool:
        """``advance-clock``: move both clocks forward to ``target``; False when the
        timekeeper ignores it (the wall clock moves by itself)."""
        ...

    def lift(self, topic: str, floor: datetime) -> bool:
        """An input with nothing unread holds the orders clock no further back than ``floor``
        (plus the lateness); True when the clock moved."""
        ...

    @property
    def moved(self) -> bool:
        """A clock moved since the driver last :meth:`settled` (it keeps the clocks)."""
        ...

    def settled(self) -> None: ...


class EventTime:
    """Event time: clocks that follow the events (a partition's, or replay's one stream).

    ``inputs`` are the order topics the orders clock waits for; with ``shared`` the stock clock
    is the orders clock (replay reads every event from one stream). Without ``screen`` no event
    is too far ahead (replay's engine: replay refuses those lines itself, with their number).
    """

    __slots__ = ("_lateness", "_moved", "_screen", "inputs", "orders", "stock")

    def __init__(
        self,
        lateness: timedelta,
        inputs: Collection[str],
        *,
        shared: bool = False,
        screen: bool = True,
        orders: PartitionClock | None = None,
        stock: PartitionClock | None = None,
    ) -> None:
        self._lateness = lateness
        self.inputs = inputs
        self.orders = orders or PartitionClock()
        self.stock = self.orders if shared else (stock or PartitionClock())
        self._moved = False
        self._screen = screen

    def order_time(self, topic: str, occurred_at: datetime, now: datetime | None) -> datetime:
        if self.orders.observe(topic, occurred_at, self._lateness, self.inputs):
            self._moved = True
        return self.orders.value

    def note_stock(self, occurred_at: datetime) -> None:
        if self.stock is self.orders:
            self.order_time(next(iter(self.inputs)), occurred_at, None)
        elif self.stock.observe(STOCK_TOPIC, occurred_at, self._lateness, (STOCK_TOPIC,)):
            self._moved = True

    def latest_order(self, now: datetime | None) -> datetime | None:
        return _latest(self.orders) if self._screen else None

    def latest_stock(self, now: datetime | None) -> datetime | None:
        return _latest(self.stock) if self._screen else None

    def orders_clock(self, now: datetime | None) -> datetime:
        return self.orders.value

    def marks(self) -> tuple[datetime, datetime] | None:
        return self.orders.value, self.stock.value

    def watermark(self, now: datetime | None) -> datetime | None:
        return None

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

    @property
    def moved(self) -> bool:
        return self._moved

    def settled(self) -> None:
        self._moved = False


class WallTime:
    """The wall clock: the time the driver read is every clock and every watermark."""

    __slots__ = ()

    def order_time(self, topic: str, occurred_at: datetime, now: datetime | None) -> datetime:
        return _given(now)

    def note_stock(self, occurred_at: datetime) -> None:
        return None

    def latest_order(self, now: datetime | None) -> datetime | None:
        return _given(now)

    def latest_stock(self, now: datetime | None) -> datetime | None:
        return _given(now)

    def orders_clock(self, now: datetime | None) -> datetime:
        return _given(now)

    def marks(self) -> tuple[datetime, datetime] | None:
        return None

    def watermark(self, now: datetime | None) -> datetime | None:
        return _given(now)

    def advance(self, target: datetime) -> bool:
        return False

    def lift(self, topic: str, floor: datetime) -> bool:
        return False

    @property
    def moved(self) -> bool:
        return False

    def settled(self) -> None:
        return None


def _latest(clock: PartitionClock) -> datetime | None:
    return max(clock.seen.values()) if clock.seen else None


def _given(now: datetime | None) -> datetime:
    if now is None:
        raise ValueError("a wall-clock processor needs the time with every batch")
    return now
