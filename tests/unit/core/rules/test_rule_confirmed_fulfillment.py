"""wish.confirmed_fulfillment: the first carrier scan within 168 h of release, or 336 h when the
unit price + shipping is at least USD 100 (compared in USD through the rate table: EUR = 1.07
USD); a currency not in the table takes the stricter 168 h and says so in the evidence.
Late: a fine of max(20 % of the order value, USD 1), order value = quantity × (unit + shipping).
CONFIRMATION_OVERDUE: critical, VERIFY_TRACKING, CHANGE_CARRIER, no respond_by.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.unit.core.rules.conftest import Events, Run

T0 = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)  # a Monday
HOUR = timedelta(hours=1)
US = timedelta(microseconds=1)
RELEASE = T0 + 8 * HOUR
LOW = RELEASE + 168 * HOUR  # 2024-03-11 17:00 UTC
HIGH = RELEASE + 336 * HOUR  # 2024-03-18 17:00 UTC
TWENTY_PERCENT = re.compile(r"(?<![\d.])20(\.0+)? %")  # "20 %" (or "20.00 %"), not "120 %"


def confirmed_due(run: Run, ev: Events, **order: Any) -> datetime:
    """Place a tracked, never-scanned order and return when its confirmation breach was due."""
    run.feed(ev.placed("o1", T0, **order), ev.tracked("o1", RELEASE + HOUR))
    run.advance(T0 + 30 * 24 * HOUR)
    [breach] = run.breaches("confirmed_fulfillment")
    return breach.due_at


@pytest.mark.parametrize(
    ("unit_price", "shipping_price", "quantity", "due"),
    [
        ("10.00", "2.00", 1, LOW),
        ("90.00", "9.99", 1, LOW),  # 99.99 < 100
        ("95.00", "5.00", 1, HIGH),  # exactly 100
        ("100", None, 1, HIGH),  # shipping defaults to 0
        ("99.99", None, 1, LOW),
        ("60.00", "0", 2, LOW),  # value 120, but unit + shipping is 60
        ("250.00", "10.00", 1, HIGH),
    ],
    ids=["12", "99.99", "exactly-100", "100-no-shipping", "99.99-no-shipping", "2x60", "260"],
)
def test_the_window_is_168_hours_below_usd_100_and_336_hours_from_usd_100_per_unit(
    ev: Events,
    run: Run,
    unit_price: str,
    shipping_price: str | None,
    quantity: int,
    due: datetime,
) -> None:
    order = {"unit_price": unit_price, "shipping_price": shipping_price, "quantity": quantity}
    assert confirmed_due(run, ev, **order) == due


@pytest.mark.parametrize(
    ("unit_price", "due"),
    [("93.46", HIGH), ("93.45", LOW)],  # 93.46 × 1.07 = 100.0022; 93.45 × 1.07 = 99.9915
    ids=["EUR-93.46", "EUR-93.45"],
)
def test_euro_prices_compare_in_usd_through_the_rate_table(
    ev: Events, run: Run, unit_price: str, due: datetime
) -> None:
    order = {"unit_price": unit_price, "shipping_price": "0", "currency": "EUR"}
    assert confirmed_due(run, ev, **order) == due


def test_a_currency_not_in_the_rate_table_takes_168_hours_however_high_the_price(
    ev: Events, run: Run
) -> None:
    order = {"unit_price": "100000", "shipping_price": "0", "currency": "THB"}
    assert confirmed_due(run, ev, **order) == LOW


def test_a_currency_not_in_the_rate_table_says_so_in_the_evidence(ev: Events, run: Run) -> None:
    confirmed_due(run, ev, unit_price="100000", shipping_price="0", currency="THB")

    [overdue] = run.recs("CONFIRMATION_OVERDUE")
    says_so = [
        key
        for key, value in overdue.evidence.items()
        if "rate" in key.lower() and "THB" in str(value)
    ]
    assert says_so, f"no evidence says THB is not in the rate table: {overdue.evidence}"


def test_the_breach_fires_when_the_clock_reaches_168_hours_and_not_before(
    ev: Events, run: Run
) -> None:
    run.feed(ev.placed("o1", T0), ev.tracked("o1", RELEASE + HOUR))

    assert run.breaches("confirmed_fulfillment", outputs=run.advance(LOW - US)) == []
    [breach] = run.breaches("confirmed_fulfillment", outputs=run.advance(LOW))
    assert breach.due_at == breach.detected_at == LOW
    assert breach.rule == "wish.confirmed_fulfillment"


def test_a_high_value_order_does_not_breach_at_168_hours_but_at_336(ev: Events, run: Run) -> None:
    run.feed(ev.placed("o1", T0, unit_price="150.00"), ev.tracked("o1", RELEASE + HOUR))

    assert run.breaches("confirmed_fulfillment", outputs=run.advance(HIGH - US)) == []
    [breach] = run.breaches("confirmed_fulfillment", outputs=run.advance(HIGH))
    assert breach.due_at == HIGH


def test_a_scan_at_exactly_the_due_time_confirms_fulfillment(ev: Events, run: Run) -> None:
    run.feed(ev.placed("o1", T0), ev.tracked("o1", RELEASE + HOUR), ev.scanned("o1", LOW))
    run.advance(LOW + 48 * HOUR)

    assert run.breaches("confirmed_fulfillment") == []


def test_a_scan_one_microsecond_late_does_not_confirm_fulfillment(ev: Events, run: Run) -> None:
    run.feed(ev.placed("o1", T0), ev.tracked("o1", RELEASE + HOUR), ev.scanned("o1", LOW + US))
    run.advance(LOW + 48 * HOUR)

    [breach] = run.breaches("confirmed_fulfillment")
    assert breach.due_at == LOW


@pytest.mark.parametrize("status", ["accepted", "in_transit", "delivered", "returned", "exception"])
def test_the_first_scan_of_any_status_confirms_fulfillment(
    ev: Events, run: Run, status: str
) -> None:
    run.feed(
        ev.placed("o1", T0),
        ev.tracked("o1", RELEASE + HOUR),
        ev.scanned("o1", RELEASE + 2 * HOUR, status=status),
    )
    run.advance(LOW + 48 * HOUR)

    assert run.breaches("confirmed_fulfillment") == []


def test_confirmation_overdue_is_critical_with_verify_then_change_carrier(
    ev: Events, run: Run
) -> None:
    run.feed(ev.placed("o1", T0), ev.tracked("o1", RELEASE + HOUR))
    fired = run.advance(LOW)

    [overdue] = run.recs("CONFIRMATION_OVERDUE", outputs=fired)
    assert overdue.severity == "critical"
    assert run.codes(overdue) == ["VERIFY_TRACKING", "CHANGE_CARRIER"]
    assert overdue.respond_by is None
    assert overdue.rule == "wish.confirmed_fulfillment"


def test_an_order_never_tracked_also_breaches_confirmed_fulfillment(ev: Events, run: Run) -> None:
    run.feed(ev.placed("o1", T0))
    run.advance(LOW)

    assert [b.due_at for b in run.breaches("confirmed_fulfillment")] == [LOW]


@pytest.mark.parametrize(
    ("order", "fine"),
    [
        ({"quantity": 3, "unit_price": "10.00", "shipping_price": "2.00"}, "USD 7.20"),  # 36
        ({"quantity": 1, "unit_price": "2.00", "shipping_price": "1.00"}, "USD 1.00"),  # 3
        ({"quantity": 1, "unit_price": "5.00", "shipping_price": "0"}, "USD 1.00"),  # 5
        ({"quantity": 1, "unit_price": "5.05", "shipping_price": "0"}, "USD 1.01"),
        ({"quantity": 4, "unit_price": "200.00", "shipping_price": "25.00"}, "USD 180.00"),
        (
            {"quantity": 2, "unit_price": "20.00", "shipping_price": "5.00", "currency": "EUR"},
            "USD 10.70",  # 50 EUR = 53.50 USD
        ),
    ],
    ids=["20pct-of-36", "min-1-of-3", "exactly-1", "1.01", "20pct-of-900", "EUR-50"],
)
def test_the_fine_is_the_larger_of_20_percent_of_the_order_value_and_usd_1(
    ev: Events, run: Run, order: dict[str, Any], fine: str
) -> None:
    run.feed(ev.placed("o1", T0, **order))
    run.advance(T0 + 30 * 24 * HOUR)

    [breach] = run.breaches("confirmed_fulfillment")
    assert fine in breach.consequence
    assert TWENTY_PERCENT.search(breach.consequence), breach.consequence


def test_the_fine_for_an_unknown_currency_is_20_percent_of_the_order_value(
    ev: Events, run: Run
) -> None:
    run.feed(ev.placed("o1", T0, quantity=2, unit_price="500", shipping_price="0", currency="THB"))
    run.advance(T0 + 30 * 24 * HOUR)

    [breach] = run.breaches("confirmed_fulfillment")
    assert TWENTY_PERCENT.search(breach.consequence), breach.consequence
    assert "1000 THB" in breach.consequence
    assert "USD 1" in breach.consequence


@pytest.mark.parametrize("applied", ["before the clock passed the due time", "after it fired"])
def test_a_tracking_submitted_after_the_due_time_is_not_evidence_of_the_breach(
    ev: Events, run: Run, applied: str
) -> None:
    """Evidence is as of the due time, whichever side of the firing the tracking arrived."""
    run.feed(ev.placed("o1", T0))
    tracked = ev.tracked("o1", LOW + timedelta(minutes=2))  # within the allowed lateness
    if applied == "after it fired":
        run.advance(LOW + HOUR)
    run.feed(tracked)
    run.advance(LOW + 30 * 24 * HOUR)

    [recommendation] = run.recs("CONFIRMATION_OVERDUE")
    assert recommendation.evidence["tracking_submitted_at"] is None


def test_a_tracking_submitted_before_the_due_time_is_evidence_of_the_breach(
    ev: Events, run: Run
) -> None:
    run.feed(ev.placed("o1", T0), ev.tracked("o1", LOW - HOUR))
    run.advance(LOW + 30 * 24 * HOUR)

    [recommendation] = run.recs("CONFIRMATION_OVERDUE")
    assert recommendation.evidence["tracking_submitted_at"] == "2024-03-11T16:00:00Z"
