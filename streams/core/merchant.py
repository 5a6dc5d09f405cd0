"""The merchant processor (key ``merchant_id``): ``wish.store_health``.

A rolling window of the store's orders by placement time. Once the store has at least
``min_orders`` in it, each measure of the rule (refund rate, late confirmed fulfillment rate,
valid tracking rate, pre-fulfillment cancellation rate) is compared with its threshold; a
crossing issues ``STORE_HEALTH_AT_RISK`` with the measure's severity.

Each order is known as a timeline (:class:`~streams.core.facts.OrderHealth`) and counted as of
the merchant's clock, which moves with the facts' event times and with :func:`tick`. The state
is the head of a :class:`~streams.core.ledger.Ledger`: the counts and a short table of pages;
the orders' timelines and their scheduled changes are in the merchant's
:class:`~streams.core.ledger.Pages`, so the state's size does not grow with the store's.

:func:`apply_health` and :func:`tick` update the state (and its pages) they are given in place
(a new state when given None) and return it in the step; :func:`next_check` only reads it. The
skeleton is the carrier's too (:mod:`streams.core.timeline_aggregate`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from types import MappingProxyType
from typing import Final, TypeAlias

from streams.core.facts import OrderHealth, merge_health
from streams.core.ledger import Ledger, Pages
from streams.core.outputs import RecommendationIssued
from streams.core.policy import Policy
from streams.core.recommend import make_aggregate_recommendation, percent
from streams.core.timeline_aggregate import AggregateStep, TimelineAggregate
from streams.core.window import Crossing, View

__all__ = ["MerchantState", "MerchantStep", "apply_health", "next_check", "tick"]

# The counts each order contributes, in this order.
ORDERS, REFUNDED, TRACKED, LATE_CONFIRMED, CANCELLED_BEFORE_TRACKING = range(5)
SCAN_CHECKED, SCAN_VALID = 5, 6
_WIDTH = 7


def _new_orders() -> Ledger[OrderHealth]:
    return Ledger(_WIDTH)


@dataclass(slots=True)
class MerchantState:
    """The store's orders inside the window, counted as of ``orders.now``, and crossings."""

    merchant_id: str
    orders: Ledger[OrderHealth] = field(default_factory=_new_orders)
    crossings: dict[str, Crossing] = field(default_factory=dict)
    evaluated: tuple[int, ...] = ()


MerchantStep: TypeAlias = AggregateStep[MerchantState]
"""The merchant's state after a call, and what it issued."""


def view_order(
    window: timedelta, scan: timedelta, order: OrderHealth, now: datetime
) -> tuple[tuple[int, ...] | None, datetime | None]:
    """One order's counts as of ``now`` (None outside the window) and its next change: the
    earliest moment of its timeline strictly between ``now`` and when it leaves the window."""
    placed_at = order.placed_at
    leaves_at = placed_at + window
    if now >= leaves_at:
        return None, None
    if now < placed_at:
        return None, placed_at
    upcoming = leaves_at
    tracked_at = order.tracked_at
    if tracked_at is not None:
        check_at = tracked_at + scan
        if now < tracked_at < upcoming:
            upcoming = tracked_at
        if now < check_at < upcoming:
            upcoming = check_at
        tracked = 1 if tracked_at <= now else 0
        scan_checked = 1 if check_at <= now else 0
        scanned_at = order.scanned_at
        scan_valid = scan_checked if scanned_at is not None and scanned_at <= check_at else 0
    else:
        tracked = scan_checked = scan_valid = 0
    refunded = 0
    refunded_at = order.refunded_at
    if refunded_at is not None:
        if refunded_at <= now:
            refunded = 1
        elif refunded_at < upcoming:
            upcoming = refunded_at
    late = 0
    late_confirmed_at = order.late_confirmed_at
    if late_confirmed_at is not None:
        if late_confirmed_at <= now:
            late = 1
        elif late_confirmed_at < upcoming:
            upcoming = late_confirmed_at
    cancelled = 0
    cancelled_at = order.merchant_cancelled_at
    if cancelled_at is not None:
        if cancelled_at <= now:
            if tracked_at is None or cancelled_at < tracked_at:
                cancelled = 1
        elif cancelled_at < upcoming:
            upcoming = cancelled_at
    return (1, refunded, tracked, late, cancelled, scan_checked, scan_valid), upcoming


def _view(state: MerchantState, policy: Policy) -> View[OrderHealth]:
    return partial(view_order, policy.store_window, policy.tracking_scan)


def _orders(state: MerchantState) -> Ledger[OrderHealth]:
    return state.orders


def apply_health(
    state: MerchantState | None,
    fact: OrderHealth,
    now: datetime,
    policy: Policy,
    pages: Pages[OrderHealth],
) -> MerchantStep:
    """Learn more of one order's timeline and move the clock to ``now``.

    The measures are checked by :func:`tick` once every input of this moment was applied (the
    drivers schedule it): checked after each one, the result would depend on their order.
    """
    if state is None:
        state = MerchantState(merchant_id=fact.merchant_id)
    return _MERCHANTS.apply(state, fact, now, policy, pages)


def next_check(state: MerchantState, policy: Policy) -> datetime | None:
    """When time alone changes a count: an order leaves the window, or something it had
    already been told of (a refund, a scan deadline, ...) comes due."""
    return _MERCHANTS.next_check(state)


def tick(
    state: MerchantState, now: datetime, policy: Policy, pages: Pages[OrderHealth]
) -> MerchantStep:
    """Move the clock to ``now`` and check every measure."""
    return _MERCHANTS.tick(state, now, policy, pages)


#: Each metric's (numerator, denominator) as indexes into the counts.
_METRICS: Final = MappingProxyType(
    {
        "refund_rate": (REFUNDED, ORDERS),
        "late_confirmed_fulfillment_rate": (LATE_CONFIRMED, TRACKED),
        "valid_tracking_rate": (SCAN_VALID, SCAN_CHECKED),
        "pre_fulfillment_cancellation_rate": (CANCELLED_BEFORE_TRACKING, ORDERS),
    }
)


#: Each metric's counts by name (numerator, denominator) and its sentence.
_COUNTS: Final = MappingProxyType(
    {
        "refund_rate": ("refunded", "orders", "{n} of {d} orders ({p} %) refunded"),
        "late_confirmed_fulfillment_rate": (
            "late_confirmed",
            "tracked",
            "{n} of {d} tracked orders ({p} %) confirmed late",
        ),
        "valid_tracking_rate": (
            "valid_tracking",
            "tracking_checked",
            "{n} of {d} checked trackings ({p} %) scanned in time",
        ),
        "pre_fulfillment_cancellation_rate": (
            "cancelled_before_tracking",
            "orders",
            "{n} of {d} orders ({p} %) cancelled by the store before tracking",
        ),
    }
)


def orders_query(merchant_id: str, metric: str) -> str:
    """The HTTP state query that lists the store's orders behind a measure (contract: the
    worker's queries): its breached orders for late confirmation, its orders at risk for
    tracking not scanned; the store's health (each measure's counts) for the others, whose
    orders (refunded, cancelled) are closed."""
    status = _ORDERS_STATUS.get(metric)
    if status is None:
        return f"/merchants/{merchant_id}"
    return f"/merchants/{merchant_id}/orders?status={status}"


_ORDERS_STATUS: Final = MappingProxyType(
    {"late_confirmed_fulfillment_rate": "breached", "valid_tracking_rate": "at_risk"}
)


#: The most order ids a store-health recommendation names (the count says how many there are).
ORDERS_NAMED: Final = 20


#: Which of a metric's orders count against the store: (count index, unless this index).
_AGAINST: Final = MappingProxyType(
    {
        "refund_rate": (REFUNDED, None),
        "late_confirmed_fulfillment_rate": (LATE_CONFIRMED, None),
        "valid_tracking_rate": (SCAN_CHECKED, SCAN_VALID),
        "pre_fulfillment_cancellation_rate": (CANCELLED_BEFORE_TRACKING, None),
    }
)


def _orders_against(
    state: MerchantState, policy: Policy, pages: Pages[OrderHealth], metric: str
) -> tuple[int, list[str]]:
    """How many orders count against the store in ``metric`` as of the clock (refunded, late
    confirmed, tracked without a valid scan, cancelled before tracking) and the ids of the
    latest placed, at most :data:`ORDERS_NAMED`. Read only when a measure crosses its
    threshold: every timeline in the window is listed in the pages (where it leaves it)."""
    index, unless = _AGAINST[metric]
    ledger = state.orders
    now = ledger.now
    counted: list[tuple[datetime, str]] = []
    for number, _, _ in ledger.pages:
        for change in (pages.page(number) or {}).values():
            for order_id in change.forgets:
                timeline = pages.timeline(order_id)
                if timeline is None:
                    continue
                counts, _ = view_order(policy.store_window, policy.tracking_scan, timeline, now)
                if counts is not None and counts[index] and not (unless and counts[unless]):
                    counted.append((timeline.placed_at, order_id))
    counted.sort(reverse=True)
    return len(counted), [order_id for _, order_id in counted[:ORDERS_NAMED]]


def _evaluate(
    state: MerchantState, policy: Policy, pages: Pages[OrderHealth]
) -> list[RecommendationIssued]:
    totals = state.orders.totals
    now = state.orders.now
    key = tuple(totals)
    if key == state.evaluated:
        return []  # nothing a measure reads has changed since the last check
    state.evaluated = key
    outputs: list[RecommendationIssued] = []
    enough = totals[ORDERS] >= policy.store_min_orders
    crossings = state.crossings
    for check in policy.store_checks:
        top, bottom = _METRICS[check.metric]
        numerator, denominator = totals[top], totals[bottom]
        over = enough and denominator > 0 and check.breached(numerator, denominator)
        crossing = crossings.get(check.name)
        if crossing is None:
            crossing = crossings[check.name] = Crossing()
        if over == crossing.above or not crossing.update(over):
            continue
        value = Decimal(numerator) / denominator
        top_name, bottom_name, sentence = _COUNTS[check.metric]
        rate = str(value.quantize(Decimal("0.0001")))
        summary = sentence.format(n=numerator, d=denominator, p=percent(value))
        against, named = _orders_against(state, policy, pages, check.metric)
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
                    "value": rate,
                    "comparison": check.comparison,
                    "threshold": str(check.threshold),
                    "numerator": numerator,
                    "denominator": denominator,
                    "orders_in_window": totals[ORDERS],
                    "min_orders": policy.store_min_orders,
                    "window_days": policy.store_window.total_seconds() / 86400,
                    top_name: numerator,
                    bottom_name: denominator,
                    "rate": rate,
                    "summary": f"{summary}, threshold {check.comparison} "
                    f"{percent(check.threshold)} %",
                    "query": orders_query(state.merchant_id, check.metric),
                    "orders_against": against,
                    "order_ids": named,
                },
                counts=summary,
            )
        )
    return outputs


_MERCHANTS: Final = TimelineAggregate(
    ledger=_orders, view=_view, merge=merge_health, evaluate=_evaluate
)
