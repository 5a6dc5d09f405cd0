"""``orderwatch demo``'s view: its counters, fed by outputs and /metrics, and what it prints."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from rich.console import Console

from streams.tools.demo_view import (
    DemoState,
    FeedRow,
    feed_line,
    health_text,
    parse_metrics,
    render,
    short_time,
)

HEALTH_EVIDENCE: dict[str, Any] = {
    "measure": "valid_tracking_rate",
    "metric": "valid_tracking_rate",
    "value": "0.9375",
    "comparison": "<",
    "threshold": "0.95",
    "numerator": 30,
    "denominator": 32,
}


def state() -> DemoState:
    return DemoState(
        started=100.0,
        broker="127.0.0.1:9092",
        embedded=True,
        web_url="http://127.0.0.1:6066/",
        speed=12.0,
    )


def breach(order: str = "o-000017", merchant: str = "m-001") -> bytes:
    return json.dumps(
        {
            "type": "deadline.breached",
            "breach_id": "b" * 32,
            "order_id": order,
            "merchant_id": merchant,
            "deadline": "fulfillment",
            "due_at": "2026-01-10T15:09:36.760000Z",
            "detected_at": "2026-01-10T15:10:34Z",
            "rule": "wish.fulfillment",
        }
    ).encode()


def resolution() -> bytes:
    return json.dumps(
        {
            "type": "deadline.resolved",
            "resolution_id": "c" * 32,
            "breach_id": "b" * 32,
            "order_id": "o-000017",
            "merchant_id": "m-001",
            "deadline": "fulfillment",
            "rule": "wish.fulfillment",
            "resolution": "met_late",
            "resolved_at": "2026-01-10T17:59:00Z",
            "detected_at": "2026-01-10T18:00:00Z",
        }
    ).encode()


def recommendation(**fields: Any) -> bytes:
    output: dict[str, Any] = {
        "type": "recommendation.issued",
        "recommendation_id": "r" * 32,
        "scope": "order",
        "subject": "o-000083",
        "merchant_id": "m-002",
        "order_id": "o-000083",
        "reason": "FULFILLMENT_AT_RISK",
        "severity": "warning",
        "respond_by": "2026-01-11T19:15:02Z",
        "issued_at": "2026-01-10T20:56:00Z",
    }
    output.update(fields)
    return json.dumps({k: v for k, v in output.items() if v is not None}).encode()


def screen(view: DemoState, now: float, width: int = 120, height: int = 40) -> str:
    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    console.print(render(view, now, height=height))
    return console.export_text()


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("2026-01-10T15:10:34Z", "01-10 15:10"),
        ("2026-01-11T03:10:00+08:00", "01-10 19:10"),  # in UTC
        (datetime(2026, 2, 3, 4, 5, tzinfo=UTC), "02-03 04:05"),
        (None, "-"),
        ("soon", "soon"),
    ],
)
def test_event_times_are_short_and_in_utc(value: str | datetime | None, shown: str) -> None:
    assert short_time(value) == shown


def test_store_health_reads_as_a_rate_against_its_bar_with_whole_counts() -> None:
    assert health_text(HEALTH_EVIDENCE) == "valid tracking 93.8 % < 95 % (30 of 32)"
    refunds = {"measure": "refund_rate", "value": "0.1", "comparison": ">=", "threshold": "0.05"}
    assert health_text(refunds) == "refunds 10 % >= 5 %"


def test_a_feed_line_names_kind_reason_order_store_and_respond_by() -> None:
    row = FeedRow(
        kind="warning",
        what="FULFILLMENT_AT_RISK",
        subject="o-000083",
        store="m-002",
        at="2026-01-10T20:56:00Z",
        respond_by="2026-01-11T19:15:02Z",
    )
    line = feed_line(row)
    assert line.split() == [
        "01-10",
        "20:56",
        "warning",
        "FULFILLMENT_AT_RISK",
        "o-000083",
        "m-002",
        "respond",
        "by",
        "01-11",
        "19:15",
    ]
    without = FeedRow("BREACH", "fulfillment", "o-1", "m-1", "2026-01-10T15:10:34Z")
    assert "respond by" not in feed_line(without)


def test_metrics_are_summed_by_name_skipping_comments_and_nan() -> None:
    text = "\n".join(
        [
            "# HELP orderwatch_open_orders Order states held by this worker.",
            "# TYPE orderwatch_open_orders gauge",
            "orderwatch_open_orders 42.0",
            'orderwatch_events_consumed_total{topic="orders",type="order.placed"} 3.0',
            'orderwatch_events_consumed_total{topic="tracking",type="carrier.scanned"} 4.0',
            "orderwatch_clock_timestamp_seconds NaN",
            "garbage",
        ]
    )
    assert parse_metrics(text) == {
        "orderwatch_open_orders": 42.0,
        "orderwatch_events_consumed_total": 7.0,
    }


def test_outputs_count_per_kind_and_store_and_the_first_breach_is_timed() -> None:
    view = state()
    assert view.apply_output("recommendations", recommendation(), now=105.0) is not None
    assert view.first_breach_after is None
    row = view.apply_output("breaches", breach(), now=113.5)
    assert row == FeedRow(
        "BREACH", "fulfillment", "o-000017", "m-001", "2026-01-10T15:10:34Z", None
    )
    view.apply_output("breaches", breach("o-000042"), now=120.0)
    view.apply_output(
        "recommendations",
        recommendation(reason="FULFILLMENT_OVERDUE", severity="critical", respond_by=None),
        now=121.0,
    )
    resolved = view.apply_output("breaches", resolution(), now=121.5)
    assert resolved == FeedRow(
        "resolved", "fulfillment met_late", "o-000017", "m-001", "2026-01-10T18:00:00Z"
    )
    assert view.apply_output("dead_letter", b'{"type": "event.rejected"}', now=122.0) is None
    assert view.apply_output("dead_letter", b"not even json", now=122.0) is None
    assert view.apply_output("breaches", b"not json", now=123.0) is None
    assert view.first_breach_after == pytest.approx(13.5)
    assert (view.breaches, view.recommendations, view.critical, view.dead_letters) == (2, 2, 1, 2)
    assert view.resolved == view.stores["m-001"].resolved == 1
    assert view.stores["m-001"].breaches == 2
    assert (view.stores["m-002"].recommendations, view.stores["m-002"].critical) == (2, 1)
    assert [r.what for r in view.feed] == [
        "fulfillment met_late",
        "FULFILLMENT_OVERDUE",
        "fulfillment",
        "fulfillment",
        "FULFILLMENT_AT_RISK",
    ]


def test_a_store_health_warning_is_kept_per_measure_latest_first() -> None:
    view = state()
    merchant = {"scope": "merchant", "subject": "m-003", "merchant_id": "m-003", "order_id": None}
    view.apply_output(
        "recommendations",
        recommendation(reason="STORE_HEALTH_AT_RISK", evidence=HEALTH_EVIDENCE, **merchant),
        now=110.0,
    )
    later = {**HEALTH_EVIDENCE, "value": "0.9", "numerator": 36, "denominator": 40}
    row = view.apply_output(
        "recommendations",
        recommendation(reason="STORE_HEALTH_AT_RISK", evidence=later, **merchant),
        now=111.0,
    )
    assert row is not None
    assert row.subject == "m-003"
    assert view.stores["m-003"].health == {
        "valid_tracking_rate": "valid tracking 90 % < 95 % (36 of 40)"
    }


def test_events_per_second_is_over_the_last_seconds() -> None:
    view = state()
    assert view.events_per_second(100.0) == 0.0
    view.record_sent(100.0, 0, 0, None)
    view.record_sent(101.0, 100, 2, datetime(2026, 1, 5, tzinfo=UTC))
    view.record_sent(102.0, 300, 6, None)
    assert view.events_per_second(102.0) == pytest.approx(150.0)
    assert view.event_time == datetime(2026, 1, 5, tzinfo=UTC)
    for second in range(103, 110):
        view.record_sent(float(second), 300 + (second - 102) * 10, 6, None)
    # Only the last few seconds count: 10 a second now, not the early burst.
    assert view.events_per_second(109.0) == pytest.approx(10.0)
    assert view.events_per_second(120.0) == 0.0  # nothing sent for longer than the window


def test_metrics_give_open_orders_readiness_and_the_worker_clock() -> None:
    view = state()
    view.apply_metrics("orderwatch_open_orders 0.0\norderwatch_ready 0.0\n")
    assert (view.open_orders, view.worker_ready, view.worker_clock) == (0, False, None)
    view.apply_metrics(
        "orderwatch_open_orders 298.0\norderwatch_ready 1.0\n"
        "orderwatch_clock_timestamp_seconds 1768057834.0\n"
    )
    assert view.open_orders == 298
    assert view.worker_ready
    assert view.worker_clock == datetime(2026, 1, 10, 15, 10, 34, tzinfo=UTC)


def test_the_screen_shows_addresses_counters_decisions_and_stores() -> None:
    view = state()
    view.record_sent(110.0, 1405, 30, None)
    view.record_sent(113.0, 1805, 35, datetime(2026, 1, 11, 16, 57, tzinfo=UTC))
    view.apply_metrics("orderwatch_open_orders 298\norderwatch_ready 1\n")
    view.apply_output("breaches", breach(), now=113.2)
    view.apply_output("recommendations", recommendation(), now=113.3)
    view.apply_output(
        "recommendations",
        recommendation(
            reason="STORE_HEALTH_AT_RISK",
            scope="merchant",
            subject="m-001",
            merchant_id="m-001",
            order_id=None,
            respond_by=None,
            evidence=HEALTH_EVIDENCE,
        ),
        now=113.4,
    )
    view.apply_output("dead_letter", b"{}", now=113.5)
    text = screen(view, now=113.5)
    lines = text.splitlines()
    assert "http://127.0.0.1:6066/" in text
    assert "127.0.0.1:9092 (embedded, memory only)" in text
    assert "Ctrl-C" in text
    assert "first breach 13.2 s after start" in text
    assert "event time 2026-01-11 16:57 UTC" in text
    assert "worker starting" not in text
    header = next(i for i, line in enumerate(lines) if "events sent" in line)
    assert lines[header].split()[:3] == ["events", "sent", "events/s"]
    assert lines[header + 1].split() == ["1,805", "114", "35", "298", "1", "0", "2", "0", "1"]
    assert any(line.split()[2:5] == ["BREACH", "fulfillment", "o-000017"] for line in lines)
    assert any(
        line.split()[2:]
        == ["warning", "FULFILLMENT_AT_RISK", "o-000083", "m-002", "01-11", "19:15"]
        for line in lines
    )
    store = next(line for line in lines if line.split()[:1] == ["m-001"])
    assert store.split()[1:5] == ["1", "0", "1", "0"]
    assert store.rstrip().endswith("valid tracking 93.8 % < 95 % (30 of 32)")
    every = "".join(lines)
    assert "no warning" in every  # m-002


def test_the_feed_shows_the_newest_decisions_that_fit_the_terminal() -> None:
    view = state()
    for number in range(60):
        view.apply_output("breaches", breach(f"o-{number:06d}"), now=120.0)
    short = screen(view, now=121.0, height=24)
    tall = screen(view, now=121.0, height=50)
    assert "o-000059" in short
    assert "o-000000" not in short
    assert short.count("BREACH") < tall.count("BREACH") < 60
    assert len(short.splitlines()) <= 24


MERCHANT: dict[str, Any] = {
    "merchant_id": "m-001",
    "window_days": 30,
    "orders_in_window": 140,
    "health": [
        {"measure": "refund_rate", "rate": 0.02, "count": 3, "of": 140, "comparison": ">=",
         "threshold": 0.05, "at_risk": False},
        {"measure": "valid_tracking_rate", "rate": 0.9375, "count": 30, "of": 32,
         "comparison": "<", "threshold": 0.95, "at_risk": True},
        {"measure": "merchant_cancellation_rate", "rate": None, "count": 0, "of": 0,
         "comparison": ">", "threshold": 0.05, "at_risk": True},
    ],
    "open_recommendations": [],
}  # fmt: skip


def test_the_workers_store_health_names_the_measures_at_risk_with_whole_counts() -> None:
    view = state()
    assert not view.apply_merchant("m-001", {"error": "no such merchant"})
    assert not view.apply_merchant("m-001", ["not", "an", "object"])
    assert "m-001" not in view.stores
    assert view.apply_merchant("m-001", MERCHANT)
    shop = view.stores["m-001"]
    assert shop.health_cell() == (
        "140 orders in window: valid tracking 93.8 % < 95 % (30 of 32); "
        "merchant cancellations - > 5 % (0 of 0)",
        True,
    )
    fine = {**MERCHANT, "health": [{**MERCHANT["health"][0]}]}
    assert view.apply_merchant("m-001", fine)
    assert shop.health_cell() == ("140 orders in window: within thresholds", False)


def test_without_the_workers_answer_health_comes_from_warnings() -> None:
    view = state()
    view.apply_output("breaches", breach(merchant="m-004"), now=101.0)
    assert view.stores["m-004"].health_cell() == ("no warning", False)
    view.apply_output(
        "recommendations",
        recommendation(
            reason="STORE_HEALTH_AT_RISK",
            scope="merchant",
            subject="m-004",
            merchant_id="m-004",
            order_id=None,
            evidence=HEALTH_EVIDENCE,
        ),
        now=102.0,
    )
    assert view.stores["m-004"].health_cell() == ("valid tracking 93.8 % < 95 % (30 of 32)", True)
    assert view.store_ids() == ["m-004"]
    view.apply_merchant("m-004", MERCHANT)  # the worker's answer wins once there is one
    store = next(line for line in screen(view, 103.0).splitlines() if line.split()[:1] == ["m-004"])
    assert "140 orders in window: valid tracking 93.8 % < 95 % (30 of 32)" in store
