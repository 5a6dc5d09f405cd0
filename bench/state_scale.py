"""State at scale: what N open orders cost a worker, per table store.

Run from the repository root, against a running broker::

    python -m bench.state_scale --broker HOST:PORT [--orders 16000,1000000]
        [--stores rocksdb://,memory://] [--partitions 8]

For each store and each N, on a new app id (its own topics):

1. the worker starts once on the empty topics (it creates them) and stops;
2. N open orders' states are written straight to the ``orders`` changelog, each on its key's
   partition, stamped as the worker stamps them: the state the core keeps for an
   ``order.placed`` placed now (due in days: nothing fires), as ``replay`` would build it;
3. **cold start**: a worker starts on an empty data directory and restores them; timed from
   launch until ``/ready`` answers 200 with the N orders counted in ``orderwatch_open_orders``;
4. **kill -9**, then a restart on the same data directory, timed the same way;
5. **failover** (``--failover``): two workers (standby replicas: the default of one); once both
   are ready and have read their standbys, one is SIGKILLed; timed from the kill until the
   survivor owns every partition and is ready (the session timeout, 6 s by default, is in it).

It reports the bytes per order (key and value as written), the largest record, the workers'
RSS once ready, the times, the rate at which the cold start read its changelog (records/s,
from the worker's log), and the longest rebuild of the deadline index the worker logged (it runs
on the event loop; the group's heartbeats do not: Faust's consumer has a thread of its own).
Results go to ``bench/results/state_scale.md``. ``--profile DIR`` samples each cold start with
py-spy (collapsed stacks, for ``bench.profile_summary``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shlex
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]

from bench.record import record
from bench.worker_throughput import REPO, Profiler, machine

sys.path.insert(0, str(REPO / "tests" / "integration"))

from worker_harness import WorkerRun

from streams.core import state_codec
from streams.core.engine import Engine
from streams.core.events import decode_event
from streams.core.outputs import Rejection
from streams.kafka.topics import changelog_topic
from streams.policy_files import load_policy
from streams.settings import load_settings
from streams.worker import partition_for
from streams.worker.admission import fingerprint
from streams.worker.stores import DueIndex
from streams.worker.tables import INDEX_HEADER, STAMP_HEADER, pack_stamp

MERCHANTS = 200
SKUS = 5_000
#: States built per engine: a fresh one keeps the bench's own memory flat.
ENGINE_ORDERS = 10_000
#: The stamp of the loaded records: generation 0, older than any the worker writes.
LOAD_GENERATION = 0


@dataclass
class Result:
    store: str
    orders: int
    bytes_per_order: float = 0.0
    largest_record: int = 0
    load_seconds: float = 0.0
    cold_ready: float = 0.0
    warm_ready: float = 0.0
    rss_mb: float = 0.0
    restore_rate: float | None = None  # records/s of the cold start's bulk read
    rebuild_seconds: float = 0.0  # the longest rebuild of the deadline index logged
    failover: float | None = None
    notes: list[str] = field(default_factory=list)


def open_order_states(orders: int, now: datetime) -> Iterator[tuple[str, bytes, bytes]]:
    """(order id, encoded state, due index) of ``orders`` open orders, built by the core from
    their ``order.placed`` events (placed in the last hour, released now); the index is the
    next due time the worker stores beside each state (:class:`DueIndex`)."""
    policy = load_policy()
    digest = fingerprint(load_settings(), policy).policy_digest[:8]
    due = DueIndex(policy, bytes.fromhex(digest))
    engine = Engine(policy)
    for number in range(orders):
        if number and number % ENGINE_ORDERS == 0:
            engine = Engine(policy)
        order_id = f"o-{number:07d}"
        placed = {
            "event_id": f"e-{number:07d}-placed",
            "type": "order.placed",
            "occurred_at": (now - timedelta(minutes=number % 60)).isoformat(),
            "merchant_id": f"m-{number % MERCHANTS:03d}",
            "order_id": order_id,
            "sku": f"sku-{number % SKUS:05d}",
            "quantity": 1,
            "unit_price": "12.50",
            "shipping_price": "2.00",
            "currency": "USD",
            "destination_country": "US",
            "released_at": now.isoformat(),
        }
        event = decode_event(json.dumps(placed).encode())
        if isinstance(event, Rejection):
            raise SystemExit(f"the benchmark's event was rejected: {event.error}")
        engine.process(event)
        state = engine.orders.pop(order_id)
        yield order_id, state_codec.encode_order(state), due.index(state)


async def load(
    bootstrap: str, topic: str, partitions: int, states: Iterator[tuple[str, bytes, bytes]]
) -> tuple[int, int, int]:
    """Write ``states`` to the changelog ``topic``; (records, bytes, largest record)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=50, max_batch_size=1 << 20, acks="all"
    )
    await producer.start()
    records = total = largest = 0
    stamp = (STAMP_HEADER, pack_stamp((LOAD_GENERATION, 0)))
    try:
        pending = []
        for order_id, value, index in states:
            key = order_id.encode()
            pending.append(
                await producer.send(
                    topic, value, key=key, partition=partition_for(order_id, partitions),
                    headers=[stamp, (INDEX_HEADER, index)],
                )
            )  # fmt: skip
            records += 1
            total += len(key) + len(value)
            largest = max(largest, len(key) + len(value))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending = []
                print(f"  loaded {records:,} orders", file=sys.stderr, flush=True)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return records, total, largest


def rss_mb(worker: WorkerRun) -> float:
    assert worker.process is not None
    status = Path(f"/proc/{worker.process.pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def timed_ready(
    worker: WorkerRun, orders: int, timeout: float, profile: Path | None = None
) -> float:
    """Launch ``worker``; seconds until it is ready with every order restored. With ``profile``
    the worker is sampled by py-spy from launch until then (its attaching adds about 1 s)."""
    started = time.perf_counter()
    worker.start(timeout=None)
    profiler = Profiler(worker.process.pid, profile) if profile and worker.process else None
    worker.wait_ready(timeout)
    wait_for_orders([worker], orders, started + timeout)
    elapsed = time.perf_counter() - started
    if profiler is not None:
        profiler.stop()
    return elapsed


#: The worker's line on a bulk read of the active changelogs
#: (streams/worker/faust_fixes/restore.py).
READ_LINE = re.compile(
    r"recovery: read (\d+) active changelog records of \d+ partitions in ([\d.]+) s"
)


def restore_rate(log: str) -> float | None:
    """Records/s of the active changelogs' bulk reads in a worker's log (None: none logged)."""
    reads = [(int(records), float(seconds)) for records, seconds in READ_LINE.findall(log)]
    records = sum(r for r, _ in reads)
    seconds = sum(s for _, s in reads)
    return records / seconds if records and seconds else None


#: The worker's line once its processors are rebuilt (streams/worker/app.py).
REBUILD_LINE = re.compile(r"ready: \d+ partitions, \d+ open orders \(rebuilt in ([\d.]+) s\)")


def longest_rebuild(log: str) -> float:
    """The longest rebuild of the processors (the deadline index) in a worker's log."""
    return max((float(seconds) for seconds in REBUILD_LINE.findall(log)), default=0.0)


def wait_for_orders(workers: list[WorkerRun], orders: int, deadline: float) -> None:
    counted = 0.0
    while time.perf_counter() < deadline:
        counted = sum(w.metric("orderwatch_open_orders") for w in workers)
        if counted >= orders:
            return
        time.sleep(0.1)
    raise SystemExit(
        f"the workers counted {counted:.0f} open orders of {orders} in time; the last log:\n"
        + workers[-1].log_text()[-3000:]
    )


def run(
    bootstrap: str,
    store: str,
    orders: int,
    partitions: int,
    failover: bool,
    profile: Path | None = None,
) -> Result:
    result = Result(store, orders)
    timeout = 120 + orders / 500  # generous: a cold restore of memory:// is slow
    started: list[WorkerRun] = []
    with tempfile.TemporaryDirectory(prefix="orderwatch-state-") as tmp:
        work = Path(tmp)
        env = {"ORDERWATCH_STORE": store, "ORDERWATCH_PARTITIONS": str(partitions)}
        name = f"st{os.getpid()}{orders}{store[:1]}"

        def worker(data: str) -> WorkerRun:
            """A worker of the app ``name`` whose local state is ``work/data``."""
            extra = {**env, "ORDERWATCH_DATA_DIR": str(work / data)}
            run = WorkerRun(
                bootstrap, work, partitions=partitions, name=name, extra_env=extra, loglevel="info"
            )
            started.append(run)
            return run

        try:
            first = worker("setup")
            first.start(timeout=120)
            first.stop()
            settings = load_settings(broker=bootstrap, app_id=name, topic_prefix=first.prefix)
            topic = changelog_topic(settings, "orders")
            began = time.perf_counter()
            states = open_order_states(orders, datetime.now(UTC))
            records, total, largest = asyncio.run(load(bootstrap, topic, partitions, states))
            result.load_seconds = time.perf_counter() - began
            result.bytes_per_order = total / records
            result.largest_record = largest

            cold = worker("a")
            sample = profile / f"cold-{store[:-3]}-{orders}.pyspy.txt" if profile else None
            result.cold_ready = timed_ready(cold, orders, timeout, sample)
            result.rss_mb = rss_mb(cold)
            result.restore_rate = restore_rate(cold.log_text())
            result.rebuild_seconds = longest_rebuild(cold.log_text())
            cold.stop(kill=True)
            warm = worker("a")
            result.warm_ready = timed_ready(warm, orders, timeout)
            result.rebuild_seconds = max(result.rebuild_seconds, longest_rebuild(warm.log_text()))
            if failover:
                result.failover = time_failover(warm, worker("b"), orders, partitions, timeout)
        finally:
            for run in started:
                run.stop(kill=True)
    return result


def time_failover(
    owner: WorkerRun, standby: WorkerRun, orders: int, partitions: int, timeout: float
) -> float:
    """Seconds from ``owner``'s SIGKILL until ``standby`` owns every partition, ready."""
    standby.start(timeout=timeout)
    time.sleep(30)  # the group rebalanced; the standby partitions are read meanwhile
    killed = time.perf_counter()
    owner.stop(kill=True)
    deadline = killed + timeout
    while time.perf_counter() < deadline:
        if standby.metric("orderwatch_assigned_partitions") == partitions:
            standby.wait_ready(timeout)
            wait_for_orders([standby], orders, deadline)
            return time.perf_counter() - killed
        time.sleep(0.1)
    raise SystemExit("the survivor never took every partition")


def row(result: Result) -> str:
    failover = "–" if result.failover is None else f"{result.failover:.1f} s"
    rate = "–" if result.restore_rate is None else f"{result.restore_rate:,.0f}/s"
    return (
        f"| `{result.store}` | {result.orders:,} | {result.bytes_per_order:,.0f} | "
        f"{result.largest_record:,} | {result.load_seconds:.0f} s | {result.cold_ready:.1f} s | "
        f"{rate} | {result.rebuild_seconds:.1f} s | "
        f"{result.warm_ready:.1f} s | {failover} | {result.rss_mb:,.0f} MB |"
    )


def report(results: list[Result], command: str) -> str:
    lines = [
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"- command: `{command}`",
        f"- machine: {machine()}",
        "- one worker (wall clock, the defaults), open orders placed within the hour before "
        "the load; ready = `/ready` 200 and every order counted in `orderwatch_open_orders`",
        "",
        "| store | open orders | bytes per order | largest record | load | cold start "
        "| its changelog read | longest rebuild | restart after kill -9 | failover (standby) "
        "| RSS once ready |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *[row(r) for r in results],
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", required=True, help="bootstrap servers of a running broker")
    parser.add_argument("--orders", default="16000", help="comma-separated counts")
    parser.add_argument("--stores", default="rocksdb://,memory://")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--failover", action="store_true", help="also time a standby failover")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "state_scale.md")
    parser.add_argument(
        "--profile", type=Path, help="sample each cold start with py-spy into this directory"
    )
    args = parser.parse_args(argv)
    results = []
    for store in args.stores.split(","):
        for orders in (int(n) for n in args.orders.split(",")):
            print(f"{store} with {orders:,} open orders", file=sys.stderr, flush=True)
            result = run(args.broker, store, orders, args.partitions, args.failover, args.profile)
            print(row(result), file=sys.stderr, flush=True)
            results.append(result)
    command = "python -m bench.state_scale " + shlex.join(
        argv if argv is not None else sys.argv[1:]
    )
    record(report(results, command), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
