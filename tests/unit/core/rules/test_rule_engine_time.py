"""engine.allowed_lateness, engine.state_ttl and duplicates (policy.md, contract sections 2 and 4).

- The event-time clock is the largest occurred_at minus 5 minutes, so an event up to 5 minutes
  out of order still meets its deadline; a deadline fires once the clock reaches it.
- An order's state (and its memory of event ids) is dropped 90 days after its last event.
- A repeated event_id is a duplicate and changes nothing (the first event seen is kept).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.unit.core.rules.conftest import Event, Events, Run

T0 = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)  # a Monday
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
US = timedelta(microseconds=1)
LATENESS = 5 * MINUTE
TTL = 90 * DAY
FULFILLMENT_DUE = T0 + 8 * HOUR + 120 * HOUR


# -- engine.allowed_lateness --------------------------------------------------------------------


def test_the_clock_stays_5_minutes_behind_the_largest_occurred_at(ev: Events, run: Run) -> None:
    run.feed(ev.placed("o1", T0))
    assert run.clock == T0 - LATENESS

    run.feed(ev.placed("o2", T0 - HOUR))
    assert run.clock == T0 - LATENESS

    run.feed(ev.placed("o3", T0 + HOUR))
    assert run.clock == T0 + HOUR - LATENESS


def test_an_event_4_minutes_late_still_meets_its_deadline(ev: Events, run: Run) -> None:
    run.feed(ev.placed("o1", T0), ev.placed("o2", FULFILLMENT_DUE + 4 * MINUTE))
    run.feed(ev.tracked("o1", FULFILLMENT_DUE))
    run.advance(FULFILLMENT_DUE + HOUR)

    assert run.breaches("fulfillment", order_id="o1") == []


def test_a_deadline_fires_once_the_largest_occurred_at_is_5_minutes_past_it(
    ev: Events, run: Run
) -> None:
    run.feed(ev.placed("o1", T0))
    before = run.feed(ev.placed("o2", FULFILLMENT_DUE + LATENESS - US))
    assert run.breaches("fulfillment", outputs=before) == []

    at = run.feed(ev.placed("o3", FULFILLMENT_DUE + LATENESS))

    [breach] = run.breaches("fulfillment", outputs=at)
    assert breach.detected_at == FULFILLMENT_DUE


def test_an_event_meeting_a_deadline_after_it_fired_does_not_take_the_breach_back(
    ev: Events, run: Run
) -> None:
    run.feed(ev.placed("o1", T0), ev.placed("o2", FULFILLMENT_DUE + 6 * MINUTE))
    assert len(run.breaches("fulfillment", order_id="o1")) == 1

    produced = run.feed(ev.tracked("o1", FULFILLMENT_DUE - HOUR))
    run.advance(FULFILLMENT_DUE + DAY)

    # The breach stands; what the late event brings is its resolution (met late), nothing else.
    assert [(o.type, getattr(o, "resolution", None)) for o in produced] == [
        ("deadline.resolved", "met_late")
    ]
    assert len(run.breaches("fulfillment", order_id="o1")) == 1


def test_an_order_arriving_with_deadlines_behind_the_clock_is_checked_at_once(
    ev: Events, run: Run
) -> None:
    run.feed(ev.placed("other", T0 + 10 * DAY))
    produced = run.feed(ev.placed("o1", T0))

    assert [b.deadline for b in run.breaches(order_id="o1", outputs=produced)] == [
        "fulfillment",
        "confirmed_fulfillment",
    ]


def test_a_late_order_whose_meeting_event_was_already_applied_does_not_breach(
    ev: Events, run: Run
) -> None:
    run.feed(ev.placed("other", T0 + 10 * DAY), ev.tracked("o1", T0 + 20 * HOUR))
    produced = run.feed(ev.placed("o1", T0))

    assert [b.deadline for b in run.breaches(order_id="o1", outputs=produced)] == [
        "confirmed_fulfillment"
    ]


def test_advancing_the_clock_never_moves_it_back(ev: Events, run: Run) -> None:
    run.feed(ev.placed("o1", T0))
    run.advance(T0 + DAY)
    run.advance(T0)

    assert run.clock == T0 + DAY


# -- engine.state_ttl ---------------------------------------------------------------------------


def lifecycle(ev: Events) -> tuple[list[Event], Event, datetime]:
    """An order fully served; its last event is the complaint 10 days after placement."""
    last = T0 + 10 * DAY
    complaint = ev.filed("o1", last, reason="other", event_id="filed-1")
    events = [
        ev.placed("o1", T0),
        ev.tracked("o1", T0 + 9 * HOUR),
        ev.scanned("o1", T0 + 10 * HOUR),
        ev.scanned("o1", T0 + 5 * DAY, status="delivered"),
        ev.responded("o1", last - HOUR, complaint_id="c1"),  # answered even before it is filed
        complaint,
    ]
    return events, complaint, last


def test_the_order_state_is_kept_until_90_days_after_its_last_event(ev: Events, run: Run) -> None:
    events, _, last = lifecycle(ev)
    run.feed(*events)

    run.advance(last + TTL - US)
    assert "o1" in run.engine.orders

    run.advance(last + TTL)
    assert "o1" not in run.engine.orders


def test_a_repeated_event_id_within_90_days_is_a_duplicate(ev: Events, run: Run) -> None:
    events, complaint, last = lifecycle(ev)
    run.feed(*events)
    run.advance(last + TTL - US)

    assert run.feed(complaint) == []
    assert run.engine.stats.duplicates == 1


def test_a_repeated_event_id_after_90_days_is_treated_as_new(ev: Events, run: Run) -> None:
    events, complaint, last = lifecycle(ev)
    run.feed(*events)
    run.advance(last + TTL)

    produced = run.feed(complaint)

    assert [r.reason for r in run.recs(outputs=produced)][:1] == ["COMPLAINT_OTHER"]
    assert run.engine.stats.duplicates == 0


def test_the_90_days_count_from_the_last_event_not_from_placement(ev: Events, run: Run) -> None:
    events, _, last = lifecycle(ev)
    run.feed(*events)
    run.advance(T0 + TTL)  # 90 days after placement, 80 after the last event

    assert "o1" in run.engine.orders
    run.advance(last + TTL)
    assert "o1" not in run.engine.orders


# -- duplicates ---------------------------------------------------------------------------------


def test_a_repeated_placement_changes_nothing(ev: Events, run: Run) -> None:
    placed = ev.placed("o1", T0)
    run.feed(placed)

    assert run.feed(placed) == []
    run.advance(FULFILLMENT_DUE)
    assert len(run.breaches("fulfillment")) == 1


def test_a_repeated_complaint_event_issues_no_second_recommendation(ev: Events, run: Run) -> None:
    filed = ev.filed("o1", T0 + DAY, reason="damaged")
    run.feed(ev.placed("o1", T0), filed)

    assert run.feed(filed) == []
    run.advance(T0 + 3 * DAY)
    assert len(run.recs("COMPLAINT_DAMAGED")) == 1


def test_a_repeated_event_id_keeps_the_first_event_seen(ev: Events, run: Run) -> None:
    run.feed(
        ev.placed("o1", T0),
        ev.tracked("o1", FULFILLMENT_DUE + MINUTE, event_id="track-1"),  # late
        ev.tracked("o1", FULFILLMENT_DUE - DAY, event_id="track-1"),  # same id, on time
    )
    run.advance(FULFILLMENT_DUE + DAY)

    assert len(run.breaches("fulfillment")) == 1


def test_a_repeated_inventory_event_id_with_another_level_changes_nothing(
    ev: Events, run: Run
) -> None:
    run.feed(
        ev.inventory(T0, available=5, event_id="stock-1"),
        ev.inventory(T0 + MINUTE, available=0, event_id="stock-1"),
        ev.placed("o1", T0 + 2 * MINUTE),
    )
    run.advance(T0 + HOUR)

    assert run.recs("STOCKOUT_RISK") == []
