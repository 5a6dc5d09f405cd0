"""The worker's partitions: one core processor each, built from the tables when assigned.

Each partition this worker owns has a :class:`~streams.core.processor.PartitionProcessor` over
the worker's stores: its orders in the orders table, its aggregates in theirs, its waiting
aggregate inputs in the inbox table (:class:`~streams.worker.inbox_table.TableInbox`), its clocks
(event time) in the clocks table. :meth:`Partitions.rebuild` makes them again after every
assignment,
from what the tables hold; the deadline index and the pending checks are derived, not stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import TypeVar

from streams.core import carrier, merchant
from streams.core.aggregates import CARRIER, MERCHANT
from streams.core.event_clock import PartitionClock
from streams.core.policy import Policy
from streams.core.processor import PartitionProcessor
from streams.core.timekeeping import EventTime, Timekeeper, WallTime
from streams.worker.inbox_table import Ref, TableInbox
from streams.worker.stores import Stores
from streams.worker.tables import StateStore

__all__ = ["Partitions", "Processor", "clock_key"]

S = TypeVar("S")
Processor = PartitionProcessor[Ref, bytes, datetime]


def clock_key(kind: str, partition: int, partitions: int, route: Callable[[str], int]) -> str:
    """A clocks-table key the default partitioner sends to ``partition``."""
    for attempt in range(100_000):
        key = f"{kind}{partition}-{attempt}"
        if route(key) == partition:
            return key
    raise RuntimeError(f"no key found for partition {partition}")  # pragma: no cover


class Partitions:
    """The processors of the partitions this worker owns, by partition."""

    def __init__(
        self,
        policy: Policy,
        *,
        partitions: int,
        event_time: bool,
        inputs: Iterable[str],
        route: Callable[[str], int],
        stores: Stores,
        idle_slack: timedelta = timedelta(days=1),
        arrival_grace: timedelta = timedelta(seconds=5),
        quiet_after: timedelta = timedelta(minutes=1),
    ) -> None:
        self.quiet_after = quiet_after
        self.policy = policy
        self.idle_slack = idle_slack
        self.arrival_grace = arrival_grace
        self.count = partitions
        self.event_time = event_time
        self.inputs = frozenset(inputs)
        self.route = route
        self.stores = stores
        self.processors: dict[int, Processor] = {}
        self._orders_clock_keys = [
            clock_key("clock-", p, partitions, route) for p in range(partitions)
        ]
        self._stock_clock_keys = [
            clock_key("inventory-clock-", p, partitions, route) for p in range(partitions)
        ]

    def __iter__(self) -> Iterator[tuple[int, Processor]]:
        """(partition, processor) of each owned partition (a copy: a rebalance may replace
        them while an iteration awaits)."""
        return iter(list(self.processors.items()))

    def get(self, partition: int) -> Processor:
        """The partition's processor (a fresh one if it was not assigned yet)."""
        processor = self.processors.get(partition)
        if processor is None:
            processor = self.processors[partition] = self._make(partition, None, None)
        return processor

    def open_orders(self) -> int:
        """Orders with a deadline ahead, on the partitions this worker owns."""
        return sum(len(p.orders) for p in self.processors.values())

    def clocks(self) -> dict[int, PartitionClock]:
        """Each owned partition's orders clock (event time; empty on the wall clock)."""
        return {
            partition: processor.time.orders
            for partition, processor in self.processors.items()
            if isinstance(processor.time, EventTime)
        }

    def order_clocks(self) -> list[datetime]:
        """Each owned partition's orders clock, on either clock."""
        return [
            processor.time.orders.value
            for processor in self.processors.values()
            if isinstance(processor.time, EventTime | WallTime)
        ]

    def keep_clocks(self, partition: int, processor: Processor) -> None:
        """Write the partition's clocks to their table when they moved."""
        time = processor.time
        if isinstance(time, EventTime | WallTime) and time.moved:
            clocks = self.stores.clocks
            clocks.put(self._orders_clock_keys[partition], time.orders)
            clocks.put(self._stock_clock_keys[partition], time.stock)
            time.settled()

    def rebuild(self, owned: set[int]) -> None:
        """Processors for the ``owned`` partitions, from what the tables hold."""
        stores = self.stores
        self.processors = {}
        for partition in owned:
            orders = stores.clocks.get(self._orders_clock_keys[partition])
            stock = stores.clocks.get(self._stock_clock_keys[partition])
            self.processors[partition] = self._make(partition, orders, stock)
        route = self.route
        by_partition: dict[int, list[tuple[str, datetime | None]]] = {}
        for order_id, due in stores.order_dues():
            by_partition.setdefault(route(order_id), []).append((order_id, due))
        inbox_keys = list(stores.inbox_table.keys())
        for partition, processor in self.processors.items():
            unindexed = []
            for order_id, due in by_partition.get(partition, ()):
                if due is None:
                    unindexed.append(order_id)
                else:
                    processor.restore_due(order_id, due)
            processor.restore_orders(unindexed)
            keeper = processor.keeper
            assert isinstance(keeper, TableInbox)
            waiting, watermarks = keeper.restore(inbox_keys)
            for key, item in waiting:
                processor.restore_waiting(item, key)
            for source, watermark in watermarks.items():
                processor.restore_watermark(source, watermark)
        self._schedule_checks(CARRIER, stores.carriers, carrier.next_check)
        self._schedule_checks(MERCHANT, stores.merchants, merchant.next_check)

    def _make(
        self, partition: int, orders: PartitionClock | None, stock: PartitionClock | None
    ) -> Processor:
        lateness = self.policy.allowed_lateness
        time: Timekeeper[datetime] = (
            EventTime(lateness, self.inputs, orders=orders, stock=stock)
            if self.event_time
            else WallTime(
                lateness,
                self.inputs,
                slack=self.idle_slack,
                grace=self.arrival_grace,
                quiet=self.quiet_after,
                orders=orders,
                stock=stock,
            )
        )
        return PartitionProcessor.for_worker(
            partition,
            self.policy,
            partitions=self.count,
            orders=self.stores.orders,
            aggregates=self.stores,
            time=time,
            keeper=TableInbox(partition, self.stores.inbox_table),
            route=self.route,
        )

    def _schedule_checks(
        self, kind: str, store: StateStore[S], next_check: Callable[[S, Policy], datetime | None]
    ) -> None:
        for key in store.keys():  # noqa: SIM118 - a method of StateStore, not a dict
            processor = self.processors.get(self.route(key))
            state = store.get(key) if processor is not None else None
            if processor is not None and state is not None:
                processor.schedule_check(kind, key, next_check(state, self.policy))
