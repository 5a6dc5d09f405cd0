"""The worker's tables as the core's stores.

Orders, SKUs, carriers and merchants are :class:`~streams.tables.StateStore` s (decoded states
over a changelogged table, written once per batch); the partitions' clocks too; the aggregate
inbox is a raw :class:`~streams.tables.DurableTable` (:mod:`streams.inbox` reads and writes it).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from streams import wire
from streams.core import codec
from streams.core.clock import PartitionClock
from streams.tables import DurableTable, StateStore

__all__ = ["Stores", "pack_clock", "unpack_clock"]


class Stores:
    """The worker's tables, as the core's stores (orders, SKUs, carriers, merchants), plus the
    partitions' clocks and the aggregate inbox."""

    def __init__(self, table: Callable[..., DurableTable]) -> None:
        self.orders = StateStore(table("orders"), codec.encode_order, codec.decode_order)
        # Written at most once a tick (the watermark timer) and before a rebalance: a clock
        # restored a little behind only re-fires nothing (what fired is in the orders' state)
        # and announces less.
        self.clocks = StateStore(table("clocks"), pack_clock, unpack_clock)
        self.skus = StateStore(table("skus"), codec.encode_sku, codec.decode_sku)
        self.carriers = StateStore(table("carriers"), codec.encode_carrier, codec.decode_carrier)
        self.merchants = StateStore(
            table("merchants"), codec.encode_merchant, codec.decode_merchant
        )
        # Keys start with the partition they belong to, which is their changelog partition.
        self.inbox_table = table("inbox", by_key=False)

    def all(self) -> tuple[StateStore[Any], ...]:
        return (self.orders, self.clocks, self.skus, self.carriers, self.merchants)

    def forget(self) -> None:
        """Partitions moved: another worker may have changed any key meanwhile."""
        for store in self.all():
            store.forget()


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
