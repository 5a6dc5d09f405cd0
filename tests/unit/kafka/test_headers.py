"""The headers of outputs: CloudEvents binary mode, and the dead letter's source."""

from __future__ import annotations

from datetime import UTC, datetime

from streams.core.outputs import (
    DeadlineBreached,
    DeadlineResolved,
    EventRejected,
    FileSource,
    KafkaSource,
    PolicyRef,
    RecommendationIssued,
)
from streams.kafka.headers import cloudevents_source, headers

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
POLICY = PolicyRef(name="wish", version="2026.1")
SOURCE = cloudevents_source("shop-eu")

BREACH = DeadlineBreached(
    breach_id="b-1",
    order_id="o-1",
    merchant_id="m-1",
    deadline="fulfillment",
    due_at=T0,
    detected_at=datetime(2026, 1, 5, 10, 0, 1, 500_000, tzinfo=UTC),
    rule="wish.fulfillment",
    consequence="The order is auto-refunded.",
    policy=POLICY,
)
ADVICE = RecommendationIssued(
    recommendation_id="r-1",
    scope="sku",
    subject="m-1/sku-1",
    merchant_id="m-1",
    reason="LISTING_REVIEW",
    severity="warning",
    actions=(),
    evidence={},
    rule="wish.listing",
    issued_at=T0,
    policy=POLICY,
)


def rejected(source: KafkaSource | FileSource) -> EventRejected:
    return EventRejected(
        rejection_id="x-1",
        source=source,
        key="o-1",
        raw="{",
        error="The message is not valid JSON (EOF while parsing an object at line 1 column 1).",
        rejected_at=T0,
        reason="not_json",
    )


def test_a_breach_carries_its_id_type_time_and_order_as_cloudevents_attributes() -> None:
    assert dict(headers(BREACH, SOURCE)) == {
        "content-type": b"application/json",
        "ce_specversion": b"1.0",
        "ce_id": b"b-1",
        "ce_type": b"deadline.breached",
        "ce_source": b"/orderwatch/shop-eu",
        "ce_time": b"2026-01-05T10:00:01.500000Z",
        "ce_subject": b"o-1",
    }


def test_a_resolution_carries_its_own_id_its_decision_time_and_its_order() -> None:
    resolution = DeadlineResolved(
        resolution_id="s-1",
        breach_id="b-1",
        order_id="o-1",
        merchant_id="m-1",
        deadline="fulfillment",
        rule="wish.fulfillment",
        resolution="met_late",
        resolved_at=T0,
        detected_at=datetime(2026, 1, 5, 10, 5, tzinfo=UTC),
        policy=POLICY,
    )
    attributes = dict(headers(resolution, SOURCE))
    assert attributes["ce_id"] == b"s-1"
    assert attributes["ce_type"] == b"deadline.resolved"
    assert attributes["ce_time"] == b"2026-01-05T10:05:00Z"
    assert attributes["ce_subject"] == b"o-1"


def test_a_recommendation_names_its_subject() -> None:
    attributes = dict(headers(ADVICE, SOURCE))
    assert attributes["ce_id"] == b"r-1"
    assert attributes["ce_type"] == b"recommendation.issued"
    assert attributes["ce_subject"] == b"m-1/sku-1"
    assert attributes["ce_time"] == b"2026-01-05T10:00:00Z"


def test_a_dead_letter_says_where_the_message_came_from_and_why() -> None:
    attributes = dict(
        headers(rejected(KafkaSource(topic="orders", partition=3, offset=41)), SOURCE)
    )
    assert attributes["ce_id"] == b"x-1"
    assert attributes["ce_type"] == b"event.rejected"
    assert "ce_subject" not in attributes
    assert attributes["orderwatch_source_topic"] == b"orders"
    assert attributes["orderwatch_source_partition"] == b"3"
    assert attributes["orderwatch_source_offset"] == b"41"
    assert attributes["orderwatch_error_code"] == b"not_json"


def test_a_rejected_line_of_a_file_has_an_error_code_but_no_kafka_source() -> None:
    attributes = dict(headers(rejected(FileSource(file="events.jsonl", line=4)), SOURCE))
    assert attributes["orderwatch_error_code"] == b"not_json"
    assert not any(name.startswith("orderwatch_source_") for name in attributes)
