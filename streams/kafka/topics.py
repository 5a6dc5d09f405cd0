"""Topic housekeeping at start: create what is missing (with its retention), refuse broken
co-partitioning and changelogs that are not compacted.

Every topic orderwatch creates gets an explicit ``cleanup.policy`` and, unless compacted,
``retention.ms`` (:func:`topic_configs`), so a cluster's defaults never decide how long input
stays unread or state is kept:

- input topics (``orders``, ``inventory``, ``tracking``, ``complaints``) and the internal ones
  (forwarded events, clock announcements, aggregate inputs): ``ORDERWATCH_INPUT_RETENTION``
  (14 days): how long a worker may be down or behind before input expires unread;
- output topics (``deadline-breaches``, ``dispute-recommendations``, ``dead-letter``):
  ``ORDERWATCH_OUTPUT_RETENTION`` (30 days);
- the tables' changelogs: compacted, never deleted by age (state lives as long as its key).

Topics that exist already are left as they are, except that a changelog that is not compacted
(``cleanup.policy`` other than ``compact``) stops the start: it would drop state by age.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from datetime import timedelta

from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]
from aiokafka.admin.config_resource import (  # type: ignore[import-untyped]
    ConfigResource,
    ConfigResourceType,
)
from aiokafka.errors import (  # type: ignore[import-untyped]
    KafkaError,
    LeaderNotAvailableError,
    NodeNotReadyError,
    NotControllerError,
    NotLeaderForPartitionError,
    RequestTimedOutError,
)

from streams.errors import ConfigurationError
from streams.kafka.admin import create_and_wait
from streams.kafka.connection import client_options, start_client
from streams.settings import Settings

__all__ = [
    "TABLES",
    "changelog_problem",
    "changelog_topic",
    "changelog_topics",
    "ensure_topics",
    "required_topics",
    "topic_configs",
]

log = logging.getLogger("orderwatch.worker")

#: The worker's tables; Faust names their changelog topics ``{app_id}-{table}-changelog``.
TABLES = ("orders", "clocks", "skus", "carriers", "merchants", "ledgers", "inbox")
#: Seconds to wait for the created topics' partitions to have a leader.
_LEADER_TIMEOUT = 30.0
#: Errors of a cluster that answers but is moving: a node that just died still leads partitions
#: or the controller, for the seconds until the cluster notices.
_CLUSTER_MOVING = (
    NodeNotReadyError,
    NotControllerError,
    LeaderNotAvailableError,
    NotLeaderForPartitionError,
    RequestTimedOutError,
)
_SETTLE_TIMEOUT = 60.0
_SETTLE_PAUSE = 1.0
_INTERNAL = ("order-events", "clock", "aggregate-inputs")
_INPUTS = ("orders", "inventory", "tracking", "complaints")
_OUTPUTS = ("breaches", "recommendations", "dead_letter")
_CONTRACT = _INPUTS + _OUTPUTS


def changelog_topic(settings: Settings, table: str) -> str:
    """The changelog topic of one of the worker's tables (Faust's naming)."""
    return f"{settings.topic_prefix}{settings.app_id}-{table}-changelog"


def required_topics(settings: Settings) -> list[str]:
    """Every topic the worker reads or writes; all must have ``settings.partitions``."""
    names = [settings.topic(role) for role in _CONTRACT]
    names += [settings.internal_topic(name) for name in _INTERNAL]
    names += changelog_topics(settings)
    return names


def changelog_topics(settings: Settings) -> list[str]:
    """The changelog topics of the worker's tables."""
    return [changelog_topic(settings, table) for table in TABLES]


def topic_configs(settings: Settings, name: str) -> dict[str, str]:
    """The configuration of a topic orderwatch creates (one of :func:`required_topics`)."""
    if name in changelog_topics(settings):
        # Table state is kept by key, never expired by age.
        return {"cleanup.policy": "compact"}
    outputs = {settings.topic(role) for role in _OUTPUTS}
    kept = settings.output_retention if name in outputs else settings.input_retention
    return {"cleanup.policy": "delete", "retention.ms": str(_milliseconds(kept))}


def _milliseconds(duration: timedelta) -> int:
    return duration // timedelta(milliseconds=1)


def changelog_problem(name: str, cleanup_policy: str) -> str | None:
    """Why a table's changelog topic with this ``cleanup.policy`` cannot be used (one line),
    or None: only ``compact`` keeps every key's latest state for as long as it lives."""
    policies = {part.strip() for part in cleanup_policy.split(",") if part.strip()}
    if policies == {"compact"}:
        return None
    return (
        f"changelog topic {name!r} has cleanup.policy={cleanup_policy}: a table's changelog "
        "must be compacted, or the worker loses state older than the topic's retention; set "
        f"cleanup.policy=compact on it (kafka-configs.sh --alter --entity-type topics "
        f"--entity-name {name} --add-config cleanup.policy=compact)"
    )


async def _check_changelogs(admin: AIOKafkaAdminClient, names: Iterable[str]) -> None:
    """Raise :class:`ConfigurationError` for the first existing changelog topic that is not
    compacted. A broker that cannot describe topic configurations is logged, not fatal."""
    names = sorted(names)
    if not names:
        return
    try:
        responses = await admin.describe_configs(
            [
                ConfigResource(ConfigResourceType.TOPIC, name, {"cleanup.policy": None})
                for name in names
            ]
        )
        policies = _cleanup_policies(responses)
    except (KafkaError, ValueError, TypeError, IndexError) as error:
        log.warning("cannot check that the changelog topics are compacted: %r", error)
        return
    for name in names:
        problem = changelog_problem(name, policies.get(name, "compact"))
        if problem is not None:
            raise ConfigurationError(problem)


def _cleanup_policies(responses: Iterable[object]) -> Mapping[str, str]:
    """``cleanup.policy`` by topic, from DescribeConfigs responses (every version: each
    resource is ``(error, message, type, name, entries)``, each entry ``(name, value, ...)``)."""
    policies: dict[str, str] = {}
    for response in responses:
        for error_code, _, _, topic, entries in response.resources:  # type: ignore[attr-defined]
            if error_code:
                continue
            for entry in entries:
                if entry[0] == "cleanup.policy" and entry[1] is not None:
                    policies[topic] = entry[1]
    return policies


async def ensure_topics(settings: Settings, *, settle: float = _SETTLE_TIMEOUT) -> list[str]:
    """Create the missing topics; fail if an existing one has another partition count.

    Returns the names it created (through :func:`~streams.kafka.admin.create_and_wait`, as
    every topic orderwatch creates). Input topics are co-partitioned on ``order_id`` and the
    tables' changelogs follow them, so every topic must have the same number of partitions.
    A cluster that answers but is moving (a node just died and still leads partitions or the
    controller) is asked again, every second, for up to ``settle`` seconds.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settle
    waited = False
    while True:
        try:
            created = await _ensure_topics(settings)
        except _CLUSTER_MOVING as error:
            if loop.time() + _SETTLE_PAUSE > deadline:
                raise
            if not waited:
                log.warning(
                    "Kafka is moving (%s: %s): asking again every %g s for up to %g s",
                    type(error).__name__,
                    error,
                    _SETTLE_PAUSE,
                    settle,
                )
                waited = True
            await asyncio.sleep(_SETTLE_PAUSE)
            continue
        if waited:
            log.warning("Kafka settled: topics checked")
        return created


async def _ensure_topics(settings: Settings) -> list[str]:
    admin = AIOKafkaAdminClient(**client_options(settings), client_id=f"{settings.app_id}-admin")
    await start_client(admin, settings)
    try:
        wanted = required_topics(settings)
        # Describe only topics that exist: a metadata request for a missing topic may make
        # the broker auto-create it with its own default partition count.
        present = set(await admin.list_topics())
        known = [name for name in wanted if name in present]
        described = await admin.describe_topics(known) if known else []
        existing: dict[str, int] = {}
        for topic in described:
            if topic.get("error_code", 0) == 0 and topic.get("partitions"):
                existing[topic["topic"]] = len(topic["partitions"])
        for name, count in existing.items():
            if count != settings.partitions:
                source = settings.source_of("partitions")
                raise ConfigurationError(
                    f"topic {name!r} has {count} partitions but {source} is "
                    f"{settings.partitions}: co-partitioned topics must match; set "
                    f"{source}={count} or recreate the topic"
                )
        await _check_changelogs(admin, existing.keys() & set(changelog_topics(settings)))
        missing = [name for name in wanted if name not in existing]
        # Sends right after (orderwatch send) must find a leader for every partition.
        await create_and_wait(
            admin,
            settings.broker,
            dict.fromkeys(missing, settings.partitions),
            replication_factor=settings.replication_factor,
            configs={name: topic_configs(settings, name) for name in missing},
            deadline=asyncio.get_running_loop().time() + _LEADER_TIMEOUT,
        )
        return missing
    finally:
        await admin.close()
