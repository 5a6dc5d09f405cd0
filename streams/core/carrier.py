"""The carrier processor (key ``merchant_id/carrier``): ``wish.carrier_review``.

Per store and carrier, over shipments (orders with tracking from that carrier) in the rolling
window: once there are at least ``min_shipments``, a share of orders with a carrier problem (a
damaged or not-received complaint, or a delivery breach) at or above ``problem_rate`` issues
``CARRIER_REVIEW``.

Each order is known as a timeline (:class:`~streams.core.facts.Shipment`) and counted as of the
carrier's clock, which moves with the facts' event times and with :func:`tick`. The state is
the head of a :class:`~streams.core.ledger.Ledger`; the timelines and their scheduled changes
are in the carrier's :class:`~streams.core.ledger.Pages`.

:func:`apply_shipment` and :func:`tick` update the state (and its pages) they are given in
place (a new state when given None) and return it in the step; :func:`next_check` only reads
it. The skeleton is the merchant's too (:mod:`streams.core.timeline_aggregate`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Final, TypeAlias

from streams.core.facts import Shipment, carrier_key, merge_shipment
from streams.core.ledger import Ledger, Pages
from streams.core.outputs import RecommendationIssued
from streams.core.policy import Policy
from streams.core.recommend import make_aggregate_recommendation, percent
from streams.core.timeline_aggregate import AggregateStep, TimelineAggregate
from streams.core.window import Crossing, View

__all__ = ["CarrierState", "CarrierStep", "apply_shipment", "next_check", "tick"]

SHIPMENTS, PROBLEMS = 0, 1


def _new_shipments() -> Ledger[Shipment]:
    return Ledger(2)


@dataclass(slots=True)
class CarrierState:
    """Orders of one store shipped with one carrier, counted as of ``shipments.now``."""

    merchant_id: str
    subject: str
    carrier: str
    shipments: Ledger[Shipment] = field(default_factory=_new_shipments)
    crossing: Crossing = field(default_factory=Crossing)


CarrierStep: TypeAlias = AggregateStep[CarrierState]
"""The carrier's state after a call, and what it issued."""


def view_shipment(
    window: timedelta, carrier: str, shipment: Shipment, now: datetime
) -> tuple[tuple[int, ...] | None, datetime | None]:
    """One order as of ``now``: shipped with ``carrier`` inside the window, with a problem?

    An order ships with the carrier of its latest tracking so far; the window runs from that
    tracking's submission. The timeline is kept (a change is due) until the window has passed
    its latest tracking: a fact the order sent before it knew of a later tracking may still
    arrive, and must merge with what is known rather than count the order again.
    """
    current: tuple[datetime, str] | None = None
    upcoming: list[datetime] = []
    for tracking in shipment.trackings:
        if tracking[0] <= now:
            current = tracking  # trackings are sorted
        else:
            upcoming.append(tracking[0])
    counts: tuple[int, ...] | None = None
    if current is not None and current[1] == carrier and now < current[0] + window:
        problem_at = shipment.problem_at
        counts = (1, 1 if problem_at is not None and problem_at <= now else 0)
        upcoming.append(current[0] + window)
        if problem_at is not None and problem_at > now:
            upcoming.append(problem_at)
    if shipment.trackings and now < (kept_until := shipment.trackings[-1][0] + window):
        upcoming.append(kept_until)
    return counts, min(upcoming, default=None)


def _view(state: CarrierState, policy: Policy) -> View[Shipment]:
    return partial(view_shipment, policy.carrier_window, carrier_key(state.carrier))


def _shipments(state: CarrierState) -> Ledger[Shipment]:
    return state.shipments


def apply_shipment(
    state: CarrierState | None,
    fact: Shipment,
    now: datetime,
    policy: Policy,
    pages: Pages[Shipment],
) -> CarrierStep:
    """Learn more of one order's shipping and move the clock to ``now``.

    The problem rate is checked by :func:`tick` once every input of this moment was applied.
    """
    if state is None:
        state = CarrierState(
            merchant_id=fact.merchant_id, subject=fact.subject, carrier=fact.carrier
        )
    return _CARRIERS.apply(state, fact, now, policy, pages)


def next_check(state: CarrierState, policy: Policy) -> datetime | None:
    """When time alone changes a count: a shipment leaves the window, a problem comes due."""
    return _CARRIERS.next_check(state)


def tick(state: CarrierState, now: datetime, policy: Policy, pages: Pages[Shipment]) -> CarrierStep:
    """Move the clock to ``now`` and check the problem rate."""
    return _CARRIERS.tick(state, now, policy, pages)


def _evaluate(
    state: CarrierState, policy: Policy, pages: Pages[Shipment]
) -> list[RecommendationIssued]:
    shipments, problems = state.shipments.totals
    over = shipments >= policy.carrier_min_shipments and (
        Decimal(problems) >= policy.carrier_problem_rate * shipments
    )
    if not state.crossing.update(over):
        return []
    rate = Decimal(problems) / shipments
    summary = (
        f"{problems} of {shipments} shipments ({percent(rate)} %) with a damaged or "
        "not-received complaint or a delivery breach"
    )
    return [
        make_aggregate_recommendation(
            policy,
            reason="CARRIER_REVIEW",
            scope="carrier",
            subject=state.subject,
            merchant_id=state.merchant_id,
            crossing=state.crossing.count,
            now=state.shipments.now,
            evidence={
                "carrier": state.carrier,
                "shipments": shipments,
                "orders_with_problems": problems,
                "problem_rate": str(rate.quantize(Decimal("0.0001"))),
                "summary": summary,
                "threshold": str(policy.carrier_problem_rate),
                "min_shipments": policy.carrier_min_shipments,
                "window_days": policy.carrier_window.total_seconds() / 86400,
            },
            counts=summary,
        )
    ]


_CARRIERS: Final = TimelineAggregate(
    ledger=_shipments, view=_view, merge=merge_shipment, evaluate=_evaluate
)
