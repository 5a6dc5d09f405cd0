"""Prometheus metrics of the worker, each :class:`Metrics` on its own registry.

Names carry the ``orderwatch_`` prefix and base units (seconds); counters are declared without
``_total`` (the client adds it), and no ``_created`` series is exposed. Every label is bounded:
topics come from configuration, partitions from the partition count, event types, rejection
reasons, deadlines, rules, reason codes and severities from the contract and the policy. No label
ever holds an order, SKU or merchant id. Where the set of label values is known, every series is
declared up front so it exists at 0 from the start (alert rules can use ``rate()`` and
``increase()`` on series that have not moved yet). The registry also carries the standard
``process_*``, ``python_gc_*`` and ``python_info`` collectors.

============================================== ========= =================================
metric                                         type      labels
============================================== ========= =================================
``orderwatch_events_consumed_total``           counter   ``topic``, ``type``
``orderwatch_events_rejected_total``           counter   ``topic``, ``reason``
``orderwatch_processing_failures_total``       counter   ``topic``
``orderwatch_duplicate_events_total``          counter   ``topic``
``orderwatch_breaches_total``                  counter   ``deadline``, ``rule``
``orderwatch_recommendations_total``           counter   ``reason``, ``severity``
``orderwatch_late_events_total``               counter   ``deadline``
``orderwatch_offsets_expired_total``           counter   ``topic``
``orderwatch_open_orders``                     gauge
``orderwatch_aggregate_inputs_waiting``        gauge
``orderwatch_aggregate_input_wait_seconds``    gauge
``orderwatch_processing_seconds``              histogram
``orderwatch_breach_detection_lag_seconds``    histogram
``orderwatch_last_event_timestamp_seconds``    gauge
``orderwatch_clock_timestamp_seconds``         gauge
``orderwatch_consumer_lag_messages``           gauge     ``topic``, ``partition``
``orderwatch_assigned_partitions``             gauge
``orderwatch_ready``                           gauge
``orderwatch_build_info``                      info      ``version``, ``policy``, ``policy_version``
============================================== ========= =================================
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.context_managers import Timer

from streams import __version__
from streams.core.events import EVENT_TYPES
from streams.core.order import BREACH_RULES
from streams.core.outputs import (
    DeadlineBreached,
    DeadlineName,
    DeadlineResolved,
    OutputEvent,
    PolicyRef,
    Reason,
    RecommendationIssued,
    RejectionReason,
    Resolution,
    Severity,
)

__all__ = [
    "CONTENT_TYPE",
    "DEADLINES",
    "EVENT_TYPE_LABELS",
    "REJECTION_REASONS",
    "Metrics",
]

# ``_created`` series double a scrape and no dashboard or rule reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
"""The ``Content-Type`` of :meth:`Metrics.exposition`."""

UNKNOWN_TYPE: Final = "unknown"
_KNOWN_TYPES: Final = frozenset(EVENT_TYPES)
EVENT_TYPE_LABELS: Final[tuple[str, ...]] = (*EVENT_TYPES, UNKNOWN_TYPE)
DEADLINES: Final[tuple[DeadlineName, ...]] = DeadlineName.__args__  # type: ignore[attr-defined]
_REASONS: Final[tuple[Reason, ...]] = Reason.__args__  # type: ignore[attr-defined]
_RESOLUTIONS: Final[tuple[Resolution, ...]] = Resolution.__args__  # type: ignore[attr-defined]
_SEVERITIES: Final[tuple[Severity, ...]] = Severity.__args__  # type: ignore[attr-defined]

PROCESSING_FAILED: Final = "processing_failed"
#: Why input was dead-lettered: every reason but the processor's own failure, counted apart.
REJECTION_REASONS: Final[tuple[RejectionReason, ...]] = tuple(
    reason
    for reason in RejectionReason.__args__  # type: ignore[attr-defined]
    if reason != PROCESSING_FAILED
)


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
    ``orderwatch_build_info``; :meth:`set_build_info` changes them. ``clock`` reads the
    processor's clock in Unix seconds when scraped (default: NaN until :meth:`track_clock`).
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
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self._consumed = Counter(
            "orderwatch_events_consumed",
            "Input messages consumed, by topic and event type (unknown: could not be decoded).",
            ["topic", "type"],
            registry=r,
        )
        self._rejected = Counter(
            "orderwatch_events_rejected",
            "Input messages sent to the dead letter because they cannot be used, by topic and "
            "reason (the event.rejected output's reason).",
            ["topic", "reason"],
            registry=r,
        )
        self._failures = Counter(
            "orderwatch_processing_failures",
            "Input messages the worker failed to process (a defect, not bad input): each is "
            "dead-lettered with reason processing_failed and the error is in the log.",
            ["topic"],
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
            "Deadline breaches emitted, by deadline and the policy rule that set it.",
            ["deadline", "rule"],
            registry=r,
        )
        self._recommendations = Counter(
            "orderwatch_recommendations",
            "Recommendations emitted, by reason code and severity.",
            ["reason", "severity"],
            registry=r,
        )
        self._resolutions = Counter(
            "orderwatch_resolutions",
            "Breaches resolved (deadline.resolved), by deadline and how: met_late, delivered, "
            "refunded or cancelled.",
            ["deadline", "resolution"],
            registry=r,
        )
        self._late = Counter(
            "orderwatch_late_events",
            "Events that met a deadline but arrived after its breach had fired.",
            ["deadline"],
            registry=r,
        )
        self._expired = Counter(
            "orderwatch_offsets_expired",
            "Messages retention deleted before the group read them (the worker resumed at the "
            "log's start, past them), by topic.",
            ["topic"],
            registry=r,
        )
        self._open_orders = Gauge(
            "orderwatch_open_orders", "Order states held by this worker.", registry=r
        )
        self._waiting = Gauge(
            "orderwatch_aggregate_inputs_waiting",
            "Stock levels and order facts this worker holds until the watermark of every "
            "partition that sends them has passed their event time (on the wall clock: until "
            "the time has).",
            registry=r,
        )
        self._wait = Gauge(
            "orderwatch_aggregate_input_wait_seconds",
            "How far, in event time, the oldest aggregate input still waiting is behind the "
            "latest event this worker processed (0 when none waits).",
            registry=r,
        )
        self._wait.set_function(self._aggregate_wait)
        self._processing = Histogram(
            "orderwatch_processing_seconds",
            "Time per input message, from receipt until its outputs are handed to the producer "
            "(each message of a batch counts an equal share of the batch's time).",
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
            "The processor's clock in Unix seconds: the system time (wall clock), or the "
            "earliest clock of the partitions this worker owns whose clock has started (event "
            "time; NaN while none has).",
            registry=r,
        )
        self._clock.set_function(lambda: math.nan)
        self._consumer_lag = Gauge(
            "orderwatch_consumer_lag_messages",
            "Messages not yet processed on each input partition this worker owns (log end "
            "minus the next offset to process).",
            ["topic", "partition"],
            registry=r,
        )
        self._assigned = Gauge(
            "orderwatch_assigned_partitions",
            "Input partitions assigned to this worker.",
            registry=r,
        )
        self._ready = Gauge(
            "orderwatch_ready",
            "1 when the worker can process (partitions assigned, tables recovered, Kafka "
            "reachable), else 0: what /ready answers.",
            registry=r,
        )
        self._build = Info(
            "orderwatch_build", "Version of orderwatch and the policy profile in use.", registry=r
        )

        self._consumed_series: dict[tuple[str, str], Counter] = {}
        self._rejected_series: dict[tuple[str, str], Counter] = {}
        self._failure_series: dict[str, Counter] = {}
        self._duplicate_series: dict[str, Counter] = {}
        self._expired_series: dict[str, Counter] = {}
        self._breach_series: dict[tuple[DeadlineName, str], Counter] = {
            (deadline, rule): self._breaches.labels(deadline=deadline, rule=rule)
            for deadline, rules in BREACH_RULES.items()
            for rule in rules
        }
        self._late_series = {d: self._late.labels(deadline=d) for d in DEADLINES}
        self._resolution_series = {
            (deadline, resolution): self._resolutions.labels(
                deadline=deadline, resolution=resolution
            )
            for deadline in DEADLINES
            for resolution in _RESOLUTIONS
        }
        self._recommendation_series = {
            (reason, severity): self._recommendations.labels(reason=reason, severity=severity)
            for reason in _REASONS
            for severity in _SEVERITIES
        }
        self._lag_series: set[tuple[str, str]] = set()
        self._last_event_seconds = -math.inf
        self._oldest_waiting: float | None = None
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
        self._failure_child(topic)
        self._duplicate_child(topic)
        self._expired_child(topic)

    def set_build_info(self, policy: PolicyRef | None, *, version: str = __version__) -> None:
        """Label ``orderwatch_build_info`` with the version and policy profile (name, version)."""
        self._build.info(
            {
                "version": version,
                "policy": policy.name if policy else "",
                "policy_version": policy.version if policy else "",
            }
        )

    def track_clock(self, seconds: Callable[[], float]) -> None:
        """Read ``orderwatch_clock_timestamp_seconds`` from ``seconds()`` at every scrape."""
        self._clock.set_function(seconds)

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

    def observe_rejection(self, topic: str, reason: RejectionReason) -> None:
        """Count one dead-lettered message: a rejection by its reason, or a processing failure."""
        if reason == PROCESSING_FAILED:
            self._failure_child(topic).inc()
        else:
            self._rejected_child(topic, reason).inc()

    def observe_duplicate(self, topic: str) -> None:
        """Count one event whose event_id was already seen."""
        self._duplicate_child(topic).inc()

    def observe_expired(self, topic: str, count: int) -> None:
        """Count ``count`` messages of ``topic`` that retention deleted before they were read."""
        self._expired_child(topic).inc(count)

    def observe_late_event(self, deadline: DeadlineName) -> None:
        """Count an event that met ``deadline`` but arrived after its breach fired."""
        self._late_series[deadline].inc()

    # -- output ---------------------------------------------------------------------------

    def observe_outputs(self, outputs: Iterable[OutputEvent]) -> None:
        """Count breaches (with their detection lag), resolutions and recommendations.

        Rejections are left to :meth:`observe_rejection`, which knows the topic.
        """
        for output in outputs:
            if isinstance(output, DeadlineBreached):
                self._breach_child(output.deadline, output.rule).inc()
                lag = (output.detected_at - output.due_at).total_seconds()
                self._lag.observe(max(lag, 0.0))
            elif isinstance(output, DeadlineResolved):
                self._resolution_series[output.deadline, output.resolution].inc()
            elif isinstance(output, RecommendationIssued):
                self._recommendation_series[output.reason, output.severity].inc()

    def observe_processing(self, seconds: float) -> None:
        """Record the time one message took, from receipt to outputs handed to the producer
        (the worker gives each message of a batch an equal share of the batch's time)."""
        self._processing.observe(seconds)

    def processing_timer(self) -> Timer:
        """A context manager (or decorator) that records the time of its block."""
        return self._processing.time()

    # -- state ----------------------------------------------------------------------------

    def set_open_orders(self, count: int) -> None:
        """The number of order states this worker holds."""
        self._open_orders.set(count)

    def set_aggregate_inputs_waiting(self, count: int, oldest: datetime | None = None) -> None:
        """The number of aggregate inputs waiting for the sources' watermark, and the event
        time of the oldest of them."""
        self._waiting.set(count)
        self._oldest_waiting = oldest.timestamp() if oldest is not None else None

    def set_assigned_partitions(self, count: int) -> None:
        """The number of input partitions assigned to this worker."""
        self._assigned.set(count)

    def track_ready(self, ready: Callable[[], bool]) -> None:
        """Read ``orderwatch_ready`` from ``ready()`` at every scrape (what ``/ready`` says)."""
        self._ready.set_function(lambda: 1.0 if ready() else 0.0)

    def set_consumer_lag(self, lag: Mapping[tuple[str, int], int]) -> None:
        """Unprocessed messages per owned (topic, partition); partitions not given are dropped."""
        current = {(topic, str(partition)): count for (topic, partition), count in lag.items()}
        for gone in self._lag_series - current.keys():
            self._consumer_lag.remove(*gone)
        for (topic, partition), count in current.items():
            self._consumer_lag.labels(topic=topic, partition=partition).set(max(count, 0))
        self._lag_series = set(current)

    # -- exposition -----------------------------------------------------------------------

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format (served with :data:`CONTENT_TYPE`)."""
        return generate_latest(self.registry)

    @property
    def content_type(self) -> str:
        """The ``Content-Type`` of :meth:`exposition`."""
        return CONTENT_TYPE

    # -- series ---------------------------------------------------------------------------

    def _aggregate_wait(self) -> float:
        oldest = self._oldest_waiting
        if oldest is None or self._last_event_seconds == -math.inf:
            return 0.0
        return max(self._last_event_seconds - oldest, 0.0)

    def _breach_child(self, deadline: DeadlineName, rule: str) -> Counter:
        child = self._breach_series.get((deadline, rule))
        if child is None:  # a rule this version does not list: still bounded by the policy
            child = self._breach_series[deadline, rule] = self._breaches.labels(
                deadline=deadline, rule=rule
            )
        return child

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

    def _failure_child(self, topic: str) -> Counter:
        child = self._failure_series.get(topic)
        if child is None:
            child = self._failure_series[topic] = self._failures.labels(topic=topic)
        return child

    def _duplicate_child(self, topic: str) -> Counter:
        child = self._duplicate_series.get(topic)
        if child is None:
            child = self._duplicate_series[topic] = self._duplicates.labels(topic=topic)
        return child

    def _expired_child(self, topic: str) -> Counter:
        child = self._expired_series.get(topic)
        if child is None:
            child = self._expired_series[topic] = self._expired.labels(topic=topic)
        return child
