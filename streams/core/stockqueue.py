"""A SKU's claims on its stock in placement order, in pages of bounded size.

The stock a SKU has is allocated to its open orders in placement order; the orders it does not
cover are short (``STOCKOUT_RISK``). Kept as one list, a busy SKU's state grows with its open
orders and every allocation walks all of them. A :class:`StockQueue` keeps in the SKU's head
one :class:`Slot` per page (its number, first position, entries, open orders and open units)
and the *boundary*: the position from which the open orders were short at the last allocation.
The claims themselves live in a :class:`QueuePages` store, at most :data:`PAGE_SIZE` per page.

An allocation sums the slots' units to find the page where the stock runs out, reads that page
for the new boundary, and reads on only across the orders that became short: its cost is the
number of pages plus one page plus what changed, not the number of orders.

A closed claim stays in its page, marked with its closing time, so that a claim told again (a
fact delivered twice) cannot reopen it; :meth:`StockQueue.sweep` drops those closed before the
policy's horizon. A page once written never changes: an edit writes it anew under a new number,
so a head that was not stored still finds every page it lists.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple, Protocol

from streams.core.dates import EPOCH

__all__ = ["PAGE_SIZE", "Claim", "DictQueuePages", "QueuePages", "Short", "Slot", "StockQueue"]

#: The most claims a page holds; a page that would hold more is split.
PAGE_SIZE = 256

Position = tuple[datetime, str]
"""Where an order stands in the queue: (placed_at, order_id)."""


class Claim(NamedTuple):
    """An order's claim on the stock (never edited in place: pages are shared with stores)."""

    quantity: int
    fulfillment_due: datetime
    shortages: int = 0
    closed_at: datetime | None = None


Entry = tuple[Position, Claim]


class Slot(NamedTuple):
    """One page as the head lists it."""

    number: int
    first: Position
    entries: int
    open: int
    units: int
    #: The earliest closing of a closed claim in the page (None: it has none).
    oldest_close: datetime | None


class Short(NamedTuple):
    """An open order the stock stopped covering: its claim (``shortages`` counted) and the
    units needed through it, in placement order."""

    position: Position
    claim: Claim
    needed: int


class QueuePages(Protocol):
    """Where a queue's pages live, outside its head (one SKU's keys)."""

    def queue_page(self, number: int) -> list[Entry] | None: ...

    def put_queue_page(self, number: int, entries: list[Entry]) -> None: ...

    def drop_queue_page(self, number: int) -> None: ...


@dataclass(slots=True)
class StockQueue:
    """Open and recently closed claims in placement order; see the module docstring."""

    slots: list[Slot] = field(default_factory=list)
    next_number: int = 0
    #: Open orders at or after this position were short at the last allocation (None: none).
    boundary: Position | None = None
    #: When closed claims were last swept.
    swept: datetime = EPOCH

    # ---- queries -------------------------------------------------------------------------

    @property
    def open_orders(self) -> int:
        return sum(slot.open for slot in self.slots)

    def claim(self, position: Position, pages: QueuePages) -> Claim | None:
        """The claim at ``position``, open or closed (None: not known)."""
        index = self._route(position)
        if index < 0:
            return None
        entries = self._entries(index, pages)
        at = bisect_left(entries, position, key=_position)
        if at < len(entries) and entries[at][0] == position:
            return entries[at][1]
        return None

    # ---- updates -------------------------------------------------------------------------

    def put(self, position: Position, claim: Claim, pages: QueuePages) -> None:
        """Set the claim at ``position`` (a new one, or one replacing what is there)."""
        index = self._route(position)
        if index < 0:
            self._write(0, None, [(position, claim)], pages, insert=True)
            return
        entries = list(self._entries(index, pages))
        at = bisect_left(entries, position, key=_position)
        slot = self.slots[index]
        summary: Slot | None = slot
        if at < len(entries) and entries[at][0] == position:
            before = entries[at][1]
            entries[at] = (position, claim)
            if before.closed_at is None:
                summary = slot._replace(open=slot.open - 1, units=slot.units - before.quantity)
            else:
                summary = None  # a closed claim replaced: counted anew
        else:
            entries.insert(at, (position, claim))
            summary = slot._replace(entries=slot.entries + 1)
        if summary is not None:
            if claim.closed_at is None:
                summary = summary._replace(
                    open=summary.open + 1, units=summary.units + claim.quantity
                )
            elif summary.oldest_close is None or claim.closed_at < summary.oldest_close:
                summary = summary._replace(oldest_close=claim.closed_at)
        self._write(index, slot.number, entries, pages, summary=summary)

    def allocate(
        self, available: int, pages: QueuePages, new: Position | None = None
    ) -> list[Short]:
        """Allocate ``available`` units in placement order and move the boundary; the open
        orders that became short, each with its shortage counted. ``new`` is an order opened
        since the last allocation (never short before, wherever it stands)."""
        old = self.boundary
        boundary, index, needed = self._find_boundary(available, pages)
        self.boundary = boundary
        if boundary is None:
            return []
        shorts: list[Short] = []
        # The orders from the new boundary up to the old one (all of them if none was short).
        while index < len(self.slots):
            slot = self.slots[index]
            if old is not None and slot.first >= old:
                break
            entries = list(self._entries(index, pages))
            changed = False
            for at, (position, claim) in enumerate(entries):
                if claim.closed_at is not None:
                    continue
                if old is not None and position >= old:
                    break
                needed += claim.quantity
                if position < boundary:
                    continue  # covered: before the boundary, in its page
                if position == new:
                    new = None  # counted here
                counted = claim._replace(shortages=claim.shortages + 1)
                entries[at] = (position, counted)
                shorts.append(Short(position, counted, needed))
                changed = True
            if changed:
                self._write(index, slot.number, entries, pages, summary=slot)
                index = self._route(entries[-1][0]) + 1
            else:
                index += 1
        if new is not None and new >= boundary:
            shorts.append(self._count_short(new, pages))
        return shorts

    def sweep(self, horizon: datetime, pages: QueuePages) -> None:
        """Drop the closed claims closed at or before ``horizon``."""
        self.swept = horizon
        index = 0
        while index < len(self.slots):
            slot = self.slots[index]
            if slot.oldest_close is None or slot.oldest_close > horizon:
                index += 1
                continue
            kept = [
                (position, claim)
                for position, claim in self._entries(index, pages)
                if claim.closed_at is None or claim.closed_at > horizon
            ]
            before = len(self.slots)
            self._write(index, slot.number, kept, pages)
            index += 1 + len(self.slots) - before

    # ---- pages ---------------------------------------------------------------------------

    def _find_boundary(self, available: int, pages: QueuePages) -> tuple[Position | None, int, int]:
        """(the first open position the stock does not cover, its page's index, the units
        needed before that page); (None, …) when it covers every open order."""
        needed = 0
        for index, slot in enumerate(self.slots):
            if needed + slot.units <= available:
                needed += slot.units
                continue
            before = needed
            for position, claim in self._entries(index, pages):
                if claim.closed_at is None:
                    needed += claim.quantity
                    if needed > available:
                        return position, index, before
        return None, len(self.slots), needed

    def _count_short(self, position: Position, pages: QueuePages) -> Short:
        """Count a shortage of the open order at ``position``, with the units through it."""
        index = self._route(position)
        needed = sum(slot.units for slot in self.slots[:index])
        entries = list(self._entries(index, pages))
        for at, (here, claim) in enumerate(entries):
            if claim.closed_at is None:
                needed += claim.quantity
            if here == position:
                counted = claim._replace(shortages=claim.shortages + 1)
                entries[at] = (position, counted)
                slot = self.slots[index]
                self._write(index, slot.number, entries, pages, summary=slot)
                return Short(position, counted, needed)
        raise KeyError(f"no claim at {position}")

    def _route(self, position: Position) -> int:
        """The index of the page a position belongs to (-1: there is no page)."""
        if not self.slots:
            return -1
        return max(0, bisect_right(self.slots, position, key=_first) - 1)

    def _entries(self, index: int, pages: QueuePages) -> list[Entry]:
        return pages.queue_page(self.slots[index].number) or []

    def _write(
        self,
        index: int,
        old: int | None,
        entries: list[Entry],
        pages: QueuePages,
        *,
        insert: bool = False,
        summary: Slot | None = None,
    ) -> None:
        """Write page ``index`` anew under new numbers, split in pages of at most
        :data:`PAGE_SIZE` claims (none when empty), drop the ``old`` one, update the head;
        ``insert``: the page is a new one before the slot now at ``index``; ``summary``: the
        page's counts, when the caller knows them (else they are counted)."""
        if old is not None:
            pages.drop_queue_page(old)
        if not insert:
            del self.slots[index]
        if not entries:
            return
        if summary is not None and len(entries) <= PAGE_SIZE:
            number = self.next_number
            self.next_number += 1
            pages.put_queue_page(number, entries)
            self.slots.insert(index, summary._replace(number=number, first=entries[0][0]))
            return
        parts = -(-len(entries) // PAGE_SIZE)  # as few as hold them, evenly filled
        size = -(-len(entries) // parts)
        for part, start in enumerate(range(0, len(entries), size)):
            chunk = entries[start : start + size]
            number = self.next_number
            self.next_number += 1
            pages.put_queue_page(number, chunk)
            self.slots.insert(index + part, _slot(number, chunk))


def _slot(number: int, entries: list[Entry]) -> Slot:
    opened = [claim for _, claim in entries if claim.closed_at is None]
    closes = [claim.closed_at for _, claim in entries if claim.closed_at is not None]
    return Slot(
        number,
        entries[0][0],
        len(entries),
        len(opened),
        sum(claim.quantity for claim in opened),
        min(closes) if closes else None,
    )


def _position(entry: Entry) -> Position:
    return entry[0]


def _first(slot: Slot) -> Position:
    return slot.first


class DictQueuePages:
    """:class:`QueuePages` in a dictionary (replay, tests)."""

    def __init__(self) -> None:
        self.pages: dict[int, list[Entry]] = {}

    def queue_page(self, number: int) -> list[Entry] | None:
        return self.pages.get(number)

    def put_queue_page(self, number: int, entries: list[Entry]) -> None:
        self.pages[number] = entries

    def drop_queue_page(self, number: int) -> None:
        self.pages.pop(number, None)
