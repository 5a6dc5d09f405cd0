"""wish.fulfillment and wish.fulfillment_warning.

policy.md: tracking must be submitted within 5 calendar days (120 h) of release (placement + 8 h),
else auto-refund and a fine of USD 50; warn 24 h before that deadline when no tracking yet.
FULFILLMENT_OVERDUE: critical, SHIP_NOW, SUBMIT_TRACKING, CONTACT_CUSTOMER, no respond_by.
FULFILLMENT_AT_RISK: warning, SHIP_NOW, SUBMIT_TRACKING, respond_by = fulfillment due.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from streams.core.ids import breach_id

if TYPE_CHECKING:
    from tests.unit.core.rules.conftest import Events, Run

T0 = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)  # a Monday
HOUR = timedelta(hours=1)
US = timedelta(microseconds=1)
RELEASE = T0 + 8 * HOUR
DUE = RELEASE + 120 * HOUR  # 2024-03-09 17:00 UTC
WARN = DUE - 24 * HOUR  # 2024-03-08 17:00 UTC


def test_the_deadline_is_120_hours_after_release(ev: Events, run: Run) -> None:
    run.feed(ev.placed("o1", T0))
    run.advance(DUE + 24 * HOUR)

    [breach] = run.breaches("fulfillment")
    assert breach.due_at == datetime(2024, 3, 9, 17, 0, tzinfo=UTC)


def test_the_breach_fires_when_the_clock_reaches_the_due_time_exactly(ev: Events, run: Run) -> None:
    run.feed(ev.placed("o1", T0))

    assert run.breaches("fulfillment", outputs=run.advance(DUE - US)) == []
    [breach] = run.breaches("fulfillment", outputs=run.advance(DUE))
    assert breach.detected_at == DUE


def test_tracking_at_exactly_the_due_time_meets_the_deadline(ev: Events, run: Run) -> None:
    run.feed(ev.placed("o1", T0), ev.tracked("o1", DUE))
    run.advance(DUE + 48 * HOUR)

    assert run.breaches("fulfillment") == []
    assert run.recs("FULFILLMENT_OVERDUE") == []


def test_tracking_one_microsecond_after_the_due_time_does_not_meet_it(ev: Events, run: Run) -> None:
    run.feed(ev.placed("o1", T0), ev.tracked("o1", DUE + US))
    run.advance(DUE + 48 * HOUR)

    [breach] = run.breaches("fulfillment")
    assert breach.due_at == DUE


def test_the_breach_carries_order_rule_policy_and_a_deterministic_id(
    ev: Events, make_run: Callable[..., Run]
) -> None:
    first, second = make_run(), make_run()
    for one in (first, second):
        one.feed(ev.placed("o1", T0))
        one.advance(DUE)

    [breach] = first.breaches("fulfillment")
    [again] = second.breaches("fulfillment")
    assert breach.breach_id == again.breach_id == breach_id("o1", "fulfillment")
    assert breach.order_id == "o1"
    assert breach.merchant_id == "m1"
    assert breach.deadline == "fulfillment"
    assert breach.complaint_id is None
    assert breach.rule == "wish.fulfillment"
    assert (breach.policy.name, breach.policy.version) == ("wish", "2021.1")


def test_breach_ids_differ_between_orders(ev: Events, run: Run) -> None:
    run.feed(ev.placed("o1", T0), ev.placed("o2", T0))
    run.advance(DUE)

    ids = {b.breach_id for b in run.breaches("fulfillment")}
    assert len(ids) == 2


def test_the_consequence_is_an_auto_refund_and_a_usd_50_fine(ev: Events, run: Run) -> None:
    run.feed(ev.placed("o1", T0))
    run.advance(DUE)

    [breach] = run.breaches("fulfillment")
    assert "USD 50" in breach.consequence
    assert "refund" in breach.consequence


def test_the_breach_is_serialised_with_utc_z_timestamps(ev: Events, run: Run) -> None:
    run.feed(ev.placed("o1", T0))
    run.advance(DUE)

    [breach] = run.breaches("fulfillment")
    dumped = breach.model_dump(mode="json")
    assert dumped["due_at"] == "2024-03-09T17:00:00Z"
    assert dumped["type"] == "deadline.breached"


def test_fulfillment_overdue_is_critical_with_ship_submit_contact_in_order(
    ev: Events, run: Run
) -> None:
    run.feed(ev.placed("o1", T0))
    fired = run.advance(DUE)

    [overdue] = run.recs("FULFILLMENT_OVERDUE", outputs=fired)
    assert overdue.severity == "critical"
    assert run.codes(overdue) == ["SHIP_NOW", "SUBMIT_TRACKING", "CONTACT_CUSTOMER"]
    assert overdue.respond_by is None
    assert overdue.rule == "wish.fulfillment"
    assert (overdue.scope, overdue.subject, overdue.order_id) == ("order", "o1", "o1")
    assert overdue.issued_at == DUE
    assert overdue.evidence["breach_id"] == breach_id("o1", "fulfillment")


def test_the_breach_fires_only_once(ev: Events, run: Run) -> None:
    run.feed(ev.placed("o1", T0))
    run.advance(DUE)
    run.advance(DUE + 24 * HOUR)
    run.feed(ev.tracked("o1", DUE + 25 * HOUR))
    run.advance(DUE + 30 * 24 * HOUR)

    assert len(run.breaches("fulfillment")) == 1
    assert len(run.recs("FULFILLMENT_OVERDUE")) == 1


# -- wish.fulfillment_warning -----------------------------------------------------------------


def test_the_warning_fires_24_hours_before_the_deadline_and_not_earlier(
    ev: Events, run: Run
) -> None:
    run.feed(ev.placed("o1", T0))

    assert run.recs("FULFILLMENT_AT_RISK", outputs=run.advance(WARN - US)) == []
    [warning] = run.recs("FULFILLMENT_AT_RISK", outputs=run.advance(WARN))
    assert warning.issued_at == WARN == datetime(2024, 3, 8, 17, 0, tzinfo=UTC)


def test_the_warning_asks_to_ship_and_submit_tracking_before_the_fulfillment_due(
    ev: Events, run: Run
) -> None:
    run.feed(ev.placed("o1", T0))
    run.advance(WARN)

    [warning] = run.recs("FULFILLMENT_AT_RISK")
    assert warning.severity == "warning"
    assert run.codes(warning) == ["SHIP_NOW", "SUBMIT_TRACKING"]
    assert warning.respond_by == DUE
    assert warning.rule == "wish.fulfillment_warning"
    assert run.breaches() == []


def test_tracking_before_the_warning_time_prevents_the_warning(ev: Events, run: Run) -> None:
    run.feed(ev.placed("o1", T0), ev.tracked("o1", WARN - US))
    run.advance(DUE + HOUR)

    assert run.recs("FULFILLMENT_AT_RISK") == []


def test_tracking_after_the_warning_but_by_the_due_time_still_meets_fulfillment(
    ev: Events, run: Run
) -> None:
    run.feed(ev.placed("o1", T0))
    run.advance(WARN)
    run.feed(ev.tracked("o1", WARN + HOUR))
    run.advance(DUE + HOUR)

    assert len(run.recs("FULFILLMENT_AT_RISK")) == 1
    assert run.breaches("fulfillment") == []


def test_a_warning_issued_in_its_window_does_not_say_it_was_missed(ev: Events, run: Run) -> None:
    run.feed(ev.placed("o1", T0))
    run.advance(WARN)

    [warning] = run.recs("FULFILLMENT_AT_RISK")
    assert warning.respond_by == DUE
    assert warning.respond_by_passed is None
    assert [a.code for a in warning.actions] == ["SHIP_NOW", "SUBMIT_TRACKING"]
    assert "respond_by_passed" not in warning.model_dump(exclude_none=True)


def test_a_warning_issued_after_its_respond_by_says_so_with_the_missed_windows_actions(
    ev: Events, run: Run
) -> None:
    """The clock jumped past the whole window (a stream silent for days): the warning and the
    breach fire together, and the warning does not pretend there is time left."""
    run.feed(ev.placed("o1", T0))
    run.advance(DUE + HOUR)

    [warning] = run.recs("FULFILLMENT_AT_RISK")
    assert warning.respond_by == DUE
    assert warning.issued_at > DUE
    assert warning.respond_by_passed is True
    assert [a.code for a in warning.actions] == ["SHIP_NOW", "SUBMIT_TRACKING", "CONTACT_CUSTOMER"]
