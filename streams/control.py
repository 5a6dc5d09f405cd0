"""Control messages to running workers (``orderwatch advance-clock``)."""

from __future__ import annotations

from datetime import datetime

from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]
from aiokafka.errors import KafkaError  # type: ignore[import-untyped]

from streams import wire
from streams.errors import ConfigurationError
from streams.settings import Settings

__all__ = ["send_advance"]


async def send_advance(settings: Settings, until: datetime) -> int:
    """Ask every partition's clock to move to ``until``; returns how many were asked."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.broker)
    try:
        await producer.start()
    except KafkaError as error:
        await producer.stop()
        raise ConfigurationError(
            f"cannot reach the Kafka broker at ORDERWATCH_BROKER={settings.broker!r}: {error}"
        ) from None
    try:
        topic = settings.internal_topic("clock")
        payload = wire.pack(wire.ADVANCE, until)
        for partition in range(settings.partitions):
            await producer.send_and_wait(topic, payload, partition=partition)
        return settings.partitions
    finally:
        await producer.stop()
