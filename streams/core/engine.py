"""The in-memory engine: every processor of the core in one process, on one event-time clock.

This is how ``orderwatch replay`` (and the tests) run the core: orders, SKUs, carriers and
merchants in dictionaries, internal facts handed over in memory, deadlines in a heap ordered by
due time. It reads no clock and does no I/O: time moves only through :meth:`Engine.process`
(event time: the largest ``occurred_at`` seen minus the allowed lateness) and
:meth:`Engine.advance_to`.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from streams.core import carrier, merchant, order, sku
from streams.core.events import InventoryUpdated, OrderEvent
from streams.core.facts import Demand, Fact, OrderHealth, Shipment, SkuComplaint
from streams.core.outputs import DeadlineBreached, RecommendationIssued
from streams.core.policy import Policy
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
        self.orders: dict[str, order.OrderState] = {}
        self.skus: dict[str, sku.SkuState] = {}
        self.carriers: dict[str, carrier.CarrierState] = {}
        self.merchants: dict[str, merchant.MerchantState] = {}
        self.stats = EngineStats()
        self._max_seen: datetime | None = None
        self._clock: datetime | None = None
        self._heap: list[tuple[datetime, str]] = []
        self._scheduled: dict[str, datetime] = {}
        # Merchants whose store health changes with time alone, by when to check them.
        self._merchant_heap: list[tuple[datetime, str]] = []
        self._merchant_scheduled: dict[str, datetime] = {}
        # Stock levels and demand changes wait here until the clock reaches their event time,
        # so each SKU sees them in event-time order whatever order they arrived in.
        self._sku_inbox: list[tuple[datetime, int, int, InventoryUpdated | Demand]] = []
        self._sequence = 0

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
            self._to_sku_inbox(event.occurred_at, 0, event)
        else:
            order_id = event.order_id
            result = order.apply(self.orders.get(order_id), event, self.clock, self.policy)
            if result.duplicate:
                self.stats.duplicates += 1
            self._settle(order_id, result, outputs)
        self._release_sku_inbox(outputs)
        return outputs

    def advance_to(self, moment: datetime) -> list[Output]:
        """Move the clock forward to ``moment`` (never back) and fire what is due."""
        outputs: list[Output] = []
        self._advance(moment, outputs)
        self._release_sku_inbox(outputs)
        return outputs

    # -- internals ------------------------------------------------------------------------

    def _advance(self, moment: datetime, outputs: list[Output]) -> None:
        if self._clock is not None and moment <= self._clock:
            return
        self._clock = moment
        heap = self._heap
        while heap and heap[0][0] <= moment:
            due_at, order_id = heapq.heappop(heap)
            if self._scheduled.get(order_id) != due_at:
                continue  # superseded by an earlier schedule
            del self._scheduled[order_id]
            state = self.orders.get(order_id)
            if state is None:
                continue
            self._settle(order_id, order.fire_due(state, moment, self.policy), outputs)
        merchants = self._merchant_heap
        while merchants and merchants[0][0] <= moment:
            due_at, merchant_id = heapq.heappop(merchants)
            if self._merchant_scheduled.get(merchant_id) != due_at:
                continue
            del self._merchant_scheduled[merchant_id]
            step = merchant.tick(self.merchants[merchant_id], moment, self.policy)
            outputs.extend(step.outputs)
            self._schedule_merchant(step.state)

    def _settle(self, order_id: str, result: order.Step, outputs: list[Output]) -> None:
        """Keep or drop the order's state, pass its facts on, and schedule its next check."""
        outputs.extend(result.outputs)
        if result.state is None:
            self.orders.pop(order_id, None)
            self._scheduled.pop(order_id, None)
        else:
            self.orders[order_id] = result.state
            due_at = result.next_due
            scheduled = self._scheduled.get(order_id)
            if due_at is not None and (scheduled is None or due_at < scheduled):
                self._scheduled[order_id] = due_at
                heapq.heappush(self._heap, (due_at, order_id))
        for fact in result.facts:
            outputs.extend(self._route(fact))

    def _schedule_merchant(self, state: merchant.MerchantState) -> None:
        due_at = merchant.next_check(state, self.policy)
        scheduled = self._merchant_scheduled.get(state.merchant_id)
        if due_at is not None and (scheduled is None or due_at < scheduled):
            self._merchant_scheduled[state.merchant_id] = due_at
            heapq.heappush(self._merchant_heap, (due_at, state.merchant_id))

    def _to_sku_inbox(self, at: datetime, rank: int, item: InventoryUpdated | Demand) -> None:
        self._sequence += 1
        heapq.heappush(self._sku_inbox, (at, rank, self._sequence, item))

    def _release_sku_inbox(self, outputs: list[Output]) -> None:
        """Apply, in event-time order, the stock and demand changes the clock has reached.

        At equal times a stock level goes first, then demand that ends, then demand that opens.
        """
        inbox, now, policy = self._sku_inbox, self.clock, self.policy
        while inbox and inbox[0][0] <= now:
            item = heapq.heappop(inbox)[3]
            if isinstance(item, InventoryUpdated):
                key = f"{item.merchant_id}/{item.sku}"
                outputs.extend(_update(self.skus, key, sku.apply_inventory, item, now, policy))
            else:
                outputs.extend(
                    _update(self.skus, item.subject, sku.apply_demand, item, now, policy)
                )

    def _route(self, fact: Fact) -> list[RecommendationIssued]:
        now, policy = self.clock, self.policy
        if isinstance(fact, Demand):
            self._to_sku_inbox(fact.at, 2 if fact.open else 1, fact)
            return []
        if isinstance(fact, SkuComplaint):
            return _update(self.skus, fact.subject, sku.apply_complaint, fact, now, policy)
        if isinstance(fact, Shipment):
            return _update(self.carriers, fact.subject, carrier.apply_shipment, fact, now, policy)
        if isinstance(fact, OrderHealth):
            step = merchant.apply_health(self.merchants.get(fact.subject), fact, now, policy)
            self.merchants[fact.subject] = step.state
            self._schedule_merchant(step.state)
            return step.outputs
        raise TypeError(f"unknown fact {fact!r}")


S = TypeVar("S")
F = TypeVar("F")


def _update(
    table: dict[str, S],
    key: str,
    apply: Callable[[S | None, F, datetime, Policy], tuple[S, list[RecommendationIssued]]],
    fact: F,
    now: datetime,
    policy: Policy,
) -> list[RecommendationIssued]:
    state, outputs = apply(table.get(key), fact, now, policy)
    table[key] = state
    return outputs
