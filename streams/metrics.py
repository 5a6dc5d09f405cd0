"""Prometheus metrics of the worker, each :class:`Metrics` on its own registry.

Names carry the ``orderwatch_`` prefix and base units (seconds); counters are declared without
``_total`` (the client adds it). Every label is bounded: topics come from configuration, event
types, rejection reasons, deadlines, reason codes and severities from the contract. No label ever
holds an order, SKU or merchant id. Where the set of label values is known, every series is
declared up front so it exists at 0 from the start (alert rules can use ``rate()`` and
``increase()`` on series that have not moved yet).

=========================================== ========= =================================
metric                                      type      labels
=========================================== ========= =================================
``orderwatch_events_consumed_total``        counter   ``topic``, ``type``
``orderwatch_events_rejected_total``        counter   ``topic``, ``reason``
``orderwatch_duplicate_events_total``       counter   ``topic``
``orderwatch_breaches_total``               counter   ``deadline``
``orderwatch_recommendations_total``        counter   ``reason``, ``severity``
``orderwatch_late_events_total``            counter   ``deadline``
``orderwatch_open_orders``                  gauge
``orderwatch_processing_seconds``           histogram
``orderwatch_breach_detection_lag_seconds`` histogram
``orderwatch_last_event_timestamp_seconds`` gauge
``orderwatch_clock_timestamp_seconds``      gauge
``orderwatch_assigned_partitions``          gauge
``orderwatch_build_info``                   info      ``version``, ``policy``, ``policy_version``
=========================================== ========= =================================
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)
from prometheus_client.context_managers import Timer

from streams import __version__
from streams.core.events import EVENT_TYPES
from streams.core.outputs import (
    DeadlineBreached,
    DeadlineName,
    OutputEvent,
    PolicyRef,
    Reason,
    RecommendationIssued,
    Severity,
)

__all__ = [
    "CONTENT_TYPE",
    "DEADLINES",
    "EVENT_TYPE_LABELS",
    "REJECTION_REASONS",
    "Metrics",
    "classify_rejection",
]

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
"""The ``Content-Type`` of :meth:`Metrics.exposition`."""

UNKNOWN_TYPE: Final = "unknown"
_KNOWN_TYPES: Final = frozenset(EVENT_TYPES)
EVENT_TYPE_LABELS: Final[tuple[str, ...]] = (*EVENT_TYPES, UNKNOWN_TYPE)
DEADLINES: Final[tuple[DeadlineName, ...]] = DeadlineName.__args__  # type: ignore[attr-defined]
_REASONS: Final[tuple[Reason, ...]] = Reason.__args__  # type: ignore[attr-defined]
_SEVERITIES: Final[tuple[Severity, ...]] = Severity.__args__  # type: ignore[attr-defined]

REJECTION_REASONS: Final[tuple[str, ...]] = (
    "not_utf8",
    "not_json",
    "not_an_object",
    "unknown_type",
    "missing_field",
    "invalid_field",
)

# The sentences of streams.core.events.decode_event, matched on how they begin: a rejection is
# classified by its first clause (later clauses hold the given values, which are arbitrary text).
_REJECTION_PATTERNS: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    (re.compile(r"The message is not valid UTF-8\b"), "not_utf8"),
    (re.compile(r"The message is not valid JSON\b"), "not_json"),
    (re.compile(r"The message must be a JSON object\b"), "not_an_object"),
    (re.compile(r"Field 'type' is missing:"), "missing_field"),
    (
        re.compile(r"Field 'type' is .*, which this version does not know;", re.DOTALL),
        "unknown_type",
    ),
    (re.compile(r"Field '[^']*'(?: of [a-z_.]+)? is required but missing\b"), "missing_field"),
)


def classify_rejection(error: str) -> str:
    """The rejection reason label for one of :func:`~streams.core.events.decode_event`'s errors.

    The first problem named decides. A sentence that matches none of the known shapes is an
    ``invalid_field`` (the most general reason), so the label set stays fixed whatever the text.
    """
    for pattern, reason in _REJECTION_PATTERNS:
        if pattern.match(error):
            return reason
    return "invalid_field"


# 10 µs to 1 s: decoding and applying one event takes tens of microseconds; producing and state
# writes can take milliseconds.
PROCESSING_BUCKETS: Final[tuple[float, ...]] = (
    0.00001, 0.000025, 0.00005,
    0.0001, 0.00025, 0.0005,
    0.001, 0.0025, 0.005,
    0.01, 0.025, 0.05,
    0.1, 0.25, 0.5,
    1.0,
)  # fmt: skip

# 10 ms to 1 h: how long after due_at the processor's clock fired the breach.
DETECTION_LAG_BUCKETS: Final[tuple[float, ...]] = (
    0.01, 0.05, 0.1, 0.5,
    1.0, 5.0, 15.0, 30.0,
    60.0, 300.0, 900.0, 1800.0,
    3600.0,
)  # fmt: skip


class Metrics:
    """The worker's metrics, registered on ``registry`` (a fresh one when None).

    ``topics`` are the configured input topic names: their series are declared at 0 up front
    (other topics still count, from their first message). ``policy`` and ``version`` label
    ``orderwatch_build_info``; :meth:`set_build_info` changes them.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        topics: Iterable[str] = (),
        policy: PolicyRef | None = None,
        version: str = __version__,
    ) -> None:
        self.registry: Final = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self._consumed = Counter(
            "orderwatch_events_consumed",
            "Input messages consumed, by topic and event type (unknown: could not be decoded).",
            ["topic", "type"],
            registry=r,
        )
        self._rejected = Counter(
            "orderwatch_events_rejected",
            "Input messages sent to the dead letter, by topic and reason.",
            ["topic", "reason"],
            registry=r,
        )
        self._duplicates = Counter(
            "orderwatch_duplicate_events",
            "Input events whose event_id was already seen (they change nothing).",
            ["topic"],
            registry=r,
        )
        self._breaches = Counter(
            "orderwatch_breaches",
            "Deadline breaches emitted, by deadline.",
            ["deadline"],
            registry=r,
        )
        self._recommendations = Counter(
            "orderwatch_recommendations",
            "Recommendations emitted, by reason code and severity.",
            ["reason", "severity"],
            registry=r,
        )
        self._late = Counter(
            "orderwatch_late_events",
            "Events that met a deadline but arrived after its breach had fired.",
            ["deadline"],
            registry=r,
        )
        self._open_orders = Gauge(
            "orderwatch_open_orders", "Order states held by this worker.", registry=r
        )
        self._waiting = Gauge(
            "orderwatch_aggregate_inputs_waiting",
            "Stock levels and order facts this worker holds until the watermark of every "
            "partition that sends them has passed their event time (event-time mode).",
            registry=r,
        )
        self._processing = Histogram(
            "orderwatch_processing_seconds",
            "Time per input message, from receipt until its outputs are handed to the producer.",
            buckets=PROCESSING_BUCKETS,
            registry=r,
        )
        self._lag = Histogram(
            "orderwatch_breach_detection_lag_seconds",
            "How long after due_at a breach was detected (detected_at - due_at).",
            buckets=DETECTION_LAG_BUCKETS,
            registry=r,
        )
        self._last_event = Gauge(
            "orderwatch_last_event_timestamp_seconds",
            "The largest occurred_at processed, in Unix seconds.",
            registry=r,
        )
        self._clock = Gauge(
            "orderwatch_clock_timestamp_seconds",
            "The processor's clock: the minimum of the clocks of the partitions this worker "
            "owns, in Unix seconds (NaN when it owns none).",
            registry=r,
        )
        self._assigned = Gauge(
            "orderwatch_assigned_partitions",
            "Input partitions assigned to this worker.",
            registry=r,
        )
        self._build = Info(
            "orderwatch_build", "Version of orderwatch and the policy profile in use.", registry=r
        )

        self._consumed_series: dict[tuple[str, str], Counter] = {}
        self._rejected_series: dict[tuple[str, str], Counter] = {}
        self._duplicate_series: dict[str, Counter] = {}
        self._breach_series = {d: self._breaches.labels(deadline=d) for d in DEADLINES}
        self._late_series = {d: self._late.labels(deadline=d) for d in DEADLINES}
        self._recommendation_series = {
            (reason, severity): self._recommendations.labels(reason=reason, severity=severity)
            for reason in _REASONS
            for severity in _SEVERITIES
        }
        self._last_event_seconds = -math.inf
        for topic in topics:
            self.declare_topic(topic)
        self.set_build_info(policy, version=version)

    # -- declaration ----------------------------------------------------------------------

    def declare_topic(self, topic: str) -> None:
        """Declare every series of an input topic at 0."""
        for event_type in EVENT_TYPE_LABELS:
            self._consumed_child(topic, event_type)
        for reason in REJECTION_REASONS:
            self._rejected_child(topic, reason)
        self._duplicate_child(topic)

    def set_build_info(self, policy: PolicyRef | None, *, version: str = __version__) -> None:
        """Label ``orderwatch_build_info`` with the version and policy profile (name, version)."""
        self._build.info(
            {
                "version": version,
                "policy": policy.name if policy else "",
                "policy_version": policy.version if policy else "",
            }
        )

    # -- input ----------------------------------------------------------------------------

    def observe_event(
        self, topic: str, event_type: str, occurred_at: datetime | None = None
    ) -> None:
        """Count one consumed message; a type outside the contract counts as ``unknown``.

        ``occurred_at`` (when the message decoded) moves ``orderwatch_last_event_timestamp_seconds``
        forward; it never moves back.
        """
        label = event_type if event_type in _KNOWN_TYPES else UNKNOWN_TYPE
        self._consumed_child(topic, label).inc()
        if occurred_at is not None:
            self.observe_event_time(occurred_at)

    def observe_event_time(self, occurred_at: datetime) -> None:
        """Keep the largest ``occurred_at`` processed (a timezone-aware datetime)."""
        seconds = occurred_at.timestamp()
        if seconds > self._last_event_seconds:
            self._last_event_seconds = seconds
            self._last_event.set(seconds)

    def observe_rejection(self, topic: str, error: str) -> str:
        """Count one dead-lettered message by the reason its error names; return that reason."""
        reason = classify_rejection(error)
        self._rejected_child(topic, reason).inc()
        return reason

    def observe_duplicate(self, topic: str) -> None:
        """Count one event whose event_id was already seen."""
        self._duplicate_child(topic).inc()

    def observe_late_event(self, deadline: DeadlineName) -> None:
        """Count an event that met ``deadline`` but arrived after its breach fired."""
        self._late_series[deadline].inc()

    # -- output ---------------------------------------------------------------------------

    def observe_outputs(self, outputs: Iterable[OutputEvent]) -> None:
        """Count breaches (with their detection lag) and recommendations.

        Rejections are left to :meth:`observe_rejection`, which knows the topic and error.
        """
        for output in outputs:
            if isinstance(output, DeadlineBreached):
                self._breach_series[output.deadline].inc()
                lag = (output.detected_at - output.due_at).total_seconds()
                self._lag.observe(max(lag, 0.0))
            elif isinstance(output, RecommendationIssued):
                self._recommendation_series[output.reason, output.severity].inc()

    def observe_processing(self, seconds: float) -> None:
        """Record the time one message took, from receipt to outputs handed to the producer."""
        self._processing.observe(seconds)

    def processing_timer(self) -> Timer:
        """A context manager (or decorator) that records the time of its block."""
        return self._processing.time()

    # -- state ----------------------------------------------------------------------------

    def set_open_orders(self, count: int) -> None:
        """The number of order states this worker holds."""
        self._open_orders.set(count)

    def set_aggregate_inputs_waiting(self, count: int) -> None:
        """The number of aggregate inputs waiting for the sources' watermark."""
        self._waiting.set(count)

    def set_assigned_partitions(self, count: int) -> None:
        """The number of input partitions assigned to this worker."""
        self._assigned.set(count)

    def set_partition_clocks(self, clocks: Iterable[datetime]) -> None:
        """The clocks of the partitions this worker owns: the gauge shows the earliest."""
        earliest = min((clock.timestamp() for clock in clocks), default=math.nan)
        self._clock.set(earliest)

    # -- exposition -----------------------------------------------------------------------

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format (served with :data:`CONTENT_TYPE`)."""
        return generate_latest(self.registry)

    @property
    def content_type(self) -> str:
        """The ``Content-Type`` of :meth:`exposition`."""
        return CONTENT_TYPE

    # -- series ---------------------------------------------------------------------------

    def _consumed_child(self, topic: str, event_type: str) -> Counter:
        key = (topic, event_type)
        child = self._consumed_series.get(key)
        if child is None:
            child = self._consumed_series[key] = self._consumed.labels(topic=topic, type=event_type)
        return child

    def _rejected_child(self, topic: str, reason: str) -> Counter:
        key = (topic, reason)
        child = self._rejected_series.get(key)
        if child is None:
            child = self._rejected_series[key] = self._rejected.labels(topic=topic, reason=reason)
        return child

    def _duplicate_child(self, topic: str) -> Counter:
        child = self._duplicate_series.get(topic)
        if child is None:
            child = self._duplicate_series[topic] = self._duplicates.labels(topic=topic)
        return child
