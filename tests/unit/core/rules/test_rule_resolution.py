"""deadline.resolved: a breached order later meets the deadline, or ends.

Contract §3: once per breach, when the event that meets its deadline comes after the breach
(tracking, a carrier scan, delivery, a complaint's response or resolution: ``met_late``) or the
order ends (delivered, refunded, cancelled: every open breach). Like a deadline, it is decided
once the clock reaches the resolving event (the earliest, whatever the arrival order);
``resolved_at`` is that event's occurred_at, ``detected_at`` the clock; the id is from the
breach's id alone. ``run.step`` feeds events and moves the clock to the latest of them.
Numbers from policy.md: fulfillment 120 h after release (placement + 8 h), confirmed
fulfillment 168 h after release (low value), US standard delivery 15 days after placement,
complaint response 48 h after filing; the clock stays 5 min behind the latest event.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from hashlib import sha256
from typing import TYPE_CHECKING

from streams.core.ids import breach_id

if TYPE_CHECKING:
    from tests.unit.core.rules.conftest import Events, Run

T0 = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)  # a Monday
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)
RELEASE = T0 + 8 * HOUR
FULFILLMENT_DUE = RELEASE + 120 * HOUR
CONFIRMED_DUE = RELEASE + 168 * HOUR
DELIVERY_DUE = T0 + 15 * DAY
LATENESS = 5 * MINUTE


def _id(*parts: str) -> str:
    return sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def test_tracking_after_a_fulfillment_breach_resolves_it_as_met_late(ev: Events, run: Run) -> None:
    run.feed(ev.placed("o1", T0))
    run.advance(FULFILLMENT_DUE + HOUR)
    [breach] = run.breaches("fulfillment")
    assert run.resolutions() == []

    tracked = ev.tracked("o1", FULFILLMENT_DUE + 2 * HOUR)
    assert run.resolutions(outputs=run.feed(tracked)) == []  # the clock is 5 min behind it
    produced = run.advance(FULFILLMENT_DUE + 2 * HOUR)

    [resolution] = run.resolutions(outputs=produced)
    assert resolution.type == "deadline.resolved"
    assert resolution.breach_id == breach.breach_id == breach_id("o1", "fulfillment")
    assert resolution.resolution_id == _id("resolved", breach.breach_id)
    assert (resolution.order_id, resolution.merchant_id) == ("o1", "m1")
    assert (resolution.deadline, resolution.rule) == ("fulfillment", "wish.fulfillment")
    assert resolution.complaint_id is None
    assert resolution.resolution == "met_late"
    assert resolution.resolved_at == FULFILLMENT_DUE + 2 * HOUR
    assert resolution.detected_at == FULFILLMENT_DUE + 2 * HOUR
    assert (resolution.policy.name, resolution.policy.version) == ("wish", "2021.1")


def test_a_scan_after_a_confirmed_fulfillment_breach_resolves_it(ev: Events, run: Run) -> None:
    run.feed(ev.placed("o1", T0), ev.tracked("o1", RELEASE + HOUR))
    run.advance(CONFIRMED_DUE + HOUR)
    assert len(run.breaches("confirmed_fulfillment")) == 1

    run.step(ev.scanned("o1", CONFIRMED_DUE + 3 * HOUR, status="in_transit"))

    [resolution] = run.resolutions()
    assert resolution.deadline == "confirmed_fulfillment"
    assert resolution.rule == "wish.confirmed_fulfillment"
    assert resolution.resolution == "met_late"
    assert resolution.resolved_at == CONFIRMED_DUE + 3 * HOUR


def test_delivery_after_a_delivery_breach_resolves_it_as_delivered(ev: Events, run: Run) -> None:
    run.feed(
        ev.placed("o1", T0),
        ev.tracked("o1", RELEASE + HOUR),
        ev.scanned("o1", RELEASE + 2 * HOUR),
    )
    run.advance(DELIVERY_DUE + HOUR)
    assert len(run.breaches("delivery")) == 1
    assert run.resolutions() == []

    run.step(ev.scanned("o1", DELIVERY_DUE + 2 * DAY, status="delivered"))

    [resolution] = run.resolutions()
    assert (resolution.deadline, resolution.rule) == ("delivery", "wish.delivery")
    assert resolution.resolution == "delivered"
    assert resolution.resolved_at == DELIVERY_DUE + 2 * DAY


def test_a_response_after_a_complaint_breach_resolves_that_complaints_breach(
    ev: Events, run: Run
) -> None:
    filed = T0 + 2 * DAY
    run.feed(
        ev.placed("o1", T0),
        ev.tracked("o1", RELEASE + HOUR),
        ev.filed("o1", filed, complaint_id="c1"),
        ev.filed("o1", filed, complaint_id="c2"),
    )
    run.advance(filed + 49 * HOUR)
    assert len(run.breaches("complaint_response")) == 2

    run.step(ev.responded("o1", filed + 50 * HOUR, complaint_id="c2"))
    [resolution] = run.resolutions()
    assert resolution.complaint_id == "c2"
    assert resolution.breach_id == breach_id("o1", "complaint_response", "c2")
    assert resolution.rule == "wish.complaint_response"
    assert resolution.resolution == "met_late"

    run.step(ev.resolved("o1", filed + 51 * HOUR, complaint_id="c1"))
    assert [r.complaint_id for r in run.resolutions()] == ["c2", "c1"]


def test_a_refund_resolves_every_open_breach_of_the_order(ev: Events, run: Run) -> None:
    run.feed(ev.placed("o1", T0))
    run.advance(CONFIRMED_DUE + HOUR)
    assert {b.deadline for b in run.breaches()} == {"fulfillment", "confirmed_fulfillment"}

    run.step(ev.refunded("o1", CONFIRMED_DUE + 2 * HOUR))

    resolved = {r.deadline: r for r in run.resolutions()}
    assert set(resolved) == {"fulfillment", "confirmed_fulfillment"}
    assert {r.resolution for r in resolved.values()} == {"refunded"}
    assert {r.resolved_at for r in resolved.values()} == {CONFIRMED_DUE + 2 * HOUR}


def test_a_cancellation_resolves_the_open_breach_as_cancelled(ev: Events, run: Run) -> None:
    run.feed(ev.placed("o1", T0))
    run.advance(FULFILLMENT_DUE + HOUR)

    run.step(ev.cancelled("o1", FULFILLMENT_DUE + 2 * HOUR, by="customer"))

    [resolution] = run.resolutions()
    assert (resolution.deadline, resolution.resolution) == ("fulfillment", "cancelled")


def test_delivery_resolves_the_breaches_still_open_once_the_order_ends(
    ev: Events, run: Run
) -> None:
    run.feed(ev.placed("o1", T0))
    run.advance(FULFILLMENT_DUE + HOUR)
    run.step(ev.tracked("o1", FULFILLMENT_DUE + 2 * HOUR))  # fulfillment: met late
    run.advance(CONFIRMED_DUE + HOUR)  # confirmed fulfillment: no scan yet
    assert {b.deadline for b in run.breaches()} == {"fulfillment", "confirmed_fulfillment"}

    run.step(ev.scanned("o1", CONFIRMED_DUE + 2 * DAY, status="delivered"))

    by_deadline = {r.deadline: r.resolution for r in run.resolutions()}
    assert by_deadline == {"fulfillment": "met_late", "confirmed_fulfillment": "delivered"}


def test_each_breach_is_resolved_once_whatever_follows(ev: Events, run: Run) -> None:
    run.feed(ev.placed("o1", T0))
    run.advance(FULFILLMENT_DUE + HOUR)
    tracked = ev.tracked("o1", FULFILLMENT_DUE + 2 * HOUR)
    run.feed(tracked)

    run.feed(
        tracked,  # a duplicate
        ev.tracked("o1", FULFILLMENT_DUE + 3 * HOUR, number="TN-2"),
        ev.refunded("o1", FULFILLMENT_DUE + 4 * HOUR),
    )
    run.advance(FULFILLMENT_DUE + 60 * DAY)

    assert [r.deadline for r in run.resolutions()] == ["fulfillment"]


def test_a_deadline_met_in_time_has_neither_breach_nor_resolution(ev: Events, run: Run) -> None:
    run.feed(ev.placed("o1", T0), ev.tracked("o1", FULFILLMENT_DUE))
    run.feed(ev.scanned("o1", FULFILLMENT_DUE + HOUR, status="delivered"))
    run.advance(T0 + 60 * DAY)

    assert run.breaches() == []
    assert run.resolutions() == []


def test_a_breach_whose_late_event_was_applied_before_it_fired_is_resolved_as_it_fires(
    ev: Events, run: Run
) -> None:
    run.feed(ev.placed("o1", T0))
    run.advance(FULFILLMENT_DUE - 10 * MINUTE)
    # After the due time, applied while the clock (5 min behind) has not reached it yet.
    run.feed(ev.tracked("o1", FULFILLMENT_DUE + MINUTE))
    assert run.breaches() == []

    produced = run.advance(FULFILLMENT_DUE + HOUR)

    kinds = [o.type for o in produced if o.type != "recommendation.issued"]
    assert kinds == ["deadline.breached", "deadline.resolved"]
    [resolution] = run.resolutions(outputs=produced)
    assert resolution.resolution == "met_late"
    assert resolution.resolved_at == FULFILLMENT_DUE + MINUTE
    assert resolution.detected_at == FULFILLMENT_DUE + HOUR


def test_a_tracking_in_time_that_arrives_after_the_breach_resolves_it(ev: Events, run: Run) -> None:
    run.feed(ev.placed("o1", T0))
    run.advance(FULFILLMENT_DUE + HOUR)

    run.feed(ev.tracked("o1", FULFILLMENT_DUE - HOUR))  # met the deadline, arrived too late

    [resolution] = run.resolutions()
    assert resolution.resolution == "met_late"
    assert resolution.resolved_at == FULFILLMENT_DUE - HOUR


def test_a_delivery_before_a_complaint_was_due_does_not_answer_it(ev: Events, run: Run) -> None:
    filed = T0 + 2 * DAY
    run.feed(
        ev.placed("o1", T0),
        ev.tracked("o1", RELEASE + HOUR),
        ev.filed("o1", filed, reason="not_received"),
        ev.scanned("o1", filed + HOUR, status="delivered"),
    )
    run.advance(filed + 49 * HOUR)
    assert len(run.breaches("complaint_response")) == 1
    assert run.resolutions() == []

    run.step(ev.refunded("o1", filed + 50 * HOUR))
    [resolution] = run.resolutions()
    assert (resolution.deadline, resolution.resolution) == ("complaint_response", "refunded")


def test_the_earliest_resolving_event_resolves_the_breach_whatever_the_arrival_order(
    ev: Events, run: Run
) -> None:
    run.feed(ev.placed("o1", T0))
    run.advance(FULFILLMENT_DUE + HOUR)
    # The refund arrives first, the earlier tracking 2 min later (within the allowed lateness).
    run.feed(ev.refunded("o1", FULFILLMENT_DUE + 2 * HOUR + 2 * MINUTE))
    run.feed(ev.tracked("o1", FULFILLMENT_DUE + 2 * HOUR))
    run.advance(FULFILLMENT_DUE + 3 * HOUR)

    [resolution] = run.resolutions()
    assert resolution.resolution == "met_late"
    assert resolution.resolved_at == FULFILLMENT_DUE + 2 * HOUR
