"""``orderwatch tail TOPIC``: print a topic's messages, one value per line, as kcat -C would.

It reads with the worker's connection settings (broker, security, topic prefix) and works on the
embedded Tansu broker, whose ApiVersions reply librdkafka (kcat) rejects. It reads without a
consumer group: nothing is committed, and any number of tails can read at once.

``TOPIC`` is a contract topic's role (``orders``, ``breaches``, ``dead-letter``, ...) or its
default name (``deadline-breaches``, ``dispute-recommendations``), both resolved to the
configured name with the prefix, or else a literal topic name.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]

from streams.errors import ConfigurationError
from streams.kafka.admin import topic_partitions
from streams.kafka.connection import (
    bootstrap_servers,
    client_options,
    security_options,
    start_client,
)
from streams.settings import TOPIC_ROLES, Settings

__all__ = ["TailOptions", "UnknownTopic", "format_message", "resolve_topic", "tail"]

#: Milliseconds one fetch waits for messages before the end is checked again.
_FETCH_WAIT_MS: Final = 500
#: Seconds to learn each partition's highwater from a fetch before the listed end is trusted.
_PROBE_SECONDS: Final = 5.0


class UnknownTopic(ConfigurationError):
    """The broker has no topic of that name (the message says which and where)."""


@dataclass(frozen=True)
class TailOptions:
    """What ``orderwatch tail`` reads: all of it (the default), the last N of each partition,
    up to ``max_messages``, and on past the end with ``follow``."""

    follow: bool = False
    last: int | None = None
    max_messages: int | None = None
    meta: bool = False

    def __post_init__(self) -> None:
        if self.last is not None and self.last < 0:
            raise ValueError("last must be >= 0")
        if self.max_messages is not None and self.max_messages < 1:
            raise ValueError("max_messages must be >= 1")


def _role_of(name: str) -> str | None:
    """The contract role ``name`` stands for (a role, dashed or not, or a default name)."""
    role = name.replace("-", "_")
    if role in TOPIC_ROLES:
        return role
    for known, default in TOPIC_ROLES.items():
        if name == default:
            return known
    return None


def resolve_topic(settings: Settings, name: str) -> str:
    """The topic ``name`` means: a contract role or default name becomes the configured name
    with the prefix (``settings.topic(role)``); anything else is taken literally."""
    if not name.strip():
        raise ConfigurationError("TOPIC is empty: give a role such as orders, or a topic name")
    role = _role_of(name)
    return settings.topic(role) if role is not None else name


def _text(raw: bytes | None) -> Any:
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.hex()


def format_message(record: Any, *, meta: bool) -> bytes:
    """One output line (no newline): the value as it is, or with ``meta`` a JSON object with
    the topic, partition, offset, timestamp (ms), key, headers and the value (parsed if JSON)."""
    value: bytes | None = record.value
    if not meta:
        return b"null" if value is None else value
    parsed: Any
    try:
        parsed = None if value is None else json.loads(value)
    except ValueError:
        parsed = _text(value)
    line = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
        "key": _text(record.key),
        "headers": {name: _text(raw) for name, raw in (record.headers or ())},
        "value": parsed,
    }
    return json.dumps(line, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _starts(
    options: TailOptions,
    beginning: Mapping[TopicPartition, int],
    end: Mapping[TopicPartition, int],
) -> dict[TopicPartition, int]:
    """Where each partition is read from: its beginning, or ``last`` before its end."""
    if options.last is None:
        return dict(beginning)
    return {tp: max(beginning[tp], end[tp] - options.last) for tp in end}


async def tail(
    settings: Settings,
    name: str,
    options: TailOptions,
    write: Callable[[bytes], None],
) -> int:
    """Read the topic ``name`` means (:func:`resolve_topic`) and ``write`` one line per message;
    return how many were written.

    Without ``follow`` it stops at each partition's end as it was at the start; with it, it
    reads on until cancelled (or ``max_messages``). Raises :class:`UnknownTopic` when the
    broker has no such topic, :class:`ConfigurationError` when it cannot be reached.
    """
    topic = resolve_topic(settings, name)
    consumer = AIOKafkaConsumer(
        **client_options(settings),
        client_id=f"{settings.app_id}-tail",
        group_id=None,
        enable_auto_commit=False,
    )
    await start_client(consumer, settings)
    try:
        bootstrap = ",".join(bootstrap_servers(settings))
        partitions = await topic_partitions(bootstrap, topic, security_options(settings))
        if not partitions:
            hint = "" if topic != name else " (a role such as orders or breaches, or a topic name)"
            raise UnknownTopic(f"no topic {topic!r} on the broker at {bootstrap}{hint}")
        assigned = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(assigned)
        beginning = await consumer.beginning_offsets(assigned)
        end = await _ends(consumer, assigned)
        for tp, offset in _starts(options, beginning, end).items():
            consumer.seek(tp, offset)
        return await _read(consumer, assigned, options, end, write)
    finally:
        await consumer.stop()


async def _read(
    consumer: Any,
    assigned: list[Any],
    options: TailOptions,
    end: Mapping[Any, int],
    write: Callable[[bytes], None],
) -> int:
    written = 0
    while True:
        if not options.follow and await _at_end(consumer, assigned, end):
            return written
        batches = await consumer.getmany(*assigned, timeout_ms=_FETCH_WAIT_MS)
        for records in batches.values():
            for record in records:
                if not options.follow and record.offset >= end[_partition_of(record)]:
                    continue  # past the end as it was at the start
                write(format_message(record, meta=options.meta))
                written += 1
                if options.max_messages is not None and written >= options.max_messages:
                    return written


def _partition_of(record: Any) -> Any:
    return TopicPartition(record.topic, record.partition)


async def _ends(consumer: Any, assigned: list[Any]) -> dict[Any, int]:
    """Each partition's end: the listed end offset, or the highwater a fetch from there reports
    if that is further (Tansu lists end offsets short of the last record's)."""
    ends: dict[Any, int] = dict(await consumer.end_offsets(assigned))
    for tp in assigned:
        consumer.seek(tp, ends[tp])
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _PROBE_SECONDS
    while loop.time() < deadline:
        await consumer.getmany(*assigned, timeout_ms=_FETCH_WAIT_MS)
        highwaters = {tp: consumer.highwater(tp) for tp in assigned}
        if all(mark is not None for mark in highwaters.values()):
            return {tp: max(ends[tp], highwaters[tp]) for tp in assigned}
    return ends


async def _at_end(consumer: Any, assigned: list[Any], end: Mapping[Any, int]) -> bool:
    for tp in assigned:
        if await consumer.position(tp) < end[tp]:
            return False
    return True
