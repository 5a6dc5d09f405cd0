"""Smoke check of a running Kafka broker with aiokafka (the client faust-streaming uses).

Usage: python scripts/kafka_smoke.py 127.0.0.1:PORT
       (the address `scripts/kafka.sh start` prints; `scripts/kafka.sh env` prints it too)

Creates a fresh 4-partition topic with AIOKafkaAdminClient, produces 1000 keyed messages (acks=all),
consumes them back in a consumer group with manual commits, commits, checks the committed offsets
against the end offsets, then deletes the topic. Prints each step; exits 1 on any failure.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

PARTITIONS = 4
MESSAGES = 1000
TIMEOUT_S = 120.0


def step(msg: str) -> None:
    print(f"[smoke] {msg}", flush=True)


async def smoke(bootstrap: str) -> None:
    run_id = uuid.uuid4().hex[:10]
    topic = f"orderwatch-smoke-{run_id}"
    group = f"orderwatch-smoke-group-{run_id}"

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="orderwatch-smoke-admin")
    await admin.start()
    try:
        t0 = time.monotonic()
        await admin.create_topics(
            [NewTopic(name=topic, num_partitions=PARTITIONS, replication_factor=1)]
        )
        # Topic creation completes asynchronously on the broker: wait until metadata shows every
        # partition with a leader.
        for _ in range(100):
            described = await admin.describe_topics([topic])
            parts = described[0].get("partitions", []) if described else []
            if (
                described
                and described[0].get("error_code") == 0
                and len(parts) == PARTITIONS
                and all(p.get("leader", -1) >= 0 for p in parts)
            ):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"topic {topic} did not show {PARTITIONS} partitions: {described}")
        step(f"created topic {topic} with {PARTITIONS} partitions in {time.monotonic() - t0:.2f}s")

        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", client_id="orderwatch-smoke-producer"
        )
        await producer.start()
        per_partition: dict[int, int] = {}
        try:
            t0 = time.monotonic()
            futures = [
                await producer.send(
                    topic, key=f"order-{i % 37}".encode(), value=f"message-{i}".encode()
                )
                for i in range(MESSAGES)
            ]
            for metadata in await asyncio.gather(*futures):
                per_partition[metadata.partition] = per_partition.get(metadata.partition, 0) + 1
        finally:
            await producer.stop()
        step(
            f"produced {MESSAGES} messages in {time.monotonic() - t0:.2f}s, "
            f"per partition {dict(sorted(per_partition.items()))}"
        )
        if len(per_partition) < 2:
            raise AssertionError(f"keys did not spread over partitions: {per_partition}")

        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=group,
            client_id="orderwatch-smoke-consumer",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            t0 = time.monotonic()
            seen: set[bytes] = set()
            received = 0
            while received < MESSAGES:
                batches = await consumer.getmany(timeout_ms=1000, max_records=500)
                for records in batches.values():
                    for record in records:
                        received += 1
                        assert record.value is not None
                        seen.add(record.value)
                if time.monotonic() - t0 > TIMEOUT_S / 2:
                    raise AssertionError(f"consumed only {received}/{MESSAGES} messages")
            expected = {f"message-{i}".encode() for i in range(MESSAGES)}
            if received != MESSAGES or seen != expected:
                raise AssertionError(
                    f"consumed {received} records, {len(seen)} distinct, "
                    f"{len(expected - seen)} missing"
                )
            step(
                f"consumed {received} messages in group {group} "
                f"in {time.monotonic() - t0:.2f}s (assignment {sorted(consumer.assignment())})"
            )

            await consumer.commit()
            tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
            end = await consumer.end_offsets(tps)
            committed = {tp.partition: await consumer.committed(tp) for tp in tps}
            for tp in tps:
                if committed[tp.partition] != end[tp]:
                    raise AssertionError(f"committed {committed} != end offsets {end}")
            step(f"committed offsets {committed}, total {sum(v or 0 for v in committed.values())}")
        finally:
            await consumer.stop()

        await admin.delete_topics([topic])
        step(f"deleted topic {topic}")
    finally:
        await admin.close()


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: kafka_smoke.py HOST:PORT", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    try:
        asyncio.run(asyncio.wait_for(smoke(argv[1]), TIMEOUT_S))
    except Exception as exc:
        print(f"[smoke] FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    step(f"OK against {argv[1]} in {time.monotonic() - t0:.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
