"""Worker throughput against a raw aiokafka consume→decode→produce loop on the same broker.

Run from the repository root::

    python -m bench.worker_throughput [--events N] [--broker HOST:PORT] [--partitions P]

Both sides read the same pre-produced stream (``streams.simulator``, keyed as the contract
says) from their own copy of the input topics. The baseline is the simplest useful loop: an
aiokafka consumer group reads the four input topics, validates each value with the contract
models (``decode_event``) and produces one message per input. The worker is ``orderwatch
worker`` (event-time clock) as a separate process; it is timed from ready until its metrics
count every input message. Results go to ``bench/results/worker_throughput.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
import tempfile
import time
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # type: ignore[import-untyped]

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))

from worker_harness import WorkerRun, produce_lines  # noqa: E402

from streams.brokers import EmbeddedBroker, create_topics  # noqa: E402
from streams.core.events import decode_event  # noqa: E402
from streams.simulator import generate_events  # noqa: E402

INPUTS = ("orders", "inventory", "tracking", "complaints")


def _lines(events: int) -> list[bytes]:
    import json

    return [
        json.dumps(event, separators=(",", ":")).encode()
        for event in islice(generate_events(seed=3, orders=events), events)
    ]


async def _raw_loop(bootstrap: str, prefix: str, expected: int) -> float:
    consumer = AIOKafkaConsumer(
        *(prefix + topic for topic in INPUTS),
        bootstrap_servers=bootstrap,
        group_id=f"{prefix}raw",
        auto_offset_reset="earliest",
        enable_auto_commit=True,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        max_poll_records=2000,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await consumer.start()
    await producer.start()
    try:
        seen = 0
        started: float | None = None
        while seen < expected:
            batch = await consumer.getmany(timeout_ms=500, max_records=2000)
            for records in batch.values():
                if started is None:
                    started = time.perf_counter()
                for record in records:
                    decode_event(record.value)
                    await producer.send(prefix + "out", record.value, key=record.key)
                    seen += 1
        await producer.flush()
        assert started is not None
        return time.perf_counter() - started
    finally:
        await producer.stop()
        await consumer.stop()


def _worker_run(worker: WorkerRun, expected: int) -> float:
    try:
        worker.start()
        started = time.perf_counter()
        while True:
            done = worker.metric("orderwatch_events_consumed_total") + worker.metric(
                "orderwatch_events_rejected_total"
            )
            if done >= expected:
                return time.perf_counter() - started
            if time.perf_counter() - started > 900:
                raise SystemExit(f"the worker consumed {done} of {expected} in 900 s")
            time.sleep(0.1)
    finally:
        worker.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--broker", help="bootstrap servers (default: start the embedded broker)")
    parser.add_argument(
        "--out", type=Path, default=REPO / "bench" / "results" / "worker_throughput.md"
    )
    args = parser.parse_args(argv)
    embedded = None if args.broker else EmbeddedBroker().start()
    bootstrap = args.broker or embedded.bootstrap  # type: ignore[union-attr]
    lines = _lines(args.events)
    try:
        with tempfile.TemporaryDirectory() as workdir:
            raw = WorkerRun(bootstrap, Path(workdir), partitions=args.partitions)
            topics = {raw.prefix + t: args.partitions for t in (*INPUTS, "out")}
            asyncio.run(create_topics(bootstrap, topics))
            asyncio.run(produce_lines(bootstrap, raw.prefix, lines))
            raw_seconds = asyncio.run(_raw_loop(bootstrap, raw.prefix, len(lines)))
            worker = WorkerRun(bootstrap, Path(workdir), partitions=args.partitions)
            asyncio.run(
                create_topics(bootstrap, {worker.prefix + t: args.partitions for t in INPUTS})
            )
            asyncio.run(produce_lines(bootstrap, worker.prefix, lines))
            worker_seconds = _worker_run(worker, len(lines))
    finally:
        if embedded is not None:
            embedded.stop()
    raw_rate, worker_rate = len(lines) / raw_seconds, len(lines) / worker_seconds
    kind = "embedded Tansu" if embedded else f"broker {args.broker}"
    report = "\n".join(
        [
            f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {len(lines):,} events, {kind}, "
            f"{args.partitions} partitions",
            "",
            f"- command: `python -m bench.worker_throughput {shlex.join(argv or sys.argv[1:])}`",
            "",
            "| loop | seconds | events/s |",
            "|---|---:|---:|",
            f"| raw aiokafka consume → decode → produce | {raw_seconds:.2f} | {raw_rate:,.0f} |",
            f"| `orderwatch worker` (event time) | {worker_seconds:.2f} | {worker_rate:,.0f} |",
            "",
            f"- worker / raw: {worker_rate / raw_rate:.3f}",
            "",
        ]
    )
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("a", encoding="utf-8") as out:
        out.write(report + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
