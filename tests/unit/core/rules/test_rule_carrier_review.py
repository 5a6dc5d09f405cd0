"""wish.carrier_review: per store, a carrier with at least 20 shipments (orders with tracking from
that carrier) in 30 days whose share of orders with a damaged or not_received complaint or a
delivery breach reaches 5 % → CARRIER_REVIEW (warning, CHANGE_CARRIER). Carrier names compare
lowercased and trimmed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from streams.core.engine import Output
from streams.core.policy import Policy

if TYPE_CHECKING:
    from tests.unit.core.rules.conftest import Events, Run

T0 = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)  # a Monday
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def ship(
    run: Run,
    ev: Events,
    count: int,
    *,
    start: int = 0,
    carrier: str = "YunExpress",
    merchant: str = "m1",
    at: datetime = T0,
    status: str = "accepted",
) -> None:
    """Place and track ``count`` orders o{start}… with ``carrier``, one minute apart.

    Each is tracked 9 h after placement and scanned (with ``status``) an hour later.
    """
    for i in range(start, start + count):
        placed_at = at + i * MINUTE
        run.step(
            ev.placed(f"o{i}", placed_at, merchant_id=merchant),
            ev.tracked(f"o{i}", placed_at + 9 * HOUR, carrier=carrier, merchant_id=merchant),
            ev.scanned(f"o{i}", placed_at + 10 * HOUR, status=status, merchant_id=merchant),
        )


def complain(
    run: Run,
    ev: Events,
    order_id: str,
    reason: str = "damaged",
    at: datetime = T0 + 3 * DAY,
    merchant: str = "m1",
) -> list[Output]:
    return run.step(
        ev.filed(order_id, at, reason=reason, complaint_id=f"c-{order_id}", merchant_id=merchant)
    )


def test_twenty_shipments_with_one_problem_reach_5_percent_and_issue_a_review(
    ev: Events, run: Run
) -> None:
    ship(run, ev, 20)
    assert run.recs("CARRIER_REVIEW") == []

    produced = complain(run, ev, "o7")

    [review] = run.recs("CARRIER_REVIEW", outputs=produced)
    assert review.scope == "carrier"
    assert review.subject == "m1/yunexpress"
    assert review.order_id is None
    assert review.severity == "warning"
    assert run.codes(review) == ["CHANGE_CARRIER"]
    assert review.rule == "wish.carrier_review"
    assert review.respond_by is None
    assert review.evidence["shipments"] == 20
    assert review.evidence["orders_with_problems"] == 1
    summary = review.evidence["summary"]
    assert summary.startswith("1 of 20 shipments (5 %) with a damaged or not-received complaint")
    assert review.actions[0].detail.endswith(f": {summary}.")


def test_nineteen_shipments_all_with_problems_are_too_few_for_a_review(
    ev: Events, run: Run
) -> None:
    ship(run, ev, 19)
    for i in range(19):
        complain(run, ev, f"o{i}")

    assert run.recs("CARRIER_REVIEW") == []


def test_the_twentieth_shipment_makes_nineteen_problems_count(ev: Events, run: Run) -> None:
    ship(run, ev, 19)
    for i in range(19):
        complain(run, ev, f"o{i}")
    ship(run, ev, 1, start=19, at=T0 + HOUR)

    assert len(run.recs("CARRIER_REVIEW")) == 1


def test_one_problem_in_twenty_one_shipments_is_below_5_percent(ev: Events, run: Run) -> None:
    ship(run, ev, 21)
    complain(run, ev, "o3")

    assert run.recs("CARRIER_REVIEW") == []


@pytest.mark.parametrize("reason", ["damaged", "not_received"])
def test_damaged_and_not_received_complaints_are_carrier_problems(
    ev: Events, run: Run, reason: str
) -> None:
    ship(run, ev, 20)
    complain(run, ev, "o0", reason=reason)

    assert len(run.recs("CARRIER_REVIEW")) == 1


@pytest.mark.parametrize(
    "reason",
    ["not_as_described", "wrong_item", "size_fit", "defective", "missing_parts", "other"],
)
def test_other_complaint_reasons_are_not_carrier_problems(
    ev: Events, run: Run, reason: str
) -> None:
    ship(run, ev, 20)
    complain(run, ev, "o0", reason=reason)

    assert run.recs("CARRIER_REVIEW") == []


def test_a_delivery_breach_is_a_carrier_problem(ev: Events, run: Run) -> None:
    ship(run, ev, 20)
    for i in range(1, 20):
        run.step(ev.scanned(f"o{i}", T0 + 5 * DAY, status="delivered"))
    fired = run.advance(T0 + 15 * DAY)  # o0 to the US: delivery due 15 days after placement

    assert [b.order_id for b in run.breaches("delivery", outputs=fired)] == ["o0"]
    assert len(run.recs("CARRIER_REVIEW", outputs=fired)) == 1


def test_carrier_names_are_compared_lowercased_and_trimmed(ev: Events, run: Run) -> None:
    names = ["YunExpress", " yunexpress ", "YUNEXPRESS", "yunExpress\t"]
    for i in range(20):
        ship(run, ev, 1, start=i, carrier=names[i % len(names)])
    complain(run, ev, "o5")

    [review] = run.recs("CARRIER_REVIEW")
    assert review.subject == "m1/yunexpress"
    assert review.evidence["shipments"] == 20


def test_each_carrier_is_counted_separately(ev: Events, run: Run) -> None:
    ship(run, ev, 10, carrier="YunExpress")
    ship(run, ev, 10, start=10, carrier="4PX")
    complain(run, ev, "o0")

    assert run.recs("CARRIER_REVIEW") == []


def test_each_store_is_counted_separately(ev: Events, run: Run) -> None:
    ship(run, ev, 10, merchant="m1")
    ship(run, ev, 10, start=10, merchant="m2")
    complain(run, ev, "o0", merchant="m1")

    assert run.recs("CARRIER_REVIEW") == []


def test_shipments_older_than_30_days_leave_the_window(ev: Events, run: Run) -> None:
    ship(run, ev, 10)
    ship(run, ev, 10, start=10, at=T0 + 31 * DAY)
    complain(run, ev, "o12", at=T0 + 33 * DAY)

    assert run.recs("CARRIER_REVIEW") == []


def test_a_second_review_needs_the_rate_to_drop_below_and_cross_again(ev: Events, run: Run) -> None:
    ship(run, ev, 20)
    complain(run, ev, "o0")  # 1 / 20 = 5 %: first review
    ship(run, ev, 1, start=20, at=T0 + HOUR)  # 1 / 21 < 5 %: below again
    complain(run, ev, "o1", at=T0 + 4 * DAY)  # 2 / 21 ≥ 5 %: second review

    first, second = run.recs("CARRIER_REVIEW")
    assert first.recommendation_id != second.recommendation_id


def test_a_shipment_29_and_a_half_days_old_still_counts(ev: Events, run: Run) -> None:
    ship(run, ev, 20, status="delivered")  # shipped (tracked) from T0 + 9 h
    complain(run, ev, "o0", at=T0 + 9 * HOUR + 29 * DAY + 12 * HOUR)

    assert len(run.recs("CARRIER_REVIEW")) == 1


def test_a_shipment_30_days_and_an_hour_old_no_longer_counts(ev: Events, run: Run) -> None:
    ship(run, ev, 20, status="delivered")  # shipped (tracked) from T0 + 9 h
    complain(run, ev, "o0", at=T0 + 9 * HOUR + 30 * DAY + HOUR)

    assert run.recs("CARRIER_REVIEW") == []


def test_a_fact_sent_before_the_order_changed_carrier_does_not_count_it_again(
    policy: Policy,
) -> None:
    """A worker may read an order's complaint before its second tracking: the fact the complaint
    sent names only the first carrier, yet arrives (in event time) after the one that told of
    the change. The carrier must merge it with what it knew, not count the order again."""
    from streams.core import carrier
    from streams.core.facts import Shipment
    from streams.core.ledger import DictPages

    first, second = T0 + HOUR, T0 + 14 * HOUR
    complaint = T0 + 9 * DAY

    def shipment(
        at: datetime, trackings: list[tuple[datetime, str]], problem_at: datetime | None
    ) -> Shipment:
        return Shipment(
            subject="m1/china post",
            order_id="o1",
            merchant_id="m1",
            carrier="China Post",
            at=at,
            trackings=tuple(trackings),
            problem_at=problem_at,
        )

    both = [(first, "china post"), (second, "yunexpress")]
    steps = [
        (first, shipment(first, both[:1], None)),
        (second, shipment(second, both, complaint)),  # knew of the change and the complaint
        (complaint, shipment(complaint, both[:1], complaint)),  # sent before it knew
    ]
    state: carrier.CarrierState | None = None
    pages: DictPages[Shipment] = DictPages()
    for at, fact in steps:
        state = carrier.apply_shipment(state, fact, at, policy, pages).state
    assert state is not None
    state = carrier.tick(state, complaint, policy, pages).state
    assert state.shipments.totals == [0, 0]  # o1 ships with YunExpress since `second`
