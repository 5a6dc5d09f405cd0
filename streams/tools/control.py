"""Control messages to running workers (``orderwatch advance-clock``)."""

from __future__ import annotations

from datetime import datetime

from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]
from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]

from streams.errors import ConfigurationError
from streams.kafka.connection import client_options, connected
from streams.settings import Settings
from streams.worker import wire

__all__ = ["send_advance"]


async def send_advance(settings: Settings, until: datetime) -> int:
    """Ask every partition's clock to move to ``until``; returns how many were asked.

    Raises :class:`ConfigurationError` when no worker of these settings has created its clock
    topic (a wrong app id or prefix): a send would make the broker create it, with its own
    partition count, and that topic would then stop the worker from starting.
    """
    topic = settings.internal_topic("clock")
    partitions = await _partitions_of(settings, topic)
    if partitions is None:
        raise ConfigurationError(
            f"no worker with app id {settings.app_id!r} and topic prefix "
            f"{settings.topic_prefix!r} has run on {settings.broker} (its topic {topic!r} does "
            f"not exist): check {settings.source_of('app_id')} and "
            f"{settings.source_of('topic_prefix')}, or start the worker"
        )
    if partitions != settings.partitions:
        raise ConfigurationError(
            f"topic {topic!r} has {partitions} partitions but "
            f"{settings.source_of('partitions')} is {settings.partitions}: set it as the worker "
            "has it"
        )
    async with connected(AIOKafkaProducer(**client_options(settings)), settings) as producer:
        payload = wire.pack(wire.ADVANCE, until)
        for partition in range(settings.partitions):
            await producer.send_and_wait(topic, payload, partition=partition)
        return settings.partitions


async def _partitions_of(settings: Settings, topic: str) -> int | None:
    """How many partitions ``topic`` has, or None when it does not exist (never creates it)."""
    admin = AIOKafkaAdminClient(**client_options(settings), client_id=f"{settings.app_id}-control")
    async with connected(admin, settings):
        if topic not in await admin.list_topics():
            return None
        [described] = await admin.describe_topics([topic])
        return len(described["partitions"])
