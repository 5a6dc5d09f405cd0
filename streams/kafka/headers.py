"""Kafka headers of the messages the worker writes, for consumers that do not parse the value.

Every output carries ``content-type: application/json`` and the CloudEvents 1.0 attributes in
Kafka binary mode (``ce_`` prefix): ``ce_specversion``, ``ce_id`` (the output's own id, so a
consumer can deduplicate without decoding), ``ce_type`` (the contract's ``type``), ``ce_source``
(this worker's application), ``ce_time`` (when the processor decided it) and, where there is
one, ``ce_subject`` (the order of a breach or resolution, or the recommendation's subject). A
dead letter also says where the rejected message came from and why, in ``orderwatch_source_topic``,
``orderwatch_source_partition``, ``orderwatch_source_offset`` and ``orderwatch_error_code`` (the
``reason`` of ``event.rejected``). Header values are UTF-8 text.
"""

from __future__ import annotations

from typing import Final

from streams.core.dates import format_utc
from streams.core.outputs import (
    DeadlineBreached,
    DeadlineResolved,
    EventRejected,
    KafkaSource,
    OutputEvent,
    RecommendationIssued,
)

__all__ = ["CONTENT_TYPE", "DEAD_LETTER_HEADERS", "SPEC_VERSION", "cloudevents_source", "headers"]

CONTENT_TYPE: Final = "application/json"
SPEC_VERSION: Final = "1.0"
#: The dead letter's own headers, by what they hold.
DEAD_LETTER_HEADERS: Final = {
    "topic": "orderwatch_source_topic",
    "partition": "orderwatch_source_partition",
    "offset": "orderwatch_source_offset",
    "reason": "orderwatch_error_code",
}

Headers = list[tuple[str, bytes]]


def cloudevents_source(app_id: str) -> str:
    """``ce_source`` of a worker's outputs: a URI reference naming its application."""
    return f"/orderwatch/{app_id}"


def headers(output: OutputEvent, source: str) -> Headers:
    """The headers of one output message; ``source`` is :func:`cloudevents_source`'s."""
    subject: str | None
    if isinstance(output, DeadlineBreached):
        event_id, at, subject = output.breach_id, output.detected_at, output.order_id
    elif isinstance(output, DeadlineResolved):
        event_id, at, subject = output.resolution_id, output.detected_at, output.order_id
    elif isinstance(output, RecommendationIssued):
        event_id, at, subject = output.recommendation_id, output.issued_at, output.subject
    else:
        event_id, at, subject = output.rejection_id, output.rejected_at, None
    result: Headers = [
        ("content-type", CONTENT_TYPE.encode()),
        ("ce_specversion", SPEC_VERSION.encode()),
        ("ce_id", event_id.encode()),
        ("ce_type", output.type.encode()),
        ("ce_source", source.encode()),
        ("ce_time", format_utc(at).encode()),
    ]
    if subject is not None:
        result.append(("ce_subject", subject.encode()))
    if isinstance(output, EventRejected):
        result += _dead_letter(output)
    return result


def _dead_letter(rejected: EventRejected) -> Headers:
    names = DEAD_LETTER_HEADERS
    result: Headers = []
    if isinstance(rejected.source, KafkaSource):
        result += [
            (names["topic"], rejected.source.topic.encode()),
            (names["partition"], str(rejected.source.partition).encode()),
            (names["offset"], str(rejected.source.offset).encode()),
        ]
    result.append((names["reason"], rejected.reason.encode()))
    return result
