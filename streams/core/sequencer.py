"""Aggregate inputs in event-time order: what the SKU, carrier and merchant processors see.

Stock levels and the facts orders send are applied to their aggregate in order of their event
time ``at`` (then a fixed rank and key), once the clock has passed it. A carrier or merchant
that was just told something, or whose counts change with time alone (an order leaving a
window), has a *check* at that moment, taken once every item of that moment was applied: its
measures are compared with their thresholds only then, so the order of simultaneous inputs
cannot change a decision. Replay's clock is its event-time clock; a worker's is the smallest
clock of the partitions that send to it. Both drivers use this class, so for events inside the
allowed lateness they apply the same items in the same order and decide the same.
"""

from __future__ import annotations

import heapq
from datetime import datetime, timedelta
from typing import Generic, NamedTuple, TypeAlias, TypeVar

from streams.core.events import InventoryUpdated
from streams.core.facts import Demand, Fact, OrderHealth, Shipment, SkuComplaint

__all__ = ["Check", "Item", "Sequencer", "closing", "position"]

Item: TypeAlias = InventoryUpdated | Fact
_MICROSECOND = timedelta(microseconds=1)
T = TypeVar("T")


class Check(NamedTuple):
    """A time-driven check of one aggregate (``kind`` is ``carrier`` or ``merchant``)."""

    at: datetime
    kind: str
    subject: str


def closing(moment: datetime) -> datetime:
    """The boundary that releases everything at or before ``moment`` (the boundary is strict:
    an input at the clock's own time may still come, unless the moment is closed)."""
    return moment + _MICROSECOND


def position(item: Item) -> tuple[datetime, int, str]:
    """Where an item goes in event-time order: (at, rank, key).

    At equal times a stock level goes first, then demand that ends, demand that opens, a
    complaint, a shipment, a health timeline; the key orders items of one rank.
    """
    kind = type(item)  # the commonest kinds first, by their exact class
    if kind is OrderHealth:
        return item.at, 5, item.order_id  # type: ignore[union-attr]
    if kind is Demand:
        return item.at, 2 if item.open else 1, item.order_id  # type: ignore[union-attr]
    if isinstance(item, InventoryUpdated):
        return item.occurred_at, 0, item.event_id
    if isinstance(item, Demand):
        return item.at, 2 if item.open else 1, item.order_id
    if isinstance(item, SkuComplaint):
        return item.filed_at, 3, item.complaint_key()
    if isinstance(item, Shipment):
        return item.at, 4, item.order_id
    if isinstance(item, OrderHealth):
        return item.at, 5, item.order_id
    raise TypeError(f"not an aggregate input: {item!r}")


class Sequencer(Generic[T]):
    """Items (of any payload ``T``) and checks waiting for the clock, released in order."""

    def __init__(self) -> None:
        self._items: list[tuple[datetime, int, str, int, T]] = []
        self._checks: list[Check] = []
        self._check_at: dict[tuple[str, str], datetime] = {}
        self._sequence = 0

    def __len__(self) -> int:
        return len(self._items)

    def oldest(self) -> datetime | None:
        """The event time of the earliest item waiting (None: none waits)."""
        return self._items[0][0] if self._items else None

    def add(self, where: tuple[datetime, int, str], payload: T) -> None:
        """Queue one item at its :func:`position`."""
        self._sequence = sequence = self._sequence + 1
        heapq.heappush(self._items, (where[0], where[1], where[2], sequence, payload))

    def schedule(self, kind: str, subject: str, at: datetime | None) -> None:
        """Set (or clear, with None) the one pending check of an aggregate."""
        key = (kind, subject)
        if at is None:
            self._check_at.pop(key, None)
        elif self._check_at.get(key) != at:
            self._check_at[key] = at
            heapq.heappush(self._checks, Check(at, kind, subject))

    def checks(self) -> dict[tuple[str, str], datetime]:
        """Every pending check, by (kind, subject)."""
        return dict(self._check_at)

    def waiting_before(self, boundary: datetime) -> bool:
        """Whether an item or a check (perhaps superseded) waits before ``boundary``; when not,
        :meth:`pop` would return None (a query: nothing is changed)."""
        items, checks = self._items, self._checks
        return bool((items and items[0][0] < boundary) or (checks and checks[0].at < boundary))

    def pop(self, boundary: datetime) -> Check | tuple[datetime, T] | None:
        """The next check or item strictly before ``boundary``, or None."""
        checks = self._checks
        items = self._items
        if checks:
            check_at = self._check_at
            check = checks[0]
            while check_at.get((check[1], check[2])) != check[0]:
                heapq.heappop(checks)  # superseded
                if not checks:
                    break
                check = checks[0]
            else:
                at = check[0]
                if at < boundary and (not items or at < items[0][0]):
                    heapq.heappop(checks)
                    del check_at[(check[1], check[2])]
                    return check
        if items and items[0][0] < boundary:
            entry = heapq.heappop(items)
            return entry[0], entry[4]
        return None
