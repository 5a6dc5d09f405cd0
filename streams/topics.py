"""Topic housekeeping at start: create what is missing, refuse broken co-partitioning."""

from __future__ import annotations

import asyncio

from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # type: ignore[import-untyped]

from streams.brokers import await_topics
from streams.connection import client_options, start_client
from streams.errors import ConfigurationError
from streams.settings import Settings

__all__ = ["TABLES", "changelog_topic", "ensure_topics", "required_topics"]

#: The worker's tables; Faust names their changelog topics ``{app_id}-{table}-changelog``.
TABLES = ("orders", "clocks", "skus", "carriers", "merchants", "inbox")
#: Seconds to wait for the created topics' partitions to have a leader.
_LEADER_TIMEOUT = 30.0
_INTERNAL = ("order-events", "clock", "aggregate-inputs")
_CONTRACT = (
    "orders",
    "inventory",
    "tracking",
    "complaints",
    "breaches",
    "recommendations",
    "dead_letter",
)


def changelog_topic(settings: Settings, table: str) -> str:
    """The changelog topic of one of the worker's tables (Faust's naming)."""
    return f"{settings.topic_prefix}{settings.app_id}-{table}-changelog"


def required_topics(settings: Settings) -> list[str]:
    """Every topic the worker reads or writes; all must have ``settings.partitions``."""
    names = [settings.topic(role) for role in _CONTRACT]
    names += [settings.internal_topic(name) for name in _INTERNAL]
    names += [changelog_topic(settings, table) for table in TABLES]
    return names


async def ensure_topics(settings: Settings) -> list[str]:
    """Create the missing topics; fail if an existing one has another partition count.

    Returns the names it created. Input topics are co-partitioned on ``order_id`` and the
    tables' changelogs follow them, so every topic must have the same number of partitions.
    """
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
        missing = [name for name in wanted if name not in existing]
        changelogs = {changelog_topic(settings, table) for table in TABLES}
        if missing:
            await admin.create_topics(
                [
                    NewTopic(
                        name=name,
                        num_partitions=settings.partitions,
                        replication_factor=settings.replication_factor,
                        # Table state is kept by key, never expired by age.
                        topic_configs={"cleanup.policy": "compact"} if name in changelogs else {},
                    )
                    for name in missing
                ]
            )
            # Sends right after (orderwatch send) must find a leader for every partition.
            deadline = asyncio.get_running_loop().time() + _LEADER_TIMEOUT
            await await_topics(
                admin, settings.broker, dict.fromkeys(missing, settings.partitions), deadline
            )
        return missing
    finally:
        await admin.close()
