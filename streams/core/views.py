"""Read-only views of the states, as the HTTP queries answer them (docs/contract.md, "HTTP").

Pure queries: every function here reads the state it is given and leaves it as it was
(``tests/unit/core/test_core_queries.py``). What a view says is derived from the state alone,
never from a clock, so every worker that reads the same state answers the same bytes:

- :func:`order_view`: an order's status, timeline, deadlines and the decisions it got.
- :func:`order_summary` and :func:`order_page`: the rows of a merchant's order list, sorted by
  respond-by, and one page of them after a cursor.
- :func:`merchant_view`: the store's health measures against the policy's thresholds.

What the state does not keep, a view does not invent: a decision's ``at`` is the moment it was
due (the processor's clock when it fired is not stored), and recommendations issued by the
SKU aggregate about an order (``STOCKOUT_RISK``) are not in the order's state.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final, Literal, TypeAlias

from streams.core.dates import format_utc
from streams.core.ids import (
    aggregate_recommendation_id,
    breach_id,
    order_recommendation_id,
    resolution_id,
)
from streams.core.merchant import _METRICS, ORDERS, MerchantState
from streams.core.order import (
    CONFIRMED_FULFILLMENT,
    DELIVERY,
    FULFILLMENT,
    FULFILLMENT_WARNING,
    Complaint,
    OrderState,
    resolution_of,
)
from streams.core.policy import Policy

__all__ = [
    "ORDER_STATUSES",
    "OrderStatus",
    "decode_cursor",
    "encode_cursor",
    "merchant_view",
    "order_page",
    "order_summary",
    "order_view",
    "sort_key",
]

OrderStatus: TypeAlias = Literal["open", "at_risk", "breached", "closed"]
ORDER_STATUSES: Final = ("open", "at_risk", "breached", "closed")
DeadlineState: TypeAlias = Literal["pending", "met", "breached", "resolved"]

#: The breach reason of each deadline (as :func:`streams.core.order._breach` names it).
_BREACH_REASONS: Final = MappingProxyType(
    {
        FULFILLMENT: "FULFILLMENT_OVERDUE",
        CONFIRMED_FULFILLMENT: "CONFIRMATION_OVERDUE",
        DELIVERY: "DELIVERY_OVERDUE",
        "complaint_response": "COMPLAINT_RESPONSE_OVERDUE",
    }
)
#: Sorts after every real time: rows with neither respond-by nor a due deadline go last.
_NEVER: Final = "9999-12-31T23:59:59Z"


# -- orders ---------------------------------------------------------------------------------


class _Deadline:
    """One deadline of the order as the view reads it."""

    __slots__ = ("complaint_id", "due_at", "key", "met_at", "name")

    def __init__(
        self,
        name: str,
        key: str,
        due_at: datetime,
        met_at: datetime | None,
        complaint_id: str | None = None,
    ) -> None:
        self.name = name
        self.key = key
        self.due_at = due_at
        self.met_at = met_at
        self.complaint_id = complaint_id

    def state(self, order: OrderState) -> DeadlineState | None:
        """pending, met, breached or resolved; None when the order's end made it moot (it was
        cancelled or refunded before the deadline was due, and the deadline was not met)."""
        if self.key in order.fired:
            # Resolved once the core has emitted its deadline.resolved (the clock reached the
            # late event that met it, or the order's end): the view says what the outputs say.
            return "resolved" if self.key in order.resolved else "breached"
        if self.met_at is not None and self.met_at <= self.due_at:
            return "met"
        if order.closed_at is not None and order.closed_at <= self.due_at:
            return None
        return "pending"


def _answered(complaint: Complaint) -> datetime | None:
    times = [t for t in (complaint.responded_at, complaint.resolved_at) if t is not None]
    return min(times) if times else None


def _deadlines(state: OrderState, policy: Policy) -> list[_Deadline]:
    found: list[_Deadline] = []
    placement = state.placement
    if placement is not None:
        found.append(
            _Deadline(FULFILLMENT, FULFILLMENT, placement.fulfillment_due, state.first_tracking_at)
        )
        found.append(
            _Deadline(
                CONFIRMED_FULFILLMENT,
                CONFIRMED_FULFILLMENT,
                placement.confirmed_due,
                state.first_scan_at,
            )
        )
        found.append(_Deadline(DELIVERY, DELIVERY, placement.delivery_due, state.delivered_at))
    for complaint in sorted(state.complaints.values(), key=lambda c: c.complaint_id):
        if complaint.filed_at is None:
            continue
        found.append(
            _Deadline(
                "complaint_response",
                complaint.deadline_key,
                complaint.filed_at + policy.complaint_response,
                _answered(complaint),
                complaint.complaint_id,
            )
        )
    found.sort(key=lambda d: (d.due_at, d.name, d.complaint_id or ""))
    return found


def _due_times(state: OrderState, complaint: Complaint | None, policy: Policy) -> dict[str, Any]:
    placement = state.placement
    filed_at = complaint.filed_at if complaint is not None else None
    return {
        "fulfillment_due": placement.fulfillment_due if placement else None,
        "confirmed_fulfillment_due": placement.confirmed_due if placement else None,
        "complaint_response_due": None
        if filed_at is None
        else filed_at + policy.complaint_response,
    }


def _recommendation(
    state: OrderState,
    policy: Policy,
    reason: str,
    fact_id: str,
    at: datetime,
    complaint: Complaint | None = None,
) -> dict[str, Any]:
    spec = policy.recommendations[reason]
    decision: dict[str, Any] = {
        "type": "recommendation.issued",
        "id": order_recommendation_id(state.order_id, reason, fact_id),
        "at": format_utc(at),
        "reason": reason,
        "severity": spec.severity,
    }
    if spec.respond_by is not None:
        respond_by = _due_times(state, complaint, policy).get(spec.respond_by)
        if respond_by is not None:
            decision["respond_by"] = format_utc(respond_by)
    return decision


def _decisions(
    state: OrderState, policy: Policy, deadlines: list[_Deadline]
) -> list[dict[str, Any]]:
    """The breaches, their resolutions and the recommendations the order got, as its ``fired``
    and ``resolved`` sets record them."""
    decisions: list[dict[str, Any]] = []
    fired = state.fired
    placement = state.placement
    if placement is not None and FULFILLMENT_WARNING in fired:
        decisions.append(
            _recommendation(
                state, policy, "FULFILLMENT_AT_RISK", FULFILLMENT_WARNING, placement.warning_at
            )
        )
    for tracking in state.trackings:
        if tracking.deadline_key in fired:
            decisions.append(
                _recommendation(
                    state,
                    policy,
                    "TRACKING_NOT_SCANNED",
                    tracking.event_id,
                    tracking.occurred_at + policy.tracking_scan,
                )
            )
    for complaint in state.complaints.values():
        if complaint.advice_key in fired and complaint.filed_at and complaint.reason:
            decisions.append(
                _recommendation(
                    state,
                    policy,
                    f"COMPLAINT_{complaint.reason.upper()}",
                    complaint.complaint_id,
                    complaint.filed_at,
                    complaint,
                )
            )
    for deadline in deadlines:
        if deadline.key not in fired:
            continue
        breach: dict[str, Any] = {
            "type": "deadline.breached",
            "id": breach_id(state.order_id, deadline.name, deadline.complaint_id),
            "at": format_utc(deadline.due_at),
            "deadline": deadline.name,
        }
        if deadline.complaint_id is not None:
            breach["complaint_id"] = deadline.complaint_id
        decisions.append(breach)
        resolved = (
            resolution_of(state, deadline.key, policy) if deadline.key in state.resolved else None
        )
        if resolved is not None:
            decisions.append(
                {
                    "type": "deadline.resolved",
                    "id": resolution_id(breach["id"]),
                    "at": format_utc(resolved[0]),
                    "deadline": deadline.name,
                    "resolution": resolved[1],
                }
            )
        decisions.append(
            _recommendation(
                state,
                policy,
                _BREACH_REASONS[deadline.name],
                breach["id"],
                deadline.due_at,
                state.complaints.get(deadline.complaint_id or ""),
            )
        )
    decisions.sort(key=lambda d: (d["at"], d["type"], d["id"]))
    return decisions


def _timeline(state: OrderState) -> list[dict[str, Any]]:
    """What happened to the order, as far as its state remembers (each input's earliest)."""
    rows: list[tuple[datetime, str, str]] = []
    placement = state.placement
    if placement is not None:
        rows.append(
            (
                placement.placed_at,
                "order.placed",
                f"{placement.quantity} × {placement.sku} to {placement.country} "
                f"({placement.program}), released {format_utc(placement.released_at)}",
            )
        )
    for tracking in state.trackings:
        rows.append(
            (tracking.occurred_at, "tracking.submitted", f"{tracking.carrier} {tracking.number}")
        )
    for number, at in state.scans_by_number.items():
        rows.append((at, "carrier.scanned", f"first scan of {number}"))
    if state.delivered_at is not None:
        rows.append((state.delivered_at, "carrier.scanned", "delivered"))
    for complaint in state.complaints.values():
        cid = complaint.complaint_id
        if complaint.filed_at is not None:
            photos = f", {complaint.photos} photo(s)" if complaint.photos else ""
            rows.append(
                (
                    complaint.filed_at,
                    "complaint.filed",
                    f"{cid}: {complaint.reason}, asks for {complaint.requested}{photos}",
                )
            )
        if complaint.responded_at is not None:
            rows.append((complaint.responded_at, "complaint.responded", cid))
        if complaint.resolved_at is not None:
            outcome = f": {complaint.outcome}" if complaint.outcome else ""
            rows.append((complaint.resolved_at, "complaint.resolved", f"{cid}{outcome}"))
    if state.refunded_at is not None:
        rows.append((state.refunded_at, "order.refunded", "refunded"))
    if state.closed_at is not None and state.closed_at != state.refunded_at:
        by = "the merchant" if state.merchant_cancelled_at == state.closed_at else "the customer"
        rows.append((state.closed_at, "order.cancelled", f"cancelled by {by}"))
    rows.sort()
    return [{"at": format_utc(at), "event": event, "detail": detail} for at, event, detail in rows]


def _status(
    state: OrderState, deadlines: list[tuple[_Deadline, DeadlineState]], respond_by: str | None
) -> OrderStatus:
    """breached: a deadline breached and not resolved; closed: cancelled or refunded, or
    nothing left pending; at_risk: a recommendation about a deadline still pending (its
    respond-by is that deadline); else open."""
    states = {s for _, s in deadlines}
    if "breached" in states:
        return "breached"
    if state.placement is None and state.closed_at is None:
        return "open"  # its order.placed has not arrived (yet)
    if state.closed_at is not None or "pending" not in states:
        return "closed"
    return "at_risk" if respond_by is not None else "open"


def _respond_by(
    decisions: list[dict[str, Any]], deadlines: list[tuple[_Deadline, DeadlineState]]
) -> str | None:
    """The earliest respond-by among the recommendations whose deadline is still open
    (pending or breached): what the merchant must act on first."""
    open_dues = {format_utc(d.due_at) for d, s in deadlines if s in ("pending", "breached")}
    candidates = [
        d["respond_by"]
        for d in decisions
        if d["type"] == "recommendation.issued" and d.get("respond_by") in open_dues
    ]
    return min(candidates, default=None)


def order_view(state: OrderState, policy: Policy) -> dict[str, Any]:
    """``GET /orders/{order_id}``: the order as its state holds it."""
    listed = [(d, s) for d in _deadlines(state, policy) if (s := d.state(state)) is not None]
    decisions = _decisions(state, policy, [d for d, _ in listed])
    respond_by = _respond_by(decisions, listed)
    placement = state.placement
    view: dict[str, Any] = {
        "order_id": state.order_id,
        "merchant_id": state.merchant_id,
        "status": _status(state, listed, respond_by),
        "placed_at": None if placement is None else format_utc(placement.placed_at),
        "released_at": None if placement is None else format_utc(placement.released_at),
        "timeline": _timeline(state),
        "deadlines": [_deadline_json(d, s) for d, s in listed],
        "decisions": decisions,
    }
    if respond_by is not None:
        view["respond_by"] = respond_by
    next_due = min((format_utc(d.due_at) for d, s in listed if s == "pending"), default=None)
    if next_due is not None:
        view["next_due"] = next_due
    return view


def _deadline_json(deadline: _Deadline, state: DeadlineState) -> dict[str, Any]:
    row: dict[str, Any] = {
        "deadline": deadline.name,
        "due_at": format_utc(deadline.due_at),
        "state": state,
    }
    if deadline.complaint_id is not None:
        row["complaint_id"] = deadline.complaint_id
    if deadline.met_at is not None and state in ("met", "resolved"):
        row["met_at"] = format_utc(deadline.met_at)
    return row


def order_summary(state: OrderState, policy: Policy) -> dict[str, Any]:
    """One row of a merchant's order list: id, status, respond_by and next_due (if any)."""
    view = order_view(state, policy)
    row = {"order_id": view["order_id"], "status": view["status"]}
    for name in ("respond_by", "next_due"):
        if name in view:
            row[name] = view[name]
    return row


def sort_key(row: dict[str, Any]) -> tuple[str, str, str]:
    """How a merchant's order list is sorted: respond-by, then the next due deadline (rows
    with neither last), then the order id. Timestamps are UTC text of one format, so they
    sort as text."""
    return (row.get("respond_by") or _NEVER, row.get("next_due") or _NEVER, row["order_id"])


def encode_cursor(row: dict[str, Any]) -> str:
    """An opaque cursor: the page continues after ``row``."""
    text = json.dumps(list(sort_key(row)), separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str, str]:
    """The sort key a cursor continues after; ValueError if it is not one of ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        raise ValueError("the cursor is not one this API gave out") from None
    if not (isinstance(key, list) and len(key) == 3 and all(isinstance(k, str) for k in key)):
        raise ValueError("the cursor is not one this API gave out")
    return key[0], key[1], key[2]


def order_page(
    rows: Iterable[dict[str, Any]],
    *,
    status: str | None,
    limit: int,
    after: tuple[str, str, str] | None,
) -> tuple[list[dict[str, Any]], bool]:
    """The first ``limit`` rows after ``after`` in :func:`sort_key` order whose status is
    ``status`` (None: every status but closed), and whether more follow."""
    wanted = [
        row
        for row in rows
        if (row["status"] == status if status is not None else row["status"] != "closed")
        and (after is None or sort_key(row) > after)
    ]
    wanted.sort(key=sort_key)
    return wanted[:limit], len(wanted) > limit


# -- merchants ------------------------------------------------------------------------------


def merchant_view(state: MerchantState, policy: Policy) -> dict[str, Any]:
    """``GET /merchants/{merchant_id}``: the store's measures as of the merchant's clock,
    with whole counts beside each rate, and the recommendations still open (a measure over
    its threshold since its last crossing)."""
    totals = state.orders.totals
    in_window = totals[ORDERS]
    enough = in_window >= policy.store_min_orders
    health: list[dict[str, Any]] = []
    open_recommendations: list[dict[str, Any]] = []
    for check in policy.store_checks:
        top, bottom = _METRICS[check.metric]
        count, of = totals[top], totals[bottom]
        rate = None if of == 0 else float((Decimal(count) / of).quantize(Decimal("0.0001")))
        health.append(
            {
                "measure": check.name,
                "metric": check.metric,
                "rate": rate,
                "count": count,
                "of": of,
                "comparison": check.comparison,
                "threshold": float(check.threshold),
                "severity": check.severity,
                "at_risk": bool(enough and of > 0 and check.breached(count, of)),
            }
        )
        crossing = state.crossings.get(check.name)
        if crossing is not None and crossing.above:
            open_recommendations.append(
                {
                    "recommendation_id": aggregate_recommendation_id(
                        "merchant",
                        state.merchant_id,
                        f"STORE_HEALTH_AT_RISK/{check.name}",
                        crossing.count,
                    ),
                    "reason": "STORE_HEALTH_AT_RISK",
                    "measure": check.name,
                    "severity": check.severity,
                    "crossing": crossing.count,
                }
            )
    return {
        "merchant_id": state.merchant_id,
        "as_of": format_utc(state.orders.now),
        "window_days": policy.store_window.total_seconds() / 86400,
        "min_orders": policy.store_min_orders,
        "orders_in_window": in_window,
        "health": health,
        "open_recommendations": open_recommendations,
    }
