"""``orderwatch alerts``: breaches and critical recommendations as Alertmanager alerts that close.

The bridge reads the ``deadline-breaches`` and ``dispute-recommendations`` topics and keeps an
:class:`AlertBook`, from which it posts alerts to Alertmanager's ``POST /api/v2/alerts``:

- each ``deadline.breached`` is an :data:`BREACH_ALERT` alert (labels ``merchant``, ``order``,
  ``deadline``, ``rule``, ``severity="critical"``, and ``complaint`` for a complaint's response
  deadline), annotated with the actions and respond-by of the breach's own recommendation (the
  ``*_OVERDUE`` one whose ``evidence.breach_id`` is the breach's id), whichever of the two is
  read first. Its ``deadline.resolved`` closes it: posted with ``endsAt`` at the resolving
  event's time (never later than now);
- each other ``critical`` recommendation (``COMPLAINT_COUNTERFEIT``, a critical
  ``STORE_HEALTH_AT_RISK``...) is a :data:`RECOMMENDATION_ALERT` alert. Nothing resolves those,
  so each ends at its ``respond_by``, or :data:`RECOMMENDATION_LIFETIME` after it was issued when
  it has none or it had already passed.

Alertmanager identifies an alert by its labels, and the outputs are deterministic, so posting an
alert again is idempotent. An active alert is re-posted every ``alert_resend_interval`` with an
``endsAt`` :data:`EXPIRY_INTERVALS` intervals ahead (as Prometheus does): the alerts of a bridge
that died expire by themselves. The bridge keeps no state of its own and no consumer group: at
every start it reads both topics from the beginning to their ends, so it knows which alerts are
open and which were resolved, asks Alertmanager which of its alerts are active, posts the
resolution of any that the book has closed (one a previous run read but could not post), posts
the open ones, and then follows the topics live.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from streams.core.dates import format_utc

__all__ = [
    "BREACH_ALERT",
    "EXPIRY_INTERVALS",
    "RECOMMENDATION_ALERT",
    "RECOMMENDATION_LIFETIME",
    "Alert",
    "AlertBook",
    "AlertmanagerClient",
    "Change",
    "run_bridge",
]

log = logging.getLogger("orderwatch.alerts")

#: alertname of a breach's alert.
BREACH_ALERT = "OrderDeadlineBreached"
#: alertname of a critical recommendation's alert (one that no breach owns).
RECOMMENDATION_ALERT = "OrderwatchCriticalRecommendation"
#: How long a critical recommendation's alert lasts when it has no respond_by still ahead.
RECOMMENDATION_LIFETIME = timedelta(hours=24)
#: An active alert is posted to end this many resend intervals later.
EXPIRY_INTERVALS = 4
#: Most alerts in one POST.
POST_BATCH = 500


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _actions(recommendation: Mapping[str, Any]) -> str:
    """The recommendation's actions, one numbered line each, most useful first."""
    lines = []
    actions = recommendation.get("actions")
    for number, action in enumerate(actions if isinstance(actions, list) else [], start=1):
        if isinstance(action, Mapping):
            lines.append(f"{number}. {_text(action.get('code'))}: {_text(action.get('detail'))}")
    return "\n".join(lines)


@dataclass
class Alert:
    """One alert: what Alertmanager knows it by (``labels``) and what the bridge knows of it.

    ``ends_at`` is None for a breach still open; the resolving event's time once it is closed;
    for a recommendation, when its alert ends by itself.
    """

    key: str
    kind: Literal["breach", "recommendation"]
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None = None
    closed: bool = False

    def active(self, now: datetime) -> bool:
        return not self.closed and (self.ends_at is None or self.ends_at > now)

    def payload(self, now: datetime, expiry: timedelta) -> dict[str, Any]:
        """The alert as ``POST /api/v2/alerts`` takes it, as of ``now``.

        Neither time is after ``now`` when the alert is over, and ``endsAt`` is never before
        ``startsAt`` (Alertmanager refuses that). An open alert ends ``expiry`` from now.
        """
        starts = min(self.starts_at, now)
        if not self.active(now):
            ends = min(max(self.ends_at or now, starts), now)
        elif self.ends_at is None:
            ends = now + expiry
        else:
            ends = max(min(self.ends_at, now + expiry), starts)
        return {
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "startsAt": format_utc(starts),
            "endsAt": format_utc(ends),
        }

    def describe(self) -> str:
        labels = ", ".join(f"{k}={v}" for k, v in self.labels.items() if k != "alertname")
        return f"{self.labels['alertname']} {{{labels}}}"


@dataclass(frozen=True)
class Change:
    """What an output did to an alert."""

    what: Literal["opened", "closed", "updated"]
    alert: Alert


@dataclass
class AlertBook:
    """The alerts the outputs read so far make: pure, no Kafka and no HTTP (unit tested)."""

    runbook_url: str
    lifetime: timedelta = RECOMMENDATION_LIFETIME
    alerts: dict[str, Alert] = field(default_factory=dict)
    #: Breach recommendations read before their breach, by breach id.
    advice: dict[str, Mapping[str, Any]] = field(default_factory=dict)

    def apply(self, output: Mapping[str, Any], now: datetime) -> list[Change]:
        """Take one output event (its JSON object); what it changed."""
        kind = output.get("type")
        if kind == "deadline.breached":
            return self._breached(output)
        if kind == "deadline.resolved":
            return self._resolved(output, now)
        if kind == "recommendation.issued":
            return self._recommended(output, now)
        return []

    def active(self, now: datetime) -> list[Alert]:
        return [alert for alert in self.alerts.values() if alert.active(now)]

    def expire(self, now: datetime) -> list[Change]:
        """Close the recommendation alerts whose end has come."""
        changes = []
        for alert in self.alerts.values():
            if not alert.closed and not alert.active(now):
                alert.closed = True
                changes.append(Change("closed", alert))
        return changes

    def counts(self, now: datetime) -> dict[str, int]:
        active = self.active(now)
        breaches = sum(1 for alert in active if alert.kind == "breach")
        return {
            "breaches": breaches,
            "recommendations": len(active) - breaches,
            "closed": len(self.alerts) - len(active),
        }

    def _breached(self, breach: Mapping[str, Any]) -> list[Change]:
        breach_id = _text(breach.get("breach_id"))
        detected = _time(breach.get("detected_at"))
        if not breach_id or breach_id in self.alerts or detected is None:
            return []  # a duplicate (at-least-once), or not a breach this bridge understands
        labels = {
            "alertname": BREACH_ALERT,
            "severity": "critical",
            "merchant": _text(breach.get("merchant_id")),
            "order": _text(breach.get("order_id")),
            "deadline": _text(breach.get("deadline")),
            "rule": _text(breach.get("rule")),
        }
        complaint = _text(breach.get("complaint_id"))
        if complaint:
            labels["complaint"] = complaint
        due = _text(breach.get("due_at"))
        annotations = {
            "summary": (
                f"Order {labels['order']} of merchant {labels['merchant']} missed its "
                f"{labels['deadline'].replace('_', ' ')} deadline"
                + (f" for complaint {complaint}" if complaint else "")
                + (f" (due {due})" if due else "")
            ),
            "description": _text(breach.get("consequence")),
            "breach_id": breach_id,
            "due_at": due,
            "runbook_url": self.runbook_url,
        }
        alert = Alert(breach_id, "breach", labels, annotations, starts_at=detected)
        self.alerts[breach_id] = alert
        advice = self.advice.pop(breach_id, None)
        if advice is not None:
            self._advise(alert, advice)
        return [Change("opened", alert)]

    def _resolved(self, resolved: Mapping[str, Any], now: datetime) -> list[Change]:
        alert = self.alerts.get(_text(resolved.get("breach_id")))
        if alert is None or alert.closed:
            return []  # a duplicate, or the breach is no longer on the topic
        alert.closed = True
        alert.ends_at = (
            _time(resolved.get("resolved_at")) or _time(resolved.get("detected_at")) or now
        )
        resolution = _text(resolved.get("resolution"))
        if resolution:
            alert.annotations["resolution"] = resolution
        return [Change("closed", alert)]

    def _recommended(self, recommendation: Mapping[str, Any], now: datetime) -> list[Change]:
        evidence = recommendation.get("evidence")
        breach_id = _text(evidence.get("breach_id")) if isinstance(evidence, Mapping) else ""
        if breach_id:  # a breach's own (*_OVERDUE): its advice, whatever its severity
            alert = self.alerts.get(breach_id)
            if alert is None:
                self.advice[breach_id] = recommendation
                return []
            self._advise(alert, recommendation)
            return [Change("updated", alert)] if alert.active(now) else []
        recommendation_id = _text(recommendation.get("recommendation_id"))
        issued = _time(recommendation.get("issued_at"))
        if (
            recommendation.get("severity") != "critical"
            or not recommendation_id
            or recommendation_id in self.alerts
            or issued is None
        ):
            return []
        respond_by = _time(recommendation.get("respond_by"))
        if respond_by is not None and not recommendation.get("respond_by_passed"):
            ends = respond_by
        else:
            ends = min(issued, now) + self.lifetime
        if ends <= now:
            return []  # over before it was read: nothing to alert
        labels = {
            "alertname": RECOMMENDATION_ALERT,
            "severity": "critical",
            "merchant": _text(recommendation.get("merchant_id")),
            "reason": _text(recommendation.get("reason")),
            "rule": _text(recommendation.get("rule")),
            "scope": _text(recommendation.get("scope")),
            "subject": _text(recommendation.get("subject")),
            "recommendation": recommendation_id,
        }
        order = _text(recommendation.get("order_id"))
        if order:
            labels["order"] = order
        alert = Alert(
            recommendation_id,
            "recommendation",
            labels,
            {
                "summary": (
                    f"{labels['reason']} for {labels['subject']} (merchant {labels['merchant']})"
                ),
                "runbook_url": self.runbook_url,
            },
            starts_at=issued,
            ends_at=ends,
        )
        self._advise(alert, recommendation)
        self.alerts[recommendation_id] = alert
        return [Change("opened", alert)]

    @staticmethod
    def _advise(alert: Alert, recommendation: Mapping[str, Any]) -> None:
        annotations = alert.annotations
        annotations["recommendation_id"] = _text(recommendation.get("recommendation_id"))
        annotations["reason"] = _text(recommendation.get("reason"))
        annotations["actions"] = _actions(recommendation)
        respond_by = _text(recommendation.get("respond_by"))
        if respond_by:
            annotations["respond_by"] = respond_by
            annotations["summary"] = annotations["summary"] + f"; respond by {respond_by}"
        consequence = _text(recommendation.get("consequence"))
        if consequence and not annotations.get("description"):
            annotations["description"] = consequence


class AlertmanagerClient:
    """``POST``/``GET /api/v2/alerts`` of one Alertmanager (urllib in a thread: no new dependency).

    A failure is logged (once per streak) and reported as False; the caller sends again later.
    """

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/") + "/api/v2/alerts"
        self.timeout = timeout
        self.failing = False

    async def post(self, alerts: list[dict[str, Any]]) -> bool:
        for start in range(0, len(alerts), POST_BATCH):
            body = json.dumps(alerts[start : start + POST_BATCH]).encode()
            if not await self._call("POST", self.url, body):
                return False
        return True

    async def active(self, alertnames: Iterable[str]) -> list[dict[str, Any]] | None:
        """The alerts Alertmanager has active (not silenced or inhibited only) by those names."""
        names = "|".join(alertnames)
        query = urllib.parse.urlencode(
            {"active": "true", "silenced": "true", "inhibited": "true", "unprocessed": "true"}
        )
        query += "&" + urllib.parse.urlencode({"filter": f'alertname=~"{names}"'})
        answer = await self._call("GET", f"{self.url}?{query}", None)
        return answer if isinstance(answer, list) else None

    async def _call(self, method: str, url: str, body: bytes | None) -> Any:
        try:
            answer = await asyncio.to_thread(self._request, method, url, body)
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace").strip()[:500]
            self._failed(f"Alertmanager answered {method} {url} with {error.code}: {detail}")
            return None
        except (OSError, ValueError) as error:
            self._failed(f"cannot reach Alertmanager at {url}: {error}")
            return None
        if self.failing:
            log.info("Alertmanager answers again")
            self.failing = False
        return answer

    def _request(self, method: str, url: str, body: bytes | None) -> Any:
        request = urllib.request.Request(url, data=body, method=method)
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            text = response.read()
        return json.loads(text) if method == "GET" else True

    def _failed(self, message: str) -> None:
        if not self.failing:
            log.warning("%s (sending again every resend interval)", message)
        self.failing = True


def _decode(value: bytes | None) -> Mapping[str, Any] | None:
    try:
        output = json.loads(value or b"")
    except ValueError:
        return None
    return output if isinstance(output, Mapping) else None


def _log_changes(changes: Iterable[Change]) -> None:
    for change in changes:
        alert = change.alert
        if change.what == "opened":
            log.info("opened %s", alert.describe())
        elif change.what == "closed":
            how = alert.annotations.get("resolution") or "its end came"
            log.info("closed %s (%s)", alert.describe(), how)


async def run_bridge(
    settings: Any,
    *,
    stop: asyncio.Event | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Rebuild the alerts from the topics' beginnings, post them, follow the topics until
    ``stop`` is set. ``settings`` is a :class:`streams.settings.Settings` with
    ``alertmanager_url`` set."""
    from aiokafka import AIOKafkaConsumer  # type: ignore[import-untyped]

    from streams.kafka.connection import client_options, connected

    stop = stop or asyncio.Event()
    interval = float(settings.alert_resend_interval)
    expiry = timedelta(seconds=interval * EXPIRY_INTERVALS)
    book = AlertBook(settings.alert_runbook_url)
    manager = AlertmanagerClient(settings.alertmanager_url)
    topics = [settings.topic("breaches"), settings.topic("recommendations")]
    # No group: every start reads everything (a group's offsets would skip the history the
    # active set is rebuilt from), and any number of bridges may run (posts are idempotent).
    consumer = AIOKafkaConsumer(
        **client_options(settings),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        client_id=f"{settings.app_id}-alerts",
    )
    async with connected(consumer, settings):
        partitions = await _partitions(settings, topics, stop)
        if partitions is None:
            return
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        total = sum(max(0, ends[tp] - starts[tp]) for tp in partitions)
        log.info("rebuilding the alerts from %s: %d records to read", " and ".join(topics), total)
        read = 0
        progress_at = time.monotonic() + 10
        while not stop.is_set():
            behind = [tp for tp in partitions if await consumer.position(tp) < ends[tp]]
            if not behind:
                break
            batch = await consumer.getmany(*behind, timeout_ms=1000)
            now = clock()
            for records in batch.values():
                for record in records:
                    output = _decode(record.value)
                    if output is not None:
                        book.apply(output, now)
                    read += 1
            if time.monotonic() > progress_at:
                log.info("rebuilding: %d of %d records read", read, total)
                progress_at = time.monotonic() + 10
        now = clock()
        book.expire(now)
        counts = book.counts(now)
        log.info(
            "rebuilt from %d records: %d breach and %d recommendation alerts open, %d closed",
            read,
            counts["breaches"],
            counts["recommendations"],
            counts["closed"],
        )
        unsent = await _reconcile(manager, book, now)
        posted = await manager.post([alert.payload(now, expiry) for alert in book.active(now)])
        log.info(
            "%s the open alerts to %s; following the topics (re-sending every %g s)",
            "posted" if posted else "could not post",
            settings.alertmanager_url,
            interval,
        )
        resend_at = time.monotonic() + interval
        while not stop.is_set():
            wait = max(0.0, min(1.0, resend_at - time.monotonic()))
            batch = await consumer.getmany(timeout_ms=int(wait * 1000))
            now = clock()
            changes: list[Change] = []
            for records in batch.values():
                for record in records:
                    output = _decode(record.value)
                    if output is None:
                        log.warning(
                            "%s[%d]@%d is not a JSON object: skipped",
                            record.topic,
                            record.partition,
                            record.offset,
                        )
                        continue
                    changes.extend(book.apply(output, now))
            changes.extend(book.expire(now))
            _log_changes(changes)
            closed = [c.alert for c in changes if c.what == "closed" and c.alert.kind == "breach"]
            unsent.extend(closed)
            changed = {id(c.alert): c.alert for c in changes if c.alert.active(now)}
            resend = time.monotonic() >= resend_at
            if resend:
                resend_at = time.monotonic() + interval
                changed = {id(alert): alert for alert in book.active(now)}
            if changed or unsent:
                sent = await manager.post(
                    [alert.payload(now, expiry) for alert in [*unsent, *changed.values()]]
                )
                if sent:
                    unsent = []


async def _partitions(settings: Any, topics: list[str], stop: asyncio.Event) -> list[Any] | None:
    """Every partition of ``topics``, once they all exist (a worker creates them); None when
    stopped first. A consumer's ``topics()`` does not refresh what its ``partitions_for_topic``
    knows on Apache Kafka, so the topics are described with the admin client."""
    from aiokafka import TopicPartition

    from streams.kafka.admin import partitions_of
    from streams.kafka.connection import client_options

    options = client_options(settings)
    bootstrap = options.pop("bootstrap_servers")
    waited = False
    while not stop.is_set():
        found = await partitions_of(bootstrap, topics, options)
        missing = [topic for topic in topics if not found[topic]]
        if not missing:
            return [TopicPartition(topic, p) for topic in topics for p in found[topic]]
        if not waited:
            log.info("waiting for topic(s) %s (a worker creates them)", ", ".join(missing))
            waited = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=2)
    return None


async def _reconcile(manager: AlertmanagerClient, book: AlertBook, now: datetime) -> list[Alert]:
    """Closed alerts Alertmanager still has active (a resolution a previous run read but did not
    post): posted resolved now; those that could not be posted are returned, to send later."""
    active = await manager.active([BREACH_ALERT, RECOMMENDATION_ALERT])
    by_labels = {
        tuple(sorted(alert.labels.items())): alert
        for alert in book.alerts.values()
        if not alert.active(now)
    }
    if active is None:
        # Not answering: what it still has active from a previous run expires by its endsAt.
        return []
    stale = []
    for entry in active:
        labels = entry.get("labels") if isinstance(entry, Mapping) else None
        if isinstance(labels, Mapping):
            alert = by_labels.get(tuple(sorted((str(k), str(v)) for k, v in labels.items())))
            if alert is not None:
                stale.append(alert)
    if stale:
        log.info("resolving %d alert(s) that Alertmanager still has active", len(stale))
        if not await manager.post([alert.payload(now, timedelta(0)) for alert in stale]):
            return stale
    return []
