"""The carrier processor (key ``merchant_id/carrier``): ``wish.carrier_review``.

Per store and carrier, over shipments (orders with tracking from that carrier) in the rolling
window: once there are at least ``min_shipments``, a share of orders with a carrier problem (a
damaged or not-received complaint, or a delivery breach) at or above ``problem_rate`` issues
``CARRIER_REVIEW``.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from streams.core.facts import Shipment
from streams.core.outputs import RecommendationIssued
from streams.core.policy import Policy
from streams.core.recommend import make_aggregate_recommendation
from streams.core.window import Crossing

__all__ = ["CarrierState", "CarrierStep", "apply_shipment"]


@dataclass(slots=True)
class CarrierState:
    """Shipments of one store with one carrier inside the window."""

    merchant_id: str
    subject: str
    carrier: str
    shipments: dict[str, tuple[datetime, bool]] = field(default_factory=dict)
    by_time: list[tuple[datetime, str]] = field(default_factory=list)
    problems: int = 0
    crossing: Crossing = field(default_factory=Crossing)


class CarrierStep(NamedTuple):
    """The carrier's state after a call, and what it issued."""

    state: CarrierState
    outputs: list[RecommendationIssued]


def _forget(state: CarrierState, order_id: str) -> None:
    _, problem = state.shipments.pop(order_id)
    state.problems -= problem


def apply_shipment(
    state: CarrierState | None, fact: Shipment, now: datetime, policy: Policy
) -> CarrierStep:
    """Record or withdraw one shipment, expire old ones, and check the problem rate."""
    if state is None:
        state = CarrierState(
            merchant_id=fact.merchant_id, subject=fact.subject, carrier=fact.carrier
        )
    horizon = max(now, fact.shipped_at) - policy.carrier_window
    known = state.shipments.get(fact.order_id)
    if known is not None:
        _forget(state, fact.order_id)
    if not fact.withdrawn and fact.shipped_at > horizon:
        shipped_at = known[0] if known is not None else fact.shipped_at
        problem = fact.problem or (known is not None and known[1])
        state.shipments[fact.order_id] = (shipped_at, problem)
        state.problems += problem
        if known is None:
            heapq.heappush(state.by_time, (shipped_at, fact.order_id))
        state.carrier = fact.carrier
    while state.by_time and state.by_time[0][0] <= horizon:
        shipped_at, order_id = heapq.heappop(state.by_time)
        entry = state.shipments.get(order_id)
        if entry is not None and entry[0] == shipped_at:
            _forget(state, order_id)
    shipments = len(state.shipments)
    over = shipments >= policy.carrier_min_shipments and (
        Decimal(state.problems) >= policy.carrier_problem_rate * shipments
    )
    if not state.crossing.update(over):
        return CarrierStep(state, [])
    rate = Decimal(state.problems) / shipments
    recommendation = make_aggregate_recommendation(
        policy,
        reason="CARRIER_REVIEW",
        scope="carrier",
        subject=state.subject,
        merchant_id=state.merchant_id,
        crossing=state.crossing.count,
        now=now,
        evidence={
            "carrier": state.carrier,
            "shipments": shipments,
            "orders_with_problems": state.problems,
            "problem_rate": str(rate.quantize(Decimal("0.0001"))),
            "threshold": str(policy.carrier_problem_rate),
            "min_shipments": policy.carrier_min_shipments,
            "window_days": policy.carrier_window.total_seconds() / 86400,
        },
    )
    return CarrierStep(state, [recommendation])
