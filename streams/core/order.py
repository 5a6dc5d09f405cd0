"""The per-order state machine: every deadline of the policy, and the order-scope advice.

Three pure functions drive it (the caller owns the state: :func:`apply` and :func:`fire_due`
may update it in place and return the state to keep; :func:`next_due` only reads it):

- :func:`apply` folds one input event into the order's state and fires what the event made due;
- :func:`fire_due` fires every deadline whose time has come by ``now`` and drops expired state;
- :func:`next_due` tells the driver when to call :func:`fire_due` next.

A deadline is decided from the events applied, never from arrival order: it fires when the
clock reaches it unless an event meeting it (``occurred_at`` at or before ``due_at``) was applied,
or the order was closed (cancelled or refunded) at or before ``due_at``. Each fires at most once.

A breach stays open until its order meets the deadline late or ends (delivered, refunded,
cancelled): it is then resolved once (``deadline.resolved``), decided like a deadline once the
clock has reached the resolving event (and the breach has fired), so the earliest such event
resolves it whatever the arrival order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final, NamedTuple, cast

from streams.core.dates import format_utc
from streams.core.events import (
    CarrierScanned,
    ComplaintFiled,
    ComplaintResolved,
    ComplaintResponded,
    OrderCancelled,
    OrderEvent,
    OrderPlaced,
    OrderRefunded,
    TrackingSubmitted,
)
from streams.core.facts import (
    Demand,
    Fact,
    OrderHealth,
    Shipment,
    SkuComplaint,
    carrier_key,
    carrier_subject,
    sku_subject,
)
from streams.core.ids import breach_id
from streams.core.outputs import (
    DeadlineBreached,
    DeadlineName,
    DeadlineResolved,
    Reason,
    RecommendationIssued,
    Resolution,
)
from streams.core.policy import Policy
from streams.core.recommend import make_breach, make_order_recommendation, make_resolution
from streams.core.rule_ids import RuleId

__all__ = [
    "BREACH_RULES",
    "Complaint",
    "OrderState",
    "Output",
    "Placement",
    "Step",
    "Tracking",
    "apply",
    "fire_due",
    "next_due",
]

_CENT = Decimal("0.01")

Output = DeadlineBreached | DeadlineResolved | RecommendationIssued

FULFILLMENT = "fulfillment"
FULFILLMENT_WARNING = "fulfillment_warning"
CONFIRMED_FULFILLMENT = "confirmed_fulfillment"
DELIVERY = "delivery"
TRACKING_SCAN = "tracking_scan"
COMPLAINT_RESPONSE = "complaint_response"
COMPLAINT_ADVICE = "complaint_advice"
DEMAND = "demand"

#: The policy rule each deadline's breach names (delivery: by shipping program, see
#: :meth:`Policy.delivery_due`).
BREACH_RULES: Final[Mapping[DeadlineName, tuple[RuleId, ...]]] = MappingProxyType(
    {
        "fulfillment": ("wish.fulfillment",),
        "confirmed_fulfillment": ("wish.confirmed_fulfillment",),
        "delivery": ("wish.delivery", "wish.express_delivery"),
        "complaint_response": ("wish.complaint_response",),
    }
)


@dataclass(slots=True)
class Placement:
    """What ``order.placed`` said, with the deadlines it sets."""

    event_id: str
    placed_at: datetime
    released_at: datetime
    sku: str
    quantity: int
    unit_price: Decimal
    shipping_price: Decimal
    currency: str
    country: str
    program: str
    fulfillment_due: datetime
    warning_at: datetime
    confirmed_due: datetime
    delivery_due: datetime
    delivery_rule: RuleId
    unit_total_usd: Decimal | None

    @property
    def value(self) -> Decimal:
        """Order value: quantity × (unit price + shipping), in the order's currency."""
        return self.quantity * (self.unit_price + self.shipping_price)


@dataclass(slots=True)
class Tracking:
    """One ``tracking.submitted``; the latest by (occurred_at, event_id) is current."""

    occurred_at: datetime
    event_id: str
    carrier: str
    number: str
    deadline_key: str = ""

    def __post_init__(self) -> None:
        self.deadline_key = f"{TRACKING_SCAN}:{self.event_id}"


@dataclass(slots=True)
class Complaint:
    """A customer ticket, assembled from its events in whatever order they arrive."""

    complaint_id: str
    filed_event_id: str | None = None
    filed_at: datetime | None = None
    reason: str | None = None
    photos: int = 0
    requested: str = "refund"
    responded_at: datetime | None = None
    resolved_at: datetime | None = None
    outcome: str | None = None
    deadline_key: str = ""
    advice_key: str = ""

    def __post_init__(self) -> None:
        self.deadline_key = f"{COMPLAINT_RESPONSE}:{self.complaint_id}"
        self.advice_key = f"{COMPLAINT_ADVICE}:{self.complaint_id}"


@dataclass(slots=True)
class OrderState:
    """Everything orderwatch remembers about one order."""

    order_id: str
    merchant_id: str
    last_event_at: datetime
    placement: Placement | None = None
    trackings: list[Tracking] = field(default_factory=list)
    first_tracking_at: datetime | None = None
    first_scan_at: datetime | None = None
    delivered_at: datetime | None = None
    scans_by_number: dict[str, datetime] = field(default_factory=dict)
    complaints: dict[str, Complaint] = field(default_factory=dict)
    closed_at: datetime | None = None
    refunded_at: datetime | None = None
    merchant_cancelled_at: datetime | None = None
    last_health: OrderHealth | None = None
    demand_opened: bool = False
    demand_closed_at: datetime | None = None
    fired: set[str] = field(default_factory=set)
    #: Breaches (their keys in ``fired``) already resolved: the others are open.
    resolved: set[str] = field(default_factory=set)
    settled: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)


class Step(NamedTuple):
    """What one call of the state machine produced."""

    state: OrderState | None
    outputs: list[Output]
    facts: list[Fact]
    duplicate: bool = False
    next_due: datetime | None = None
    late: tuple[DeadlineName, ...] = ()


def _earliest(current: datetime | None, moment: datetime) -> datetime:
    return moment if current is None or moment < current else current


def _normalise_number(number: str) -> str:
    return number.strip().upper()


# -- deadlines ------------------------------------------------------------------------------


_Deadline = tuple[datetime, str]  # (due_at, key)


def _open_deadlines(state: OrderState, policy: Policy) -> tuple[list[_Deadline], list[str]]:
    """Deadlines that may still fire (not fired, not met, not closed at or before they were
    due), and the keys of those found met or closed since ``state.settled`` was last updated.

    Meeting and closing only ever move earlier, so a deadline found met or closed never opens
    again: :func:`fire_due` records the keys in ``state.settled`` so they are not examined
    again. This function only reads ``state``.
    """
    settled, fired = state.settled, state.fired
    closed_at = state.closed_at
    found: list[_Deadline] = []
    newly_settled: list[str] = []
    # Each candidate is (due, key, met_at): it is settled once met or closed at or before due.
    candidates: list[tuple[datetime, str, datetime | None]] = []
    placement = state.placement
    if placement is not None:
        first_tracking = state.first_tracking_at
        candidates.append((placement.placed_at, DEMAND, first_tracking))
        candidates.append((placement.warning_at, FULFILLMENT_WARNING, first_tracking))
        candidates.append((placement.fulfillment_due, FULFILLMENT, first_tracking))
        candidates.append((placement.confirmed_due, CONFIRMED_FULFILLMENT, state.first_scan_at))
        candidates.append((placement.delivery_due, DELIVERY, state.delivered_at))
    trackings = state.trackings
    for tracking in trackings:
        key = tracking.deadline_key
        if key in settled or key in fired:
            continue
        due = tracking.occurred_at + policy.tracking_scan
        if len(trackings) > 1:
            stamp = (tracking.occurred_at, tracking.event_id)
            if any(
                other.occurred_at <= due and (other.occurred_at, other.event_id) > stamp
                for other in trackings
            ):
                newly_settled.append(key)  # superseded by a later number before its scan was due
                continue
        candidates.append((due, key, state.scans_by_number.get(tracking.number)))
    if state.complaints:
        for complaint in state.complaints.values():
            filed_at = complaint.filed_at
            if filed_at is None:
                continue
            candidates.append((filed_at, complaint.advice_key, None))
            answered = _earliest_of(complaint.responded_at, complaint.resolved_at)
            candidates.append(
                (filed_at + policy.complaint_response, complaint.deadline_key, answered)
            )
    for due, key, met_at in candidates:
        if key in settled or key in fired:
            continue
        if (met_at is not None and met_at <= due) or (closed_at is not None and closed_at <= due):
            newly_settled.append(key)
        else:
            found.append((due, key))
    return found, newly_settled


def _earliest_of(first: datetime | None, second: datetime | None) -> datetime | None:
    if first is None:
        return second
    if second is None:
        return first
    return min(first, second)


def next_due(state: OrderState, policy: Policy) -> datetime:
    """When :func:`fire_due` has something to do: the next deadline, the next resolution of an
    open breach, or the state's expiry.

    A query: ``state`` is left as it was.
    """
    expiry = state.last_event_at + policy.state_ttl
    found, _ = _open_deadlines(state, policy)
    due = min((due_at for due_at, _ in found), default=expiry)
    if _has_open_breach(state):
        due = min((at for at, _, _ in _pending(state, policy)), default=due)
    return due


def fire_due(state: OrderState, now: datetime, policy: Policy) -> Step:
    """Fire every open deadline due by ``now`` (in due order); drop the state once expired.

    Updates ``state`` in place (what fired, what was found met or closed) and returns it in the
    step, whose ``next_due`` says when to call again (None once the state is dropped).
    """
    outputs: list[Output] = []
    facts: list[Fact] = []
    expiry = state.last_event_at + policy.state_ttl
    later = expiry
    due: list[_Deadline] = []
    found, newly_settled = _open_deadlines(state, policy)
    state.settled.update(newly_settled)
    for deadline in found:
        due_at = deadline[0]
        if due_at <= now:
            due.append(deadline)
        elif due_at < later:
            later = due_at
    if due:
        due.sort()
        for deadline in due:
            state.fired.add(deadline[1])
            _fire(state, deadline, now, policy, outputs, facts)
    if _has_open_breach(state):
        resolve_at = _resolve(state, now, policy, outputs)
        if resolve_at is not None and resolve_at < later:
            later = resolve_at
    if now >= expiry:
        if state.demand_closed_at is None:
            _close_demand(state, now, facts)
        return Step(None, outputs, facts, next_due=None)
    return Step(state, outputs, facts, next_due=later)


def _fire(
    state: OrderState,
    deadline: _Deadline,
    now: datetime,
    policy: Policy,
    outputs: list[Output],
    facts: list[Fact],
) -> None:
    kind, _, detail = deadline[1].partition(":")
    placement = state.placement
    if kind == FULFILLMENT_WARNING:
        assert placement is not None
        outputs.append(
            make_order_recommendation(
                policy,
                reason="FULFILLMENT_AT_RISK",
                order_id=state.order_id,
                merchant_id=state.merchant_id,
                fact_id=FULFILLMENT_WARNING,
                now=now,
                due_times=_due_times(state),
                evidence={
                    **_placement_evidence(placement, policy),
                    "warned_at": format_utc(placement.warning_at),
                    "tracking_submitted": False,
                },
            )
        )
        return
    if kind == DEMAND:
        # The order claims stock from its placement (decided once every event up to then was
        # applied, whatever their arrival order) until it is tracked, cancelled or refunded.
        assert placement is not None
        state.demand_opened = True
        facts.append(_demand(state, placement, open_=True, at=placement.placed_at))
        _close_demand(state, _demand_end(state), facts)
        return
    if kind == COMPLAINT_ADVICE:
        outputs.append(_complaint_advice(state, state.complaints[detail], now, policy))
        return
    if kind == TRACKING_SCAN:
        tracking = next(t for t in state.trackings if t.event_id == detail)
        outputs.append(
            make_order_recommendation(
                policy,
                reason="TRACKING_NOT_SCANNED",
                order_id=state.order_id,
                merchant_id=state.merchant_id,
                fact_id=tracking.event_id,
                now=now,
                due_times=_due_times(state),
                evidence={
                    "carrier": tracking.carrier,
                    "tracking_number": tracking.number,
                    "tracking_submitted_at": format_utc(tracking.occurred_at),
                    "scan_expected_by": format_utc(deadline[0]),
                    "scanned": False,
                },
            )
        )
        return
    _breach(state, deadline, kind, detail, now, policy, outputs, facts)


def _breach(
    state: OrderState,
    deadline: _Deadline,
    kind: str,
    complaint_id: str,
    now: datetime,
    policy: Policy,
    outputs: list[Output],
    facts: list[Fact],
) -> None:
    placement = state.placement
    evidence: dict[str, Any] = {"deadline": kind, "due_at": format_utc(deadline[0])}
    reason: Reason
    rule: RuleId
    if kind == FULFILLMENT:
        assert placement is not None
        rule, reason = "wish.fulfillment", "FULFILLMENT_OVERDUE"
        consequence = policy.consequences[rule].format(fine_usd=policy.fulfillment_fine_usd)
        evidence.update(_placement_evidence(placement, policy))
    elif kind == CONFIRMED_FULFILLMENT:
        assert placement is not None
        rule, reason = "wish.confirmed_fulfillment", "CONFIRMATION_OVERDUE"
        consequence = _confirmed_consequence(policy, placement)
        evidence.update(_placement_evidence(placement, policy))
        evidence["tracking_submitted_at"] = _as_of(state.first_tracking_at, deadline[0])
        _tell_health(state, placement, deadline[0], facts)
    elif kind == DELIVERY:
        assert placement is not None
        rule, reason = placement.delivery_rule, "DELIVERY_OVERDUE"
        consequence = policy.consequences[rule]
        evidence.update(_placement_evidence(placement, policy))
        evidence["destination_country"] = placement.country
        evidence["program"] = placement.program
        evidence["first_scan_at"] = _as_of(state.first_scan_at, deadline[0])
        _tell_carriers(state, policy, deadline[0], facts)
    else:
        rule, reason = "wish.complaint_response", "COMPLAINT_RESPONSE_OVERDUE"
        consequence = policy.consequences[rule]
        complaint = state.complaints[complaint_id]
        evidence["complaint_id"] = complaint_id
        evidence["complaint_reason"] = complaint.reason
        evidence["filed_at"] = _maybe_utc(complaint.filed_at)
    breach = make_breach(
        policy=policy,
        order_id=state.order_id,
        merchant_id=state.merchant_id,
        deadline=cast(DeadlineName, kind),
        due_at=deadline[0],
        now=now,
        rule=rule,
        consequence=consequence,
        complaint_id=complaint_id or None,
    )
    outputs.append(breach)
    evidence["breach_id"] = breach.breach_id
    outputs.append(
        make_order_recommendation(
            policy,
            reason=reason,
            order_id=state.order_id,
            merchant_id=state.merchant_id,
            fact_id=breach_id(state.order_id, kind, complaint_id or None),
            now=now,
            evidence=evidence,
            rule=rule,
            due_times=_due_times(state, _complaint_due(state, complaint_id, policy)),
        )
    )


def _confirmed_consequence(policy: Policy, placement: Placement) -> str:
    value_usd = policy.to_usd(placement.value, placement.currency)
    percent = f"{float(policy.confirmed_fine_rate * 100):g}"
    if value_usd is None:
        fine = (
            f"{percent} % of {placement.value} {placement.currency} "
            f"(at least USD {policy.confirmed_min_fine_usd})"
        )
    else:
        amount = max(value_usd * policy.confirmed_fine_rate, policy.confirmed_min_fine_usd)
        fine = f"USD {amount.quantize(_CENT)}"
    return policy.consequences["wish.confirmed_fulfillment"].format(
        fine=fine,
        fine_rate_percent=percent,
        min_fine_usd=policy.confirmed_min_fine_usd,
    )


def _complaint_due(state: OrderState, complaint_id: str, policy: Policy) -> datetime | None:
    complaint = state.complaints.get(complaint_id) if complaint_id else None
    if complaint is None or complaint.filed_at is None:
        return None
    return complaint.filed_at + policy.complaint_response


def _due_times(
    state: OrderState, complaint_response_due: datetime | None = None
) -> dict[str, datetime | None]:
    """The order's deadlines by the names a policy's ``respond_by`` may use."""
    placement = state.placement
    return {
        "fulfillment_due": placement.fulfillment_due if placement else None,
        "confirmed_fulfillment_due": placement.confirmed_due if placement else None,
        "complaint_response_due": complaint_response_due,
    }


def _maybe_utc(moment: datetime | None) -> str | None:
    return None if moment is None else format_utc(moment)


def _as_of(moment: datetime | None, decided_at: datetime) -> str | None:
    """``moment`` as evidence of a decision taken at ``decided_at``: null if it came later.

    A breach is decided as of its due time, so what happened after it (and was applied only
    because it arrived before the clock passed the due time) never shows in its evidence.
    """
    return None if moment is None or moment > decided_at else format_utc(moment)


def _placement_evidence(placement: Placement, policy: Policy) -> dict[str, Any]:
    evidence: dict[str, Any] = {
        "placed_at": format_utc(placement.placed_at),
        "released_at": format_utc(placement.released_at),
        "sku": placement.sku,
        "quantity": placement.quantity,
        "order_value": str(placement.value),
        "currency": placement.currency,
    }
    if placement.unit_total_usd is None:
        evidence["currency_not_in_rate_table"] = (
            f"{placement.currency} is not in the policy's rate table (as of "
            f"{policy.rates_as_of.isoformat()}): the stricter confirmed-fulfillment window applies"
        )
    else:
        evidence["unit_price_with_shipping_usd"] = str(placement.unit_total_usd.quantize(_CENT))
        evidence["usd_rates_as_of"] = policy.rates_as_of.isoformat()
    return evidence


# -- facts for the aggregates ---------------------------------------------------------------


def _demand_end(state: OrderState) -> datetime | None:
    """When the order stopped claiming stock: tracked, cancelled or refunded, whichever first."""
    return _earliest_of(state.first_tracking_at, state.closed_at)


def _close_demand(state: OrderState, at: datetime | None, facts: list[Fact]) -> None:
    """Tell the SKU the order's claim ended at ``at``, if that is news (earlier than told)."""
    placement = state.placement
    if placement is None or not state.demand_opened or at is None:
        return
    if state.demand_closed_at is None or at < state.demand_closed_at:
        state.demand_closed_at = at
        facts.append(_demand(state, placement, open_=False, at=at))


def _demand(state: OrderState, placement: Placement, *, open_: bool, at: datetime) -> Demand:
    return Demand(
        subject=sku_subject(state.merchant_id, placement.sku),
        order_id=state.order_id,
        merchant_id=state.merchant_id,
        sku=placement.sku,
        placed_at=placement.placed_at,
        quantity=placement.quantity,
        fulfillment_due=placement.fulfillment_due,
        trigger_id=placement.event_id,
        open=open_,
        at=at,
    )


def _problem_at(state: OrderState, policy: Policy) -> datetime | None:
    """When the order first had a carrier problem: a carrier complaint or its delivery breach."""
    problem_at = None
    if DELIVERY in state.fired and state.placement is not None:
        problem_at = state.placement.delivery_due
    for complaint in state.complaints.values():
        if complaint.filed_at is not None and complaint.reason in policy.carrier_complaint_reasons:
            problem_at = _earliest(problem_at, complaint.filed_at)
    return problem_at


def _tell_carriers(state: OrderState, policy: Policy, at: datetime, facts: list[Fact]) -> None:
    """Pass the order's shipping timeline to every carrier it named (one it left learns so)."""
    if not state.trackings:
        return
    problem_at = _problem_at(state, policy)
    names: dict[str, str] = {}
    if len(state.trackings) == 1:  # the usual case, without the sorting
        only = state.trackings[0]
        key = carrier_key(only.carrier)
        trackings: tuple[tuple[datetime, str], ...] = ((only.occurred_at, key),)
        names[key] = only.carrier.strip()
    else:
        trackings = tuple(
            sorted({(t.occurred_at, carrier_key(t.carrier)) for t in state.trackings})
        )
        for tracking in sorted(state.trackings, key=lambda t: (t.occurred_at, t.event_id)):
            names[carrier_key(tracking.carrier)] = tracking.carrier.strip()
    for key, name in sorted(names.items()):
        facts.append(
            Shipment(
                subject=carrier_subject(state.merchant_id, key),
                order_id=state.order_id,
                merchant_id=state.merchant_id,
                carrier=name,
                at=at,
                trackings=trackings,
                problem_at=problem_at,
            )
        )


def _tell_health(state: OrderState, placement: Placement, at: datetime, facts: list[Fact]) -> None:
    """Pass the order's store-health timeline on, unless the merchant already knows all of it."""
    timeline = _health(state, placement, at)
    known = state.last_health
    if known is None or _health_key(known) != _health_key(timeline):
        state.last_health = timeline
        facts.append(timeline)


def _health_key(health: OrderHealth) -> tuple[datetime | None, ...]:
    return (
        health.placed_at,
        health.tracked_at,
        health.scanned_at,
        health.refunded_at,
        health.merchant_cancelled_at,
        health.late_confirmed_at,
    )


def _health(state: OrderState, placement: Placement, at: datetime) -> OrderHealth:
    return OrderHealth(
        subject=state.merchant_id,
        order_id=state.order_id,
        merchant_id=state.merchant_id,
        at=at,
        placed_at=placement.placed_at,
        tracked_at=state.first_tracking_at,
        scanned_at=state.first_scan_at,
        refunded_at=state.refunded_at,
        merchant_cancelled_at=state.merchant_cancelled_at,
        late_confirmed_at=placement.confirmed_due if CONFIRMED_FULFILLMENT in state.fired else None,
    )


def _sku_complaint(state: OrderState, placement: Placement, complaint: Complaint) -> SkuComplaint:
    assert complaint.reason is not None
    assert complaint.filed_at is not None
    return SkuComplaint(
        subject=sku_subject(state.merchant_id, placement.sku),
        order_id=state.order_id,
        complaint_id=complaint.complaint_id,
        merchant_id=state.merchant_id,
        sku=placement.sku,
        reason=complaint.reason,
        filed_at=complaint.filed_at,
    )


def _reviewed_by_sku(policy: Policy, reason: str | None) -> bool:
    return reason in policy.listing_review.reasons or reason in policy.packaging_review.reasons


# -- applying events ------------------------------------------------------------------------

_DEADLINE_MAKERS = (OrderPlaced, TrackingSubmitted, ComplaintFiled)


def apply(
    state: OrderState | None, event: OrderEvent, now: datetime, policy: Policy, *, fire: bool = True
) -> Step:
    """Fold ``event`` into the order's state, then fire whatever is already due by ``now``
    (unless not ``fire``: the wall clock fires a freshly read order only once every input was
    read past the moment it was read, see :class:`~streams.core.partition.OrderPartition`).

    The step's ``next_due`` is set when the event may have brought the order's next check
    earlier (a new order, or a new deadline); otherwise it is None and the check already
    scheduled stays valid, since meeting or closing deadlines only ever removes them.
    """
    created = state is None
    if state is None:
        state = OrderState(
            order_id=event.order_id, merchant_id=event.merchant_id, last_event_at=event.occurred_at
        )
    elif event.event_id in state.seen:
        return Step(state, [], [], duplicate=True)
    state.seen.add(event.event_id)
    if event.occurred_at > state.last_event_at:
        state.last_event_at = event.occurred_at
    outputs: list[Output] = []
    facts: list[Fact] = []
    if isinstance(event, CarrierScanned):  # the commonest event first
        _scanned(state, event, facts)
    elif isinstance(event, OrderPlaced):
        _placed(state, event, policy, facts)
    elif isinstance(event, TrackingSubmitted):
        _tracked(state, event, policy, facts)
    elif isinstance(event, ComplaintFiled):
        _filed(state, event, policy, facts)
    elif isinstance(event, ComplaintResponded):
        complaint = state.complaints.setdefault(event.complaint_id, Complaint(event.complaint_id))
        complaint.responded_at = _earliest(complaint.responded_at, event.occurred_at)
    elif isinstance(event, ComplaintResolved):
        complaint = state.complaints.setdefault(event.complaint_id, Complaint(event.complaint_id))
        complaint.resolved_at = _earliest(complaint.resolved_at, event.occurred_at)
        complaint.outcome = event.outcome
    elif isinstance(event, OrderCancelled | OrderRefunded):
        _closed(state, event, facts)
    late: tuple[DeadlineName, ...] = ()
    resolving = False
    if state.fired:
        late = _met_late(state, event, policy)
        if _has_open_breach(state):
            if fire:
                _resolve(state, now, policy, outputs)
            resolving = _has_open_breach(state)
    if not created and not isinstance(event, _DEADLINE_MAKERS):
        # The event may have brought a breach's resolution (its moment still ahead).
        due = next_due(state, policy) if resolving else None
        return Step(state, outputs, facts, next_due=due, late=late)
    if not fire:
        return Step(state, outputs, facts, next_due=next_due(state, policy), late=late)
    step = fire_due(state, now, policy)
    return Step(
        step.state, outputs + step.outputs, facts + step.facts, next_due=step.next_due, late=late
    )


def _met_late(state: OrderState, event: OrderEvent, policy: Policy) -> tuple[DeadlineName, ...]:
    """Deadlines this event would have met had it arrived before they fired (they stay fired)."""
    placement = state.placement
    fired = state.fired
    if not fired:
        return ()
    at = event.occurred_at
    if isinstance(event, TrackingSubmitted) and placement is not None:
        if FULFILLMENT in fired and at <= placement.fulfillment_due:
            return ("fulfillment",)
    elif isinstance(event, CarrierScanned) and placement is not None:
        late: list[DeadlineName] = []
        if CONFIRMED_FULFILLMENT in fired and at <= placement.confirmed_due:
            late.append("confirmed_fulfillment")
        if event.status == "delivered" and DELIVERY in fired and at <= placement.delivery_due:
            late.append("delivery")
        return tuple(late)
    elif isinstance(event, ComplaintResponded | ComplaintResolved):
        complaint = state.complaints.get(event.complaint_id)
        if (
            complaint is not None
            and complaint.filed_at is not None
            and complaint.deadline_key in fired
            and at <= complaint.filed_at + policy.complaint_response
        ):
            return ("complaint_response",)
    return ()


# -- resolving breaches ---------------------------------------------------------------------

_ORDER_BREACHES: Final = (FULFILLMENT, CONFIRMED_FULFILLMENT, DELIVERY)
_COMPLAINT_BREACH: Final = f"{COMPLAINT_RESPONSE}:"
# Ties (one event both meets the deadline and ends the order) resolve by the first of these.
_RANK: Final[Mapping[Resolution, int]] = MappingProxyType(
    {"delivered": 0, "refunded": 1, "cancelled": 2, "met_late": 3}
)


def _has_open_breach(state: OrderState) -> bool:
    resolved = state.resolved
    return any(
        key not in resolved and (key in _ORDER_BREACHES or key.startswith(_COMPLAINT_BREACH))
        for key in state.fired
    )


def _pending(state: OrderState, policy: Policy) -> list[tuple[datetime, str, Resolution]]:
    """The open breaches that the events applied resolve: (when, key, how), in that order."""
    pending = []
    resolved = state.resolved
    for key in state.fired:
        if key in resolved or not (key in _ORDER_BREACHES or key.startswith(_COMPLAINT_BREACH)):
            continue
        found = _resolution(state, key, policy)
        if found is not None:
            pending.append((found[0], key, found[1]))
    pending.sort()
    return pending


def _resolve(
    state: OrderState, now: datetime, policy: Policy, outputs: list[Output]
) -> datetime | None:
    """Resolve (once each) every open breach whose resolving event the clock has reached;
    when the next one is ahead (None: none is).

    Like a deadline, a resolution is decided once the clock passes its moment, so every event
    up to then was applied, whatever their arrival order: the earliest one resolves it.
    """
    later = None
    for at, key, resolution in _pending(state, policy):
        if at > now:
            later = at if later is None else min(later, at)
            continue
        state.resolved.add(key)
        kind, _, complaint_id = key.partition(":")
        placement = state.placement
        if kind == DELIVERY:
            assert placement is not None
            rule: RuleId = placement.delivery_rule
        else:
            rule = BREACH_RULES[cast(DeadlineName, kind)][0]
        outputs.append(
            make_resolution(
                policy=policy,
                order_id=state.order_id,
                merchant_id=state.merchant_id,
                deadline=cast(DeadlineName, kind),
                rule=rule,
                resolution=resolution,
                resolved_at=at,
                now=now,
                complaint_id=complaint_id or None,
            )
        )
    return later


def _resolution(state: OrderState, key: str, policy: Policy) -> tuple[datetime, Resolution] | None:
    """When and how the breach ``key`` was resolved by the events applied, if it was: the
    earliest of the event meeting its deadline and the order's end (delivered, refunded or
    cancelled; a delivery before a complaint's response was due does not answer it)."""
    kind, _, complaint_id = key.partition(":")
    placement = state.placement
    met_at: datetime | None
    if kind == COMPLAINT_RESPONSE:
        complaint = state.complaints[complaint_id]
        assert complaint.filed_at is not None
        due = complaint.filed_at + policy.complaint_response
        met_at = _earliest_of(complaint.responded_at, complaint.resolved_at)
    else:
        assert placement is not None
        if kind == FULFILLMENT:
            due, met_at = placement.fulfillment_due, state.first_tracking_at
        elif kind == CONFIRMED_FULFILLMENT:
            due, met_at = placement.confirmed_due, state.first_scan_at
        else:
            due, met_at = placement.delivery_due, state.delivered_at
    candidates: list[tuple[datetime, int, Resolution]] = []
    if met_at is not None:
        candidates.append((met_at, _RANK["met_late"], "met_late"))
    delivered_at = state.delivered_at
    if delivered_at is not None and (kind != COMPLAINT_RESPONSE or delivered_at > due):
        candidates.append((delivered_at, _RANK["delivered"], "delivered"))
    closed_at = state.closed_at
    if closed_at is not None:
        ended: Resolution = "refunded" if closed_at == state.refunded_at else "cancelled"
        candidates.append((closed_at, _RANK[ended], ended))
    if not candidates:
        return None
    at, _, resolution = min(candidates)
    return at, resolution


def _placed(state: OrderState, event: OrderPlaced, policy: Policy, facts: list[Fact]) -> None:
    if state.placement is not None:
        return  # a second order.placed for the same order changes nothing
    state.merchant_id = event.merchant_id
    released_at = event.released_at or event.occurred_at + policy.release_delay
    fulfillment_due = released_at + policy.fulfillment
    unit_total_usd = policy.to_usd(event.unit_price + event.shipping_price, event.currency)
    high_value = unit_total_usd is not None and unit_total_usd >= policy.high_value_threshold_usd
    delivery_due, delivery_rule = policy.delivery_due(
        event.occurred_at, released_at, event.destination_country, event.program
    )
    placement = Placement(
        event_id=event.event_id,
        placed_at=event.occurred_at,
        released_at=released_at,
        sku=event.sku,
        quantity=event.quantity,
        unit_price=event.unit_price,
        shipping_price=event.shipping_price,
        currency=event.currency,
        country=event.destination_country,
        program=event.program,
        fulfillment_due=fulfillment_due,
        warning_at=fulfillment_due - policy.fulfillment_warning_before,
        confirmed_due=released_at
        + (policy.confirmed_fulfillment_high_value if high_value else policy.confirmed_fulfillment),
        delivery_due=delivery_due,
        delivery_rule=delivery_rule,
        unit_total_usd=unit_total_usd,
    )
    state.placement = placement
    _tell_health(state, placement, event.occurred_at, facts)
    for complaint in state.complaints.values():
        if complaint.filed_at is not None and _reviewed_by_sku(policy, complaint.reason):
            facts.append(_sku_complaint(state, placement, complaint))


def _tracked(
    state: OrderState, event: TrackingSubmitted, policy: Policy, facts: list[Fact]
) -> None:
    state.trackings.append(
        Tracking(
            occurred_at=event.occurred_at,
            event_id=event.event_id,
            carrier=event.carrier,
            number=_normalise_number(event.tracking_number),
        )
    )
    state.first_tracking_at = _earliest(state.first_tracking_at, event.occurred_at)
    _close_demand(state, _demand_end(state), facts)
    placement = state.placement
    if placement is not None:
        _tell_health(state, placement, event.occurred_at, facts)
    _tell_carriers(state, policy, event.occurred_at, facts)


def _scanned(state: OrderState, event: CarrierScanned, facts: list[Fact]) -> None:
    number = _normalise_number(event.tracking_number)
    state.scans_by_number[number] = _earliest(state.scans_by_number.get(number), event.occurred_at)
    first_scan = state.first_scan_at
    state.first_scan_at = _earliest(first_scan, event.occurred_at)
    if event.status == "delivered":
        state.delivered_at = _earliest(state.delivered_at, event.occurred_at)
    if state.placement is not None and state.first_scan_at != first_scan:
        _tell_health(state, state.placement, event.occurred_at, facts)


def _filed(state: OrderState, event: ComplaintFiled, policy: Policy, facts: list[Fact]) -> None:
    complaint = state.complaints.setdefault(event.complaint_id, Complaint(event.complaint_id))
    if complaint.filed_event_id is not None:
        return  # the complaint was already filed by another event
    complaint.filed_event_id = event.event_id
    complaint.filed_at = event.occurred_at
    complaint.reason = event.reason
    complaint.photos = event.photos
    complaint.requested = event.requested
    placement = state.placement
    if placement is not None and _reviewed_by_sku(policy, event.reason):
        facts.append(_sku_complaint(state, placement, complaint))
    if event.reason in policy.carrier_complaint_reasons:
        _tell_carriers(state, policy, event.occurred_at, facts)


def _complaint_advice(
    state: OrderState, complaint: Complaint, now: datetime, policy: Policy
) -> RecommendationIssued:
    """``COMPLAINT_<REASON>``, decided from the order as it stood when the complaint was filed.

    It is issued once the clock reaches the filing time, so every event that happened before
    the complaint (within the allowed lateness) has been applied whatever order they arrived in.
    """
    filed_at = complaint.filed_at
    assert filed_at is not None
    assert complaint.reason is not None
    placement = state.placement
    delivered_at = (
        state.delivered_at if state.delivered_at and state.delivered_at <= filed_at else None
    )
    conditions = set()
    if complaint.photos == 0:
        conditions.add("no_photos")
    if placement is not None and placement.delivery_due > filed_at and delivered_at is None:
        conditions.add("delivery_due_ahead")
    evidence: dict[str, Any] = {
        "complaint_id": complaint.complaint_id,
        "complaint_reason": complaint.reason,
        "filed_at": format_utc(filed_at),
        "photos": complaint.photos,
        "requested": complaint.requested,
        "delivered_at": _maybe_utc(delivered_at),
    }
    shipped = [t for t in state.trackings if t.occurred_at <= filed_at]
    if shipped:
        tracking = max(shipped, key=lambda t: (t.occurred_at, t.event_id))
        evidence["carrier"] = tracking.carrier
        evidence["tracking_number"] = tracking.number
    if placement is not None:
        evidence["sku"] = placement.sku
        evidence["delivery_due"] = format_utc(placement.delivery_due)
    return make_order_recommendation(
        policy,
        reason=cast(Reason, f"COMPLAINT_{complaint.reason.upper()}"),
        order_id=state.order_id,
        merchant_id=state.merchant_id,
        fact_id=complaint.complaint_id,
        now=now,
        due_times=_due_times(state, filed_at + policy.complaint_response),
        conditions=conditions,
        evidence=evidence,
    )


def _closed(state: OrderState, event: OrderCancelled | OrderRefunded, facts: list[Fact]) -> None:
    state.closed_at = _earliest(state.closed_at, event.occurred_at)
    if isinstance(event, OrderRefunded):
        state.refunded_at = _earliest(state.refunded_at, event.occurred_at)
    elif event.cancelled_by == "merchant":
        state.merchant_cancelled_at = _earliest(state.merchant_cancelled_at, event.occurred_at)
    _close_demand(state, _demand_end(state), facts)
    placement = state.placement
    if placement is not None:
        _tell_health(state, placement, event.occurred_at, facts)
