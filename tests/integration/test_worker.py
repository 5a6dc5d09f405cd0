"""The worker on a real broker: the same decisions as replay, dead letters, health, metrics."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]
from worker_harness import (
    Output,
    WorkerRun,
    backfill,
    consume_outputs,
    decisions,
    example_lines,
    message_of,
    occurred,
    produce_lines,
    replayed_outputs,
    run,
    wait_for,
)

from streams import __version__
from streams.core.dates import EPOCH
from streams.core.output_json import parse, serialize
from streams.kafka.headers import cloudevents_source, headers
from streams.policy_files import load_policy
from streams.tools.simulator import generate_events
from streams.worker import partition_for

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def replayed() -> list[Output]:
    return replayed_outputs()


@pytest.fixture(scope="module")
def backfilled(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[WorkerRun, list[Output]]]:
    """One event-time worker fed the example stream, its clock advanced to the end."""
    worker = WorkerRun(kafka_bootstrap, tmp_path_factory.mktemp("worker"))
    try:
        worker.start()
        lines = example_lines()
        run(produce_lines(kafka_bootstrap, worker.prefix, lines))
        yield worker, backfill([worker], lines)
    finally:
        worker.stop()


def test_the_worker_decides_the_same_breaches_and_order_advice_as_replay(
    backfilled: tuple[WorkerRun, list[Output]], replayed: list[Output]
) -> None:
    _, outputs = backfilled
    expected, actual = decisions(replayed), decisions(outputs)
    assert expected, "the example stream must produce decisions"
    assert actual == expected


def test_no_breach_is_emitted_twice_for_one_fact(
    backfilled: tuple[WorkerRun, list[Output]],
) -> None:
    _, outputs = backfilled
    breaches = [o["breach_id"] for o in outputs if o["type"] == "deadline.breached"]
    assert breaches
    assert len(breaches) == len(set(breaches))


def test_each_breach_is_resolved_once_after_it_on_the_breaches_topic(
    backfilled: tuple[WorkerRun, list[Output]],
) -> None:
    _, outputs = backfilled
    topics = {o["_kafka"]["topic"] for o in outputs if o["type"] == "deadline.breached"}
    breached: set[str] = set()
    resolved: list[str] = []
    for output in outputs:  # in the order read: one partition keeps a key's order
        if output["type"] == "deadline.breached":
            breached.add(output["breach_id"])
        elif output["type"] == "deadline.resolved":
            assert output["breach_id"] in breached, "a resolution before its breach"
            assert output["_kafka"]["topic"] in topics
            resolved.append(output["resolution_id"])
    assert resolved
    assert len(resolved) == len(set(resolved))


def test_outputs_are_keyed_as_the_contract_says(
    backfilled: tuple[WorkerRun, list[Output]],
) -> None:
    _, outputs = backfilled
    for output in outputs:
        if output["type"] in ("deadline.breached", "deadline.resolved"):
            assert output["_kafka"]["key"] == output["order_id"]
        elif output["type"] == "recommendation.issued":
            assert output["_kafka"]["key"] == output["subject"]


def test_bad_messages_land_in_the_dead_letter_with_their_source_and_a_sentence(
    backfilled: tuple[WorkerRun, list[Output]],
) -> None:
    worker, outputs = backfilled
    rejected = [o for o in outputs if o["type"] == "event.rejected"]
    assert len(rejected) == 3
    for output in rejected:
        source = output["source"]
        assert source["topic"].startswith(worker.prefix)
        assert source["partition"] >= 0
        assert source["offset"] >= 0
        assert output["error"].endswith(".")
        assert output["raw"]
    # ...and the messages after them were processed: every valid event was counted.
    assert worker.metric("orderwatch_events_rejected_total") == 3


def test_outputs_are_published_as_the_project_serializes_them_with_its_headers(
    backfilled: tuple[WorkerRun, list[Output]],
) -> None:
    """Each message's value is :func:`serialize`'s line of the output it holds (byte for byte,
    as replay writes it), and its headers are :func:`headers`' for it: the CloudEvents
    attributes, from this worker's app id, and a dead letter's source."""
    worker, outputs = backfilled
    source = cloudevents_source(worker.name)
    kinds = set()
    for output in outputs:
        message = output["_kafka"]
        event = parse(message["value"])
        assert message["value"] == serialize(event).encode("utf-8")
        assert message["headers"] == headers(event, source)
        kinds.add(event.type)
    assert kinds == {
        "deadline.breached",
        "deadline.resolved",
        "recommendation.issued",
        "event.rejected",
    }


def test_health_ready_and_metrics_are_served(
    backfilled: tuple[WorkerRun, list[Output]],
) -> None:
    worker, _ = backfilled
    assert worker.get("/health")[0] == 200
    assert worker.get("/ready")[0] == 200
    assert worker.metric("orderwatch_ready") == 1
    assert worker.metric("orderwatch_breaches_total", deadline="fulfillment") > 0
    assert worker.metric("orderwatch_breaches_total", rule="wish.fulfillment") > 0
    assert worker.metric("orderwatch_assigned_partitions") == worker.partitions
    assert worker.metric("orderwatch_processing_failures_total") == 0
    # The clock is the event-time clock the backfill advanced, not 0.
    last = max(datetime.fromisoformat(at) for line in example_lines() if (at := occurred(line)))
    assert worker.metric("orderwatch_clock_timestamp_seconds") == last.timestamp()
    # Everything produced was processed: no partition lags (the lag is read every 5 s).
    lag = "orderwatch_consumer_lag_messages"
    wait_for(
        lambda: (
            f'{lag}{{partition="0",topic="{worker.prefix}orders"}} 0.0'.encode()
            in worker.get("/metrics")[1]
            and worker.metric(lag) == 0
        ),
        timeout=15,
        what="no consumer lag on any partition",
    )
    _, body = worker.get("/metrics")
    assert b"process_cpu_seconds_total" in body
    assert b"_created" not in body


def test_the_web_server_listens_where_it_is_told_and_serves_only_orderwatch(
    backfilled: tuple[WorkerRun, list[Output]],
) -> None:
    worker, _ = backfilled
    for path in ("/router/", "/table/orders/", "/stats/", "/graph/"):
        assert worker.get(path)[0] == 404, path
    # "/" is orderwatch's own console page, not Faust's index.
    status, page = worker.get("/")
    assert status == 200
    assert b"/console/console.js" in page
    # Bound to 127.0.0.1 (the default web host), not to every interface: another local address
    # of the same machine is refused.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.2", worker.web_port), timeout=5).close()


def test_a_second_worker_on_the_same_port_stops_with_one_line(
    backfilled: tuple[WorkerRun, list[Output]],
) -> None:
    worker, _ = backfilled
    result = subprocess.run(
        [sys.executable, "-m", "streams", "worker"],
        env=worker.env(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.decode().splitlines() == [
        f"Error: setting ORDERWATCH_WEB_PORT: port {worker.web_port} on 127.0.0.1 is already in "
        "use (another worker?); choose a free port"
    ]


def test_promtool_accepts_the_live_exposition(
    backfilled: tuple[WorkerRun, list[Output]], tmp_path: Path
) -> None:
    import os

    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing in CI (Debian package prometheus)")
        pytest.skip("promtool is not installed (Debian package prometheus)")
    worker, _ = backfilled
    status, body = worker.get("/metrics")
    assert status == 200
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_simulated_month_of_four_stores_gives_every_decision_replay_gives(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """SKU, carrier and store-health decisions too, crossings and re-crossings included.

    17,000 events of four stores: the three input topics of a partition are read at their own
    pace, so an order's events reach the worker in another order than replay reads them; the
    aggregates must still decide the same, in event-time order behind the sources' watermarks.
    """
    lines = [
        json.dumps(event).encode() for event in generate_events(seed=7, orders=3000, merchants=4)
    ]
    expected = decisions(replayed_outputs(lines))
    scopes = {o["scope"] for o in replayed_outputs(lines) if o["type"] == "recommendation.issued"}
    assert scopes == {"order", "sku", "carrier", "merchant"}
    worker = WorkerRun(kafka_bootstrap, tmp_path)
    try:
        worker.start()
        run(produce_lines(kafka_bootstrap, worker.prefix, lines))
        outputs = backfill([worker], lines, expected=expected)
    finally:
        worker.stop()
    assert decisions(outputs) == expected


def test_an_event_dated_2199_is_dead_lettered_and_moves_no_clock(
    kafka_bootstrap: str, tmp_path: Path, replayed: list[Output]
) -> None:
    """The rule replay applies (tests/unit/core/test_event_clock.py), on the worker's partitions."""
    lines = example_lines()
    middle = len(lines) // 2
    stray = next(
        json.loads(line) for line in lines[middle:] if b'"type":"tracking.submitted"' in line
    )
    stray |= {"event_id": "e-from-2199", "occurred_at": "2199-01-01T00:00:00Z"}
    worker = WorkerRun(kafka_bootstrap, tmp_path)
    try:
        worker.start()
        with_stray = [*lines[:middle], json.dumps(stray).encode(), *lines[middle:]]
        run(produce_lines(kafka_bootstrap, worker.prefix, with_stray))
        outputs = backfill([worker], with_stray, until=lines)
    finally:
        worker.stop()
    assert decisions(outputs) == decisions(replayed)
    [from_2199] = [o for o in outputs if "e-from-2199" in o.get("raw", "")]
    assert "days after the latest event" in from_2199["error"]
    assert from_2199["reason"] == "from_the_future"


def test_the_log_is_one_json_object_per_line_with_no_payload_and_no_repeats(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    marker = "payload-7c1e5"
    lines = example_lines()[:40]
    placed = next(json.loads(line) for line in lines if b'"type":"order.placed"' in line)
    marked = [
        json.dumps(placed | {"event_id": "e-marked", "sku": marker}).encode(),
        f'{{"type": "order.placed", "sku": "{marker}"'.encode(),  # cut short: dead-lettered
    ]
    worker = WorkerRun(
        kafka_bootstrap,
        tmp_path,
        clock="wall",
        loglevel="info",
        extra_env={"ORDERWATCH_LOG_FORMAT": "json"},
    )
    try:
        worker.start()
        run(produce_lines(kafka_bootstrap, worker.prefix, [*lines, *marked]))
        wait_for(
            lambda: (
                worker.metric("orderwatch_events_rejected_total") >= 1
                and worker.metric("orderwatch_consumer_lag_messages") == 0
            ),
            timeout=60,
            what="the marked messages processed",
        )
    finally:
        worker.stop()
    text = worker.log_text()
    records = [json.loads(line) for line in text.splitlines()]  # every line is one object
    messages = [record["message"] for record in records]
    assert sum(m.startswith(f"orderwatch {__version__}: app {worker.name}") for m in messages) == 1
    assert sum(m.startswith("ready: ") for m in messages) == 1
    assert messages[-1] == "stopping"
    assert marker not in text
    assert not any("+---" in m for m in messages)  # Faust's tables are for debug only
    assert {record["level"] for record in records} <= {"INFO", "WARNING"}


def test_inputs_with_nothing_unread_hold_no_clock_beyond_the_idle_slack(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """No complaint is ever sent, and no ``advance-clock``: each partition's clock still gets
    within the slack (and the allowed lateness) of its leading input, and every breach due by
    then is decided as replay decides it."""
    lines = [line for line in example_lines() if message_of(line)[0] != "complaints"]
    slack = timedelta(hours=6)
    worker = WorkerRun(kafka_bootstrap, tmp_path, extra_env={"ORDERWATCH_IDLE_SLACK": "PT6H"})
    replayed = {
        o["breach_id"]: _without_clock(o)
        for o in replayed_outputs(lines)
        if o["type"] == "deadline.breached"
    }
    leading: dict[int, datetime] = {}
    for line in lines:
        topic, key = message_of(line)
        if topic in ("orders", "tracking") and key is not None and (at := occurred(line)):
            partition = partition_for(key.decode(), worker.partitions)
            leading[partition] = max(leading.get(partition, EPOCH), _utc(at))
    lateness = load_policy().allowed_lateness
    due = {
        breach_id
        for breach_id, breach in replayed.items()
        if _utc(breach["due_at"])
        <= leading[partition_for(breach["order_id"], worker.partitions)] - slack - lateness
    }
    assert len(due) > 10, "the stream must have breaches due well before its end"
    try:
        worker.start()
        run(produce_lines(kafka_bootstrap, worker.prefix, lines))
        outputs = run(
            consume_outputs(
                worker.bootstrap,
                worker.prefix,
                until=lambda got: due <= {o.get("breach_id") for o in got},
                timeout=90,
            )
        )
    finally:
        worker.stop()
    breaches = {
        o["breach_id"]: _without_clock(o) for o in outputs if o["type"] == "deadline.breached"
    }
    assert due <= breaches.keys()
    for breach_id, breach in breaches.items():
        assert breach == replayed[breach_id]  # nothing decided before its evidence was read


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _without_clock(output: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in output.items() if k != "detected_at" and not k.startswith("_")}


def test_advance_clock_for_a_worker_that_never_ran_is_one_line_and_creates_nothing(
    kafka_bootstrap: str,
) -> None:
    prefix = f"nobody-{uuid.uuid4().hex[:8]}-"
    env = {"PATH": "/usr/bin:/bin", "ORDERWATCH_BROKER": kafka_bootstrap}
    env["ORDERWATCH_TOPIC_PREFIX"] = prefix
    result = subprocess.run(
        [sys.executable, "-m", "streams", "advance-clock", "--until", "2026-03-01T00:00:00Z"],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    [line] = result.stderr.decode().splitlines()
    assert line.startswith(f"Error: no worker with app id 'orderwatch' and topic prefix '{prefix}'")

    async def topics() -> set[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            return set(await admin.list_topics())
        finally:
            await admin.close()

    assert not any(name.startswith(prefix) for name in run(topics()))
