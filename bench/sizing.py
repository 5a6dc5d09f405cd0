"""Sizing orderwatch for N orders a day, from the simulator and from measured worker numbers.

Run from the repository root::

    python -m bench.sizing --rate EV_S --cpu-ms MS --recovery-rate RECORDS_S [--peak 3]
        [--orders 5000] [--out FILE]

What it measures itself, on the simulator's seed-3 stream of ``--orders`` orders run to the end
of every lifecycle (``orderwatch replay``'s engine, no broker):

- events per order, by type, and how many of them are order-topic events (``orders``,
  ``tracking``, ``complaints``) against ``inventory`` ones;
- the lifecycle: days from an order's ``order.placed`` to its last event; an order's state is
  kept until ``engine.state_ttl`` (the policy's, 90 days) after its last event, so by Little's
  law the open orders in a steady state are orders/day × (lifecycle + TTL);
- the bytes of an order's state (``core.codec.encode_order``, plus its key) once its lifecycle
  is over, the size it keeps for the TTL;
- the busiest hour of placements against the average hour (the simulator's daily rhythm).

What it takes from ``bench.scaling`` (give the numbers measured there): ``--rate``, the events/s
of one worker; ``--cpu-ms``, a worker's CPU milliseconds per event (what one core allows:
1000 / cpu-ms events/s); ``--restore-mb-s``, changelog megabytes a starting worker restores per
second. ``--peak`` is an assumption: the peak-to-average factor to size for.

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
from streams.core import codec
from streams.core.engine import Engine
from streams.core.events import InventoryUpdated, decode_event
from streams.policies import load_policy
from streams.simulator import generate_events

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
    """Numbers measured by ``bench.scaling`` (and the peak factor assumed)."""

    rate: float  # events/s of one worker, as measured
    cpu_ms: float  # worker CPU ms per event
    restore_rate: float  # changelog bytes restored per second
    peak: float  # assumption: peak / average events per second

    @property
    def core_rate(self) -> float:
        """Events/s of one worker with a core to itself (a worker is one Python thread)."""
        return 1000 / self.cpu_ms


@dataclass(frozen=True)
class Size:
    """What N orders a day need."""

    orders_per_day: int
    average: float  # events/s
    peak: float  # events/s
    cores: int  # worker processes, one core each, at the CPU per event measured
    workers_measured: int  # worker processes at the rate measured on the shared machine
    partitions: int
    open_orders: float
    state_bytes: float
    recovery_seconds: float  # every open order's latest record, restored by one worker

    @property
    def partition_bytes(self) -> float:
        return self.state_bytes / self.partitions

    @property
    def partition_recovery_seconds(self) -> float:
        """One partition's orders restored (a partition that moved in a rebalance)."""
        return self.recovery_seconds / self.partitions


def partitions_for(workers: int) -> int:
    """The power of two at least :data:`PARTITION_HEADROOM` × ``workers``, at least 8."""
    want = max(MIN_PARTITIONS, PARTITION_HEADROOM * workers)
    return 1 << (want - 1).bit_length()


def size(orders_per_day: int, stream: Stream, measured: Measured) -> Size:
    """The arithmetic of the sizing table (docs/scaling.md shows it written out)."""
    average = orders_per_day * stream.events_per_order / DAY
    peak = average * measured.peak
    cores = max(1, math.ceil(peak / measured.core_rate))
    workers_measured = max(1, math.ceil(peak / measured.rate))
    open_orders = orders_per_day * stream.open_days
    return Size(
        orders_per_day=orders_per_day,
        average=average,
        peak=peak,
        cores=cores,
        workers_measured=workers_measured,
        partitions=partitions_for(max(cores, workers_measured)),
        open_orders=open_orders,
        state_bytes=open_orders * stream.state_bytes,
        recovery_seconds=open_orders * stream.state_bytes / measured.restore_rate,
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
        f"| {s.orders_per_day:,} | {s.average:,.1f} | {s.peak:,.0f} | {s.cores} | "
        f"{s.workers_measured} | {s.partitions} | {s.open_orders:,.0f} | "
        f"{human_bytes(s.state_bytes)} | {human_bytes(s.partition_bytes)} | "
        f"{human_seconds(s.recovery_seconds)} | {human_seconds(s.partition_recovery_seconds)} |"
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
        if not hasattr(event, "occurred_at"):
            raise SystemExit(f"the simulator's event was rejected: {event}")
        events += 1
        by_type[raw["type"]] += 1
        engine.process(event)  # type: ignore[arg-type]
        if isinstance(event, InventoryUpdated):
            continue
        order_id = raw["order_id"]
        at = event.occurred_at  # type: ignore[union-attr]
        if raw["type"] == "order.placed" and order_id not in placed:
            placed[order_id] = at
            placed_hours[at.hour] += 1
        if order_id not in last or at > last[order_id]:
            last[order_id] = at
    spans = [(last[o] - placed[o]).total_seconds() / DAY for o in placed]
    sizes = [len(o.encode()) + len(codec.encode_order(s)) for o, s in engine.orders.items()]
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
            f"**{stream.open_days:.1f} days open** per order",
            f"- state per order, lifecycle over: **{stream.state_bytes:,.0f} bytes** "
            "(key + `codec.encode_order`)",
            f"- busiest hour of placements: {stream.hourly_peak:.2f} × the average hour "
            "(the simulator's daily rhythm)",
            f"- measured (bench.scaling): one worker {measured.rate:,.0f} events/s; "
            f"{measured.cpu_ms:.3f} CPU ms per event, so {measured.core_rate:,.0f} events/s "
            f"per core; a starting worker restores {measured.restore_rate / 1e6:.1f} MB/s of "
            "changelog",
            f"- **assumed**: peak = {measured.peak:g} × the daily average; partitions = the "
            f"power of two ≥ {PARTITION_HEADROOM} × the workers needed, at least "
            f"{MIN_PARTITIONS}; the orders changelog compacted to one record per open order",
            "",
            f"Arithmetic, for {example.orders_per_day:,} orders/day: "
            f"{example.orders_per_day:,} × {stream.events_per_order:.3f} / 86,400 = "
            f"{example.average:,.1f} events/s average, × {measured.peak:g} = "
            f"{example.peak:,.0f} at peak; / {measured.core_rate:,.0f} per core → "
            f"{example.cores} cores (/ {measured.rate:,.0f} measured → "
            f"{example.workers_measured} workers); open orders "
            f"{example.orders_per_day:,} × {stream.open_days:.1f} = {example.open_orders:,.0f}; "
            f"× {stream.state_bytes:,.0f} B = {human_bytes(example.state_bytes)}; restored at "
            f"{measured.restore_rate / 1e6:.1f} MB/s: {human_seconds(example.recovery_seconds)}.",
            "",
            "| orders/day | events/s average | events/s peak | worker cores (CPU/event) | "
            "workers (rate measured) | partitions | open orders | orders state | per partition "
            "| restore all | restore one partition |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            *(size_row(s) for s in sizes),
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, required=True, help="one worker's events/s")
    parser.add_argument("--cpu-ms", type=float, required=True, help="worker CPU ms per event")
    parser.add_argument(
        "--restore-mb-s", type=float, required=True, help="changelog MB a start restores per s"
    )
    parser.add_argument("--peak", type=float, default=3.0, help="assumed peak / average")
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "sizing.md")
    args = parser.parse_args(argv)
    stream = measure_stream(args.orders)
    measured = Measured(args.rate, args.cpu_ms, args.restore_mb_s * 1e6, args.peak)
    command = f"python -m bench.sizing {shlex.join(argv if argv is not None else sys.argv[1:])}"
    text = report(stream, measured, command)
    record(text, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
