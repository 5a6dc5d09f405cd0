"""The worker's tables as the core's stores.

Orders, SKUs, carriers and merchants are :class:`~streams.worker.tables.StateStore` s (decoded
states over a changelogged table, written once per batch); the partitions' clocks too; the aggregate
inbox is a raw :class:`~streams.worker.tables.DurableTable` (:mod:`streams.worker.inbox_table` reads
and writes it).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from datetime import datetime
from typing import Any

from streams.core import order, state_codec
from streams.core.aggregates import CARRIER, MERCHANT, SKU, SKU_STOCK
from streams.core.event_clock import PartitionClock
from streams.core.ledger import Pages
from streams.core.order import OrderState
from streams.core.policy import Policy
from streams.core.stockqueue import QueuePages
from streams.worker import wire
from streams.worker.ledgers import Ledgers
from streams.worker.tables import DurableTable, StateStore

__all__ = ["DueIndex", "Stores", "pack_clock", "unpack_clock"]


class Stores:
    """The worker's tables, as the core's stores (orders, SKUs, carriers, merchants), plus the
    partitions' clocks and the aggregate inbox.

    Each order is stored with its next due time (:class:`DueIndex`), so that a rebuild of the
    deadline index reads those few bytes rather than decode every order.
    """

    def __init__(
        self,
        table: Callable[..., DurableTable],
        due: DueIndex | None = None,
        *,
        route: Callable[[str], int],
    ) -> None:
        self.due = due
        self.orders = StateStore(
            table("orders"),
            state_codec.encode_order,
            state_codec.decode_order,
            None if due is None else due.index,
        )
        # Written at most once a tick (the watermark timer) and before a rebalance: a clock
        # restored a little behind only re-fires nothing (what fired is in the orders' state)
        # and announces less.
        self.clocks = StateStore(table("clocks"), pack_clock, unpack_clock)
        self.skus = StateStore(table("skus"), state_codec.encode_sku, state_codec.decode_sku)
        self.carriers = StateStore(
            table("carriers"), state_codec.encode_carrier, state_codec.decode_carrier
        )
        self.merchants = StateStore(
            table("merchants"), state_codec.encode_merchant, state_codec.decode_merchant
        )
        # Keys start with the partition they belong to, which is their changelog partition.
        self.ledgers = Ledgers(
            table("ledgers", by_key=False),
            {
                CARRIER: self.carriers,
                MERCHANT: self.merchants,
                SKU: self.skus,
                SKU_STOCK: self.skus,
            },
            route,
        )
        self.inbox_table = table("inbox", by_key=False)

    def pages(self, kind: str, subject: str) -> Pages[Any]:
        """The ledger pages of one carrier or merchant (see :mod:`streams.worker.ledgers`)."""
        return self.ledgers.of(kind, subject)

    def queue_pages(self, subject: str) -> QueuePages:
        """The queue pages of one SKU (see :mod:`streams.worker.ledgers`)."""
        return self.ledgers.of(SKU, subject)

    def all(self) -> tuple[StateStore[Any], ...]:
        return (
            self.orders,
            self.clocks,
            self.skus,
            self.carriers,
            self.merchants,
            *self.ledgers.stores(),
        )

    def forget(self) -> None:
        """Partitions moved: another worker may have changed any key meanwhile."""
        for store in self.all():
            store.forget()
        self.ledgers.forget()

    def order_dues(self) -> list[tuple[str, datetime | None]]:
        """Every stored order's next due time as stored with it (None: stored by a writer of
        another policy or release; its state must be read)."""
        due = self.due
        return [
            (order_id, None if due is None else due.read(index))
            for order_id, index in self.orders.indexed()
        ]


class DueIndex:
    """An order's next due time (:func:`streams.core.order.next_due`), stored beside its state:
    4 bytes of the policy's digest, then the time in microseconds (8 bytes, big-endian). A
    time stored under another policy is not read: the state is."""

    _FORMAT = struct.Struct(">4sq")

    def __init__(self, policy: Policy, digest: bytes) -> None:
        self.policy = policy
        self.digest = digest[:4].ljust(4, b"\0")

    def index(self, state: OrderState) -> bytes:
        due = order.next_due(state, self.policy)
        return self._FORMAT.pack(self.digest, wire.to_micros(due))

    def read(self, index: bytes) -> datetime | None:
        if len(index) != self._FORMAT.size:
            return None
        digest, micros = self._FORMAT.unpack(index)
        return wire.from_micros(micros) if digest == self.digest else None


def pack_clock(clock: PartitionClock) -> bytes:
    """A clock as the clocks table keeps it (its value and each input's latest event)."""
    return json.dumps(
        {"value": wire.to_micros(clock.value)}
        | {"seen": {topic: wire.to_micros(at) for topic, at in clock.seen.items()}}
    ).encode()


def unpack_clock(data: bytes) -> PartitionClock:
    stored = json.loads(data)
    seen = {topic: wire.from_micros(at) for topic, at in stored["seen"].items()}
    return PartitionClock(wire.from_micros(stored["value"]), seen)
