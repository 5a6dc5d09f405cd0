"""Workers in a group, restarts, and interoperability with kcat."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # type: ignore[import-untyped]
from worker_harness import (
    WorkerRun,
    backfill,
    committed_all,
    consume_outputs,
    decisions,
    example_lines,
    kcat_path,
    message_of,
    produce_lines,
    replayed_outputs,
    run,
    wait_for,
    wait_until_shared,
)

from streams.worker import partition_for

pytestmark = pytest.mark.broker


def test_two_workers_in_one_group_decide_what_one_worker_does(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    first = WorkerRun(kafka_bootstrap, tmp_path)
    second = WorkerRun(kafka_bootstrap, tmp_path, name=first.name)
    try:
        first.start()
        second.start()
        wait_until_shared([first, second])
        assert first.metric("orderwatch_assigned_partitions") > 0
        assert second.metric("orderwatch_assigned_partitions") > 0
        lines = example_lines()
        run(produce_lines(kafka_bootstrap, first.prefix, lines))
        outputs = backfill([first, second], lines)
        assert decisions(outputs) == decisions(replayed_outputs())
    finally:
        first.stop()
        second.stop()


@pytest.mark.durable_broker(
    "a restarted worker sometimes decides differently on Tansu, after a SIGKILL every time "
    "(seen here; suspected: Tansu reports short end offsets and Faust's table recovery trusts "
    "them)"
)
@pytest.mark.parametrize("kill", [False, True], ids=["stopped", "killed"])
def test_a_restarted_worker_recovers_its_orders_and_fires_their_deadlines_once(
    kafka_bootstrap: str, tmp_path: Path, kill: bool
) -> None:
    """Stopped gracefully or killed with SIGKILL mid-stream: nothing decided is lost.

    After a kill, at-least-once may repeat an output; it repeats its id, never a new one.
    """
    lines = example_lines()
    half = len(lines) // 2
    worker = WorkerRun(kafka_bootstrap, tmp_path)
    try:
        worker.start()
        run(produce_lines(kafka_bootstrap, worker.prefix, lines[:half]))
        committed_all(worker)
        worker.stop(kill=kill)
        restarted = WorkerRun(kafka_bootstrap, tmp_path, name=worker.name)
        worker = restarted
        worker.start()
        run(produce_lines(kafka_bootstrap, worker.prefix, lines[half:]))
        outputs = backfill([worker], lines[half:], until=lines)
    finally:
        worker.stop()
    assert decisions(outputs) == decisions(replayed_outputs())
    if not kill:
        breaches = [o["breach_id"] for o in outputs if o["type"] == "deadline.breached"]
        assert len(breaches) == len(set(breaches)), "a breach was emitted twice"


def test_a_restarted_worker_reads_partitions_its_group_never_committed(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Complaints produced while the group was down, to partitions it never committed, are read.

    Faust resumes fetching before it seeks, drops what it fetches meanwhile, and seeks only
    partitions committed above offset 0: without
    :class:`streams.worker.faust_fixes.consumer.ResumingConsumer` these complaints were never read,
    after any number of restarts.
    """
    lines = example_lines()
    complaints = [line for line in lines if message_of(line)[0] == "complaints"]
    others = [line for line in lines if message_of(line)[0] != "complaints"]
    worker = WorkerRun(kafka_bootstrap, tmp_path)
    try:
        worker.start()
        run(produce_lines(kafka_bootstrap, worker.prefix, others))
        committed_all(worker)
        worker.stop()
        run(produce_lines(kafka_bootstrap, worker.prefix, complaints))
        worker = WorkerRun(kafka_bootstrap, tmp_path, name=worker.name)
        worker.start()
        committed_all(worker)  # the complaints too: their partitions were read
    finally:
        worker.stop()


@pytest.mark.durable_broker("kcat (librdkafka) fails Tansu's ApiVersions reply")
def test_an_event_produced_with_kcat_is_processed_and_kcat_reads_the_advice(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    kcat = kcat_path()
    worker = WorkerRun(kafka_bootstrap, tmp_path, clock="wall")
    now = datetime.now(UTC)
    # Released 120 h ago less 3 s: the fulfillment deadline falls due while the worker runs,
    # so the wall-clock timer (not the event's arrival) has to fire it.
    released = now - timedelta(hours=120) + timedelta(seconds=3)
    event = {
        "event_id": "kcat-1",
        "type": "order.placed",
        "occurred_at": (released - timedelta(hours=8)).isoformat(),
        "released_at": released.isoformat(),
        "merchant_id": "m-kcat",
        "order_id": "o-kcat-1",
        "sku": "sku-1",
        "quantity": 1,
        "unit_price": "9.99",
        "currency": "USD",
        "destination_country": "US",
    }
    try:
        worker.start()
        subprocess.run(
            [
                kcat,
                "-b",
                kafka_bootstrap,
                "-P",
                "-t",
                f"{worker.prefix}orders",
                "-k",
                "o-kcat-1",
                "-X",
                "topic.partitioner=murmur2_random",
            ],
            input=json.dumps(event).encode(),
            check=True,
            timeout=30,
        )
        found: list[dict[str, Any]] = []

        def fulfillment_overdue() -> bool:
            read = subprocess.run(
                [
                    kcat,
                    "-b",
                    kafka_bootstrap,
                    "-C",
                    "-t",
                    f"{worker.prefix}dispute-recommendations",
                    "-o",
                    "beginning",
                    "-e",
                    "-q",
                    "-f",
                    "%k\t%s\n",
                ],
                capture_output=True,
                timeout=30,
                check=True,
            )
            found[:] = [
                json.loads(line.split(b"\t", 1)[1])
                for line in read.stdout.splitlines()
                if b"\t" in line
            ]
            return any(r["reason"] == "FULFILLMENT_OVERDUE" for r in found)

        wait_for(fulfillment_overdue, 60, "FULFILLMENT_OVERDUE on the recommendations topic")
        # On the wall clock, the processor's clock is the time.
        clock = worker.metric("orderwatch_clock_timestamp_seconds")
        assert abs(clock - datetime.now(UTC).timestamp()) < 30
    finally:
        worker.stop()
    overdue = [r for r in found if r["reason"] == "FULFILLMENT_OVERDUE"]
    assert len(overdue) == 1
    assert overdue[0]["order_id"] == "o-kcat-1"
    detected = datetime.fromisoformat(overdue[0]["issued_at"].replace("Z", "+00:00"))
    assert detected >= released + timedelta(hours=120)


def test_exactly_once_is_refused_at_start_with_one_line_pointing_to_reliability(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """exactly_once decided what at-least-once does with one worker, but fails at once with two
    (RELIABILITY.md, exactly_once): the worker refuses it before it joins the group."""
    worker = WorkerRun(
        kafka_bootstrap,
        tmp_path,
        extra_env={"ORDERWATCH_PROCESSING_GUARANTEE": "exactly_once"},
        supervised=False,
    )
    worker.launch()
    assert worker.process is not None
    try:
        code = worker.process.wait(60)
    finally:
        worker.stop()
    lines = [line for line in worker.log_text().splitlines() if line.strip()]
    assert code == 2, lines
    [line] = lines
    assert "ORDERWATCH_PROCESSING_GUARANTEE=exactly_once is refused" in line
    assert "RELIABILITY.md" in line


def test_events_sent_unkeyed_or_mis_keyed_reach_their_orders_state(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    worker = WorkerRun(kafka_bootstrap, tmp_path, clock="wall")
    now = datetime.now(UTC)
    order_id = "o-miskeyed-1"
    right = partition_for(order_id, worker.partitions)
    wrong = (right + 1) % worker.partitions
    base = {"merchant_id": "m-miskeyed", "order_id": order_id}
    placed = base | {
        "event_id": "mk-1",
        "type": "order.placed",
        "occurred_at": now.isoformat(),
        "sku": "sku-mk",
        "quantity": 1,
        "unit_price": "3",
        "currency": "USD",
        "destination_country": "US",
    }
    tracked = base | {
        "event_id": "mk-2",
        "type": "tracking.submitted",
        "occurred_at": (now + timedelta(seconds=1)).isoformat(),
        "carrier": "YunExpress",
        "tracking_number": "YT-MK-1",
    }
    filed = base | {
        "event_id": "mk-3",
        "type": "complaint.filed",
        "occurred_at": (now + timedelta(seconds=2)).isoformat(),
        "complaint_id": "c-mk-1",
        "reason": "damaged",
        "photos": 1,
    }

    async def send(topic: str, event: dict[str, Any], key: bytes | None, partition: int) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(
                worker.prefix + topic, json.dumps(event).encode(), key=key, partition=partition
            )
        finally:
            await producer.stop()

    try:
        worker.start()
        run(send("orders", placed, None, wrong))  # no key, wrong partition
        run(send("tracking", tracked, b"not-the-order", wrong))  # a wrong key
        committed_all(worker)  # the first two events
        run(send("complaints", filed, order_id.encode(), wrong))  # right key, wrong partition
        found: list[dict[str, Any]] = []

        def advice(got: list[dict[str, Any]]) -> bool:
            found[:] = [o for o in got if o.get("reason") == "COMPLAINT_DAMAGED"]
            return bool(found)

        run(consume_outputs(kafka_bootstrap, worker.prefix, until=advice, timeout=60))
    finally:
        worker.stop()
    assert len(found) == 1
    evidence = found[0]["evidence"]
    # The advice saw the placement and the tracking: all three reached one order state.
    assert evidence["sku"] == "sku-mk"
    assert evidence["tracking_number"] == "YT-MK-1"
    assert found[0]["order_id"] == order_id


def test_the_worker_refuses_to_start_when_a_topic_breaks_co_partitioning(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    worker = WorkerRun(kafka_bootstrap, tmp_path)

    async def create_mismatched() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            await admin.create_topics(
                [NewTopic(f"{worker.prefix}tracking", num_partitions=3, replication_factor=1)]
            )
        finally:
            await admin.close()

    run(create_mismatched())
    started = subprocess.run(
        [sys.executable, "-m", "streams", "worker"],
        env=worker.env(),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert started.returncode != 0
    error = started.stderr.decode().strip().splitlines()
    assert len(error) == 1
    assert f"{worker.prefix}tracking" in error[0]
    assert "3 partitions" in error[0]


def test_a_wall_clock_worker_issues_sku_and_carrier_reviews_as_events_arrive(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Wall-clock mode applies aggregate inputs behind every partition's announced clock: the
    partitions without events announce the time once quiet (ORDERWATCH_QUIET_AFTER, 5 s here).

    Twenty orders of one SKU shipped with one carrier, then three not-as-described complaints
    (a listing review: 3 in 30 days) and one damaged complaint (1 problem in 20 shipments: 5 %,
    a carrier review).
    """

    worker = WorkerRun(
        kafka_bootstrap, tmp_path, clock="wall", extra_env={"ORDERWATCH_QUIET_AFTER": "5"}
    )
    start = datetime.now(UTC) - timedelta(hours=2)
    events: list[dict[str, Any]] = []
    for i in range(20):
        base = {"merchant_id": "m-wall", "order_id": f"o-wall-{i}"}
        events.append(
            base
            | {
                "event_id": f"wp-{i}",
                "type": "order.placed",
                "occurred_at": (start + timedelta(seconds=i)).isoformat(),
                "sku": "sku-wall",
                "quantity": 1,
                "unit_price": "3",
                "currency": "USD",
                "destination_country": "US",
            }
        )
        events.append(
            base
            | {
                "event_id": f"wt-{i}",
                "type": "tracking.submitted",
                "occurred_at": (start + timedelta(minutes=30, seconds=i)).isoformat(),
                "carrier": "YunExpress",
                "tracking_number": f"YT-WALL-{i}",
            }
        )
    for i, reason in enumerate(["not_as_described"] * 3 + ["damaged"]):
        events.append(
            {
                "merchant_id": "m-wall",
                "order_id": f"o-wall-{i}",
                "event_id": f"wc-{i}",
                "type": "complaint.filed",
                "occurred_at": (start + timedelta(hours=1, seconds=i)).isoformat(),
                "complaint_id": f"c-wall-{i}",
                "reason": reason,
                "photos": 1,
            }
        )
    found: dict[str, dict[str, Any]] = {}

    def reviews(got: list[dict[str, Any]]) -> bool:
        for output in got:
            if output.get("scope") in ("sku", "carrier"):
                found[output["reason"]] = output
        return {"LISTING_REVIEW", "CARRIER_REVIEW"} <= found.keys()

    try:
        worker.start()
        run(produce_lines(kafka_bootstrap, worker.prefix, [json.dumps(e).encode() for e in events]))
        run(consume_outputs(kafka_bootstrap, worker.prefix, until=reviews, timeout=60))
    finally:
        worker.stop()
    assert found["LISTING_REVIEW"]["subject"] == "m-wall/sku-wall"
    assert found["LISTING_REVIEW"]["evidence"]["complaints"] == 3
    carrier = found["CARRIER_REVIEW"]
    assert carrier["subject"] == "m-wall/yunexpress"
    assert (carrier["evidence"]["shipments"], carrier["evidence"]["orders_with_problems"]) == (
        20,
        1,
    )
