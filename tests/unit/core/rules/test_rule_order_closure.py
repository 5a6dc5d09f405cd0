"""order.cancelled and order.refunded close the order (contract section 2).

None of its pending deadlines fire afterwards: a closure at or before a deadline's due time
suppresses it (the closing event meets nothing else, but the deadline is no longer pending);
a deadline due before the closure still fires.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.unit.core.rules.conftest import Event, Events, Run

T0 = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)  # a Monday
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
US = timedelta(microseconds=1)
RELEASE = T0 + 8 * HOUR
FULFILLMENT_DUE = RELEASE + 120 * HOUR
WARN = FULFILLMENT_DUE - 24 * HOUR
CONFIRMED_DUE = RELEASE + 168 * HOUR
DELIVERY_DUE = T0 + 15 * DAY


def close(ev: Events, kind: str, order_id: str, at: datetime) -> Event:
    if kind == "cancelled":
        return ev.cancelled(order_id, at, by="customer")
    return ev.refunded(order_id, at, reason="auto_refund")


CLOSURES = ["cancelled", "refunded"]


@pytest.mark.parametrize("kind", CLOSURES)
def test_an_order_closed_early_gets_no_deadline_and_no_advice_afterwards(
    ev: Events, run: Run, kind: str
) -> None:
    run.feed(ev.placed("o1", T0), close(ev, kind, "o1", T0 + HOUR))
    fired = run.advance(T0 + 60 * DAY)

    assert fired == []


@pytest.mark.parametrize("kind", CLOSURES)
def test_a_closure_at_exactly_the_fulfillment_due_time_suppresses_its_breach(
    ev: Events, run: Run, kind: str
) -> None:
    run.feed(ev.placed("o1", T0), close(ev, kind, "o1", FULFILLMENT_DUE))
    run.advance(T0 + 60 * DAY)

    assert run.breaches() == []
    assert run.recs("FULFILLMENT_OVERDUE") == []


@pytest.mark.parametrize("kind", CLOSURES)
def test_a_warning_due_before_the_closure_still_fires(ev: Events, run: Run, kind: str) -> None:
    run.feed(ev.placed("o1", T0), close(ev, kind, "o1", FULFILLMENT_DUE))
    run.advance(T0 + 60 * DAY)

    [warning] = run.recs("FULFILLMENT_AT_RISK")
    assert warning.evidence["warned_at"] == "2024-03-08T17:00:00Z"  # WARN


@pytest.mark.parametrize("kind", CLOSURES)
def test_a_closure_one_microsecond_after_the_due_time_lets_that_breach_fire(
    ev: Events, run: Run, kind: str
) -> None:
    run.feed(ev.placed("o1", T0), close(ev, kind, "o1", FULFILLMENT_DUE + US))
    run.advance(T0 + 60 * DAY)

    assert [b.deadline for b in run.breaches()] == ["fulfillment"]


@pytest.mark.parametrize("kind", CLOSURES)
def test_a_closure_at_the_confirmed_due_suppresses_it_but_not_the_earlier_deadline(
    ev: Events, run: Run, kind: str
) -> None:
    run.feed(ev.placed("o1", T0), close(ev, kind, "o1", CONFIRMED_DUE))
    run.advance(T0 + 60 * DAY)

    assert [b.deadline for b in run.breaches()] == ["fulfillment"]


@pytest.mark.parametrize("kind", CLOSURES)
def test_a_closure_after_the_confirmed_due_stops_only_the_delivery_deadline(
    ev: Events, run: Run, kind: str
) -> None:
    run.feed(ev.placed("o1", T0), close(ev, kind, "o1", CONFIRMED_DUE + US))
    run.advance(T0 + 60 * DAY)

    assert [b.deadline for b in run.breaches()] == ["fulfillment", "confirmed_fulfillment"]


@pytest.mark.parametrize("kind", CLOSURES)
def test_a_closure_arriving_after_the_order_breached_does_not_take_it_back(
    ev: Events, run: Run, kind: str
) -> None:
    run.feed(ev.placed("o1", T0))
    run.advance(FULFILLMENT_DUE)
    run.feed(close(ev, kind, "o1", FULFILLMENT_DUE - HOUR))
    run.advance(T0 + 60 * DAY)

    assert [b.deadline for b in run.breaches()] == ["fulfillment"]


@pytest.mark.parametrize("kind", CLOSURES)
def test_a_closed_order_gets_no_complaint_response_breach(ev: Events, run: Run, kind: str) -> None:
    filed = T0 + 2 * DAY
    run.feed(
        ev.placed("o1", T0),
        ev.tracked("o1", T0 + 10 * HOUR),
        ev.scanned("o1", T0 + 11 * HOUR),
        ev.filed("o1", filed, reason="damaged"),
        close(ev, kind, "o1", filed + HOUR),
    )
    run.advance(T0 + 60 * DAY)

    assert run.breaches("complaint_response") == []
    assert run.recs("COMPLAINT_RESPONSE_OVERDUE") == []


@pytest.mark.parametrize("kind", CLOSURES)
def test_a_tracked_order_closed_gets_no_scan_flag(ev: Events, run: Run, kind: str) -> None:
    run.feed(
        ev.placed("o1", T0),
        ev.tracked("o1", RELEASE + HOUR),
        close(ev, kind, "o1", RELEASE + 2 * HOUR),
    )
    run.advance(T0 + 60 * DAY)

    assert run.recs("TRACKING_NOT_SCANNED") == []
    assert run.breaches() == []


@pytest.mark.parametrize("by", ["merchant", "customer", "platform"])
def test_a_cancellation_by_anyone_closes_the_order(ev: Events, run: Run, by: str) -> None:
    run.feed(ev.placed("o1", T0), ev.cancelled("o1", T0 + HOUR, by=by))

    assert run.advance(T0 + 60 * DAY) == []


def test_a_cancellation_arriving_before_its_order_still_closes_it(ev: Events, run: Run) -> None:
    run.feed(ev.cancelled("o1", T0 + 2 * HOUR), ev.placed("o1", T0))

    assert run.advance(T0 + 60 * DAY) == []


def test_a_scan_for_a_cancelled_order_is_applied_or_ignored_never_an_error(
    ev: Events, run: Run
) -> None:
    run.feed(ev.placed("o1", T0), ev.cancelled("o1", T0 + HOUR))
    produced = run.feed(ev.scanned("o1", T0 + 2 * DAY, status="delivered"))

    assert produced == []
    assert run.advance(T0 + 60 * DAY) == []


def test_tracking_that_meets_a_deadline_after_it_fired_is_reported_late() -> None:
    from datetime import UTC, datetime, timedelta

    from streams.core import order
    from streams.core.events import OrderPlaced, TrackingSubmitted, decode_event
    from streams.policy_files import load_policy

    policy = load_policy()
    placed_at = datetime(2026, 1, 5, 10, tzinfo=UTC)
    due = placed_at + timedelta(hours=8 + 120)
    placed = decode_event(
        b'{"event_id":"p","type":"order.placed","occurred_at":"2026-01-05T10:00:00Z",'
        b'"merchant_id":"m","order_id":"o","sku":"s","quantity":1,"unit_price":"1",'
        b'"currency":"USD","destination_country":"US"}'
    )
    tracked = decode_event(
        b'{"event_id":"t","type":"tracking.submitted","occurred_at":"2026-01-10T18:00:00Z",'
        b'"merchant_id":"m","order_id":"o","carrier":"c","tracking_number":"n"}'
    )
    assert isinstance(placed, OrderPlaced)
    assert isinstance(tracked, TrackingSubmitted)
    step = order.apply(None, placed, placed_at, policy)
    assert step.state is not None
    fired = order.fire_due(step.state, due + timedelta(hours=1), policy)
    assert any(getattr(o, "deadline", None) == "fulfillment" for o in fired.outputs)
    assert fired.state is not None
    late = order.apply(fired.state, tracked, due + timedelta(hours=1), policy)
    assert late.late == ("fulfillment",)
    # The breach is not taken back, and not repeated: the late tracking resolves it.
    [resolved] = late.outputs
    assert (resolved.type, getattr(resolved, "resolution", None)) == (
        "deadline.resolved",
        "met_late",
    )
