"""wish.delivery and wish.express_delivery.

Standard orders: delivered within X days of *placement* by destination (policy.md's table; other
countries 30). Express orders: within 5 business days (Mon–Fri) of *release*, France 6; due at the
same UTC time of day, weekends skipped; a release on a weekend counts from Monday 00:00 UTC.
A ``delivered`` scan at or before the due time meets it.
DELIVERY_OVERDUE: critical, CONTACT_CUSTOMER, OFFER_RESHIP, OFFER_REFUND, CHANGE_CARRIER.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from streams.core.outputs import DeadlineBreached

if TYPE_CHECKING:
    from tests.unit.core.rules.conftest import Events, Run

T0 = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)  # a Monday
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
US = timedelta(microseconds=1)

# policy.md, wish.delivery: days from placement by destination country.
DAYS_BY_COUNTRY = {
    "US": 15, "GB": 12, "KR": 12, "JP": 13, "AU": 14, "NZ": 14, "NL": 15, "AT": 15, "FR": 16,
    "DE": 16, "DK": 16, "BE": 16, "SG": 16, "CH": 17, "FI": 17, "CZ": 17, "HU": 17, "CA": 18,
    "NO": 18, "PL": 18, "PT": 19, "SE": 20, "MX": 22, "ES": 21, "IT": 21, "TR": 22, "IE": 23,
    "GR": 23, "RU": 23, "IL": 23, "AE": 24, "IN": 26, "BR": 29, "KW": 30, "CO": 31, "PE": 31,
    "AR": 33, "CR": 33, "SA": 33, "EC": 33, "ZA": 37,
}  # fmt: skip
OTHER_COUNTRIES_DAYS = 30


def delivery_breach(
    run: Run, ev: Events, *, at: datetime = T0, until: datetime | None = None, **order: Any
) -> DeadlineBreached:
    run.feed(ev.placed("o1", at, **order))
    run.advance(until or at + 60 * DAY)
    [breach] = run.breaches("delivery")
    return breach


@pytest.mark.parametrize(("country", "days"), sorted(DAYS_BY_COUNTRY.items()))
def test_a_standard_order_is_due_the_countrys_days_after_placement(
    ev: Events, run: Run, country: str, days: int
) -> None:
    run.feed(ev.placed("o1", T0, destination_country=country))
    due = T0 + days * DAY

    assert run.breaches("delivery", outputs=run.advance(due - US)) == []
    [breach] = run.breaches("delivery", outputs=run.advance(due))
    assert breach.due_at == due
    assert breach.rule == "wish.delivery"


@pytest.mark.parametrize("country", ["TH", "CN", "NG"])
def test_a_country_not_in_the_table_is_due_30_days_after_placement(
    ev: Events, run: Run, country: str
) -> None:
    breach = delivery_breach(run, ev, destination_country=country)
    assert breach.due_at == T0 + OTHER_COUNTRIES_DAYS * DAY


@pytest.mark.parametrize(
    ("country", "due"),
    [
        ("US", datetime(2024, 3, 19, 9, 0, tzinfo=UTC)),
        ("GB", datetime(2024, 3, 16, 9, 0, tzinfo=UTC)),
        ("ZA", datetime(2024, 4, 10, 9, 0, tzinfo=UTC)),
        ("TH", datetime(2024, 4, 3, 9, 0, tzinfo=UTC)),
    ],
)
def test_the_delivery_due_dates_of_us_gb_za_and_an_unlisted_country(
    ev: Events, run: Run, country: str, due: datetime
) -> None:
    assert delivery_breach(run, ev, destination_country=country).due_at == due


def test_standard_delivery_counts_from_placement_not_from_release(ev: Events, run: Run) -> None:
    breach = delivery_breach(run, ev, released_at=T0 + 40 * HOUR)
    assert breach.due_at == T0 + 15 * DAY


def test_a_delivered_scan_at_exactly_the_due_time_meets_it(ev: Events, run: Run) -> None:
    due = T0 + 15 * DAY
    run.feed(
        ev.placed("o1", T0),
        ev.tracked("o1", T0 + 10 * HOUR),
        ev.scanned("o1", T0 + 11 * HOUR),
        ev.scanned("o1", due, status="delivered"),
    )
    run.advance(due + 10 * DAY)

    assert run.breaches("delivery") == []


def test_a_delivered_scan_one_microsecond_late_does_not_meet_it(ev: Events, run: Run) -> None:
    due = T0 + 15 * DAY
    run.feed(
        ev.placed("o1", T0),
        ev.tracked("o1", T0 + 10 * HOUR),
        ev.scanned("o1", T0 + 11 * HOUR),
        ev.scanned("o1", due + US, status="delivered"),
    )
    run.advance(due + 10 * DAY)

    assert [b.due_at for b in run.breaches("delivery")] == [due]


@pytest.mark.parametrize("status", ["accepted", "in_transit", "returned", "exception"])
def test_a_scan_that_is_not_delivered_does_not_meet_delivery(
    ev: Events, run: Run, status: str
) -> None:
    due = T0 + 15 * DAY
    run.feed(
        ev.placed("o1", T0),
        ev.tracked("o1", T0 + 10 * HOUR),
        ev.scanned("o1", due - DAY, status=status),
    )
    run.advance(due)

    assert len(run.breaches("delivery")) == 1


def test_delivery_overdue_is_critical_with_contact_reship_refund_change_carrier(
    ev: Events, run: Run
) -> None:
    delivery_breach(run, ev, until=T0 + 15 * DAY)

    [overdue] = run.recs("DELIVERY_OVERDUE")
    assert overdue.severity == "critical"
    assert run.codes(overdue) == [
        "CONTACT_CUSTOMER",
        "OFFER_RESHIP",
        "OFFER_REFUND",
        "CHANGE_CARRIER",
    ]
    assert overdue.respond_by is None
    assert overdue.rule == "wish.delivery"
    assert overdue.issued_at == T0 + 15 * DAY


def test_the_standard_delivery_consequence_is_that_the_seller_bears_the_refund(
    ev: Events, run: Run
) -> None:
    breach = delivery_breach(run, ev)
    assert "100 %" in breach.consequence
    assert "refund" in breach.consequence


# -- wish.express_delivery --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("country", "released", "due"),
    [
        # Monday 10:00 + 5 business days: next Monday 10:00
        ("US", datetime(2024, 3, 4, 10, 0, tzinfo=UTC), datetime(2024, 3, 11, 10, 0, tzinfo=UTC)),
        # Wednesday 10:00 → next Wednesday 10:00
        ("GB", datetime(2024, 3, 6, 10, 0, tzinfo=UTC), datetime(2024, 3, 13, 10, 0, tzinfo=UTC)),
        # Friday 10:00 → next Friday 10:00
        ("US", datetime(2024, 3, 8, 10, 0, tzinfo=UTC), datetime(2024, 3, 15, 10, 0, tzinfo=UTC)),
        # Friday 23:59 is still a business day → next Friday 23:59
        ("US", datetime(2024, 3, 8, 23, 59, tzinfo=UTC), datetime(2024, 3, 15, 23, 59, tzinfo=UTC)),
        # Saturday 15:00 → counts from Monday 00:00 → next Monday 00:00
        ("US", datetime(2024, 3, 9, 15, 0, tzinfo=UTC), datetime(2024, 3, 18, 0, 0, tzinfo=UTC)),
        # Sunday 23:59 → counts from Monday 00:00 → next Monday 00:00
        ("US", datetime(2024, 3, 10, 23, 59, tzinfo=UTC), datetime(2024, 3, 18, 0, 0, tzinfo=UTC)),
        # France: 6 business days. Monday 10:00 → next Tuesday 10:00
        ("FR", datetime(2024, 3, 4, 10, 0, tzinfo=UTC), datetime(2024, 3, 12, 10, 0, tzinfo=UTC)),
        # France, Friday 10:00 → Monday 10:00 ten days later
        ("FR", datetime(2024, 3, 8, 10, 0, tzinfo=UTC), datetime(2024, 3, 18, 10, 0, tzinfo=UTC)),
        # France, Saturday → Monday 00:00 + 6 → Tuesday 00:00 of the week after
        ("FR", datetime(2024, 3, 9, 15, 0, tzinfo=UTC), datetime(2024, 3, 19, 0, 0, tzinfo=UTC)),
    ],
    ids=[
        "mon", "wed", "fri", "fri-23:59", "sat", "sun-23:59", "FR-mon", "FR-fri", "FR-sat",
    ],
)  # fmt: skip
def test_an_express_order_is_due_5_business_days_after_release_6_for_france(
    ev: Events, run: Run, country: str, released: datetime, due: datetime
) -> None:
    run.feed(
        ev.placed(
            "o1",
            released - 8 * HOUR,
            program="express",
            destination_country=country,
            released_at=released,
        )
    )

    assert run.breaches("delivery", outputs=run.advance(due - US)) == []
    [breach] = run.breaches("delivery", outputs=run.advance(due))
    assert breach.due_at == due
    assert breach.rule == "wish.express_delivery"


def test_an_express_release_defaults_to_8_hours_after_placement(ev: Events, run: Run) -> None:
    # placed Friday 02:00 → released Friday 10:00 → due next Friday 10:00
    breach = delivery_breach(run, ev, at=datetime(2024, 3, 8, 2, 0, tzinfo=UTC), program="express")
    assert breach.due_at == datetime(2024, 3, 15, 10, 0, tzinfo=UTC)


def test_an_express_order_placed_friday_evening_is_released_on_saturday(
    ev: Events, run: Run
) -> None:
    # placed Friday 20:00 → released Saturday 04:00 → counts from Monday 00:00 → Monday 00:00
    breach = delivery_breach(run, ev, at=datetime(2024, 3, 8, 20, 0, tzinfo=UTC), program="express")
    assert breach.due_at == datetime(2024, 3, 18, 0, 0, tzinfo=UTC)


def test_a_delivered_scan_at_exactly_the_express_due_time_meets_it(ev: Events, run: Run) -> None:
    due = datetime(2024, 3, 11, 10, 0, tzinfo=UTC)
    run.feed(
        ev.placed("o1", datetime(2024, 3, 4, 2, 0, tzinfo=UTC), program="express"),
        ev.tracked("o1", datetime(2024, 3, 4, 12, 0, tzinfo=UTC)),
        ev.scanned("o1", due, status="delivered"),
    )
    run.advance(due + 10 * DAY)

    assert run.breaches("delivery") == []


def test_an_express_breach_names_the_express_rule_and_its_consequence(ev: Events, run: Run) -> None:
    delivery_breach(run, ev, at=datetime(2024, 3, 4, 2, 0, tzinfo=UTC), program="express")

    [breach] = run.breaches("delivery")
    [overdue] = run.recs("DELIVERY_OVERDUE")
    assert breach.rule == overdue.rule == "wish.express_delivery"
    assert "Express" in breach.consequence
    assert run.codes(overdue) == [
        "CONTACT_CUSTOMER",
        "OFFER_RESHIP",
        "OFFER_REFUND",
        "CHANGE_CARRIER",
    ]


@pytest.mark.parametrize("applied", ["before the clock passed the due time", "after it fired"])
def test_a_first_scan_after_the_due_time_is_not_evidence_of_the_breach(
    ev: Events, run: Run, applied: str
) -> None:
    due = T0 + 15 * DAY
    run.feed(ev.placed("o1", T0), ev.tracked("o1", T0 + 10 * HOUR))
    scanned = ev.scanned("o1", due + timedelta(minutes=2))  # within the allowed lateness
    if applied == "after it fired":
        run.advance(due + HOUR)
    run.feed(scanned)
    run.advance(due + 10 * DAY)

    [recommendation] = run.recs("DELIVERY_OVERDUE")
    assert recommendation.evidence["first_scan_at"] is None
