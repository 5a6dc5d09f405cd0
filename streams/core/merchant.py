"""The merchant processor (key ``merchant_id``): ``wish.store_health``.

A rolling window of the store's orders by placement time. Once the store has at least
``min_orders`` in it, each measure of the rule (refund rate, late confirmed fulfillment rate,
valid tracking rate, pre-fulfillment cancellation rate) is compared with its threshold; a
crossing issues ``STORE_HEALTH_AT_RISK`` with the measure's severity. Counters are kept
incrementally, so each fact costs O(log n) however large the store.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from streams.core.facts import OrderHealth
from streams.core.outputs import RecommendationIssued
from streams.core.policy import Policy
from streams.core.recommend import make_aggregate_recommendation
from streams.core.window import Crossing

__all__ = ["Counts", "MerchantState", "MerchantStep", "apply_health", "next_check", "tick"]


@dataclass(slots=True)
class _Order:
    placed_at: datetime
    fact: OrderHealth
    scan_checked: bool = False


@dataclass(slots=True)
class Counts:
    """Numerators and denominators of the store-health measures over the window."""

    orders: int = 0
    refunded: int = 0
    tracked: int = 0
    late_confirmed: int = 0
    cancelled_before_tracking: int = 0
    scan_checked: int = 0
    scan_checked_and_scanned: int = 0

    def add(self, order: _Order, sign: int) -> None:
        fact = order.fact
        self.orders += sign
        self.refunded += sign * fact.refunded
        self.tracked += sign * (fact.tracked_at is not None)
        self.late_confirmed += sign * fact.late_confirmed
        self.cancelled_before_tracking += sign * fact.cancelled_before_tracking
        self.scan_checked += sign * order.scan_checked
        self.scan_checked_and_scanned += sign * (order.scan_checked and fact.scanned)

    def key(self) -> tuple[int, ...]:
        """Everything the measures read: equal keys give equal decisions."""
        return (
            self.orders,
            self.refunded,
            self.tracked,
            self.late_confirmed,
            self.cancelled_before_tracking,
            self.scan_checked,
            self.scan_checked_and_scanned,
        )

    def ratios(self) -> dict[str, tuple[int, int]]:
        """Each metric as (numerator, denominator)."""
        return {
            "refund_rate": (self.refunded, self.orders),
            "late_confirmed_fulfillment_rate": (self.late_confirmed, self.tracked),
            "valid_tracking_rate": (self.scan_checked_and_scanned, self.scan_checked),
            "pre_fulfillment_cancellation_rate": (self.cancelled_before_tracking, self.orders),
        }


@dataclass(slots=True)
class MerchantState:
    """The store's orders inside the window, their counts, and each measure's crossings."""

    merchant_id: str
    orders: dict[str, _Order] = field(default_factory=dict)
    by_placement: list[tuple[datetime, str]] = field(default_factory=list)
    by_scan_check: list[tuple[datetime, str]] = field(default_factory=list)
    counts: Counts = field(default_factory=Counts)
    crossings: dict[str, Crossing] = field(default_factory=dict)
    evaluated: tuple[int, ...] = ()


class MerchantStep(NamedTuple):
    """The merchant's state after a call, and what it issued."""

    state: MerchantState
    outputs: list[RecommendationIssued]


def apply_health(
    state: MerchantState | None, fact: OrderHealth, now: datetime, policy: Policy
) -> MerchantStep:
    """Replace the order's snapshot, move the window to ``now``, and check every measure."""
    if state is None:
        state = MerchantState(merchant_id=fact.merchant_id)
    horizon = now - policy.store_window
    previous = state.orders.pop(fact.order_id, None)
    if previous is not None:
        state.counts.add(previous, -1)
    if fact.placed_at > horizon:
        order = _Order(placed_at=fact.placed_at, fact=fact)
        if fact.tracked_at is not None:
            check_at = fact.tracked_at + policy.tracking_scan
            if check_at <= now:
                order.scan_checked = True
            elif previous is None or previous.fact.tracked_at != fact.tracked_at:
                heapq.heappush(state.by_scan_check, (check_at, fact.order_id))
        state.orders[fact.order_id] = order
        state.counts.add(order, 1)
        if previous is None:
            heapq.heappush(state.by_placement, (fact.placed_at, fact.order_id))
    _advance(state, now, horizon, policy)
    return MerchantStep(state, _evaluate(state, now, policy))


def next_check(state: MerchantState, policy: Policy) -> datetime | None:
    """When time alone changes a measure: an order leaves the window or its scan comes due."""
    times = []
    if state.by_placement:
        times.append(state.by_placement[0][0] + policy.store_window)
    if state.by_scan_check:
        times.append(state.by_scan_check[0][0])
    return min(times, default=None)


def tick(state: MerchantState, now: datetime, policy: Policy) -> MerchantStep:
    """Move the window to ``now`` without a new fact, and check every measure."""
    _advance(state, now, now - policy.store_window, policy)
    return MerchantStep(state, _evaluate(state, now, policy))


def _advance(state: MerchantState, now: datetime, horizon: datetime, policy: Policy) -> None:
    """Drop orders placed before the window; count orders whose scan deadline has passed."""
    while state.by_placement and state.by_placement[0][0] <= horizon:
        placed_at, order_id = heapq.heappop(state.by_placement)
        order = state.orders.get(order_id)
        if order is not None and order.placed_at == placed_at:
            state.counts.add(state.orders.pop(order_id), -1)
    while state.by_scan_check and state.by_scan_check[0][0] <= now:
        check_at, order_id = heapq.heappop(state.by_scan_check)
        order = state.orders.get(order_id)
        tracked_at = order.fact.tracked_at if order is not None else None
        if order is None or order.scan_checked or tracked_at is None:
            continue
        if tracked_at + policy.tracking_scan == check_at:
            state.counts.add(order, -1)
            order.scan_checked = True
            state.counts.add(order, 1)


def _evaluate(state: MerchantState, now: datetime, policy: Policy) -> list[RecommendationIssued]:
    counts = state.counts
    key = counts.key()
    if key == state.evaluated:
        return []  # nothing a measure reads has changed since the last check
    state.evaluated = key
    outputs: list[RecommendationIssued] = []
    ratios = counts.ratios()
    enough = counts.orders >= policy.store_min_orders
    crossings = state.crossings
    for check in policy.store_checks:
        numerator, denominator = ratios[check.metric]
        over = enough and denominator > 0 and check.breached(numerator, denominator)
        crossing = crossings.get(check.name)
        if crossing is None:
            crossing = crossings[check.name] = Crossing()
        if over == crossing.above or not crossing.update(over):
            continue
        value = Decimal(numerator) / denominator
        outputs.append(
            make_aggregate_recommendation(
                policy,
                reason="STORE_HEALTH_AT_RISK",
                scope="merchant",
                subject=state.merchant_id,
                merchant_id=state.merchant_id,
                crossing=crossing.count,
                now=now,
                measure=check.name,
                severity=check.severity,
                evidence={
                    "measure": check.name,
                    "metric": check.metric,
                    "value": str(value.quantize(Decimal("0.0001"))),
                    "comparison": check.comparison,
                    "threshold": str(check.threshold),
                    "numerator": numerator,
                    "denominator": denominator,
                    "orders_in_window": counts.orders,
                    "min_orders": policy.store_min_orders,
                    "window_days": policy.store_window.total_seconds() / 86400,
                },
            )
        )
    return outputs
