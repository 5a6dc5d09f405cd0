"""The in-memory engine: replay's driver of the partition processor, on one event-time clock.

This is how ``orderwatch replay`` (and the tests) run the core: one
:class:`~streams.core.processor.PartitionProcessor` built for replay
(:meth:`~streams.core.processor.PartitionProcessor.for_replay`) that owns every order, SKU,
carrier and merchant (dictionaries), with one clock for the whole stream
(:class:`~streams.core.timekeeping.StreamTime`) and itself as the aggregate partition for every
fact. It reads no clock and does no I/O: time moves only through :meth:`Engine.process` (event
time: the largest ``occurred_at`` seen minus the allowed lateness) and :meth:`Engine.advance_to`.

Aggregates decide a moment once the clock has passed it (strictly: an event at the clock's own
time may still come), and :meth:`Engine.advance_to` closes its moment too, as the worker's
``advance-clock`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from streams.core import carrier, merchant, order, sku
from streams.core.aggregates import DictLedgers, DictStore
from streams.core.events import InventoryUpdated, OrderEvent
from streams.core.facts import Fact
from streams.core.policy import Policy
from streams.core.processor import (
    Actions,
    ClockRead,
    OrderRead,
    Output,
    PartitionProcessor,
    StockRead,
)
from streams.core.timekeeping import STREAM, StreamTime

__all__ = ["Engine", "EngineStats", "Output"]


@dataclass(slots=True)
class EngineStats:
    """Counts an operator wants after a run."""

    events: int = 0
    duplicates: int = 0


class Engine:
    """Runs the pure core over a stream of valid events, in event time."""

    def __init__(self, policy: Policy, *, relay: Callable[[Fact], Fact] | None = None) -> None:
        self.policy = policy
        self.orders: DictStore[order.OrderState] = DictStore()
        self.skus: DictStore[sku.SkuState] = DictStore()
        self.carriers: DictStore[carrier.CarrierState] = DictStore()
        self.merchants: DictStore[merchant.MerchantState] = DictStore()
        self.ledgers = DictLedgers()
        self.pages = self.ledgers.pages
        self.queue_pages = self.ledgers.queue_pages
        self.stats = EngineStats()
        self._time = StreamTime(policy.allowed_lateness)
        self._processor: PartitionProcessor[int, None, None] = PartitionProcessor.for_replay(
            policy, orders=self.orders, aggregates=self, time=self._time, relay=relay
        )

    @property
    def clock(self) -> datetime:
        """The event-time clock; the Unix epoch before any event was seen."""
        return self._time.clock()

    @property
    def max_seen(self) -> datetime | None:
        """The largest ``occurred_at`` seen so far."""
        return self._time.latest

    def process(self, event: OrderEvent | InventoryUpdated) -> list[Output]:
        """Move the clock to the event (firing what became due), then apply it (any valid
        event: replay refuses one too far ahead before it gets here)."""
        read: StockRead[int] | OrderRead[int] = (
            StockRead(0, event)
            if isinstance(event, InventoryUpdated)
            else OrderRead(0, STREAM, event)
        )
        actions = self._processor.handle((read,), None)
        self.stats.events += 1
        self.stats.duplicates += len(actions.duplicates)
        return _outputs(actions)

    def advance_to(self, moment: datetime) -> list[Output]:
        """Move the clock forward to ``moment`` (never back) and fire what is due by then."""
        return _outputs(self._processor.handle((ClockRead(0, moment),), None))


def _outputs(actions: Actions[int, None]) -> list[Output]:
    """The outputs; a failure is the core's defect, raised as replay always raised it."""
    if actions.failed:
        raise actions.failed[0][1]
    return actions.outputs
