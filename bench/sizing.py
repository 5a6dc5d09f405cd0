"""Sizing orderwatch for N orders a day, from the simulator and from measured worker numbers.

Run from the repository root::

    python -m bench.sizing --rate EV_S --cpu-ms MS --worker-orders N --ready-s S --rss-mb MB
        --restore-rate RECORDS_S [--peak 3] [--machine-cores 8] [--orders 5000] [--out FILE]

What it measures itself, on the simulator's seed-3 stream of ``--orders`` orders run to the end
of every lifecycle (``orderwatch replay``'s engine, no broker):

- events per order, by type, and how many of them are order-topic events (``orders``,
  ``tracking``, ``complaints``) against ``inventory`` ones;
- the lifecycle: days from an order's ``order.placed`` to its last event; an order's state is
  kept until ``engine.state_ttl`` (the policy's, 90 days) after its last event, so by Little's
  law the open orders in a steady state are orders/day × (lifecycle + TTL);
- the bytes of an order's state (``core.state_codec.encode_order``, plus its key) once its lifecycle
  is over, the size it keeps for the TTL;
- the busiest hour of placements against the average hour (the simulator's daily rhythm).

What it takes from the benchmarks (give the numbers measured there): from ``bench.scaling``,
``--rate``, the events/s of one worker, and ``--cpu-ms``, a worker's CPU milliseconds per event
(what one core allows: 1000 / cpu-ms events/s); from ``bench.state_scale``, ``--worker-orders``,
the orders one worker held in its largest run, with ``--ready-s`` (its restart after ``kill -9``)
and ``--rss-mb`` (its memory) there, and ``--restore-rate``, the changelog records a cold start
read per second. A worker is given at most ``--worker-orders`` orders: what was measured, not an
extrapolation. ``--peak`` (the peak-to-average factor) and ``--machine-cores`` (cores of the
machines to run on, one left to the system) are assumptions.

It prints a markdown entry (inputs, the arithmetic, a table for 10 k, 100 k, 1 M and 10 M orders a
day) and appends it to ``bench/results/sizing.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.record import record
from streams.core import state_codec
from streams.core.engine import Engine
from streams.core.events import InventoryUpdated, decode_event
from streams.core.outputs import Rejection
from streams.policy_files import load_policy
from streams.tools.simulator import generate_events

REPO = Path(__file__).resolve().parent.parent
DAY = 86_400
ORDERS_PER_DAY = (10_000, 100_000, 1_000_000, 10_000_000)
#: Partitions are fixed at topic creation: size them for this many times the workers needed now.
PARTITION_HEADROOM = 2
#: The worker's default partition count (``ORDERWATCH_PARTITIONS``), the smallest suggested.
MIN_PARTITIONS = 8


@dataclass(frozen=True)
class Stream:
    """What the simulated stream says about one order."""

    orders: int
    events: int
    order_events: int  # on orders, tracking, complaints
    lifecycle_days: float  # mean, placement to last event
    state_bytes: float  # mean key + encoded state, lifecycle over
    hourly_peak: float  # busiest hour of placements / average hour
    ttl_days: float
    by_type: dict[str, int]

    @property
    def events_per_order(self) -> float:
        return self.events / self.orders

    @property
    def open_days(self) -> float:
        """How long an order's state is kept: its lifecycle, then the TTL."""
        return self.lifecycle_days + self.ttl_days


@dataclass(frozen=True)
class Measured:
    """Numbers measured by ``bench.scaling`` and ``bench.state_scale``, and the assumptions."""

    rate: float  # events/s of one worker, as measured
    cpu_ms: float  # worker CPU ms per event
    worker_orders: int  # orders one worker held in the largest state_scale run
    ready_seconds: float  # that worker's restart after kill -9
    rss_bytes: float  # that worker's memory once ready
    restore_rate: float  # changelog records a cold start reads per second
    peak: float  # assumption: peak / average events per second
    machine_cores: int = 8  # assumption: cores per machine, one left to the system

    @property
    def core_rate(self) -> float:
        """Events/s of one worker with a core to itself (a worker is one Python thread)."""
        return 1000 / self.cpu_ms

    @property
    def workers_per_machine(self) -> int:
        return max(1, self.machine_cores - 1)


@dataclass(frozen=True)
class Size:
    """What N orders a day need."""

    orders_per_day: int
    average: float  # events/s
    peak: float  # events/s
    cores: int  # worker processes, one core each, at the CPU per event measured
    workers_measured: int  # worker processes at the rate measured on the shared machine
    workers_for_state: int  # worker processes holding at most the orders measured each
    held_orders: float  # orders whose state is kept: open, or closed within the TTL
    state_bytes: float  # their states on disk (and in the changelog)
    measured: Measured

    @property
    def workers(self) -> int:
        return max(self.cores, self.workers_measured, self.workers_for_state)

    @property
    def partitions(self) -> int:
        return partitions_for(self.workers)

    @property
    def machines(self) -> int:
        return math.ceil(self.workers / self.measured.workers_per_machine)

    @property
    def orders_per_worker(self) -> float:
        return self.held_orders / self.workers

    @property
    def worker_rss_bytes(self) -> float:
        """A worker's memory, in proportion to the orders it holds (measured at the most)."""
        m = self.measured
        return m.rss_bytes * self.orders_per_worker / m.worker_orders

    @property
    def worker_ready_seconds(self) -> float:
        """A worker's restart after kill -9, in proportion to its orders (measured at most)."""
        m = self.measured
        return m.ready_seconds * self.orders_per_worker / m.worker_orders

    @property
    def partition_read_seconds(self) -> float:
        """One partition's orders read from its changelog: a partition that moves to a worker
        with no copy of it (no standby, a lost disk)."""
        return self.held_orders / self.partitions / self.measured.restore_rate


def partitions_for(workers: int) -> int:
    """The power of two at least :data:`PARTITION_HEADROOM` × ``workers``, at least 8."""
    want = max(MIN_PARTITIONS, PARTITION_HEADROOM * workers)
    return 1 << (want - 1).bit_length()


def size(orders_per_day: int, stream: Stream, measured: Measured) -> Size:
    """The arithmetic of the sizing table (docs/scaling.md shows it written out)."""
    average = orders_per_day * stream.events_per_order / DAY
    peak = average * measured.peak
    held = orders_per_day * stream.open_days
    return Size(
        orders_per_day=orders_per_day,
        average=average,
        peak=peak,
        cores=max(1, math.ceil(peak / measured.core_rate)),
        workers_measured=max(1, math.ceil(peak / measured.rate)),
        workers_for_state=max(1, math.ceil(held / measured.worker_orders)),
        held_orders=held,
        state_bytes=held * stream.state_bytes,
        measured=measured,
    )


def human_bytes(value: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value:.0f} B"


def human_seconds(value: float) -> str:
    if value >= 3600:
        return f"{value / 3600:.1f} h"
    if value >= 60:
        return f"{value / 60:.1f} min"
    return f"{value:.1f} s"


def size_row(s: Size) -> str:
    return (
        f"| {s.orders_per_day:,} | {s.average:,.1f} | {s.peak:,.0f} | {s.held_orders:,.0f} | "
        f"{human_bytes(s.state_bytes)} | {s.cores} | {s.workers_for_state} | {s.workers} | "
        f"{s.partitions} | {s.machines} | {human_bytes(s.worker_rss_bytes)} | "
        f"{human_seconds(s.worker_ready_seconds)} | {human_seconds(s.partition_read_seconds)} |"
    )


def measure_stream(orders: int, seed: int = 3) -> Stream:
    """Run the simulator's stream of ``orders`` orders through replay's engine to its end."""
    policy = load_policy()
    engine = Engine(policy)
    by_type: Counter[str] = Counter()
    placed: dict[str, datetime] = {}
    last: dict[str, datetime] = {}
    placed_hours: Counter[int] = Counter()
    events = 0
    for raw in generate_events(seed=seed, orders=orders):
        event = decode_event(json.dumps(raw).encode())
        if isinstance(event, Rejection):
            raise SystemExit(f"the simulator's event was rejected: {event}")
        events += 1
        by_type[raw["type"]] += 1
        engine.process(event)
        if isinstance(event, InventoryUpdated):
            continue
        order_id = raw["order_id"]
        at = event.occurred_at
        if raw["type"] == "order.placed" and order_id not in placed:
            placed[order_id] = at
            placed_hours[at.hour] += 1
        if order_id not in last or at > last[order_id]:
            last[order_id] = at
    spans = [(last[o] - placed[o]).total_seconds() / DAY for o in placed]
    sizes = [len(o.encode()) + len(state_codec.encode_order(s)) for o, s in engine.orders.items()]
    if len(engine.orders) != len(placed):
        raise SystemExit(
            f"{len(engine.orders)} order states at the stream's end, {len(placed)} orders placed: "
            "some expired before the end (a shorter TTL?), so their sizes are not all there"
        )
    return Stream(
        orders=len(placed),
        events=events,
        order_events=events - by_type["inventory.updated"],
        lifecycle_days=sum(spans) / len(spans),
        state_bytes=sum(sizes) / len(sizes),
        hourly_peak=max(placed_hours.values()) / (len(placed) / 24),
        ttl_days=policy.state_ttl.total_seconds() / DAY,
        by_type=dict(sorted(by_type.items())),
    )


def report(stream: Stream, measured: Measured, command: str) -> str:
    sizes = [size(n, stream, measured) for n in ORDERS_PER_DAY]
    example = sizes[2]
    m = measured
    types = ", ".join(
        f"{name} {count / stream.orders:.3f}" for name, count in stream.by_type.items()
    )
    return "\n".join(
        [
            f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: sizing",
            "",
            f"- command: `{command}`",
            f"- simulated stream (seed 3, {stream.orders:,} orders, every lifecycle to its end): "
            f"{stream.events:,} events, **{stream.events_per_order:.3f} events per order** "
            f"({stream.order_events / stream.orders:.3f} on the order topics, "
            f"{(stream.events - stream.order_events) / stream.orders:.3f} stock levels); "
            f"per order: {types}",
            f"- lifecycle: {stream.lifecycle_days:.1f} days from placement to the last event "
            f"(mean); state kept {stream.ttl_days:.0f} days more (`engine.state_ttl`): "
            f"**{stream.open_days:.1f} days held** per order",
            f"- state per order, lifecycle over: **{stream.state_bytes:,.0f} bytes** "
            "(key + `state_codec.encode_order`)",
            f"- busiest hour of placements: {stream.hourly_peak:.2f} × the average hour "
            "(the simulator's daily rhythm)",
            f"- measured (bench.scaling): one worker {m.rate:,.0f} events/s; {m.cpu_ms:.3f} CPU "
            f"ms per event, so {m.core_rate:,.0f} events/s per core",
            f"- measured (bench.state_scale): one worker holding {m.worker_orders:,} orders "
            f"restarts after kill -9 in {m.ready_seconds:.1f} s with "
            f"{human_bytes(m.rss_bytes)} of memory; a cold start reads "
            f"{m.restore_rate:,.0f} changelog records/s",
            f"- **assumed**: peak = {m.peak:g} × the daily average; at most "
            f"{m.worker_orders:,} orders a worker (measured, not extrapolated); partitions = "
            f"the power of two ≥ {PARTITION_HEADROOM} × the workers, at least "
            f"{MIN_PARTITIONS}; machines of {m.machine_cores} cores, "
            f"{m.workers_per_machine} workers each",
            "",
            f"Arithmetic, for {example.orders_per_day:,} orders/day: "
            f"{example.orders_per_day:,} × {stream.events_per_order:.3f} / 86,400 = "
            f"{example.average:,.1f} events/s average, × {m.peak:g} = {example.peak:,.0f} at "
            f"peak: {example.cores} worker(s) for the CPU; held orders "
            f"{example.orders_per_day:,} × {stream.open_days:.1f} days = "
            f"{example.held_orders:,.0f}, × {stream.state_bytes:,.0f} B = "
            f"{human_bytes(example.state_bytes)}; / {m.worker_orders:,} a worker = "
            f"{example.workers_for_state} workers, {example.partitions} partitions, "
            f"{example.machines} machines; each worker holds "
            f"{example.orders_per_worker:,.0f} orders: "
            f"{human_bytes(example.worker_rss_bytes)}, a restart of "
            f"{human_seconds(example.worker_ready_seconds)}.",
            "",
            "| orders/day | events/s average | events/s peak | held orders | state on disk "
            "| workers for the CPU | workers for the state | workers | partitions | machines "
            "| memory a worker | restart after kill -9 | a partition read cold |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            *(size_row(s) for s in sizes),
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, required=True, help="one worker's events/s")
    parser.add_argument("--cpu-ms", type=float, required=True, help="worker CPU ms per event")
    parser.add_argument(
        "--worker-orders", type=int, required=True, help="orders of the largest state_scale run"
    )
    parser.add_argument(
        "--ready-s", type=float, required=True, help="its restart after kill -9, seconds"
    )
    parser.add_argument("--rss-mb", type=float, required=True, help="its RSS once ready, MB")
    parser.add_argument(
        "--restore-rate", type=float, required=True, help="changelog records/s of a cold start"
    )
    parser.add_argument("--peak", type=float, default=3.0, help="assumed peak / average")
    parser.add_argument("--machine-cores", type=int, default=8, help="assumed cores a machine")
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "sizing.md")
    args = parser.parse_args(argv)
    stream = measure_stream(args.orders)
    measured = Measured(
        rate=args.rate,
        cpu_ms=args.cpu_ms,
        worker_orders=args.worker_orders,
        ready_seconds=args.ready_s,
        rss_bytes=args.rss_mb * 1e6,
        restore_rate=args.restore_rate,
        peak=args.peak,
        machine_cores=args.machine_cores,
    )
    command = f"python -m bench.sizing {shlex.join(argv if argv is not None else sys.argv[1:])}"
    text = report(stream, measured, command)
    record(text, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
