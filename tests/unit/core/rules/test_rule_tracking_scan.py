"""wish.tracking_scan: tracking submitted but no carrier scan of that number after 72 h.

TRACKING_NOT_SCANNED: warning, VERIFY_TRACKING, CHANGE_CARRIER, respond_by = the
confirmed-fulfillment due (release + 168 h for an order under USD 100). It is advice, not a
breach.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.unit.core.rules.conftest import Events, Run

T0 = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)  # a Monday
HOUR = timedelta(hours=1)
US = timedelta(microseconds=1)
RELEASE = T0 + 8 * HOUR
TRACKED = RELEASE + 2 * HOUR
SCAN_BY = TRACKED + 72 * HOUR
CONFIRMED_DUE = RELEASE + 168 * HOUR


def test_an_unscanned_number_is_flagged_72_hours_after_submission_and_not_before(
    ev: Events, run: Run
) -> None:
    run.feed(ev.placed("o1", T0), ev.tracked("o1", TRACKED))

    assert run.recs("TRACKING_NOT_SCANNED", outputs=run.advance(SCAN_BY - US)) == []
    [flag] = run.recs("TRACKING_NOT_SCANNED", outputs=run.advance(SCAN_BY))
    assert flag.issued_at == SCAN_BY


def test_the_flag_asks_to_verify_then_change_carrier_before_the_confirmed_due(
    ev: Events, run: Run
) -> None:
    run.feed(ev.placed("o1", T0), ev.tracked("o1", TRACKED))
    run.advance(SCAN_BY)

    [flag] = run.recs("TRACKING_NOT_SCANNED")
    assert flag.severity == "warning"
    assert run.codes(flag) == ["VERIFY_TRACKING", "CHANGE_CARRIER"]
    assert flag.respond_by == CONFIRMED_DUE
    assert flag.rule == "wish.tracking_scan"
    assert flag.order_id == "o1"


def test_the_respond_by_is_336_hours_after_release_for_a_high_value_order(
    ev: Events, run: Run
) -> None:
    run.feed(ev.placed("o1", T0, unit_price="120.00"), ev.tracked("o1", TRACKED))
    run.advance(SCAN_BY)

    [flag] = run.recs("TRACKING_NOT_SCANNED")
    assert flag.respond_by == RELEASE + 336 * HOUR


def test_the_flag_is_advice_and_not_a_breach(ev: Events, run: Run) -> None:
    run.feed(ev.placed("o1", T0), ev.tracked("o1", TRACKED))
    fired = run.advance(SCAN_BY)

    assert run.breaches(outputs=fired) == []


def test_a_scan_of_that_number_at_exactly_72_hours_meets_it(ev: Events, run: Run) -> None:
    run.feed(ev.placed("o1", T0), ev.tracked("o1", TRACKED), ev.scanned("o1", SCAN_BY))
    run.advance(SCAN_BY + 24 * HOUR)

    assert run.recs("TRACKING_NOT_SCANNED") == []


def test_a_scan_one_microsecond_after_72_hours_does_not_meet_it(ev: Events, run: Run) -> None:
    run.feed(ev.placed("o1", T0), ev.tracked("o1", TRACKED), ev.scanned("o1", SCAN_BY + US))
    run.advance(SCAN_BY + 24 * HOUR)

    assert len(run.recs("TRACKING_NOT_SCANNED")) == 1


def test_a_scan_of_another_number_does_not_meet_it(ev: Events, run: Run) -> None:
    run.feed(
        ev.placed("o1", T0),
        ev.tracked("o1", TRACKED, number="LP001"),
        ev.scanned("o1", TRACKED + HOUR, number="LP999"),
    )
    run.advance(SCAN_BY)

    assert len(run.recs("TRACKING_NOT_SCANNED")) == 1


def test_a_scan_arriving_before_its_tracking_still_meets_it(ev: Events, run: Run) -> None:
    run.feed(
        ev.placed("o1", T0),
        ev.scanned("o1", TRACKED + HOUR),
        ev.tracked("o1", TRACKED),
    )
    run.advance(SCAN_BY + 24 * HOUR)

    assert run.recs("TRACKING_NOT_SCANNED") == []


def test_a_replaced_number_is_not_flagged_once_the_new_one_is_scanned(ev: Events, run: Run) -> None:
    run.feed(
        ev.placed("o1", T0),
        ev.tracked("o1", TRACKED, number="LP001"),
        ev.tracked("o1", TRACKED + 10 * HOUR, number="LP002"),
        ev.scanned("o1", TRACKED + 20 * HOUR, number="LP002"),
    )
    run.advance(SCAN_BY + 48 * HOUR)

    assert run.recs("TRACKING_NOT_SCANNED") == []


def test_the_flag_fires_once(ev: Events, run: Run) -> None:
    run.feed(ev.placed("o1", T0), ev.tracked("o1", TRACKED))
    run.advance(SCAN_BY)
    run.advance(SCAN_BY + 48 * HOUR)

    assert len(run.recs("TRACKING_NOT_SCANNED")) == 1
