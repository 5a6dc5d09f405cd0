"""Breach lag of a wall-clock worker: how long after ``due_at`` a breach reaches a consumer.

Run from the repository root against any broker (the embedded one by default)::

    python -m bench.breach_lag [--orders N] [--spread SECONDS] [--broker HOST:PORT]

It starts ``orderwatch worker`` (wall clock) as a separate process, produces ``N`` orders whose
fulfillment deadlines fall due spread over the next ``--spread`` seconds, consumes
``deadline-breaches`` and reports, per breach, ``detected_at - due_at`` (the worker's timer) and
arrival at the consumer minus ``due_at`` (end to end), as percentiles. Results are appended to
``bench/results/breach_lag.md`` with the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # type: ignore[import-untyped]

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))

from worker_harness import WorkerRun  # noqa: E402

from bench.record import record  # noqa: E402
from streams.tools.embedded_broker import EmbeddedBroker  # noqa: E402


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _measure(
    bootstrap: str, prefix: str, orders: int, spread: float
) -> list[tuple[float, float]]:
    now = datetime.now(UTC)
    start = now + timedelta(seconds=5)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    consumer = AIOKafkaConsumer(
        f"{prefix}deadline-breaches", bootstrap_servers=bootstrap, auto_offset_reset="earliest"
    )
    await producer.start()
    await consumer.start()
    try:
        for i in range(orders):
            due = start + timedelta(seconds=spread * i / max(orders - 1, 1))
            released = due - timedelta(hours=120)
            order_id = f"o-lag-{i}"
            event = {
                "event_id": f"lag-{i}",
                "type": "order.placed",
                "occurred_at": (released - timedelta(hours=8)).isoformat(),
                "released_at": released.isoformat(),
                "merchant_id": "m-lag",
                "order_id": order_id,
                "sku": "sku-lag",
                "quantity": 1,
                "unit_price": "5",
                "currency": "USD",
                "destination_country": "US",
            }
            await producer.send(
                f"{prefix}orders", json.dumps(event).encode(), key=order_id.encode()
            )
        await producer.flush()
        lags: list[tuple[float, float]] = []
        deadline = time.monotonic() + spread + 60
        while len(lags) < orders and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            arrived = datetime.now(UTC)
            for records in batch.values():
                for record in records:
                    breach = json.loads(record.value)
                    if breach.get("deadline") != "fulfillment":
                        continue
                    due = datetime.fromisoformat(breach["due_at"].replace("Z", "+00:00"))
                    detected = datetime.fromisoformat(breach["detected_at"].replace("Z", "+00:00"))
                    lags.append(((detected - due).total_seconds(), (arrived - due).total_seconds()))
        return lags
    finally:
        await consumer.stop()
        await producer.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--spread", type=float, default=20.0)
    parser.add_argument("--broker", help="bootstrap servers (default: start the embedded broker)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "breach_lag.md")
    args = parser.parse_args(argv)
    embedded = None if args.broker else EmbeddedBroker()
    bootstrap: str = args.broker if embedded is None else embedded.start().bootstrap
    with tempfile.TemporaryDirectory() as workdir:
        worker = WorkerRun(bootstrap, Path(workdir), clock="wall")
        try:
            worker.start()
            lags = asyncio.run(_measure(bootstrap, worker.prefix, args.orders, args.spread))
        finally:
            worker.stop()
            if embedded is not None:
                embedded.stop()
    if not lags:
        print("no breach arrived", file=sys.stderr)
        return 1
    detected = [d for d, _ in lags]
    arrived = [a for _, a in lags]
    kind = "embedded Tansu" if embedded else f"broker {args.broker}"
    lines = [
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {len(lags)} of {args.orders} breaches, {kind}",
        "",
        f"- command: `python -m bench.breach_lag {shlex.join(argv or sys.argv[1:])}`".replace(
            "  ", " "
        ),
        "- worker: wall clock, default tick interval (ORDERWATCH_TICK_INTERVAL 0.5 s)",
        "",
        "| seconds after due_at | p50 | p95 | p99 | max | mean |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, values in (("detected_at (worker)", detected), ("at the consumer", arrived)):
        lines.append(
            f"| {name} | {_percentile(values, 0.5):.3f} | {_percentile(values, 0.95):.3f} | "
            f"{_percentile(values, 0.99):.3f} | {max(values):.3f} | {statistics.mean(values):.3f} |"
        )
    report = "\n".join(lines) + "\n"
    record(report, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
