"""wish.release: an order is released to the seller 8 h after it is placed (fraud review).

Deadlines count from release unless the event carries ``released_at``, which then replaces the
delay. The fulfillment deadline (release + 5 days = 120 h) makes the release visible.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.unit.core.rules.conftest import Events, Run

T0 = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)  # a Monday
HOUR = timedelta(hours=1)
RELEASE = 8 * HOUR  # policy.md wish.release
FULFILLMENT = 120 * HOUR  # policy.md wish.fulfillment: 5 calendar days


def test_the_fulfillment_deadline_counts_from_8_hours_after_placement(ev: Events, run: Run) -> None:
    run.feed(ev.placed("o1", T0))
    run.advance(T0 + 300 * HOUR)

    [breach] = run.breaches("fulfillment")
    assert breach.due_at == T0 + RELEASE + FULFILLMENT == datetime(2024, 3, 9, 17, 0, tzinfo=UTC)


def test_the_evidence_shows_the_release_8_hours_after_placement(ev: Events, run: Run) -> None:
    run.feed(ev.placed("o1", T0))
    run.advance(T0 + 300 * HOUR)

    [overdue] = run.recs("FULFILLMENT_OVERDUE")
    assert overdue.evidence["placed_at"] == "2024-03-04T09:00:00Z"
    assert overdue.evidence["released_at"] == "2024-03-04T17:00:00Z"


def test_released_at_on_the_event_replaces_the_8_hour_delay(ev: Events, run: Run) -> None:
    released = T0 + 2 * HOUR + timedelta(minutes=30)
    run.feed(ev.placed("o1", T0, released_at=released))
    run.advance(T0 + 300 * HOUR)

    [breach] = run.breaches("fulfillment")
    assert breach.due_at == released + FULFILLMENT


def test_a_release_later_than_8_hours_pushes_the_deadline_out(ev: Events, run: Run) -> None:
    released = T0 + 30 * HOUR
    run.feed(ev.placed("o1", T0, released_at=released))
    run.advance(released + FULFILLMENT - timedelta(microseconds=1))
    assert run.breaches("fulfillment") == []

    fired = run.advance(released + FULFILLMENT)
    assert [b.due_at for b in run.breaches("fulfillment", outputs=fired)] == [
        released + FULFILLMENT
    ]


def test_released_at_with_an_offset_is_the_same_instant_in_utc(ev: Events, run: Run) -> None:
    run.feed(ev.placed("o1", T0, released_at="2024-03-04T12:00:00+02:00"))
    run.advance(T0 + 300 * HOUR)

    [breach] = run.breaches("fulfillment")
    assert breach.due_at == datetime(2024, 3, 4, 10, 0, tzinfo=UTC) + FULFILLMENT
