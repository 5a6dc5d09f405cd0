"""The in-memory engine: every processor of the core in one process, on one event-time clock.

This is how ``orderwatch replay`` (and the tests) run the core: orders, SKUs, carriers and
merchants in dictionaries, deadlines in a heap ordered by due time, aggregate inputs in a
:class:`~streams.core.sequencer.Sequencer`. It reads no clock and does no I/O: time moves only
through :meth:`Engine.process` (event time: the largest ``occurred_at`` seen minus the allowed
lateness) and :meth:`Engine.advance_to`.

Aggregates decide a moment once the clock has passed it (strictly: an event at the clock's own
time may still come), and :meth:`Engine.advance_to` closes its moment too, as the worker's
``advance-clock`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from streams.core import carrier, merchant, order, sku
from streams.core.aggregates import DictStore, release
from streams.core.events import InventoryUpdated, OrderEvent
from streams.core.outputs import DeadlineBreached, RecommendationIssued
from streams.core.partition import OrderPartition
from streams.core.policy import Policy
from streams.core.sequencer import Item, Sequencer, closing, position
from streams.core.timeutil import EPOCH

__all__ = ["Engine", "EngineStats", "Output"]

Output = DeadlineBreached | RecommendationIssued


@dataclass(slots=True)
class EngineStats:
    """Counts an operator wants after a run."""

    events: int = 0
    duplicates: int = 0


class Engine:
    """Runs the pure core over a stream of valid events, in event time."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.orders: DictStore[order.OrderState] = DictStore()
        self._orders = OrderPartition(policy, self.orders)
        self.skus: DictStore[sku.SkuState] = DictStore()
        self.carriers: DictStore[carrier.CarrierState] = DictStore()
        self.merchants: DictStore[merchant.MerchantState] = DictStore()
        self.stats = EngineStats()
        self._max_seen: datetime | None = None
        self._clock: datetime | None = None
        self._aggregate_inputs: Sequencer[Item] = Sequencer()

    @property
    def clock(self) -> datetime:
        """The event-time clock; the Unix epoch before any event was seen."""
        return self._clock or EPOCH

    @property
    def max_seen(self) -> datetime | None:
        """The largest ``occurred_at`` seen so far."""
        return self._max_seen

    def process(self, event: OrderEvent | InventoryUpdated) -> list[Output]:
        """Move the clock to the event (firing what became due), then apply it."""
        self.stats.events += 1
        outputs: list[Output] = []
        occurred_at = event.occurred_at
        if self._max_seen is None or occurred_at > self._max_seen:
            self._max_seen = occurred_at
            self._advance(occurred_at - self.policy.allowed_lateness, outputs)
        if isinstance(event, InventoryUpdated):
            self._queue(event)
        else:
            step = self._orders.apply(event, self.clock)
            if step.duplicate:
                self.stats.duplicates += 1
            self._settle(step, outputs)
        self._release(self.clock, outputs)
        return outputs

    def advance_to(self, moment: datetime) -> list[Output]:
        """Move the clock forward to ``moment`` (never back) and fire what is due by then."""
        outputs: list[Output] = []
        self._advance(moment, outputs)
        self._release(closing(max(moment, self.clock)), outputs)
        return outputs

    # -- internals ------------------------------------------------------------------------

    def _advance(self, moment: datetime, outputs: list[Output]) -> None:
        if self._clock is not None and moment <= self._clock:
            return
        self._clock = moment
        for step in self._orders.fire(moment):
            self._settle(step, outputs)

    def _settle(self, step: order.Step, outputs: list[Output]) -> None:
        """Collect a kept order step's outputs and queue its facts for the aggregates."""
        outputs.extend(step.outputs)
        for fact in step.facts:
            self._queue(fact)

    def _queue(self, item: Item) -> None:
        """Hand a stock level or an order's fact to the aggregates, in event-time order."""
        self._aggregate_inputs.add(position(item), item)

    def _release(self, boundary: datetime, outputs: list[Output]) -> None:
        """Apply, in event-time order, the aggregate inputs and checks before ``boundary``."""
        if not self._aggregate_inputs.waiting_before(boundary):
            return  # the common case: nothing is due yet
        for _, produced in release(self._aggregate_inputs, boundary, self, self.policy, _item):
            outputs.extend(produced)


def _item(item: Item) -> Item:
    return item
