"""Real clusters' configurations on a real broker: compressed producers, retention that deletes
unread input, pre-created changelogs that are not compacted, and the topics' own retention."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import (  # type: ignore[import-untyped]
    AIOKafkaConsumer,
    AIOKafkaProducer,
    TopicPartition,
)
from aiokafka.admin import (  # type: ignore[import-untyped]
    AIOKafkaAdminClient,
    NewTopic,
    RecordsToDelete,
)
from aiokafka.admin.config_resource import (  # type: ignore[import-untyped]
    ConfigResource,
    ConfigResourceType,
)
from aiokafka.consumer import fetcher  # type: ignore[import-untyped]
from faults import compare, last_occurred
from worker_harness import (
    INPUT_TOPICS,
    OUTPUT_TOPICS,
    Output,
    WorkerRun,
    committed_all,
    consume_outputs,
    decisions,
    example_lines,
    kcat_path,
    message_of,
    partitions_of,
    produce_lines,
    replayed_outputs,
    run,
)

from streams.worker.failures import EXIT_KAFKA_UNAVAILABLE

pytestmark = pytest.mark.broker

CODECS = ("gzip", "snappy", "lz4", "zstd")
#: A record batch's codec, from the three low bits of its attributes.
CODEC_OF_ATTRIBUTE = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
DAY_MS = 24 * 3600 * 1000
MURMUR2 = ("-X", "topic.partitioner=murmur2_random")


# ---- compressed producers ------------------------------------------------------------------------


def chunks(lines: list[bytes], count: int) -> list[list[bytes]]:
    """``lines`` cut into ``count`` consecutive parts."""
    size = -(-len(lines) // count)
    return [lines[i : i + size] for i in range(0, len(lines), size)]


def kcat_produce(kcat: str, bootstrap: str, topic: str, lines: Iterable[bytes], codec: str) -> None:
    """Produce ``lines`` to ``topic`` with kcat (librdkafka, as Java-like clients do), keyed as
    ``orderwatch send`` keys them and compressed with ``codec``."""
    keyed = []
    for line in lines:
        _, key = message_of(line)
        assert b"\t" not in line
        # kcat sends a line without the delimiter with no key.
        keyed.append(line if key is None else key + b"\t" + line)
    subprocess.run(
        [kcat, "-b", bootstrap, "-P", "-t", topic, "-K", "\t", "-z", codec, *MURMUR2],
        input=b"\n".join(keyed) + b"\n",
        check=True,
        timeout=60,
    )


async def batch_codecs(bootstrap: str, topics: Iterable[str]) -> dict[str, set[str]]:
    """The codecs of the record batches the broker stores for ``topics``, read to their ends.

    aiokafka's consumer does not show a batch's codec, so the batches it unpacks are looked at
    on their way in (this test's own consumer; the broker is the real one)."""
    seen: dict[str, set[str]] = {}
    original = fetcher.PartitionRecords.__init__

    class Looked:
        def __init__(self, tp: TopicPartition, records: Any) -> None:
            self.tp, self.records = tp, records

        def has_next(self) -> bool:
            return bool(self.records.has_next())

        def next_batch(self) -> Any:
            batch = self.records.next_batch()
            if batch is not None:
                codec = CODEC_OF_ATTRIBUTE[batch.compression_type]
                seen.setdefault(self.tp.topic, set()).add(codec)
            return batch

    def looking(self: Any, tp: TopicPartition, records: Any, *args: Any, **kwargs: Any) -> None:
        original(self, tp, Looked(tp, records), *args, **kwargs)

    fetcher.PartitionRecords.__init__ = looking
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        await consumer.start()
        parts = [
            TopicPartition(topic, p)
            for topic in topics
            for p in await partitions_of(bootstrap, topic)
        ]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        remaining = {tp for tp, end in ends.items() if end > 0}
        deadline = asyncio.get_running_loop().time() + 60
        while remaining and asyncio.get_running_loop().time() < deadline:
            await consumer.getmany(timeout_ms=500)
            remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
        assert not remaining, f"could not read {sorted(remaining)} to its end"
    finally:
        await consumer.stop()
        fetcher.PartitionRecords.__init__ = original
    return seen


def finish_backfill(
    worker: WorkerRun, bootstrap: str, lines: list[bytes]
) -> tuple[list[Output], list[Output]]:
    """Once ``worker`` committed every input, advance its clock to the last event and read its
    outputs until they hold every decision replay makes; (replay's outputs, the worker's)."""
    committed_all(worker)
    until = last_occurred(lines)
    worker.advance_clock(until.isoformat())
    expected = replayed_outputs(lines, until)
    outputs = run(
        consume_outputs(
            bootstrap,
            worker.prefix,
            until=lambda got: decisions(expected) <= decisions(got),
            timeout=90,
        )
    )
    assert worker.restarts == 0, worker.log_text()[-3000:]
    return expected, outputs


@pytest.fixture(scope="module")
def compressed(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[WorkerRun, list[Output]]]:
    """An event-time worker that compresses with zstd, fed the example stream by kcat: its
    four quarters compressed with gzip, snappy, lz4 and zstd.

    kcat writes one topic at a time, so within a quarter one input runs ahead of the others:
    the idle slack is made longer than the stream, so that no input's clock is lifted past
    events still being produced (that rule has tests of its own)."""
    kcat = kcat_path()
    worker = WorkerRun(
        kafka_bootstrap,
        tmp_path_factory.mktemp("compressed"),
        extra_env={"ORDERWATCH_PRODUCER_COMPRESSION": "zstd", "ORDERWATCH_IDLE_SLACK": "P3650D"},
    )
    lines = example_lines()
    try:
        worker.start()
        for part, codec in zip(chunks(lines, len(CODECS)), CODECS, strict=True):
            for topic in INPUT_TOPICS:
                mine = [line for line in part if message_of(line)[0] == topic]
                if mine:
                    kcat_produce(kcat, kafka_bootstrap, worker.prefix + topic, mine, codec)
        _, outputs = finish_backfill(worker, kafka_bootstrap, lines)
        yield worker, outputs
    finally:
        worker.stop()


@pytest.mark.durable_broker("kcat (librdkafka) fails Tansu's ApiVersions reply")
def test_input_compressed_with_each_codec_is_read_and_decided_as_replay_decides(
    compressed: tuple[WorkerRun, list[Output]], kafka_bootstrap: str
) -> None:
    worker, outputs = compressed
    lines = example_lines()
    comparison = compare(replayed_outputs(lines, last_occurred(lines)), outputs)
    assert comparison.clean, "\n".join([comparison.line(), *comparison.examples])
    assert comparison.expected > 50
    # The input really was compressed, each quarter with its codec.
    codecs = run(batch_codecs(kafka_bootstrap, [worker.prefix + t for t in INPUT_TOPICS]))
    # (librdkafka sends a batch uncompressed when compressing does not make it smaller.)
    assert set(CODECS) <= set().union(*codecs.values())
    assert set(CODECS) <= codecs[worker.prefix + "tracking"]


@pytest.mark.durable_broker("kcat (librdkafka) fails Tansu's ApiVersions reply")
def test_the_worker_compresses_what_it_produces_when_told_to(
    compressed: tuple[WorkerRun, list[Output]], kafka_bootstrap: str
) -> None:
    worker, outputs = compressed
    assert outputs
    names = [worker.prefix + topic for topic in OUTPUT_TOPICS]
    names.append(f"{worker.prefix}{worker.name}-orders-changelog")
    codecs = run(batch_codecs(kafka_bootstrap, names))
    assert codecs.keys() == set(names)
    assert all(found == {"zstd"} for found in codecs.values()), codecs


# ---- retention overtaking the committed offset ---------------------------------------------------


async def produce_placed(
    bootstrap: str, prefix: str, lines: list[bytes]
) -> list[tuple[bytes, TopicPartition, int]]:
    """Produce ``lines`` in order as ``orderwatch send`` routes them; where each one landed."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        sent = []
        for line in lines:
            topic, key = message_of(line)
            sent.append(await producer.send(prefix + topic, line, key=key))
        records = await asyncio.gather(*sent)
    finally:
        await producer.stop()
    return [
        (line, TopicPartition(r.topic, r.partition), r.offset)
        for line, r in zip(lines, records, strict=True)
    ]


async def committed_offsets(
    bootstrap: str, group: str, parts: list[TopicPartition]
) -> dict[TopicPartition, int | None]:
    """The group's committed offset of each of ``parts`` (None: none committed)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        return {tp: await consumer.committed(tp) for tp in parts}
    finally:
        await consumer.stop()


async def delete_before(
    bootstrap: str, cuts: dict[TopicPartition, int]
) -> dict[TopicPartition, int]:
    """Delete each partition's records before its cut (DeleteRecords); each one's new log
    start."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        starts: dict[TopicPartition, int] = await admin.delete_records(
            {tp: RecordsToDelete(before_offset=offset) for tp, offset in cuts.items()}
        )
    finally:
        await admin.close()
    return starts


@pytest.mark.durable_broker("needs DeleteRecords and a worker restart on the same log")
@pytest.mark.parametrize("pause", ["restarted", "frozen"])
def test_a_worker_whose_offsets_retention_overtook_goes_on_from_the_logs_start(
    kafka_bootstrap: str, tmp_path: Path, pause: str
) -> None:
    """A worker has read and committed everything; then it pauses: stopped and ``restarted``
    later, or ``frozen`` (SIGSTOP, within its session timeout, so it keeps its partitions and
    its read position). Meanwhile more events arrive and the older half of them on each
    tracking partition is deleted (as retention deletes). Once back, the worker goes on from
    each log's start: it decides what replay of the surviving events decides, counts the
    deleted messages in ``orderwatch_offsets_expired_total``, logs each partition's loss once,
    and never stops (before, the offset guard exited 75 on every restart)."""
    lines = example_lines()
    third = len(lines) // 3
    before, during, after = lines[:third], lines[third : 2 * third], lines[2 * third :]
    frozen = pause == "frozen"
    worker = WorkerRun(
        kafka_bootstrap,
        tmp_path,
        extra_env={"ORDERWATCH_SESSION_TIMEOUT": "60"} if frozen else {},
    )
    tracking = f"{worker.prefix}tracking"
    try:
        worker.start()
        run(produce_lines(kafka_bootstrap, worker.prefix, before))
        committed_all(worker)
        if frozen:
            assert worker.process is not None
            os.kill(worker.process.pid, signal.SIGSTOP)
            time.sleep(2)  # a fetch waiting at the broker when it froze is answered, empty
        else:
            worker.stop()
        placed = run(produce_placed(kafka_bootstrap, worker.prefix, during))
        parts = sorted({tp for _, tp, _ in placed if tp.topic == tracking})
        committed = run(committed_offsets(kafka_bootstrap, worker.name, parts))
        # Half of what each tracking partition received meanwhile is deleted.
        first: dict[TopicPartition, int] = {}  # each one's first offset of the meantime
        cuts: dict[TopicPartition, int] = {}
        for tp in parts:
            offsets = sorted(offset for _, at, offset in placed if at == tp)
            first[tp] = offsets[0]
            assert committed[tp] == first[tp], "the worker had committed all it read"
            cuts[tp] = offsets[len(offsets) // 2]
        starts = run(delete_before(kafka_bootstrap, cuts))
        assert starts == cuts
        # By position: the example repeats some events on purpose.
        deleted = {
            i for i, (_, tp, offset) in enumerate(placed) if tp in cuts and offset < cuts[tp]
        }
        assert len(deleted) == sum(cuts[tp] - first[tp] for tp in parts) > 10
        if frozen:
            assert worker.process is not None
            os.kill(worker.process.pid, signal.SIGCONT)
            run(produce_lines(kafka_bootstrap, worker.prefix, after))
        else:
            # Produced before the restart: messages arriving while partitions are assigned may
            # be dropped by Faust, which stops the worker (exit 75; the offset guard's other
            # case), and this test counts the worker's restarts.
            run(produce_lines(kafka_bootstrap, worker.prefix, after))
            worker = WorkerRun(kafka_bootstrap, tmp_path, name=worker.name)
            worker.start()
        survivors = [*before, *(line for i, line in enumerate(during) if i not in deleted), *after]
        expected, outputs = finish_backfill(worker, kafka_bootstrap, survivors)
        assert worker.process is not None
        assert worker.process.poll() is None, "the worker stopped"
        expired = worker.metric("orderwatch_offsets_expired_total", topic=tracking)
        other_topics = worker.metric("orderwatch_offsets_expired_total") - expired
        log = worker.log_text()
    finally:
        if worker.process is not None and worker.process.poll() is None:
            os.kill(worker.process.pid, signal.SIGCONT)
        worker.stop()
    comparison = compare(expected, outputs)
    assert comparison.clean, "\n".join([comparison.line(), *comparison.examples])
    # What the deleted events would have decided is not there: the comparison means something.
    assert decisions(expected) != decisions(replayed_outputs(lines, last_occurred(lines)))
    assert expired == len(deleted)
    assert other_topics == 0
    losses = [line for line in log.splitlines() if "retention deleted" in line]
    assert len(losses) == len(parts), losses
    for tp in parts:
        assert sum(f"{tp.topic}[{tp.partition}]" in line for line in losses) == 1


# ---- topics: their retention, and changelogs that must be compacted ------------------------------


async def topic_settings(bootstrap: str, names: list[str]) -> dict[str, dict[str, str]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        answers = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        )
    finally:
        await admin.close()
    found: dict[str, dict[str, str]] = {}
    for answer in answers:
        for error, _, _, name, entries in answer.resources:
            assert error == 0, name
            found[name] = {entry[0]: entry[1] for entry in entries}
    return found


@pytest.mark.durable_broker("reads topic configurations (DescribeConfigs)")
def test_the_topics_orderwatch_creates_carry_their_retention(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    from streams.kafka.topics import ensure_topics, required_topics
    from streams.settings import load_settings

    prefix = f"retention-{uuid.uuid4().hex[:8]}-"
    settings = load_settings(
        broker=kafka_bootstrap,
        topic_prefix=prefix,
        app_id="ow",
        partitions=2,
        input_retention="P3D",
        output_retention="P45D",
    )
    created = run(ensure_topics(settings))
    assert sorted(created) == sorted(required_topics(settings))
    configs = run(topic_settings(kafka_bootstrap, created))
    for name in ("orders", "inventory", "tracking", "complaints"):
        assert configs[prefix + name]["retention.ms"] == str(3 * DAY_MS)
        assert configs[prefix + name]["cleanup.policy"] == "delete"
    for name in ("ow-order-events", "ow-clock", "ow-aggregate-inputs"):
        assert configs[prefix + name]["retention.ms"] == str(3 * DAY_MS)
    for name in ("deadline-breaches", "dispute-recommendations", "dead-letter"):
        assert configs[prefix + name]["retention.ms"] == str(45 * DAY_MS)
    for table in ("orders", "clocks", "skus", "carriers", "merchants", "ledgers", "inbox"):
        assert configs[f"{prefix}ow-{table}-changelog"]["cleanup.policy"] == "compact"


@pytest.mark.durable_broker("reads topic configurations (DescribeConfigs)")
@pytest.mark.parametrize("policy", ["delete", "compact,delete"])
def test_a_changelog_topic_that_deletes_by_age_stops_the_worker_with_one_line(
    kafka_bootstrap: str, tmp_path: Path, policy: str
) -> None:
    worker = WorkerRun(kafka_bootstrap, tmp_path)
    changelog = f"{worker.prefix}{worker.name}-orders-changelog"

    async def create() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            await admin.create_topics(
                [
                    NewTopic(
                        changelog,
                        num_partitions=worker.partitions,
                        replication_factor=1,
                        topic_configs={"cleanup.policy": policy},
                    )
                ]
            )
        finally:
            await admin.close()

    run(create())

    def start(**env: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "streams", "worker"],
            env={**worker.env(), **env},
            capture_output=True,
            timeout=120,
            check=False,
        )

    refused = start()
    # The exit code of a bad configuration: what a bad setting exits with, never the
    # transient failure a supervisor restarts.
    bad_setting = start(ORDERWATCH_PARTITIONS="0")
    assert refused.returncode == bad_setting.returncode
    assert refused.returncode not in (0, EXIT_KAFKA_UNAVAILABLE)
    assert refused.stderr.decode().splitlines() == [
        f"Error: changelog topic {changelog!r} has cleanup.policy={policy}: a table's "
        "changelog must be compacted, or the worker loses state older than the topic's "
        "retention; set cleanup.policy=compact on it (kafka-configs.sh --alter --entity-type "
        f"topics --entity-name {changelog} --add-config cleanup.policy=compact)"
    ]

    # Nothing else was created: the check comes before any topic is.
    async def topics() -> set[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            return {name for name in await admin.list_topics() if name.startswith(worker.prefix)}
        finally:
            await admin.close()

    assert run(topics()) == {changelog}
