"""The worker's Prometheus metrics: each method moves the right series, on a fresh registry."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from streams import __version__
from streams.core.events import EVENT_TYPES, decode_event
from streams.core.order import BREACH_RULES
from streams.core.outputs import (
    DeadlineBreached,
    DeadlineName,
    DeadlineResolved,
    EventRejected,
    KafkaSource,
    PolicyRef,
    Reason,
    RecommendationIssued,
    Rejection,
    Resolution,
    Severity,
)
from streams.ops.metrics import DEADLINES, REJECTION_REASONS, Metrics

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
POLICY = PolicyRef(name="wish", version="2026.1")
TOPICS = ("orders", "inventory", "tracking", "complaints")


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> Metrics:
    return Metrics(registry, topics=TOPICS, policy=POLICY)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def consumed(registry: CollectorRegistry, topic: str, event_type: str) -> float | None:
    return value(registry, "orderwatch_events_consumed_total", topic=topic, type=event_type)


def rejected(registry: CollectorRegistry, topic: str, reason: str) -> float | None:
    return value(registry, "orderwatch_events_rejected_total", topic=topic, reason=reason)


def breaches(registry: CollectorRegistry, deadline: str, rule: str) -> float | None:
    return value(registry, "orderwatch_breaches_total", deadline=deadline, rule=rule)


def recommended(registry: CollectorRegistry, reason: str, severity: str) -> float | None:
    return value(registry, "orderwatch_recommendations_total", reason=reason, severity=severity)


def breach(
    deadline: DeadlineName = "fulfillment", *, late_by: timedelta = timedelta(seconds=2)
) -> DeadlineBreached:
    return DeadlineBreached(
        breach_id="b1",
        order_id="o1",
        merchant_id="m1",
        deadline=deadline,
        complaint_id="c1" if deadline == "complaint_response" else None,
        due_at=T0,
        detected_at=T0 + late_by,
        rule=BREACH_RULES[deadline][0],
        consequence="The order is auto-refunded.",
        policy=POLICY,
    )


def recommendation(
    reason: Reason = "FULFILLMENT_OVERDUE", severity: Severity = "critical"
) -> RecommendationIssued:
    return RecommendationIssued(
        recommendation_id="r1",
        scope="order",
        subject="o1",
        merchant_id="m1",
        order_id="o1",
        reason=reason,
        severity=severity,
        actions=(),
        evidence={},
        rule="wish.fulfillment",
        issued_at=T0,
        policy=POLICY,
    )


def rejection(error: str) -> EventRejected:
    return EventRejected(
        rejection_id="x1",
        source=KafkaSource(topic="orders", partition=0, offset=7),
        key=None,
        raw="{",
        error=error,
        rejected_at=T0,
        reason="not_an_object",
    )


# -- a fresh registry, series declared at 0 ---------------------------------------------------


def test_metrics_without_a_registry_use_a_fresh_one_not_the_global_one() -> None:
    first, second = Metrics(), Metrics()
    assert first.registry is not second.registry
    first.observe_event("orders", "order.placed")
    assert consumed(first.registry, "orders", "order.placed") == 1.0
    assert consumed(second.registry, "orders", "order.placed") is None


def test_known_series_exist_at_zero_before_anything_happens(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    for topic in TOPICS:
        for event_type in (*EVENT_TYPES, "unknown"):
            assert consumed(registry, topic, event_type) == 0.0
        for reason in REJECTION_REASONS:
            assert rejected(registry, topic, reason) == 0.0
        assert value(registry, "orderwatch_duplicate_events_total", topic=topic) == 0.0
        assert value(registry, "orderwatch_processing_failures_total", topic=topic) == 0.0
    for deadline in DEADLINES:
        for rule in BREACH_RULES[deadline]:
            assert breaches(registry, deadline, rule) == 0.0
        assert value(registry, "orderwatch_late_events_total", deadline=deadline) == 0.0
    for severity in ("info", "warning", "critical"):
        assert recommended(registry, "STOCKOUT_RISK", severity) == 0.0
    assert value(registry, "orderwatch_open_orders") == 0.0
    assert value(registry, "orderwatch_assigned_partitions") == 0.0
    assert value(registry, "orderwatch_processing_seconds_count") == 0.0
    assert value(registry, "orderwatch_breach_detection_lag_seconds_count") == 0.0


def test_the_four_deadlines_are_the_contracts() -> None:
    assert set(DEADLINES) == {
        "fulfillment",
        "confirmed_fulfillment",
        "delivery",
        "complaint_response",
    }


# -- input ----------------------------------------------------------------------------------


def test_observe_event_counts_by_topic_and_type(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    metrics.observe_event("orders", "order.placed")
    metrics.observe_event("orders", "order.placed")
    metrics.observe_event("tracking", "carrier.scanned")

    assert consumed(registry, "orders", "order.placed") == 2.0
    assert consumed(registry, "tracking", "carrier.scanned") == 1.0
    assert consumed(registry, "orders", "order.cancelled") == 0.0


def test_a_type_outside_the_contract_counts_as_unknown(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    metrics.observe_event("orders", "order.exploded")
    metrics.observe_event("orders", "")

    assert consumed(registry, "orders", "unknown") == 2.0
    assert consumed(registry, "orders", "order.exploded") is None


def test_a_topic_not_declared_up_front_still_counts(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    metrics.observe_event("eu.orders", "order.placed")

    assert consumed(registry, "eu.orders", "order.placed") == 1.0


def test_last_event_timestamp_keeps_the_largest_occurred_at(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    metrics.observe_event("orders", "order.placed", T0)
    metrics.observe_event("orders", "order.placed", T0 - timedelta(hours=1))
    assert value(registry, "orderwatch_last_event_timestamp_seconds") == T0.timestamp()

    metrics.observe_event_time(T0 + timedelta(seconds=30))
    assert value(registry, "orderwatch_last_event_timestamp_seconds") == T0.timestamp() + 30


def test_observe_rejection_counts_by_reason(metrics: Metrics, registry: CollectorRegistry) -> None:
    metrics.observe_rejection("orders", "not_an_object")

    assert rejected(registry, "orders", "not_an_object") == 1.0
    assert rejected(registry, "orders", "not_json") == 0.0
    assert value(registry, "orderwatch_processing_failures_total", topic="orders") == 0.0


def test_a_processing_failure_is_counted_apart_from_rejected_input(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    metrics.observe_rejection("tracking", "processing_failed")

    assert value(registry, "orderwatch_processing_failures_total", topic="tracking") == 1.0
    for reason in REJECTION_REASONS:
        assert rejected(registry, "tracking", reason) == 0.0
    assert rejected(registry, "tracking", "processing_failed") is None


def test_observe_duplicate_counts_by_topic(metrics: Metrics, registry: CollectorRegistry) -> None:
    metrics.observe_duplicate("complaints")

    assert value(registry, "orderwatch_duplicate_events_total", topic="complaints") == 1.0
    assert value(registry, "orderwatch_duplicate_events_total", topic="orders") == 0.0


def test_observe_late_event_counts_by_deadline(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    metrics.observe_late_event("delivery")

    assert value(registry, "orderwatch_late_events_total", deadline="delivery") == 1.0
    assert value(registry, "orderwatch_late_events_total", deadline="fulfillment") == 0.0


# -- the reason decode_event gives each kind of error ------------------------------------------

VALID = {
    "event_id": "e1",
    "type": "order.cancelled",
    "occurred_at": "2026-01-05T10:00:00Z",
    "merchant_id": "m1",
    "order_id": "o1",
    "cancelled_by": "merchant",
}


def _json(**changes: Any) -> bytes:
    """VALID with fields changed; a field given as ``...`` is left out."""
    event = {**VALID, **changes}
    return json.dumps({k: v for k, v in event.items() if v is not ...}).encode()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        pytest.param(b"\xff\xfe{}", "not_utf8", id="invalid-utf8"),
        pytest.param(b'{"type": "order.placed", "sku": "caf\xe9"}', "not_utf8", id="latin-1"),
        pytest.param(b"{not json", "not_json", id="invalid-json"),
        pytest.param(b"", "not_json", id="empty"),
        pytest.param(b'{"type": "order.placed"', "not_json", id="truncated"),
        pytest.param(b"[1, 2]", "not_an_object", id="array"),
        pytest.param(b"42", "not_an_object", id="number"),
        pytest.param(b"null", "not_an_object", id="null"),
        pytest.param(b'"order.placed"', "not_an_object", id="string"),
        pytest.param(b"{}", "missing_field", id="no-type"),
        pytest.param(_json(type=...), "missing_field", id="type-removed"),
        pytest.param(_json(type="order.exploded"), "unknown_type", id="unknown-type"),
        pytest.param(_json(type=5), "unknown_type", id="type-not-a-string"),
        pytest.param(
            _json(type="is required but missing"), "unknown_type", id="type-that-reads-missing"
        ),
        pytest.param(_json(order_id=...), "missing_field", id="missing-order-id"),
        pytest.param(
            _json(order_id=..., merchant_id=..., event_id=..., occurred_at=...),
            "missing_field",
            id="many-missing",
        ),
        pytest.param(_json(order_id=5), "invalid_field", id="wrong-type"),
        pytest.param(_json(cancelled_by="bob"), "invalid_field", id="not-an-allowed-value"),
        pytest.param(
            _json(occurred_at="2026-01-05T10:00:00"), "invalid_field", id="timestamp-no-offset"
        ),
        pytest.param(
            _json(
                type="order.placed",
                sku="s",
                quantity=0,
                unit_price="1",
                currency="USD",
                destination_country="US",
            ),
            "invalid_field",
            id="quantity-zero",
        ),
        pytest.param(
            _json(cancelled_by="is required but missing"), "invalid_field", id="value-reads-missing"
        ),
    ],
)
def test_decode_event_gives_each_error_its_reason(raw: bytes, reason: str) -> None:
    rejection = decode_event(raw)
    assert isinstance(rejection, Rejection), f"expected a rejection for {raw!r}"

    assert rejection.reason == reason
    assert rejection.reason in REJECTION_REASONS


# -- output ---------------------------------------------------------------------------------


def test_observe_outputs_counts_breaches_by_deadline_with_their_lag(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    metrics.observe_outputs(
        [
            breach("fulfillment", late_by=timedelta(seconds=2)),
            breach("complaint_response", late_by=timedelta(minutes=20)),
        ]
    )

    assert breaches(registry, "fulfillment", "wish.fulfillment") == 1.0
    assert breaches(registry, "complaint_response", "wish.complaint_response") == 1.0
    assert breaches(registry, "delivery", "wish.delivery") == 0.0
    assert value(registry, "orderwatch_breach_detection_lag_seconds_count") == 2.0
    assert value(registry, "orderwatch_breach_detection_lag_seconds_sum") == 1202.0
    assert value(registry, "orderwatch_breach_detection_lag_seconds_bucket", le="5.0") == 1.0
    assert value(registry, "orderwatch_breach_detection_lag_seconds_bucket", le="3600.0") == 2.0


def test_a_breach_detected_on_time_has_zero_lag(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    metrics.observe_outputs([breach(late_by=timedelta(0))])

    assert value(registry, "orderwatch_breach_detection_lag_seconds_bucket", le="0.01") == 1.0
    assert value(registry, "orderwatch_breach_detection_lag_seconds_sum") == 0.0


def test_observe_outputs_counts_recommendations_by_reason_and_severity(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    metrics.observe_outputs(
        [
            recommendation("FULFILLMENT_OVERDUE", "critical"),
            recommendation("STORE_HEALTH_AT_RISK", "warning"),
            recommendation("STORE_HEALTH_AT_RISK", "warning"),
        ]
    )

    assert recommended(registry, "FULFILLMENT_OVERDUE", "critical") == 1.0
    assert recommended(registry, "STORE_HEALTH_AT_RISK", "warning") == 2.0
    assert recommended(registry, "STORE_HEALTH_AT_RISK", "critical") == 0.0


def test_observe_outputs_counts_resolutions_by_deadline_and_how(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    def resolved(deadline: DeadlineName, how: Resolution) -> DeadlineResolved:
        return DeadlineResolved(
            resolution_id="s1",
            breach_id="b1",
            order_id="o1",
            merchant_id="m1",
            deadline=deadline,
            rule=BREACH_RULES[deadline][0],
            resolution=how,
            resolved_at=T0,
            detected_at=T0,
            policy=POLICY,
        )

    metrics.observe_outputs(
        [resolved("fulfillment", "met_late"), resolved("delivery", "refunded"), breach()]
    )

    def count(deadline: str, how: str) -> float | None:
        return value(registry, "orderwatch_resolutions_total", deadline=deadline, resolution=how)

    assert count("fulfillment", "met_late") == 1.0
    assert count("delivery", "refunded") == 1.0
    assert count("delivery", "delivered") == 0.0  # every series exists from the start
    assert breaches(registry, "fulfillment", "wish.fulfillment") == 1.0


def test_observe_outputs_leaves_rejections_to_observe_rejection(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    metrics.observe_outputs([rejection("The message must be a JSON object, not an array.")])

    for reason in REJECTION_REASONS:
        assert rejected(registry, "orders", reason) == 0.0


def test_processing_time_is_observed(metrics: Metrics, registry: CollectorRegistry) -> None:
    metrics.observe_processing(0.00003)

    assert value(registry, "orderwatch_processing_seconds_bucket", le="2.5e-05") == 0.0
    assert value(registry, "orderwatch_processing_seconds_bucket", le="5e-05") == 1.0
    assert value(registry, "orderwatch_processing_seconds_bucket", le="1.0") == 1.0


def test_processing_timer_observes_its_block(metrics: Metrics, registry: CollectorRegistry) -> None:
    with metrics.processing_timer():
        pass

    assert value(registry, "orderwatch_processing_seconds_count") == 1.0


# -- state ----------------------------------------------------------------------------------


def test_gauges_show_open_orders_and_assigned_partitions(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    metrics.set_open_orders(12)
    metrics.set_assigned_partitions(3)
    metrics.set_open_orders(11)

    assert value(registry, "orderwatch_open_orders") == 11.0
    assert value(registry, "orderwatch_assigned_partitions") == 3.0


def test_waiting_aggregate_inputs_are_a_gauge(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    metrics.set_aggregate_inputs_waiting(7)
    assert value(registry, "orderwatch_aggregate_inputs_waiting") == 7.0
    metrics.set_aggregate_inputs_waiting(0)
    assert value(registry, "orderwatch_aggregate_inputs_waiting") == 0.0


def test_aggregate_wait_is_how_far_the_oldest_input_is_behind_the_latest_event(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    wait = "orderwatch_aggregate_input_wait_seconds"
    metrics.set_aggregate_inputs_waiting(2, T0)
    assert value(registry, wait) == 0.0  # no event processed yet

    metrics.observe_event_time(T0 + timedelta(hours=3))
    assert value(registry, wait) == 3 * 3600.0

    metrics.set_aggregate_inputs_waiting(0, None)
    assert value(registry, wait) == 0.0


def test_clock_and_readiness_are_read_when_scraped(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    clock = value(registry, "orderwatch_clock_timestamp_seconds")
    assert clock is not None
    assert math.isnan(clock)  # nobody tracks it yet

    now = [T0.timestamp()]
    ready = [False]
    metrics.track_clock(lambda: now[0])
    metrics.track_ready(lambda: ready[0])
    assert value(registry, "orderwatch_clock_timestamp_seconds") == T0.timestamp()
    assert value(registry, "orderwatch_ready") == 0.0

    now[0] += 60
    ready[0] = True
    assert value(registry, "orderwatch_clock_timestamp_seconds") == T0.timestamp() + 60
    assert value(registry, "orderwatch_ready") == 1.0


def test_consumer_lag_is_per_owned_partition_and_forgets_partitions_given_up(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    lag = "orderwatch_consumer_lag_messages"
    metrics.set_consumer_lag({("orders", 0): 5, ("orders", 1): 0, ("tracking", 0): 2})
    assert value(registry, lag, topic="orders", partition="0") == 5.0
    assert value(registry, lag, topic="orders", partition="1") == 0.0
    assert value(registry, lag, topic="tracking", partition="0") == 2.0

    metrics.set_consumer_lag({("orders", 1): 3})
    assert value(registry, lag, topic="orders", partition="1") == 3.0
    assert value(registry, lag, topic="orders", partition="0") is None
    assert value(registry, lag, topic="tracking", partition="0") is None


def test_the_scrape_has_process_and_gc_collectors_and_no_created_series(
    metrics: Metrics,
) -> None:
    metrics.observe_event("orders", "order.placed", T0)
    text = metrics.exposition().decode()

    assert "process_resident_memory_bytes" in text
    assert "python_gc_collections_total" in text
    assert "_created" not in text


def test_build_info_names_version_and_policy(metrics: Metrics, registry: CollectorRegistry) -> None:
    first = {"version": __version__, "policy": "wish", "policy_version": "2026.1"}
    assert registry.get_sample_value("orderwatch_build_info", first) == 1.0

    metrics.set_build_info(PolicyRef(name="wish", version="2026.2"), version="9.9.9")
    second = {"version": "9.9.9", "policy": "wish", "policy_version": "2026.2"}
    assert registry.get_sample_value("orderwatch_build_info", second) == 1.0
    assert registry.get_sample_value("orderwatch_build_info", first) is None


# -- the exposition -------------------------------------------------------------------------


def test_exposition_is_the_text_format(metrics: Metrics) -> None:
    text = metrics.exposition().decode()

    assert metrics.content_type.startswith("text/plain")
    assert "# TYPE orderwatch_events_consumed_total counter" in text
    assert "# TYPE orderwatch_processing_seconds histogram" in text
    names = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
    ours = {name for name in names if not name.startswith(("process_", "python_"))}
    assert ours
    assert all(name.startswith("orderwatch_") for name in ours)


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is not None:
        return path
    if os.environ.get("CI"):
        pytest.fail("promtool is not on PATH, and CI is set: install it (Debian: prometheus)")
    pytest.skip(
        "promtool is not on PATH (Debian: apt-get install prometheus); "
        "with CI set this is a failure"
    )


def test_promtool_finds_no_problems_in_the_exposition(metrics: Metrics) -> None:
    promtool = _promtool()
    metrics.observe_event("orders", "order.placed", T0)
    metrics.observe_rejection("orders", "not_json")
    metrics.observe_rejection("orders", "processing_failed")
    metrics.observe_duplicate("orders")
    metrics.observe_late_event("delivery")
    metrics.observe_outputs([breach(), recommendation()])
    metrics.observe_processing(0.0002)
    metrics.set_open_orders(1)
    metrics.set_assigned_partitions(2)
    metrics.set_aggregate_inputs_waiting(3, T0)
    metrics.set_consumer_lag({("orders", 0): 4})
    metrics.track_clock(lambda: T0.timestamp())
    metrics.track_ready(lambda: True)

    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=metrics.exposition(),
        capture_output=True,
        timeout=60,
        check=False,
    )

    problems = (result.stdout + result.stderr).decode()
    assert result.returncode == 0, problems
    assert problems.strip() == ""
