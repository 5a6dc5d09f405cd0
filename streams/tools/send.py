"""``orderwatch send``: publish JSON Lines input events to the contract topics.

Each line goes, byte for byte, to the topic of its ``type`` (contract section 1), keyed as the
worker expects: order events by ``order_id``, stock levels by ``merchant_id/sku``. The producer
partitions keys with murmur2, as Kafka's Java client does, so every event lands on the partition
the worker reads its key from. Only the routing fields are read: validation is the worker's, and
an event it cannot use reaches the dead-letter topic with a sentence saying why. A line with no
usable ``type`` cannot be routed at all: it is reported (with its line number) and counted, never
sent, and the rest go on.

Missing topics are created as the worker creates them, so a stream sent before the first worker
starts is partitioned the way that worker reads it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import IO, Final

from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]

from streams.kafka.connection import client_options, start_client
from streams.kafka.topics import ensure_topics
from streams.settings import Settings

__all__ = ["ROLE_OF_TYPE", "SendSummary", "Unroutable", "route", "send_lines"]

#: The input topic (by role) of each event type.
ROLE_OF_TYPE: Final = {
    "order.placed": "orders",
    "order.cancelled": "orders",
    "order.refunded": "orders",
    "inventory.updated": "inventory",
    "tracking.submitted": "tracking",
    "carrier.scanned": "tracking",
    "complaint.filed": "complaints",
    "complaint.responded": "complaints",
    "complaint.resolved": "complaints",
}
#: Sends in flight before the sender waits for their acknowledgements.
_WINDOW: Final = 5_000
_PROGRESS_SECONDS: Final = 0.5


class Unroutable(ValueError):
    """A line whose topic cannot be told (the message says why)."""


def route(line: bytes) -> tuple[str, bytes | None]:
    """The topic role and key of one line; raises :class:`Unroutable`.

    A missing or non-string key field leaves the message unkeyed: it is still sent, and the
    worker dead-letters it, naming the field.
    """
    try:
        event = json.loads(line)
    except ValueError as error:
        raise Unroutable(f"not JSON ({error})") from None
    if not isinstance(event, dict):
        raise Unroutable("not a JSON object")
    event_type = event.get("type")
    role = ROLE_OF_TYPE.get(event_type) if isinstance(event_type, str) else None
    if role is None:
        raise Unroutable(f"type {event_type!r} is not an input event type")
    if role == "inventory":
        merchant, sku = event.get("merchant_id"), event.get("sku")
        key = f"{merchant}/{sku}" if isinstance(merchant, str) and isinstance(sku, str) else None
    else:
        order_id = event.get("order_id")
        key = order_id if isinstance(order_id, str) else None
    return role, key.encode("utf-8") if key is not None else None


@dataclass
class SendSummary:
    """What a run sent, and what it could not route."""

    lines: int = 0
    by_topic: Counter[str] = field(default_factory=Counter)
    unroutable: list[tuple[int, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def sent(self) -> int:
        return sum(self.by_topic.values())

    def describe(self) -> str:
        topics = ", ".join(f"{topic} {count:,}" for topic, count in sorted(self.by_topic.items()))
        rate = self.sent / self.seconds if self.seconds else 0.0
        text = f"sent {self.sent:,} events ({topics or 'none'}) in {self.seconds:.2f} s"
        text += f" ({rate:,.0f} events/s)"
        if self.unroutable:
            count = len(self.unroutable)
            text += f"; {count:,} line{'' if count == 1 else 's'} not sent (no input event type)"
        return text


async def _lines(source: IO[bytes]) -> AsyncIterator[bytes]:
    """The source's lines; a pipe is read off the event loop, so what was produced is sent
    while the next line is awaited."""
    if source.seekable():
        for line in source:
            yield line
        return
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, source.readline):
        yield line


async def send_lines(
    settings: Settings,
    source: IO[bytes],
    *,
    progress: Callable[[SendSummary], None] | None = None,
    on_unroutable: Callable[[int, str], None] | None = None,
) -> SendSummary:
    """Send every routable line of ``source`` to its topic; wait until Kafka acknowledged all.

    The topics are created first if missing, as the worker creates them (with
    ``settings.partitions`` each): a topic the broker auto-created would have its default count.

    Raises :class:`ConfigurationError` when the broker cannot be reached, and
    :class:`KafkaError` when a send fails.
    """
    await ensure_topics(settings)
    producer = AIOKafkaProducer(
        **client_options(settings),
        client_id=f"{settings.app_id}-send",
        # Not idempotent (some brokers lack it): a retried send may repeat an event, which the
        # worker recognises by its event_id.
        acks="all",
        linger_ms=5,
        compression_type=settings.compression_type(),
    )
    await start_client(producer, settings)
    summary = SendSummary()
    started = time.perf_counter()
    topics = {role: settings.topic(role) for role in set(ROLE_OF_TYPE.values())}
    pending: list[asyncio.Future[object]] = []
    reported = started
    try:
        async for raw in _lines(source):
            summary.lines += 1
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                continue
            try:
                role, key = route(line)
            except Unroutable as error:
                summary.unroutable.append((summary.lines, str(error)))
                if on_unroutable is not None:
                    on_unroutable(summary.lines, str(error))
                continue
            pending.append(await producer.send(topics[role], line, key=key))
            summary.by_topic[topics[role]] += 1
            if len(pending) >= _WINDOW:
                await asyncio.gather(*pending)
                pending.clear()
            if progress is not None and time.perf_counter() - reported >= _PROGRESS_SECONDS:
                reported = time.perf_counter()
                summary.seconds = reported - started
                progress(summary)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    summary.seconds = time.perf_counter() - started
    return summary
