"""wish.store_health: rolling 30 days of a store's orders by placement time, evaluated once the
store has at least 20 such orders:

- refund rate (orders refunded / orders) ≥ 5 % warning, ≥ 10 % critical;
- late confirmed fulfillment rate (orders with a confirmed_fulfillment breach / orders with
  tracking) > 10 % (warning);
- valid tracking rate (orders with tracking and a carrier scan / orders with tracking whose scan
  deadline, 72 h, has passed) < 95 % (warning);
- pre-fulfillment cancellation rate (merchant cancellations before tracking / orders) > 5 %
  (warning).

STORE_HEALTH_AT_RISK: the measure's severity, REVIEW_STORE_METRICS, scope merchant.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from streams.core.engine import Output
from streams.core.outputs import RecommendationIssued
from streams.core.policy import Policy

if TYPE_CHECKING:
    from tests.unit.core.rules.conftest import Event, Events, Run

T0 = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)  # a Monday
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def place(run: Run, ev: Events, count: int, start: int = 0, at: datetime = T0) -> None:
    for i in range(start, start + count):
        run.step(ev.placed(f"o{i}", at + i * MINUTE))


def health(
    run: Run, metric: str | None = None, outputs: list[Output] | None = None
) -> list[RecommendationIssued]:
    return [
        r
        for r in run.recs("STORE_HEALTH_AT_RISK", outputs=outputs)
        if metric is None or r.evidence["metric"] == metric
    ]


def in_time_order(run: Run, events: list[Event]) -> None:
    run.step(*sorted(events, key=lambda event: event.occurred_at))


# -- refund rate --------------------------------------------------------------------------------


def test_one_refund_in_twenty_orders_is_a_5_percent_refund_warning(ev: Events, run: Run) -> None:
    place(run, ev, 20)
    produced = run.step(ev.refunded("o0", T0 + HOUR))

    [issued] = health(run, outputs=produced)
    assert issued.severity == "warning"
    assert issued.evidence["metric"] == "refund_rate"
    assert (issued.evidence["numerator"], issued.evidence["denominator"]) == (1, 20)
    assert (issued.scope, issued.subject, issued.merchant_id) == ("merchant", "m1", "m1")
    assert issued.order_id is None
    assert run.codes(issued) == ["REVIEW_STORE_METRICS"]
    assert issued.rule == "wish.store_health"


def test_a_rate_comes_with_its_whole_counts_and_the_query_of_its_orders(
    ev: Events, run: Run
) -> None:
    place(run, ev, 40)
    run.step(ev.refunded("o0", T0 + HOUR), ev.refunded("o1", T0 + HOUR))  # 2 / 40: 5 %

    [issued] = health(run, "refund_rate")
    evidence = issued.evidence
    assert (evidence["refunded"], evidence["orders"], evidence["rate"]) == (2, 40, "0.0500")
    assert evidence["summary"] == "2 of 40 orders (5 %) refunded, threshold >= 5 %"
    assert evidence["query"] == "/merchants/m1"
    assert (evidence["orders_against"], evidence["order_ids"]) == (2, ["o1", "o0"])
    [action] = issued.actions
    assert action.detail.endswith(": 2 of 40 orders (5 %) refunded.")
    assert issued.consequence is not None
    assert "Wish" in issued.consequence


def test_the_orders_named_are_at_most_twenty_the_latest_placed_first(ev: Events, run: Run) -> None:
    place(run, ev, 100)
    run.step(*(ev.refunded(f"o{i}", T0 + 3 * HOUR) for i in range(25)))  # 25 / 100

    critical = [r for r in health(run, "refund_rate") if r.severity == "critical"]
    evidence = critical[0].evidence
    assert (evidence["refunded"], evidence["orders_against"]) == (25, 25)
    assert evidence["order_ids"] == [f"o{i}" for i in range(24, 4, -1)]


def test_the_orders_named_for_valid_tracking_are_those_not_scanned_in_time(
    ev: Events, run: Run
) -> None:
    in_time_order(run, vtr_store(ev, unscanned=2, orders=39))
    run.advance(T0 + 20 * DAY)

    [issued] = health(run, "valid_tracking_rate")
    evidence = issued.evidence
    assert (evidence["valid_tracking"], evidence["tracking_checked"]) == (37, 39)
    assert evidence["orders_against"] == 2
    assert evidence["order_ids"] == ["o38", "o37"]
    assert evidence["query"] == "/merchants/m1/orders?status=at_risk"


def test_nothing_is_evaluated_below_twenty_orders(ev: Events, run: Run) -> None:
    place(run, ev, 19)
    run.step(ev.refunded("o0", T0 + HOUR), ev.refunded("o1", T0 + HOUR))  # 2 / 19

    assert health(run) == []


def test_the_twentieth_order_starts_the_evaluation(ev: Events, run: Run) -> None:
    place(run, ev, 19)
    run.step(ev.refunded("o0", T0 + HOUR))  # 1 / 19, too few orders
    produced = run.step(ev.placed("o19", T0 + 2 * HOUR))  # 1 / 20 = 5 %

    [issued] = health(run, outputs=produced)
    assert (issued.evidence["metric"], issued.severity) == ("refund_rate", "warning")


def test_one_refund_in_twenty_one_orders_is_below_5_percent(ev: Events, run: Run) -> None:
    place(run, ev, 21)
    run.step(ev.refunded("o0", T0 + HOUR))

    assert health(run) == []


def test_two_refunds_in_twenty_orders_are_a_10_percent_critical(ev: Events, run: Run) -> None:
    place(run, ev, 20)
    run.step(ev.refunded("o0", T0 + HOUR))
    produced = run.step(ev.refunded("o1", T0 + 2 * HOUR))

    [critical] = health(run, outputs=produced)
    assert critical.severity == "critical"
    assert critical.evidence["metric"] == "refund_rate"
    assert (critical.evidence["numerator"], critical.evidence["denominator"]) == (2, 20)
    assert [r.severity for r in health(run)] == ["warning", "critical"]


def test_a_second_refund_warning_needs_the_rate_to_drop_below_and_cross_again(
    ev: Events, run: Run
) -> None:
    place(run, ev, 20)
    run.step(ev.refunded("o0", T0 + HOUR))  # 1 / 20 = 5 %: warning
    place(run, ev, 1, start=20, at=T0 + HOUR)  # 1 / 21: below
    run.step(ev.refunded("o1", T0 + 2 * HOUR))  # 2 / 21 = 9.5 %: warning again

    first, second = health(run)
    assert [first.severity, second.severity] == ["warning", "warning"]
    assert first.recommendation_id != second.recommendation_id


def test_an_order_placed_29_and_a_half_days_ago_still_counts(ev: Events, run: Run) -> None:
    place(run, ev, 20)
    run.step(ev.refunded("o0", T0 + 29 * DAY + 12 * HOUR))  # 1 / 20 = 5 %

    [issued] = health(run, "refund_rate")
    assert issued.evidence["denominator"] == 20


def test_orders_placed_30_days_and_an_hour_ago_have_left_the_window(ev: Events, run: Run) -> None:
    place(run, ev, 20)
    place(run, ev, 2, start=20, at=T0 + 30 * DAY + HOUR)
    late = T0 + 30 * DAY + 2 * HOUR
    run.step(ev.refunded("o20", late), ev.refunded("o21", late))

    assert health(run, "refund_rate") == []  # 2 orders in the window; 2 / 22 if it were 31 days


def test_orders_placed_more_than_30_days_ago_leave_the_window(ev: Events, run: Run) -> None:
    place(run, ev, 20)
    place(run, ev, 2, start=20, at=T0 + 31 * DAY)
    run.step(ev.refunded("o20", T0 + 31 * DAY + HOUR), ev.refunded("o21", T0 + 31 * DAY + HOUR))

    assert health(run, "refund_rate") == []  # 2 orders in the window; 2 / 22 if it were 40 days


# -- late confirmed fulfillment rate ------------------------------------------------------------


def lcfr_store(ev: Events, late: int, orders: int = 20) -> list[Event]:
    """Tracked orders; ``late`` of them tracked at 167 h and scanned at 169 h after release."""
    events = []
    for i in range(orders):
        released = T0 + i * MINUTE + 8 * HOUR
        events.append(ev.placed(f"o{i}", T0 + i * MINUTE))
        if i < orders - late:
            events += [
                ev.tracked(f"o{i}", released + HOUR),
                ev.scanned(f"o{i}", released + 2 * HOUR),
            ]
        else:
            events += [
                ev.tracked(f"o{i}", released + 167 * HOUR),
                ev.scanned(f"o{i}", released + 169 * HOUR),
            ]
    return events


def test_three_late_confirmations_in_twenty_tracked_orders_exceed_10_percent(
    ev: Events, run: Run
) -> None:
    in_time_order(run, lcfr_store(ev, late=3))
    run.advance(T0 + 10 * DAY)

    [issued] = health(run, "late_confirmed_fulfillment_rate")
    assert issued.severity == "warning"
    assert (issued.evidence["numerator"], issued.evidence["denominator"]) == (3, 20)
    assert health(run, "valid_tracking_rate") == []


def test_three_late_confirmations_in_twenty_eight_tracked_orders_are_10_7_percent(
    ev: Events, run: Run
) -> None:
    in_time_order(run, lcfr_store(ev, late=3, orders=28))
    run.advance(T0 + 10 * DAY)

    [issued] = health(run, "late_confirmed_fulfillment_rate")
    assert (issued.evidence["numerator"], issued.evidence["denominator"]) == (3, 28)
    assert (issued.evidence["late_confirmed"], issued.evidence["tracked"]) == (3, 28)
    assert issued.evidence["summary"].startswith("3 of 28 tracked orders (10.7 %) confirmed late")
    assert issued.evidence["query"] == "/merchants/m1/orders?status=breached"
    assert issued.actions[0].detail.endswith("3 of 28 tracked orders (10.7 %) confirmed late.")


def test_two_late_confirmations_in_twenty_tracked_orders_are_exactly_10_percent_and_fine(
    ev: Events, run: Run
) -> None:
    in_time_order(run, lcfr_store(ev, late=2))
    run.advance(T0 + 10 * DAY)

    assert health(run) == []


# -- valid tracking rate ------------------------------------------------------------------------


def vtr_store(ev: Events, unscanned: int, orders: int = 20) -> list[Event]:
    """Orders tracked 1 h after release; all but ``unscanned`` scanned an hour later."""
    events = []
    for i in range(orders):
        released = T0 + i * MINUTE + 8 * HOUR
        events += [ev.placed(f"o{i}", T0 + i * MINUTE), ev.tracked(f"o{i}", released + HOUR)]
        if i < orders - unscanned:
            events.append(ev.scanned(f"o{i}", released + 2 * HOUR))
    return events


def test_the_first_unscanned_number_past_its_scan_deadline_drops_the_rate_below_95_percent(
    ev: Events, run: Run
) -> None:
    in_time_order(run, vtr_store(ev, unscanned=2))
    run.advance(T0 + 10 * DAY)

    [issued] = health(run, "valid_tracking_rate")
    assert issued.severity == "warning"
    # o18's scan deadline (tracked + 72 h) passes first: 18 scanned of 19 checked, 94.7 %.
    assert (issued.evidence["numerator"], issued.evidence["denominator"]) == (18, 19)
    assert issued.issued_at == T0 + 18 * MINUTE + 9 * HOUR + 72 * HOUR
    assert health(run, "late_confirmed_fulfillment_rate") == []  # 2 / 20 = 10 %, not above


def test_two_unscanned_numbers_in_thirty_nine_make_94_9_percent_and_are_flagged(
    ev: Events, run: Run
) -> None:
    in_time_order(run, vtr_store(ev, unscanned=2, orders=39))
    run.advance(T0 + 10 * DAY)

    [issued] = health(run, "valid_tracking_rate")
    assert (issued.evidence["numerator"], issued.evidence["denominator"]) == (37, 39)


def test_one_unscanned_number_in_twenty_is_exactly_95_percent_and_fine(
    ev: Events, run: Run
) -> None:
    in_time_order(run, vtr_store(ev, unscanned=1))
    run.advance(T0 + 10 * DAY)

    assert health(run) == []


def test_the_valid_tracking_rate_is_flagged_when_the_scan_deadline_passes(
    ev: Events, run: Run
) -> None:
    in_time_order(run, vtr_store(ev, unscanned=2))
    last_scan_deadline = T0 + 19 * MINUTE + 8 * HOUR + HOUR + 72 * HOUR

    fired = run.advance(last_scan_deadline)

    assert len(health(run, "valid_tracking_rate", outputs=fired)) == 1


# -- pre-fulfillment cancellation rate ----------------------------------------------------------


def test_two_merchant_cancellations_in_twenty_orders_exceed_5_percent(ev: Events, run: Run) -> None:
    place(run, ev, 20)
    first = run.step(ev.cancelled("o0", T0 + HOUR, by="merchant"))  # 1 / 20 = 5 %: not above
    assert health(run, outputs=first) == []

    produced = run.step(ev.cancelled("o1", T0 + HOUR, by="merchant"))  # 2 / 20 = 10 %

    [issued] = health(run, outputs=produced)
    assert issued.evidence["metric"] == "pre_fulfillment_cancellation_rate"
    assert issued.severity == "warning"
    assert (issued.evidence["numerator"], issued.evidence["denominator"]) == (2, 20)


def test_two_merchant_cancellations_in_thirty_eight_orders_are_5_3_percent_and_flagged(
    ev: Events, run: Run
) -> None:
    place(run, ev, 38)
    run.step(ev.cancelled("o0", T0 + HOUR), ev.cancelled("o1", T0 + HOUR))

    [issued] = health(run)
    assert issued.evidence["metric"] == "pre_fulfillment_cancellation_rate"
    assert (issued.evidence["numerator"], issued.evidence["denominator"]) == (2, 38)


@pytest.mark.parametrize("by", ["customer", "platform"])
def test_cancellations_not_by_the_merchant_do_not_count(ev: Events, run: Run, by: str) -> None:
    place(run, ev, 20)
    run.step(*(ev.cancelled(f"o{i}", T0 + HOUR, by=by) for i in range(5)))

    assert health(run) == []


def test_merchant_cancellations_after_tracking_do_not_count(ev: Events, run: Run) -> None:
    place(run, ev, 20)
    for i in range(3):
        run.step(ev.tracked(f"o{i}", T0 + 9 * HOUR), ev.cancelled(f"o{i}", T0 + 10 * HOUR))

    assert health(run) == []


def test_merchant_cancellations_wait_for_twenty_orders(ev: Events, run: Run) -> None:
    place(run, ev, 19)
    run.step(ev.cancelled("o0", T0 + HOUR), ev.cancelled("o1", T0 + HOUR))  # 2 / 19
    assert health(run) == []

    produced = run.step(ev.placed("o19", T0 + 2 * HOUR))  # 2 / 20 = 10 %

    [issued] = health(run, outputs=produced)
    assert issued.evidence["metric"] == "pre_fulfillment_cancellation_rate"


def test_an_order_refunded_after_its_window_still_leaves_the_window_on_time(policy: Policy) -> None:
    """Already knowing of a refund 36 days away must not keep the order counted past day 30."""
    from streams.core.facts import OrderHealth
    from streams.core.merchant import view_order

    order = OrderHealth("m1", "o1", "m1", T0, T0, refunded_at=T0 + 36 * DAY)
    counts, next_change = view_order(policy.store_window, policy.tracking_scan, order, T0 + DAY)
    assert counts is not None
    assert (counts[0], counts[1]) == (1, 0)  # counted in the window, not refunded yet
    assert next_change == T0 + 30 * DAY
    assert view_order(policy.store_window, policy.tracking_scan, order, T0 + 30 * DAY) == (
        None,
        None,
    )
