"""Control messages to running workers (``orderwatch advance-clock``)."""

from __future__ import annotations

from datetime import datetime

from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]

from streams import wire
from streams.connection import client_options, connected
from streams.settings import Settings

__all__ = ["send_advance"]


async def send_advance(settings: Settings, until: datetime) -> int:
    """Ask every partition's clock to move to ``until``; returns how many were asked."""
    async with connected(AIOKafkaProducer(**client_options(settings)), settings) as producer:
        topic = settings.internal_topic("clock")
        payload = wire.pack(wire.ADVANCE, until)
        for partition in range(settings.partitions):
            await producer.send_and_wait(topic, payload, partition=partition)
        return settings.partitions
