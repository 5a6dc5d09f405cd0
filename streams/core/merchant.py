"""The merchant processor (key ``merchant_id``): ``wish.store_health``.

A rolling window of the store's orders by placement time. Once the store has at least
``min_orders`` in it, each measure of the rule (refund rate, late confirmed fulfillment rate,
valid tracking rate, pre-fulfillment cancellation rate) is compared with its threshold; a
crossing issues ``STORE_HEALTH_AT_RISK`` with the measure's severity.

Each order is known as a timeline (:class:`~streams.core.facts.OrderHealth`) and counted as of
the merchant's clock, which moves with the facts' event times and with :func:`tick`; counts are
kept incrementally, so a fact costs O(log n) however large the store.

:func:`apply_health` and :func:`tick` update the state they are given in place (a new one when
given None) and return it in the step; :func:`next_check` only reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import NamedTuple

from streams.core.facts import OrderHealth, merge_health
from streams.core.outputs import RecommendationIssued
from streams.core.policy import Policy
from streams.core.recommend import make_aggregate_recommendation
from streams.core.window import Crossing, Timelines

__all__ = ["MerchantState", "MerchantStep", "apply_health", "next_check", "tick"]

# The counts each order contributes, in this order.
ORDERS, REFUNDED, TRACKED, LATE_CONFIRMED, CANCELLED_BEFORE_TRACKING = range(5)
SCAN_CHECKED, SCAN_VALID = 5, 6
_WIDTH = 7


def _new_orders() -> Timelines[OrderHealth]:
    return Timelines(_WIDTH)


@dataclass(slots=True)
class MerchantState:
    """The store's orders inside the window, counted as of ``orders.now``, and crossings."""

    merchant_id: str
    orders: Timelines[OrderHealth] = field(default_factory=_new_orders)
    crossings: dict[str, Crossing] = field(default_factory=dict)
    evaluated: tuple[int, ...] = ()


class MerchantStep(NamedTuple):
    """The merchant's state after a call, and what it issued."""

    state: MerchantState
    outputs: list[RecommendationIssued]


def _at_or_before(moment: datetime | None, now: datetime) -> int:
    return 1 if moment is not None and moment <= now else 0


def view_order(
    window: timedelta, scan: timedelta, order: OrderHealth, now: datetime
) -> tuple[tuple[int, ...] | None, datetime | None]:
    """One order's counts as of ``now`` (None outside the window) and its next change."""
    placed_at = order.placed_at
    leaves_at = placed_at + window
    if now >= leaves_at:
        return None, None
    if now < placed_at:
        return None, placed_at
    tracked_at = order.tracked_at
    check_at = tracked_at + scan if tracked_at is not None else None
    cancelled_at = order.merchant_cancelled_at
    scan_checked = _at_or_before(check_at, now)
    counts = (
        1,
        _at_or_before(order.refunded_at, now),
        _at_or_before(tracked_at, now),
        _at_or_before(order.late_confirmed_at, now),
        _at_or_before(cancelled_at, now)
        if cancelled_at is not None and (tracked_at is None or cancelled_at < tracked_at)
        else 0,
        scan_checked,
        scan_checked
        if order.scanned_at is not None and check_at is not None and order.scanned_at <= check_at
        else 0,
    )
    upcoming = [
        moment
        for moment in (
            tracked_at,
            check_at,
            order.refunded_at,
            order.late_confirmed_at,
            cancelled_at,
        )
        if moment is not None and now < moment < leaves_at
    ]
    return counts, min(upcoming, default=leaves_at)


def _view(policy: Policy) -> partial[tuple[tuple[int, ...] | None, datetime | None]]:
    return partial(view_order, policy.store_window, policy.tracking_scan)


def apply_health(
    state: MerchantState | None, fact: OrderHealth, now: datetime, policy: Policy
) -> MerchantStep:
    """Learn more of one order's timeline and move the clock to ``now``.

    The measures are checked by :func:`tick` once every input of this moment was applied (the
    drivers schedule it): checked after each one, the result would depend on their order.
    """
    if state is None:
        state = MerchantState(merchant_id=fact.merchant_id)
    orders, view = state.orders, _view(policy)
    orders.advance(now, view)
    orders.put(fact.order_id, merge_health(orders.entries.get(fact.order_id), fact), view)
    return MerchantStep(state, [])


def next_check(state: MerchantState, policy: Policy) -> datetime | None:
    """When time alone changes a count: an order leaves the window, or something it had
    already been told of (a refund, a scan deadline, ...) comes due."""
    return state.orders.next_change()


def tick(state: MerchantState, now: datetime, policy: Policy) -> MerchantStep:
    """Move the clock to ``now`` and check every measure."""
    state.orders.advance(now, _view(policy))
    return MerchantStep(state, _evaluate(state, state.orders.now, policy))


def _ratios(totals: list[int]) -> dict[str, tuple[int, int]]:
    """Each metric as (numerator, denominator)."""
    return {
        "refund_rate": (totals[REFUNDED], totals[ORDERS]),
        "late_confirmed_fulfillment_rate": (totals[LATE_CONFIRMED], totals[TRACKED]),
        "valid_tracking_rate": (totals[SCAN_VALID], totals[SCAN_CHECKED]),
        "pre_fulfillment_cancellation_rate": (totals[CANCELLED_BEFORE_TRACKING], totals[ORDERS]),
    }


def _evaluate(state: MerchantState, now: datetime, policy: Policy) -> list[RecommendationIssued]:
    totals = state.orders.totals
    key = tuple(totals)
    if key == state.evaluated:
        return []  # nothing a measure reads has changed since the last check
    state.evaluated = key
    outputs: list[RecommendationIssued] = []
    ratios = _ratios(totals)
    enough = totals[ORDERS] >= policy.store_min_orders
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
                    "orders_in_window": totals[ORDERS],
                    "min_orders": policy.store_min_orders,
                    "window_days": policy.store_window.total_seconds() / 86400,
                },
            )
        )
    return outputs
