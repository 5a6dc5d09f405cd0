"""wish.complaint_response and what each complaint reason recommends.

policy.md: a customer ticket must be answered (responded or resolved) within 48 h, weekends
count; else Wish support decides. COMPLAINT_RESPONSE_OVERDUE: critical, CONTACT_CUSTOMER.
Each complaint issues COMPLAINT_<REASON> at once with the table's severity and actions in order
(REQUEST_EVIDENCE only when photos = 0; ASK_TO_WAIT only while the delivery deadline is still
ahead) and respond_by = filed + 48 h.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from streams.core.ids import breach_id
from streams.core.outputs import RecommendationIssued

if TYPE_CHECKING:
    from tests.unit.core.rules.conftest import Event, Events, Run

T0 = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)  # a Monday
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)
US = timedelta(microseconds=1)
FILED = T0 + 5 * DAY  # Saturday 2024-03-09 09:00, well before the US delivery due (15 days)
ANSWER_BY = FILED + 48 * HOUR
DELIVERY_DUE = T0 + 15 * DAY

C, RE, WAIT = "CONTACT_CUSTOMER", "REQUEST_EVIDENCE", "ASK_TO_WAIT"
PARTIAL, RESHIP, REFUND = "OFFER_PARTIAL_REFUND", "OFFER_RESHIP", "OFFER_REFUND"

# policy.md "What each reason recommends", for photos = 0 and photos = 2, delivery still ahead.
CASES = [
    ("not_as_described", 0, "warning", [C, RE, PARTIAL, RESHIP, "FIX_LISTING"]),
    ("not_as_described", 2, "warning", [C, PARTIAL, RESHIP, "FIX_LISTING"]),
    ("wrong_item", 0, "warning", [C, RESHIP, "CHECK_PICKING"]),
    ("wrong_item", 2, "warning", [C, RESHIP, "CHECK_PICKING"]),
    ("size_fit", 0, "warning", [C, PARTIAL, RESHIP, "FIX_LISTING"]),
    ("size_fit", 2, "warning", [C, PARTIAL, RESHIP, "FIX_LISTING"]),
    ("damaged", 0, "warning", [C, RE, RESHIP, PARTIAL, "FILE_CARRIER_CLAIM", "IMPROVE_PACKAGING"]),
    ("damaged", 2, "warning", [C, RESHIP, PARTIAL, "FILE_CARRIER_CLAIM", "IMPROVE_PACKAGING"]),
    ("defective", 0, "warning", [C, RE, RESHIP, PARTIAL, "QUALITY_CHECK"]),
    ("defective", 2, "warning", [C, RESHIP, PARTIAL, "QUALITY_CHECK"]),
    ("missing_parts", 0, "warning", [C, RESHIP, PARTIAL, "CHECK_PICKING"]),
    ("missing_parts", 2, "warning", [C, RESHIP, PARTIAL, "CHECK_PICKING"]),
    ("counterfeit", 0, "critical", ["DELIST_SKU", REFUND]),
    ("counterfeit", 2, "critical", ["DELIST_SKU", REFUND]),
    ("not_received", 0, "warning", [C, WAIT, RESHIP, REFUND, "CHANGE_CARRIER"]),
    ("not_received", 2, "warning", [C, WAIT, RESHIP, REFUND, "CHANGE_CARRIER"]),
    ("delivered_not_received", 0, "warning", [C, "DISPUTE_WITH_PROOF", REFUND]),
    ("delivered_not_received", 2, "warning", [C, "DISPUTE_WITH_PROOF", REFUND]),
    ("other", 0, "info", [C]),
    ("other", 2, "info", [C]),
]


def shipped(run: Run, ev: Events, order_id: str = "o1") -> None:
    """A placed, tracked and scanned US order (delivery due 15 days after T0)."""
    run.feed(
        ev.placed(order_id, T0),
        ev.tracked(order_id, T0 + 10 * HOUR),
        ev.scanned(order_id, T0 + 11 * HOUR, status="in_transit"),
    )


def advise(run: Run, filed: Event) -> list[RecommendationIssued]:
    """Feed a complaint, let the clock reach its filing time; the advice issued for it."""
    produced = run.feed(filed) + run.advance(filed.occurred_at)
    return [r for r in run.recs(outputs=produced) if r.reason.startswith("COMPLAINT_")]


@pytest.mark.parametrize(
    ("reason", "photos", "severity", "actions"),
    CASES,
    ids=[f"{reason}-{photos}-photos" for reason, photos, _, _ in CASES],
)
def test_each_complaint_reason_recommends_its_severity_and_actions_in_order(
    ev: Events, run: Run, reason: str, photos: int, severity: str, actions: list[str]
) -> None:
    shipped(run, ev)
    [rec] = advise(run, ev.filed("o1", FILED, reason=reason, photos=photos))

    assert rec.reason == f"COMPLAINT_{reason.upper()}"
    assert rec.severity == severity
    assert run.codes(rec) == actions
    assert rec.respond_by == ANSWER_BY == datetime(2024, 3, 11, 9, 0, tzinfo=UTC)
    assert rec.rule == "wish.complaint_response"
    assert (rec.scope, rec.subject, rec.order_id) == ("order", "o1", "o1")


def test_every_complaint_reason_has_its_own_reason_code(ev: Events, run: Run) -> None:
    reasons = sorted({reason for reason, *_ in CASES})
    run.feed(ev.placed("o1", T0))
    for number, reason in enumerate(reasons):
        run.feed(ev.filed("o1", FILED, reason=reason, complaint_id=f"c{number}"))
    run.advance(FILED)

    assert sorted(r.reason for r in run.recs() if r.reason.startswith("COMPLAINT_")) == [
        "COMPLAINT_COUNTERFEIT",
        "COMPLAINT_DAMAGED",
        "COMPLAINT_DEFECTIVE",
        "COMPLAINT_DELIVERED_NOT_RECEIVED",
        "COMPLAINT_MISSING_PARTS",
        "COMPLAINT_NOT_AS_DESCRIBED",
        "COMPLAINT_NOT_RECEIVED",
        "COMPLAINT_OTHER",
        "COMPLAINT_SIZE_FIT",
        "COMPLAINT_WRONG_ITEM",
    ]


def test_the_advice_is_issued_once_the_clock_reaches_the_filing_time(ev: Events, run: Run) -> None:
    shipped(run, ev)
    run.feed(ev.filed("o1", FILED, reason="wrong_item"))

    assert run.recs("COMPLAINT_WRONG_ITEM", outputs=run.advance(FILED - US)) == []
    [rec] = run.recs("COMPLAINT_WRONG_ITEM", outputs=run.advance(FILED))
    assert rec.issued_at == FILED
    assert rec.respond_by == ANSWER_BY


def test_a_complaint_issues_its_advice_once(ev: Events, run: Run) -> None:
    shipped(run, ev)
    filed = ev.filed("o1", FILED, reason="wrong_item")
    run.feed(filed, filed, ev.filed("o1", FILED + HOUR, reason="wrong_item"))  # same c1 again
    run.advance(ANSWER_BY + DAY)

    assert len(run.recs("COMPLAINT_WRONG_ITEM")) == 1


def test_one_photo_is_enough_to_drop_request_evidence(ev: Events, run: Run) -> None:
    shipped(run, ev)
    [rec] = advise(run, ev.filed("o1", FILED, reason="damaged", photos=1))
    assert RE not in run.codes(rec)


def test_not_received_after_the_delivery_deadline_does_not_ask_to_wait(
    ev: Events, run: Run
) -> None:
    shipped(run, ev)
    filed = ev.filed("o1", DELIVERY_DUE + DAY, reason="not_received")
    [rec] = advise(run, filed)
    assert run.codes(rec) == [C, RESHIP, REFUND, "CHANGE_CARRIER"]


def test_not_received_filed_exactly_at_the_delivery_deadline_does_not_ask_to_wait(
    ev: Events, run: Run
) -> None:
    shipped(run, ev)
    filed = ev.filed("o1", DELIVERY_DUE, reason="not_received")
    [rec] = advise(run, filed)
    assert WAIT not in run.codes(rec)


def test_not_received_one_microsecond_before_the_delivery_deadline_asks_to_wait(
    ev: Events, run: Run
) -> None:
    shipped(run, ev)
    filed = ev.filed("o1", DELIVERY_DUE - US, reason="not_received")
    [rec] = advise(run, filed)
    assert run.codes(rec) == [C, WAIT, RESHIP, REFUND, "CHANGE_CARRIER"]


def test_not_received_on_an_express_order_uses_the_express_deadline(ev: Events, run: Run) -> None:
    # Released Monday 10:00; express due next Monday 10:00, long before 15 calendar days.
    run.feed(ev.placed("o1", datetime(2024, 3, 4, 2, 0, tzinfo=UTC), program="express"))
    filed = ev.filed("o1", datetime(2024, 3, 12, 9, 0, tzinfo=UTC), reason="not_received")
    [rec] = advise(run, filed)
    assert WAIT not in run.codes(rec)


def test_not_received_on_a_delivered_order_does_not_ask_to_wait(ev: Events, run: Run) -> None:
    shipped(run, ev)
    run.feed(ev.scanned("o1", FILED - DAY, status="delivered"))
    filed = ev.filed("o1", FILED, reason="not_received")
    [rec] = advise(run, filed)
    assert WAIT not in run.codes(rec)


def test_the_advice_does_not_depend_on_the_complaint_arriving_before_its_order(
    ev: Events, make_run: Callable[..., Run]
) -> None:
    in_order, reversed_ = make_run(), make_run()
    placed = ev.placed("o1", T0)
    filed = ev.filed("o1", T0 + timedelta(minutes=2), reason="not_received")
    in_order.feed(placed, filed)
    reversed_.feed(filed, placed)
    for one in (in_order, reversed_):
        one.advance(filed.occurred_at)

    [expected] = in_order.recs("COMPLAINT_NOT_RECEIVED")
    [actual] = reversed_.recs("COMPLAINT_NOT_RECEIVED")
    assert in_order.codes(expected) == [C, WAIT, RESHIP, REFUND, "CHANGE_CARRIER"]
    assert reversed_.codes(actual) == in_order.codes(expected)


def test_the_advice_does_not_depend_on_a_delivered_scan_arriving_after_the_complaint(
    ev: Events, make_run: Callable[..., Run]
) -> None:
    in_order, reversed_ = make_run(), make_run()
    delivered = ev.scanned("o1", FILED - 2 * MINUTE, status="delivered")
    filed = ev.filed("o1", FILED, reason="not_received")
    for one in (in_order, reversed_):
        shipped(one, ev)
    in_order.feed(delivered, filed)
    reversed_.feed(filed, delivered)
    for one in (in_order, reversed_):
        one.advance(FILED)

    [expected] = in_order.recs("COMPLAINT_NOT_RECEIVED")
    [actual] = reversed_.recs("COMPLAINT_NOT_RECEIVED")
    assert in_order.codes(expected) == [C, RESHIP, REFUND, "CHANGE_CARRIER"]
    assert reversed_.codes(actual) == in_order.codes(expected)


# -- the 48 h response deadline ----------------------------------------------------------------


def test_an_unanswered_complaint_breaches_48_hours_after_filing_and_not_before(
    ev: Events, run: Run
) -> None:
    shipped(run, ev)
    run.feed(ev.filed("o1", FILED, reason="damaged", photos=2))

    assert run.breaches("complaint_response", outputs=run.advance(ANSWER_BY - US)) == []
    [breach] = run.breaches("complaint_response", outputs=run.advance(ANSWER_BY))
    assert breach.due_at == breach.detected_at == ANSWER_BY


def test_weekends_count_towards_the_48_hours(ev: Events, run: Run) -> None:
    friday_noon = datetime(2024, 3, 8, 12, 0, tzinfo=UTC)
    shipped(run, ev)
    run.feed(ev.filed("o1", friday_noon))
    run.advance(datetime(2024, 3, 10, 12, 0, tzinfo=UTC))  # Sunday noon

    [breach] = run.breaches("complaint_response")
    assert breach.due_at == datetime(2024, 3, 10, 12, 0, tzinfo=UTC)


def test_a_response_at_exactly_48_hours_meets_the_deadline(ev: Events, run: Run) -> None:
    shipped(run, ev)
    run.feed(ev.filed("o1", FILED), ev.responded("o1", ANSWER_BY))
    run.advance(ANSWER_BY + DAY)

    assert run.breaches("complaint_response") == []


def test_a_resolution_at_exactly_48_hours_meets_the_deadline(ev: Events, run: Run) -> None:
    shipped(run, ev)
    run.feed(ev.filed("o1", FILED), ev.resolved("o1", ANSWER_BY, outcome="partial_refund"))
    run.advance(ANSWER_BY + DAY)

    assert run.breaches("complaint_response") == []


def test_a_response_one_microsecond_late_does_not_meet_the_deadline(ev: Events, run: Run) -> None:
    shipped(run, ev)
    run.feed(ev.filed("o1", FILED), ev.responded("o1", ANSWER_BY + US))
    run.advance(ANSWER_BY + DAY)

    assert len(run.breaches("complaint_response")) == 1


def test_a_response_arriving_before_its_complaint_still_meets_the_deadline(
    ev: Events, run: Run
) -> None:
    shipped(run, ev)
    run.feed(ev.responded("o1", FILED + HOUR), ev.filed("o1", FILED))
    run.advance(ANSWER_BY + DAY)

    assert run.breaches("complaint_response") == []


def test_a_response_to_another_complaint_does_not_meet_the_deadline(ev: Events, run: Run) -> None:
    shipped(run, ev)
    run.feed(
        ev.filed("o1", FILED, complaint_id="c1"),
        ev.filed("o1", FILED, complaint_id="c2"),
        ev.responded("o1", FILED + HOUR, complaint_id="c2"),
    )
    run.advance(ANSWER_BY + DAY)

    assert [b.complaint_id for b in run.breaches("complaint_response")] == ["c1"]


def test_the_breach_names_the_complaint_and_has_one_id_per_complaint(ev: Events, run: Run) -> None:
    shipped(run, ev)
    run.feed(ev.filed("o1", FILED, complaint_id="c1"), ev.filed("o1", FILED, complaint_id="c2"))
    run.advance(ANSWER_BY)

    breaches = {b.complaint_id: b for b in run.breaches("complaint_response")}
    assert set(breaches) == {"c1", "c2"}
    assert breaches["c1"].breach_id == breach_id("o1", "complaint_response", "c1")
    assert breaches["c1"].breach_id != breaches["c2"].breach_id
    assert breaches["c1"].rule == "wish.complaint_response"
    assert "refund" in breaches["c1"].consequence
    assert (breaches["c1"].policy.name, breaches["c1"].policy.version) == ("wish", "2021.1")


def test_complaint_response_overdue_is_critical_and_says_contact_the_customer(
    ev: Events, run: Run
) -> None:
    shipped(run, ev)
    run.feed(ev.filed("o1", FILED, reason="size_fit"))
    fired = run.advance(ANSWER_BY)

    [overdue] = run.recs("COMPLAINT_RESPONSE_OVERDUE", outputs=fired)
    assert overdue.severity == "critical"
    assert run.codes(overdue) == [C]
    assert overdue.respond_by is None
    assert overdue.rule == "wish.complaint_response"
    assert overdue.evidence["complaint_id"] == "c1"
