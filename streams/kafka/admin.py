"""Kafka admin: waiting for a broker to answer, creating topics and waiting for their leaders.

These work against any Kafka broker (Apache Kafka or the embedded Tansu); for a secured one, pass
``security=streams.kafka.connection.security_options(settings)`` (the aiokafka security
arguments: protocol, SASL login, TLS context).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # type: ignore[import-untyped]
from aiokafka.errors import (  # type: ignore[import-untyped]
    KafkaError,
    TopicAlreadyExistsError,
    for_code,
)

from streams.errors import ConfigurationError

__all__ = [
    "DEFAULT_STARTUP_TIMEOUT",
    "await_topics",
    "create_and_wait",
    "create_topics",
    "partitions_of",
    "poll_ready",
    "topic_partitions",
    "wait_for_broker",
]

#: Seconds to wait for a broker to answer (``EmbeddedBroker`` startup, ``wait_for_broker``).
DEFAULT_STARTUP_TIMEOUT = 30.0

_CLIENT_ID = "orderwatch-admin"
# One readiness attempt (TCP connect, bootstrap, Metadata) may take this long before it is retried.
_PROBE_TIMEOUT = 5.0
_POLL_INTERVAL = 0.1


class _NotReady(Exception):
    """One readiness probe found the broker not (yet) serving."""


def _servers(bootstrap: str) -> list[tuple[str, int]]:
    """Parse ``"host:port[,host:port...]"`` (IPv6 hosts in brackets) into ``(host, port)`` pairs."""
    servers = []
    for item in bootstrap.split(","):
        host, sep, port = item.strip().rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ConfigurationError(f"Kafka bootstrap address {item.strip()!r} is not host:port")
        servers.append((host.strip("[]"), int(port)))
    if not servers:
        raise ConfigurationError("Kafka bootstrap address is empty")
    return servers


def _admin(
    bootstrap: str, request_timeout: float, security: Mapping[str, Any] | None = None
) -> Any:
    return AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id=_CLIENT_ID,
        request_timeout_ms=max(1000, int(request_timeout * 1000)),
        **(security or {}),
    )


async def _probe(bootstrap: str, security: Mapping[str, Any] | None = None) -> None:
    """One readiness check: a TCP connect, then a Metadata round trip listing a live broker.

    The TCP connect comes first so that a broker still starting costs a refused connection, not
    an error logged by aiokafka's bootstrap.
    """
    for host, port in _servers(bootstrap):
        try:
            _reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        break
    else:
        raise _NotReady(f"nothing listens on {bootstrap}")

    admin = _admin(bootstrap, _PROBE_TIMEOUT, security)
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
    finally:
        await admin.close()
    if not cluster.get("brokers"):
        raise _NotReady("the broker's metadata lists no live broker")


async def poll_ready(
    bootstrap: str,
    timeout: float,
    check_alive: Callable[[], None] | None = None,
    security: Mapping[str, Any] | None = None,
) -> None:
    """Probe ``bootstrap`` until it answers; ``check_alive()``, if given, raises to give up."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: BaseException | None = None
    while True:
        if check_alive is not None:
            check_alive()
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise TimeoutError(
                f"no Kafka broker answered at {bootstrap} within {timeout:g} s"
                + (f" (last attempt: {type(last).__name__}: {last})" if last else "")
            )
        try:
            await asyncio.wait_for(
                _probe(bootstrap, security), timeout=min(remaining, _PROBE_TIMEOUT)
            )
            return
        except (_NotReady, KafkaError, OSError, TimeoutError) as exc:
            last = exc
        await asyncio.sleep(max(0.0, min(_POLL_INTERVAL, deadline - loop.time())))


async def wait_for_broker(
    bootstrap: str,
    timeout: float = DEFAULT_STARTUP_TIMEOUT,
    *,
    security: Mapping[str, Any] | None = None,
) -> None:
    """Wait until the Kafka broker at ``bootstrap`` answers a Metadata request.

    ``bootstrap`` is ``"host:port"`` or a comma-separated list of them. The broker counts as
    ready when its metadata lists at least one live broker. Raises ``TimeoutError`` (naming the
    last failure) if that does not happen within ``timeout`` seconds, and ``ConfigurationError``
    if ``bootstrap`` is not an address.
    """
    await poll_ready(bootstrap, timeout, security=security)


async def create_topics(
    bootstrap: str,
    topics: Mapping[str, int],
    replication_factor: int = 1,
    *,
    timeout: float = DEFAULT_STARTUP_TIMEOUT,
    security: Mapping[str, Any] | None = None,
) -> list[str]:
    """Create the missing ones of ``topics`` (name → partition count); return the names created.

    A topic that already exists is left alone if it has the requested partition count; with a
    different count it raises ``ConfigurationError`` (keyed records would land on other partitions
    than the application expects). Creating topics up front matters on Tansu, which gives a topic
    auto-created by a producer 4 partitions. Returns once every topic's partitions all have a
    leader; raises as :func:`create_and_wait` does. (The worker's own topics, with their
    retention, are :func:`streams.kafka.topics.ensure_topics`'s, through the same function.)
    """
    for name, partitions in topics.items():
        if partitions < 1:
            raise ConfigurationError(f"topic {name!r}: partition count must be >= 1")
    if not topics:
        return []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    admin = _admin(bootstrap, min(timeout, 30.0), security)
    try:
        await admin.start()
        # describe_topics() without names lists every topic and never auto-creates one.
        existing = {t["topic"] for t in await admin.describe_topics() if t["error_code"] == 0}
        missing = {name: count for name, count in topics.items() if name not in existing}
        created = await create_and_wait(
            admin, bootstrap, missing, replication_factor=replication_factor, deadline=deadline
        )
        present = {name: count for name, count in topics.items() if name not in missing}
        if present:
            await await_topics(admin, bootstrap, present, deadline)
    finally:
        await admin.close()
    return sorted(created)


async def create_and_wait(
    admin: Any,
    bootstrap: str,
    topics: Mapping[str, int],
    *,
    replication_factor: int,
    configs: Mapping[str, Mapping[str, str]] | None = None,
    deadline: float,
) -> list[str]:
    """Create ``topics`` (name → partition count, each with its ``configs``) with the started
    ``admin`` client of the broker at ``bootstrap``, then wait until each shows its partitions,
    every one with a leader; return the names created (not one created meanwhile elsewhere).

    The one place orderwatch creates topics. Raises ``ConfigurationError`` if the broker refuses
    a topic (bad name, replication factor above the broker count, ...), the broker's error itself
    if it is a passing one (a cluster moving: ask again), ``TimeoutError`` if the topics do not
    show up by ``deadline`` (the event loop's time).
    """
    if not topics:
        return []
    loop = asyncio.get_running_loop()
    configs = configs or {}
    response = await admin.create_topics(
        [
            NewTopic(
                name=name,
                num_partitions=count,
                replication_factor=replication_factor,
                topic_configs=dict(configs.get(name, {})),
            )
            for name, count in topics.items()
        ],
        timeout_ms=max(1000, int((deadline - loop.time()) * 1000)),
    )
    created: list[str] = []
    for entry in response.topic_errors:
        name, code = entry[0], entry[1]
        message = entry[2] if len(entry) > 2 else None
        if code == 0:
            created.append(name)
            continue
        error = for_code(code)
        if error is TopicAlreadyExistsError:  # created meanwhile: fine
            continue
        if error.retriable:
            raise error(f"creating topic {name!r}" + (f": {message}" if message else ""))
        raise ConfigurationError(
            f"the broker at {bootstrap} refused to create topic {name!r} "
            f"({topics[name]} partitions, replication factor {replication_factor}): "
            f"{error.__name__}" + (f": {message}" if message else "")
        )
    await await_topics(admin, bootstrap, topics, deadline)
    return created


async def await_topics(
    admin: Any, bootstrap: str, topics: Mapping[str, int], deadline: float
) -> None:
    """Wait until metadata shows every topic with its partition count, each with a leader."""
    loop = asyncio.get_running_loop()
    while True:
        described = {t["topic"]: t for t in await admin.describe_topics()}
        pending = []
        for name, want in topics.items():
            topic = described.get(name)
            if not topic or topic["error_code"] != 0:
                pending.append(name)
                continue
            partitions = topic.get("partitions", [])
            led = bool(partitions) and all(p.get("leader", -1) >= 0 for p in partitions)
            if led and len(partitions) != want:
                raise ConfigurationError(
                    f"topic {name!r} on {bootstrap} has {len(partitions)} partitions, "
                    f"expected {want}: delete it or change the configured count"
                )
            if not led or len(partitions) != want:
                pending.append(name)
        if not pending:
            return
        if loop.time() >= deadline:
            raise TimeoutError(
                f"topics {pending} on {bootstrap} did not show all partitions with a leader in time"
            )
        await asyncio.sleep(_POLL_INTERVAL)


async def topic_partitions(
    bootstrap: str, topic: str, security: Mapping[str, Any] | None = None
) -> list[int]:
    """``topic``'s partitions (empty: no such topic), from a description of every topic: a
    Metadata request naming a topic may create it on a broker that auto-creates topics, and a
    consumer's ``topics()`` does not refresh what its ``partitions_for_topic`` knows."""
    return (await partitions_of(bootstrap, [topic], security))[topic]


async def partitions_of(
    bootstrap: str | list[str], topics: Iterable[str], security: Mapping[str, Any] | None = None
) -> dict[str, list[int]]:
    """Each of ``topics``' partitions (an empty list for a topic that does not exist), from one
    description of every topic (see :func:`topic_partitions`)."""
    if not isinstance(bootstrap, str):
        bootstrap = ",".join(bootstrap)
    admin = _admin(bootstrap, _PROBE_TIMEOUT, security)
    await admin.start()
    try:
        described = await admin.describe_topics()
    finally:
        await admin.close()
    found = {
        entry["topic"]: sorted(p["partition"] for p in entry["partitions"])
        for entry in described
        if entry["error_code"] == 0
    }
    return {topic: found.get(topic, []) for topic in topics}
