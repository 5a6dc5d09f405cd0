"""wish.listing_review and wish.packaging_review: 3 complaints of the rule's reasons on one SKU
within 30 days. Listing: not_as_described, wrong_item, size_fit → LISTING_REVIEW (warning,
FIX_LISTING). Packaging: damaged, missing_parts → PACKAGING_REVIEW (warning, IMPROVE_PACKAGING).
Issued when the threshold is first crossed, again only after dropping below and crossing again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from streams.core.engine import Output

if TYPE_CHECKING:
    from tests.unit.core.rules.conftest import Events, Run

T0 = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)  # a Monday
MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)

LISTING = ("LISTING_REVIEW", ["not_as_described", "wrong_item", "size_fit"])
PACKAGING = ("PACKAGING_REVIEW", ["damaged", "missing_parts", "damaged"])
REVIEWS = pytest.mark.parametrize(
    ("review", "reasons"), [LISTING, PACKAGING], ids=["listing", "packaging"]
)


class Complaints:
    """Files each complaint on a fresh order of the SKU, placed a day before it."""

    def __init__(self, run: Run, ev: Events) -> None:
        self.run, self.ev, self.count = run, ev, 0

    def file(self, at: datetime, reason: str, sku: str = "SKU-1") -> list[Output]:
        self.count += 1
        order_id = f"o{self.count}"
        self.run.step(self.ev.placed(order_id, at - DAY, sku=sku))
        return self.run.step(self.ev.filed(order_id, at, reason=reason, photos=1))


@REVIEWS
def test_three_complaints_within_30_days_issue_one_review(
    ev: Events, run: Run, review: str, reasons: list[str]
) -> None:
    complaints = Complaints(run, ev)
    complaints.file(T0, reasons[0])
    complaints.file(T0 + 10 * DAY, reasons[1])
    assert run.recs(review) == []

    produced = complaints.file(T0 + 29 * DAY, reasons[2])

    [issued] = run.recs(review, outputs=produced)
    assert issued.scope == "sku"
    assert issued.subject == "m1/SKU-1"
    assert issued.order_id is None
    assert issued.merchant_id == "m1"
    assert issued.severity == "warning"
    assert issued.respond_by is None
    assert issued.evidence["complaints"] == 3


def test_a_listing_review_asks_to_fix_the_listing(ev: Events, run: Run) -> None:
    complaints = Complaints(run, ev)
    for day, reason in enumerate(LISTING[1]):
        complaints.file(T0 + day * DAY, reason)

    [issued] = run.recs("LISTING_REVIEW")
    assert run.codes(issued) == ["FIX_LISTING"]
    assert issued.rule == "wish.listing_review"


def test_a_packaging_review_asks_to_improve_packaging(ev: Events, run: Run) -> None:
    complaints = Complaints(run, ev)
    for day, reason in enumerate(PACKAGING[1]):
        complaints.file(T0 + day * DAY, reason)

    [issued] = run.recs("PACKAGING_REVIEW")
    assert run.codes(issued) == ["IMPROVE_PACKAGING"]
    assert issued.rule == "wish.packaging_review"


@REVIEWS
def test_two_complaints_do_not_issue_a_review(
    ev: Events, run: Run, review: str, reasons: list[str]
) -> None:
    complaints = Complaints(run, ev)
    complaints.file(T0, reasons[0])
    complaints.file(T0 + DAY, reasons[1])

    assert run.recs(review) == []


@REVIEWS
def test_a_fourth_complaint_does_not_issue_the_review_again(
    ev: Events, run: Run, review: str, reasons: list[str]
) -> None:
    complaints = Complaints(run, ev)
    for day, reason in enumerate([*reasons, reasons[0], reasons[1]]):
        complaints.file(T0 + day * DAY, reason)

    assert len(run.recs(review)) == 1


@REVIEWS
def test_three_complaints_spread_over_more_than_30_days_do_not_issue_a_review(
    ev: Events, run: Run, review: str, reasons: list[str]
) -> None:
    complaints = Complaints(run, ev)
    complaints.file(T0, reasons[0])
    complaints.file(T0 + 15 * DAY, reasons[1])
    complaints.file(T0 + 31 * DAY, reasons[2])

    assert run.recs(review) == []


@REVIEWS
def test_three_complaints_spread_over_30_days_and_a_minute_do_not_issue_a_review(
    ev: Events, run: Run, review: str, reasons: list[str]
) -> None:
    complaints = Complaints(run, ev)
    complaints.file(T0, reasons[0])
    complaints.file(T0 + 15 * DAY, reasons[1])
    complaints.file(T0 + 30 * DAY + MINUTE, reasons[2])

    assert run.recs(review) == []


@REVIEWS
def test_crossing_again_after_dropping_below_issues_a_second_review_with_a_new_id(
    ev: Events, run: Run, review: str, reasons: list[str]
) -> None:
    complaints = Complaints(run, ev)
    for day, reason in enumerate(reasons):
        complaints.file(T0 + day * DAY, reason)
    for day, reason in enumerate(reasons, start=40):
        complaints.file(T0 + day * DAY, reason)

    first, second = run.recs(review)
    assert first.recommendation_id != second.recommendation_id
    assert second.issued_at > T0 + 41 * DAY


@REVIEWS
def test_the_review_id_does_not_depend_on_which_complaint_crossed(
    ev: Events, make_run: Callable[..., Run], review: str, reasons: list[str]
) -> None:
    ids: list[str] = []
    for order in (reasons, list(reversed(reasons))):
        run = make_run()
        complaints = Complaints(run, ev)
        for day, reason in enumerate(order):
            complaints.file(T0 + day * DAY, reason)
        [issued] = run.recs(review)
        ids.append(issued.recommendation_id)

    assert ids[0] == ids[1]


def test_listing_and_packaging_reasons_do_not_count_towards_each_other(
    ev: Events, run: Run
) -> None:
    complaints = Complaints(run, ev)
    for day, reason in enumerate(["damaged", "wrong_item", "missing_parts", "size_fit"]):
        complaints.file(T0 + day * DAY, reason)

    assert run.recs("LISTING_REVIEW") == []
    assert run.recs("PACKAGING_REVIEW") == []


def test_other_complaint_reasons_count_towards_neither_review(ev: Events, run: Run) -> None:
    complaints = Complaints(run, ev)
    reasons = ["defective", "counterfeit", "not_received", "delivered_not_received", "other"]
    for day, reason in enumerate(reasons):
        complaints.file(T0 + day * DAY, reason)

    assert run.recs("LISTING_REVIEW") == []
    assert run.recs("PACKAGING_REVIEW") == []


@REVIEWS
def test_complaints_on_another_sku_do_not_count(
    ev: Events, run: Run, review: str, reasons: list[str]
) -> None:
    complaints = Complaints(run, ev)
    complaints.file(T0, reasons[0])
    complaints.file(T0 + DAY, reasons[1])
    complaints.file(T0 + 2 * DAY, reasons[2], sku="SKU-2")

    assert run.recs(review) == []


@REVIEWS
def test_a_repeated_complaint_counts_once(
    ev: Events, run: Run, review: str, reasons: list[str]
) -> None:
    complaints = Complaints(run, ev)
    complaints.file(T0, reasons[0])
    complaints.file(T0 + DAY, reasons[1])
    last = ev.filed("o2", T0 + DAY, reason=reasons[1], photos=1)  # same complaint c1, new event
    run.step(last, last)

    assert run.recs(review) == []
