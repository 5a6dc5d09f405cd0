"""The carriers' and merchants' ledger pages, and the SKUs' queue pages, in the worker's
``ledgers`` table.

A ledger's head is the carrier's or merchant's state (in the ``carriers`` or ``merchants``
table); its timelines and pages (:mod:`streams.core.ledger`) are keys of their own here, in the
head's partition: ``<partition>/<kind>\\x1f<subject>\\x1ft\\x1f<order id>`` for a timeline and
``...\\x1fp\\x1f<number>`` for a page. A SKU's state is the head of its queue
(:mod:`streams.core.stockqueue`), whose pages are ``...\\x1fq\\x1f<number>``.

A batch changes a head and some of its keys together, and a worker can be killed after some of
them reached the changelog. So the keys are written before the heads, and the heads only once
Kafka has the keys (:meth:`~streams.worker.acknowledge.Acknowledgement.flush_aggregates`); what
a head no longer needs is deleted only once Kafka has the head. A restore can then find keys
newer than their head, never a head without its keys:

- a page is written once, under a new number: a head that did not reach the log lists only
  pages that still hold what it expects;
- a timeline's record holds the value before the batch that wrote it, besides its own: one
  stamped later than its head's record was written by a batch whose head is not in the log,
  and reads as its value before. Handling the batch again then starts from the same state.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypeAlias

from streams.core import state_codec
from streams.core.aggregates import CARRIER, MERCHANT, SKU_STOCK
from streams.core.dates import EPOCH
from streams.core.facts import OrderHealth, Shipment, SkuComplaint
from streams.core.ledger import Page
from streams.core.stockqueue import Entry
from streams.worker.tables import DurableTable, StateStore

__all__ = ["LedgerPages", "Ledgers", "TimelineRecord"]

Timeline: TypeAlias = OrderHealth | Shipment | SkuComplaint | datetime

_SEP = "\x1f"
_LENGTH = struct.Struct(">I")


class TimelineRecord(NamedTuple):
    """A timeline as stored: its value, and its value before the batch that wrote it."""

    value: Timeline
    before: Timeline | None


#: A timeline that is a moment (an inventory event's time) starts with this byte; a fact's
#: bytes never do (they start with ``{`` or a deflate dictionary's number).
_MOMENT = b"\xff"
_MICROSECONDS = struct.Struct(">q")


def _encode_timeline(value: Timeline) -> bytes:
    if isinstance(value, datetime):
        return _MOMENT + _MICROSECONDS.pack((value - EPOCH) // timedelta(microseconds=1))
    return state_codec.encode_fact(value)


def _decode_timeline(data: bytes) -> Timeline:
    if data[:1] == _MOMENT:
        (micros,) = _MICROSECONDS.unpack(data[1:])
        return EPOCH + timedelta(microseconds=micros)
    value = state_codec.decode_fact(data)
    if not isinstance(value, OrderHealth | Shipment | SkuComplaint):
        raise ValueError(f"not a timeline record: {type(value).__name__}")
    return value


def encode_record(record: TimelineRecord) -> bytes:
    value = _encode_timeline(record.value)
    before = b"" if record.before is None else _encode_timeline(record.before)
    return _LENGTH.pack(len(before)) + before + value


def decode_record(data: bytes) -> TimelineRecord:
    (length,) = _LENGTH.unpack_from(data)
    start = _LENGTH.size
    before = _decode_timeline(data[start : start + length]) if length else None
    return TimelineRecord(_decode_timeline(data[start + length :]), before)


class Ledgers:
    """The ``ledgers`` table as the ledgers' pages, with the heads they belong to."""

    def __init__(
        self,
        table: DurableTable,
        heads: dict[str, StateStore[Any]],
        partition_of: Callable[[str], int],
    ) -> None:
        self.table = table
        self.timelines: StateStore[TimelineRecord] = StateStore(table, encode_record, decode_record)
        self.pages: StateStore[Page] = StateStore(
            table, state_codec.encode_page, state_codec.decode_page
        )
        self.queues: StateStore[list[Entry]] = StateStore(
            table, state_codec.encode_queue_page, state_codec.decode_queue_page
        )
        self.heads = heads
        self.partition_of = partition_of
        #: Keys no head needs any more, deleted once the heads are in the log.
        self.retired: set[str] = set()

    def of(self, kind: str, subject: str) -> LedgerPages:
        return LedgerPages(self, kind, subject)

    def stores(self) -> tuple[StateStore[Any], ...]:
        return (self.timelines, self.pages, self.queues)

    def forget(self) -> None:
        for store in self.stores():
            store.forget()
        self.retired.clear()

    def retire(self) -> None:
        """Delete the retired keys (call once the heads that dropped them are in the log)."""
        retired, self.retired = self.retired, set()
        for key in retired:
            for store in self.stores():  # the key is one store's, in their one table
                store.drop(key)


_KIND_LETTERS = {CARRIER: "c", MERCHANT: "m", SKU_STOCK: "i"}


class LedgerPages:
    """One ledger's :class:`~streams.core.ledger.Pages` (a carrier's or a merchant's), or one
    SKU's :class:`~streams.core.stockqueue.QueuePages`."""

    __slots__ = ("_head", "_ledgers", "_prefix")

    def __init__(self, ledgers: Ledgers, kind: str, subject: str) -> None:
        self._ledgers = ledgers
        self._head = (ledgers.heads[kind], subject)
        partition = ledgers.partition_of(subject)
        self._prefix = f"{partition}/{_KIND_LETTERS.get(kind, 's')}{_SEP}{subject}{_SEP}"

    def _timeline_key(self, key: str) -> str:
        return f"{self._prefix}t{_SEP}{key}"

    def _page_key(self, number: int) -> str:
        return f"{self._prefix}p{_SEP}{number}"

    def _read(self, key: str) -> Timeline | None:
        """The timeline as of the head's record: its value, or its value before the batch
        that wrote it when that batch's head is not in the log."""
        ledgers = self._ledgers
        if key in ledgers.retired:
            return None
        timelines = ledgers.timelines
        record = timelines.get(key)
        if record is None:
            return None
        if timelines.is_dirty(key):
            return record.value  # written by this batch
        written = timelines.table.stamp(key.encode("utf-8"))
        heads, subject = self._head
        head = heads.table.stamp(subject.encode("utf-8"))
        if written is not None and (head is None or written > head):
            return record.before
        return record.value

    def timeline(self, key: str) -> Timeline | None:
        return self._read(self._timeline_key(key))

    def put_timeline(self, key: str, timeline: Timeline) -> None:
        full = self._timeline_key(key)
        ledgers = self._ledgers
        timelines = ledgers.timelines
        if timelines.is_dirty(full):
            before = timelines.get(full)
            assert before is not None
            record = TimelineRecord(timeline, before.before)
        else:
            record = TimelineRecord(timeline, self._read(full))
        ledgers.retired.discard(full)
        timelines.put(full, record)

    def _drop(self, store: StateStore[Any], key: str) -> None:
        """Delete ``key`` once the head is in the log; or now, unsent, if it was written since
        the last flush and never before (a page replaced within one batch)."""
        if not store.discard_unwritten(key):
            self._ledgers.retired.add(key)

    def drop_timeline(self, key: str) -> None:
        self._drop(self._ledgers.timelines, self._timeline_key(key))

    def page(self, number: int) -> Page | None:
        page = self._ledgers.pages.get(self._page_key(number))
        return None if page is None else dict(page)

    def put_page(self, number: int, page: Page) -> None:
        self._ledgers.pages.put(self._page_key(number), page)

    def drop_page(self, number: int) -> None:
        self._drop(self._ledgers.pages, self._page_key(number))

    def _queue_key(self, number: int) -> str:
        return f"{self._prefix}q{_SEP}{number}"

    def queue_page(self, number: int) -> list[Entry] | None:
        return self._ledgers.queues.get(self._queue_key(number))

    def put_queue_page(self, number: int, entries: list[Entry]) -> None:
        self._ledgers.queues.put(self._queue_key(number), entries)

    def drop_queue_page(self, number: int) -> None:
        self._drop(self._ledgers.queues, self._queue_key(number))
