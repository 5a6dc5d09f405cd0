"""``orderwatch tail`` on a real broker (the embedded Tansu, where kcat fails, or Apache Kafka):
every message of a topic, the last of each partition, live ones with --follow, no group."""

from __future__ import annotations

import asyncio
import json
import os
import selectors
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]
from worker_harness import EXAMPLES, example_lines

from streams.tools.send import Unroutable, route

pytestmark = pytest.mark.broker

PARTITIONS = 4


def _env(bootstrap: str, prefix: str, app_id: str) -> dict[str, str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "ORDERWATCH_BROKER": bootstrap,
        "ORDERWATCH_TOPIC_PREFIX": prefix,
        "ORDERWATCH_PARTITIONS": str(PARTITIONS),
        "ORDERWATCH_APP_ID": app_id,
    }
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


def orderwatch(
    *args: str, bootstrap: str, prefix: str, app_id: str = "orderwatch", stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "streams", *args],
        env=_env(bootstrap, prefix, app_id),
        input=stdin,
        capture_output=True,
        timeout=120,
        check=False,
    )


def sent_by_role() -> dict[str, list[bytes]]:
    """The example stream's routable lines by topic role, as ``send`` publishes them."""
    roles: dict[str, list[bytes]] = {}
    for line in example_lines():
        try:
            role, _key = route(line)
        except Unroutable:
            continue
        roles.setdefault(role, []).append(line)
    return roles


@pytest.fixture
def prefix(kafka_bootstrap: str) -> str:
    """A fresh prefix whose input topics hold the example stream."""
    prefix = f"tail-{uuid.uuid4().hex[:8]}-"
    sent = orderwatch("send", str(EXAMPLES), bootstrap=kafka_bootstrap, prefix=prefix)
    assert sent.returncode == 0, sent.stderr.decode()
    return prefix


def test_tail_prints_every_message_of_a_role_s_topic_once(
    kafka_bootstrap: str, prefix: str
) -> None:
    expected = sent_by_role()["orders"]

    result = orderwatch("tail", "orders", bootstrap=kafka_bootstrap, prefix=prefix)

    assert result.returncode == 0, result.stderr.decode()
    assert Counter(result.stdout.splitlines()) == Counter(expected)
    assert f"{len(expected):,} messages from {prefix}orders" in result.stderr.decode()


def test_a_literal_topic_name_is_read_as_it_is(kafka_bootstrap: str, prefix: str) -> None:
    expected = sent_by_role()["inventory"]

    # No prefix configured: the prefixed name is a literal one.
    result = orderwatch("tail", f"{prefix}inventory", "-q", bootstrap=kafka_bootstrap, prefix="")

    assert result.returncode == 0, result.stderr.decode()
    assert Counter(result.stdout.splitlines()) == Counter(expected)
    assert result.stderr == b""


def test_last_starts_n_before_each_partition_s_end(kafka_bootstrap: str, prefix: str) -> None:
    everything = orderwatch("tail", "orders", "--meta", bootstrap=kafka_bootstrap, prefix=prefix)
    assert everything.returncode == 0, everything.stderr.decode()
    records = [json.loads(line) for line in everything.stdout.splitlines()]
    ends: dict[int, int] = {}
    for record in records:
        ends[record["partition"]] = max(ends.get(record["partition"], -1), record["offset"] + 1)
    assert len(ends) == PARTITIONS

    result = orderwatch(
        "tail", "orders", "--last", "2", "--meta", bootstrap=kafka_bootstrap, prefix=prefix
    )

    assert result.returncode == 0, result.stderr.decode()
    last = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted((r["partition"], r["offset"]) for r in last) == sorted(
        (partition, offset) for partition, end in ends.items() for offset in (end - 2, end - 1)
    )


def test_meta_gives_where_each_message_is_and_its_key(kafka_bootstrap: str, prefix: str) -> None:
    result = orderwatch(
        "tail", "orders", "--meta", "--max", "5", bootstrap=kafka_bootstrap, prefix=prefix
    )

    assert result.returncode == 0, result.stderr.decode()
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 5
    for line in lines:
        assert line["topic"] == f"{prefix}orders"
        assert 0 <= line["partition"] < PARTITIONS
        assert line["offset"] >= 0
        assert line["headers"] == {}
        if isinstance(line["value"], dict) and isinstance(line["value"].get("order_id"), str):
            assert line["key"] == line["value"]["order_id"]


def _read_lines(process: subprocess.Popen[bytes], count: int, timeout: float) -> list[bytes]:
    assert process.stdout is not None
    lines: list[bytes] = []
    buffer = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while len(lines) < count and time.monotonic() < deadline:
            if not selector.select(timeout=0.5):
                continue
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                break
            buffer += chunk
            *done, buffer = buffer.split(b"\n")
            lines.extend(done)
    return lines


async def _groups(bootstrap: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        listed: list[Any] = await admin.list_consumer_groups()
    finally:
        await admin.close()
    return [group[0] for group in listed]


def test_follow_prints_messages_sent_after_it_started_and_joins_no_group(
    kafka_bootstrap: str,
) -> None:
    prefix = f"follow-{uuid.uuid4().hex[:8]}-"
    app_id = f"tail-{uuid.uuid4().hex[:8]}"
    assert (
        orderwatch("send", "-", bootstrap=kafka_bootstrap, prefix=prefix, stdin=b"").returncode == 0
    )
    with subprocess.Popen(
        [sys.executable, "-m", "streams", "tail", "breaches", "--follow", "-q"],
        env=_env(kafka_bootstrap, prefix, app_id),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        try:
            time.sleep(3)  # reading: the messages below come after the start
            later = [json.dumps({"n": n}).encode() for n in range(5)]
            asyncio.run(_produce(kafka_bootstrap, f"{prefix}deadline-breaches", later))

            lines = _read_lines(process, len(later), timeout=30)

            assert lines == later
            assert process.poll() is None  # still following
            assert not [group for group in asyncio.run(_groups(kafka_bootstrap)) if app_id in group]
        finally:
            process.send_signal(signal.SIGINT)
            code = process.wait(timeout=30)
        assert process.stderr is not None
        assert code == 0, process.stderr.read().decode()


async def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for value in values:
            # One partition: the order printed is the order sent.
            await producer.send_and_wait(topic, value, partition=1)
    finally:
        await producer.stop()


def test_an_unknown_topic_is_one_line_and_exit_1(kafka_bootstrap: str) -> None:
    prefix = f"none-{uuid.uuid4().hex[:8]}-"

    result = orderwatch("tail", "nothing-here", bootstrap=kafka_bootstrap, prefix=prefix)

    assert result.returncode == 1
    assert result.stdout == b""
    stderr = result.stderr.decode()
    assert stderr.count("\n") == 1, stderr
    assert f"no topic 'nothing-here' on the broker at {kafka_bootstrap}" in stderr
    # and a role's topic that does not exist yet is named with its prefix
    role = orderwatch("tail", "dead-letter", bootstrap=kafka_bootstrap, prefix=prefix)
    assert role.returncode == 1
    assert f"no topic '{prefix}dead-letter'" in role.stderr.decode()
