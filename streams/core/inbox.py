"""An aggregate partition's inbox: inputs wait until every source that sends them has passed.

Every partition of the order topics and of ``inventory`` is a *source* of aggregate inputs and
announces its clock (a watermark: it will send nothing earlier). An aggregate partition applies
its waiting inputs, in :mod:`event-time order <streams.core.sequencer>`, up to the smallest
watermark of the sources they depend on: SKU inputs on every order and inventory partition,
carrier and merchant inputs on every order partition. Pure: where the inputs and watermarks are
kept between runs is the driver's (the worker's inbox table, :mod:`streams.worker.inbox_table`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Generic, TypeVar

from streams.core.events import InventoryUpdated
from streams.core.facts import Demand, SkuComplaint
from streams.core.sequencer import Item, Sequencer, position

__all__ = [
    "ALL",
    "FACTS",
    "SKU",
    "AggregateInbox",
    "group_of",
    "inventory_source",
    "order_source",
]

SKU = "sku"
FACTS = "facts"
#: The one group of a single-clock inbox (replay).
ALL = "all"

P = TypeVar("P")


def order_source(partition: int) -> str:
    return f"o{partition}"


def inventory_source(partition: int) -> str:
    return f"i{partition}"


def group_of(item: Item) -> str:
    """SKU inputs wait for inventory too; carrier and merchant inputs only for orders."""
    return SKU if isinstance(item, InventoryUpdated | Demand | SkuComplaint) else FACTS


class AggregateInbox(Generic[P]):
    """Waiting inputs (as payloads ``P``) by group, and the sources' watermarks.

    Partitioned (the worker): SKU inputs wait for every order and inventory partition, carrier
    and merchant inputs for every order partition. :meth:`single_clock` (replay): one group,
    one source, so every input waits in one sequence.
    """

    def __init__(self, partitions: int) -> None:
        orders = {order_source(p) for p in range(partitions)}
        inventory = {inventory_source(p) for p in range(partitions)}
        self._required: dict[str, frozenset[str]] = {
            SKU: frozenset(orders | inventory),
            FACTS: frozenset(orders),
        }
        self._sources = frozenset(orders | inventory)
        self._group_of = group_of
        #: The group carrier and merchant checks wait in.
        self.check_group = FACTS
        self.sequencers: dict[str, Sequencer[P]] = {SKU: Sequencer(), FACTS: Sequencer()}
        self.watermarks: dict[str, datetime] = {}
        self._boundaries: dict[str, datetime | None] = {}

    @classmethod
    def single_clock(cls) -> AggregateInbox[P]:
        """One sequence of inputs behind one clock: partition 0's orders source."""
        inbox: AggregateInbox[P] = cls(1)
        inbox._required = {ALL: frozenset({order_source(0)})}
        inbox._sources = inbox._required[ALL]
        inbox._group_of = _all
        inbox.check_group = ALL
        inbox.sequencers = {ALL: Sequencer()}
        return inbox

    @property
    def sources(self) -> frozenset[str]:
        """Every source some group waits for."""
        return self._sources

    def add(self, item: Item, payload: P) -> str:
        """Queue an input in its place; the group it went to."""
        group = self._group_of(item)
        self.sequencers[group].add(position(item), payload)
        return group

    def observe(self, source: str, watermark: datetime) -> bool:
        """A source's announced watermark; True when it moved forward."""
        known = self.watermarks.get(source)
        if known is not None and watermark <= known:
            return False
        self.watermarks[source] = watermark
        self._boundaries.clear()
        return True

    def boundary(self, group: str) -> datetime | None:
        """The smallest watermark of the group's sources; None until every one has spoken."""
        try:
            return self._boundaries[group]
        except KeyError:
            pass
        watermarks = self.watermarks
        required = self._required[group]
        found = (
            min(watermarks[source] for source in required)
            if required <= watermarks.keys()
            else None
        )
        self._boundaries[group] = found
        return found


def _all(item: Item) -> str:
    return ALL
