"""The SKU processor (key ``merchant_id/sku``): stock-out risk and listing/packaging reviews.

Stock (``wish.stockout``): at each ``order.placed`` (a :class:`Demand` fact that opens) and each
``inventory.updated``, the SKU's last known available units are allocated to its open orders in
placement order; each open order the stock does not cover gets ``STOCKOUT_RISK`` at once, once,
until stock covers it again. No inventory event yet: no signal.

Reviews (``wish.listing_review``, ``wish.packaging_review``): complaints of the rule's reasons on
the SKU within the rolling window; crossing the threshold issues a review recommendation.

What grows with a SKU's volume lives outside its value, in pages of bounded size: the claims in
a :class:`~streams.core.stockqueue.StockQueue`, the complaints and the inventory ids seen in
ledgers (:mod:`streams.core.ledger`). The ``apply_*`` functions take those pages, update the
state they are given in place (a new one when given None) and return it in the step.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, NamedTuple

from streams.core.dates import format_utc
from streams.core.events import InventoryUpdated
from streams.core.facts import Demand, SkuComplaint, sku_subject
from streams.core.ledger import Ledger, Pages
from streams.core.outputs import Reason, RecommendationIssued
from streams.core.policy import Policy, SkuReview
from streams.core.recommend import make_aggregate_recommendation, make_order_recommendation
from streams.core.stockqueue import Claim, Position, QueuePages, StockQueue
from streams.core.window import Crossing, RollingSet

__all__ = ["SkuState", "SkuStep", "apply_complaint", "apply_demand", "apply_inventory"]

_REVIEWS: tuple[tuple[Reason, str], ...] = (
    ("LISTING_REVIEW", "listing_review"),
    ("PACKAGING_REVIEW", "packaging_review"),
)

#: How many of a review's latest complaint keys its recommendation's evidence lists.
RECENT_KEYS = 20

#: Sorts after any key: ``(moment, _LAST)`` bounds every entry at ``moment``.
_LAST = "\U0010ffff"

#: How often a SKU's closed claims past the policy's horizon are swept from its pages.
SWEEP_EVERY = timedelta(days=1)


@dataclass(slots=True)
class SkuState:
    """Stock level, claims (in a :class:`~streams.core.stockqueue.StockQueue`, whose pages live
    outside the state) and complaint windows of one SKU of one store."""

    merchant_id: str
    sku: str
    stock_as_of: tuple[datetime, str] | None = None
    available: int = 0
    #: The ids of the inventory events seen, one timeline each (their time), until the
    #: policy's ``engine.state_ttl`` after them.
    stock_seen: Ledger[datetime] = field(default_factory=lambda: Ledger(0))
    queue: StockQueue = field(default_factory=StockQueue)
    #: Claims read from a state stored before the queue had pages (with its boundary), not
    #: yet moved to the pages: the first call given pages moves them.
    unspilled: list[tuple[Position, Claim]] = field(default_factory=list)
    unspilled_boundary: Position | None = None
    #: Orders closed in a state stored before the queue had pages (their positions unknown),
    #: by order id, until the policy's horizon passes their closing.
    closed_before: dict[str, datetime] = field(default_factory=dict)
    #: The complaints counted in the reviews, one timeline each (width: one count per review
    #: of :data:`_REVIEWS`), and each review's latest keys, for the evidence.
    complaints: Ledger[SkuComplaint] = field(default_factory=lambda: Ledger(len(_REVIEWS)))
    recent: dict[str, list[tuple[datetime, str]]] = field(default_factory=dict)
    #: Complaint windows read from a state stored before ledgers: spilled at the next complaint.
    unspilled_complaints: dict[str, RollingSet] = field(default_factory=dict)
    crossings: dict[str, Crossing] = field(default_factory=dict)


class SkuStep(NamedTuple):
    """The SKU's state after a call, and what it issued."""

    state: SkuState
    outputs: list[RecommendationIssued]


def _state(
    state: SkuState | None, merchant_id: str, sku: str, pages: QueuePages | None = None
) -> SkuState:
    if state is None:
        return SkuState(merchant_id=merchant_id, sku=sku)
    if pages is not None and (state.unspilled or state.unspilled_boundary is not None):
        for position, claim in state.unspilled:
            state.queue.put(position, claim, pages)
        state.queue.boundary = state.unspilled_boundary
        state.unspilled, state.unspilled_boundary = [], None
    return state


def apply_inventory(
    state: SkuState | None,
    event: InventoryUpdated,
    now: datetime,
    policy: Policy,
    pages: QueuePages,
    seen_pages: Pages[datetime],
) -> SkuStep:
    """A new stock level; the later one (occurred_at, event_id) wins, then allocate.

    A repeated ``event_id`` keeps the first event seen; ids are remembered for the policy's
    ``engine.state_ttl`` after their event, like an order's.
    """
    state = _state(state, event.merchant_id, event.sku, pages)
    seen, view = state.stock_seen, partial(view_seen, policy.state_ttl)
    if seen.unspilled:
        seen.spill(view, seen_pages)
    seen.advance(now, seen_pages)
    if seen_pages.timeline(event.event_id) is not None:
        return SkuStep(state, [])
    seen.put(event.event_id, event.occurred_at, view, seen_pages)
    stamp = (event.occurred_at, event.event_id)
    if state.stock_as_of is None or stamp > state.stock_as_of:
        state.stock_as_of = stamp
        state.available = event.available
    return SkuStep(state, _allocate(state, event.event_id, now, policy, pages))


def view_seen(
    ttl: timedelta, occurred_at: datetime, now: datetime
) -> tuple[tuple[int, ...] | None, datetime | None]:
    """An event id as of ``now``: remembered (counting nothing) until ``ttl`` after its event."""
    forget = occurred_at + ttl
    return ((), forget) if now < forget else (None, None)


def apply_demand(
    state: SkuState | None, fact: Demand, now: datetime, policy: Policy, pages: QueuePages
) -> SkuStep:
    """An order opened (then allocate) or closed its claim on the stock.

    A closed claim stays closed: an opening told again (a fact delivered twice) changes
    nothing, until the policy's ``engine.state_ttl`` after its closing.
    """
    state = _state(state, fact.merchant_id, fact.sku, pages)
    queue = state.queue
    if now - queue.swept >= SWEEP_EVERY:
        horizon = now - policy.state_ttl
        queue.sweep(horizon, pages)
        for order_id in [key for key, at in state.closed_before.items() if at <= horizon]:
            del state.closed_before[order_id]
    if fact.order_id in state.closed_before:
        return SkuStep(state, [])
    position = (fact.placed_at, fact.order_id)
    claim = queue.claim(position, pages)
    if claim is not None and claim.closed_at is not None:
        return SkuStep(state, [])
    if not fact.open:
        closed = claim or Claim(fact.quantity, fact.fulfillment_due)
        queue.put(position, closed._replace(closed_at=fact.at), pages)
        return SkuStep(state, [])
    if claim is None:
        queue.put(position, Claim(fact.quantity, fact.fulfillment_due), pages)
        return SkuStep(state, _allocate(state, fact.trigger_id, now, policy, pages, position))
    return SkuStep(state, _allocate(state, fact.trigger_id, now, policy, pages))


def _allocate(
    state: SkuState,
    trigger_id: str,
    now: datetime,
    policy: Policy,
    pages: QueuePages,
    new: Position | None = None,
) -> list[RecommendationIssued]:
    if state.stock_as_of is None:
        return []
    shorts = state.queue.allocate(state.available, pages, new)
    if not shorts:
        return []
    open_orders = state.queue.open_orders
    stock_as_of = format_utc(state.stock_as_of[0])
    return [
        make_order_recommendation(
            policy,
            reason="STOCKOUT_RISK",
            order_id=order_id,
            merchant_id=state.merchant_id,
            # The n-th time this order went short, not the event that revealed it: the id
            # must not depend on whether the stock level or the order arrived first.
            fact_id=f"stockout:{claim.shortages}",
            now=now,
            due_times={"fulfillment_due": claim.fulfillment_due},
            evidence={
                "sku": state.sku,
                "available": state.available,
                "stock_as_of": stock_as_of,
                "quantity": claim.quantity,
                "units_needed_through_this_order": needed,
                "open_orders": open_orders,
                "placed_at": format_utc(placed_at),
                "shortage": claim.shortages,
                "triggered_by": trigger_id,
            },
        )
        for (placed_at, order_id), claim, needed in shorts
    ]


def view_complaint(
    reviews: tuple[tuple[frozenset[str], timedelta], ...], complaint: SkuComplaint, now: datetime
) -> tuple[tuple[int, ...] | None, datetime | None]:
    """One complaint as of ``now``, for each review (its reasons, its window): counted from its
    filing until the review's window since then has passed."""
    counts: list[int] = []
    upcoming: list[datetime] = []
    filed_at = complaint.filed_at
    for reasons, window in reviews:
        if complaint.reason not in reasons:
            counts.append(0)
        elif now < filed_at:
            counts.append(0)
            upcoming.append(filed_at)
        elif now < filed_at + window:
            counts.append(1)
            upcoming.append(filed_at + window)
        else:
            counts.append(0)
    if not upcoming:
        return None, None
    return tuple(counts), min(upcoming)


def _complaint_view(policy: Policy) -> Callable[[SkuComplaint, datetime], Any]:
    reviews = tuple(getattr(policy, name) for _, name in _REVIEWS)
    return partial(view_complaint, tuple((review.reasons, review.window) for review in reviews))


def _spill_complaints(state: SkuState, policy: Policy, pages: Pages[SkuComplaint]) -> None:
    """Move complaint windows stored before ledgers (keys and filing times) to the pages."""
    windows, state.unspilled_complaints = state.unspilled_complaints, {}
    view = _complaint_view(policy)
    for name, window in windows.items():
        reason = min(getattr(policy, name).reasons)
        for filed_at, key in window.entries:
            order_id, _, complaint_id = key.rpartition("/")
            complaint = SkuComplaint(
                sku_subject(state.merchant_id, state.sku),
                order_id,
                complaint_id,
                state.merchant_id,
                state.sku,
                reason,
                filed_at,
            )
            state.complaints.put(key, complaint, view, pages)
            insort(state.recent.setdefault(name, []), (filed_at, key))
            del state.recent[name][:-RECENT_KEYS]


def apply_complaint(
    state: SkuState | None,
    fact: SkuComplaint,
    now: datetime,
    policy: Policy,
    pages: Pages[SkuComplaint],
) -> SkuStep:
    """Count the complaint in the reviews its reason belongs to; issue on a crossing.

    Each complaint is a timeline of the SKU's complaint ledger, counted in a review until the
    review's window since its filing has passed; one told again (same key) counts once.
    """
    state = _state(state, fact.merchant_id, fact.sku)
    if state.unspilled_complaints:
        _spill_complaints(state, policy, pages)
    counted = [
        (index, reason, name, review)
        for index, (reason, name) in enumerate(_REVIEWS)
        if fact.reason in (review := getattr(policy, name)).reasons
    ]
    if not counted:
        return SkuStep(state, [])
    ledger = state.complaints
    ledger.advance(max(now, fact.filed_at), pages)
    for index, _, name, review in counted:
        crossing = state.crossings.setdefault(name, Crossing())
        if ledger.totals[index] < review.threshold:
            crossing.update(False)
    key = fact.complaint_key()
    if pages.timeline(key) is not None:
        return SkuStep(state, [])  # told again
    ledger.put(key, fact, _complaint_view(policy), pages)
    outputs: list[RecommendationIssued] = []
    for index, reason, name, review in counted:
        horizon = ledger.now - review.window
        recent = state.recent.setdefault(name, [])
        del recent[: bisect_right(recent, (horizon, _LAST))]
        if fact.filed_at <= horizon:
            continue  # filed before the window: not counted
        insort(recent, (fact.filed_at, key))
        del recent[:-RECENT_KEYS]
        crossing = state.crossings[name]
        if crossing.update(ledger.totals[index] >= review.threshold):
            first = ledger.first_change(index, pages)
            assert first is not None  # this complaint's own leaving, at least
            outputs.append(_review(state, reason, review, index, first, crossing, now, policy))
    return SkuStep(state, outputs)


def _review(
    state: SkuState,
    reason: Reason,
    review: SkuReview,
    index: int,
    first_leaves: datetime,
    crossing: Crossing,
    now: datetime,
    policy: Policy,
) -> RecommendationIssued:
    recent = state.recent[_name(reason)]
    evidence: dict[str, Any] = {
        "sku": state.sku,
        "complaints": state.complaints.totals[index],
        "threshold": review.threshold,
        "window_days": review.window.total_seconds() / 86400,
        "counted_reasons": sorted(review.reasons),
        "complaint_keys": [key for _, key in recent],
        "first_filed_at": format_utc(first_leaves - review.window),
        "last_filed_at": format_utc(recent[-1][0]),
    }
    return make_aggregate_recommendation(
        policy,
        reason=reason,
        scope="sku",
        subject=sku_subject(state.merchant_id, state.sku),
        merchant_id=state.merchant_id,
        crossing=crossing.count,
        now=now,
        evidence=evidence,
    )


def _name(reason: Reason) -> str:
    return next(name for known, name in _REVIEWS if known == reason)
