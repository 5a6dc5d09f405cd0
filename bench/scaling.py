"""One against several ``orderwatch worker`` processes on the same stream: how throughput grows.

Run from the repository root, against a real broker (``scripts/kafka.sh start``)::

    python -m bench.scaling --events N --broker HOST:PORT [--workers 1,2] [--partitions P]
        [--runs R] [--recovery] [--broker-pid PID] [--out FILE]

Every run gets a fresh app id (the consumer group) and topic prefix, and reads the same stream:
the first N events of the simulator's seed-3 stream (``bench.worker_throughput``'s). For each
worker count W, a run:

1. creates the four input topics with P partitions, starts W workers in event time
   (``ORDERWATCH_CLOCK=event``; ``--clock wall``: on the wall clock), each on its own web port
   and data directory, one after the other, each until its ``/ready`` answers 200;
2. waits until the group is stable: every worker ready, the workers'
   ``orderwatch_assigned_partitions`` adding up to P (each above 0 while W ≤ P), three readings
   in a row;
3. produces the N events (keyed as ``orderwatch send`` keys them) from a thread of this process,
   and times from the first send until the sum of the workers' handled-message counters
   (``orderwatch_events_consumed_total`` + ``orderwatch_events_rejected_total``, read from
   each ``/metrics`` every 0.1 s) reaches N. Each worker's ``process_cpu_seconds_total`` is read
   in the same requests, so its CPU over the timed span is known; so is the machine's (from
   ``/proc/stat``), this process's (the producer and the poller), and the broker's when its pid
   is given (``--broker-pid``: from ``/proc/PID/stat``);
4. checks that the decisions are complete: ``orderwatch advance-clock`` to the stream's last
   ``occurred_at``, then the output topics are read until every breach and recommendation id
   that ``orderwatch replay`` gives for the same lines has arrived (and 3 s more). The run
   records the outputs per topic and whether its decision ids equal replay's; the summary checks
   every run's output counts equal the one-worker runs'.

Worker counts take turns run by run (1, 2, 1, 2, ...), so a slow spell of the shared machine
falls on both. With ``--recovery``, each one-worker run also restarts its worker twice: once
before the stream (empty tables: the cost of a restart itself) and once after it (tables rebuilt
from their changelogs), and between the two, after the stream, has a second worker join it
(timed until the group of two is stable: a rebalance that moves half of the state); the
changelogs are read to count their records, bytes and live keys (the ``orders`` table's live
keys are the open orders, so its bytes per live key is the state per open order).

The report (the command, the machine, the broker, a row per run and a summary per worker count)
is printed and appended to ``bench/results/scaling.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shlex
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]

from bench.record import record
from bench.worker_throughput import (
    INPUTS,
    PROCESSED,
    REPO,
    machine,
    metric_sum,
    simulated_lines,
    until_counted,
)

sys.path.insert(0, str(REPO / "tests" / "integration"))

from worker_harness import (
    OUTPUT_TOPICS,
    WorkerRun,
    consume_outputs,
    decisions,
    occurred,
    produce_lines,
    replayed_outputs,
)

from streams.kafka.admin import create_topics, topic_partitions

#: The worker's tables (``streams.kafka.topics.TABLES``); the changelog of table T of app A under
#: prefix P is ``P A-T-changelog`` (docs/architecture.md, "Internal topics").
TABLES = ("orders", "clocks", "skus", "carriers", "merchants", "inbox")
CPU = "process_cpu_seconds_total"
#: Consecutive readings of a stable group before the stream is produced.
STABLE_READINGS = 3


@dataclass
class Changelog:
    """One table's changelog as read from its start: every record, and the live keys' last."""

    table: str
    records: int = 0
    bytes: int = 0
    live_keys: int = 0
    live_bytes: int = 0  # key + value of each live key's last record

    @property
    def bytes_per_live_key(self) -> float:
        return self.live_bytes / self.live_keys if self.live_keys else 0.0


@dataclass
class Run:
    """One timed run of W workers (see the module docstring)."""

    workers: int
    index: int
    events: int
    seconds: float = 0.0
    produce_seconds: float = 0.0
    processed: list[float] = field(default_factory=list)  # per worker, at the end
    cpu: list[float] = field(default_factory=list)  # per worker, over the timed span
    assigned: list[int] = field(default_factory=list)  # partitions per worker
    bench_cpu: float = 0.0
    broker_cpu: float | None = None
    machine_busy: float = 0.0  # share of all CPUs busy over the timed span, 0..1
    load: tuple[float, float] = (0.0, 0.0)  # 1-minute load average before and after
    outputs: dict[str, int] = field(default_factory=dict)  # per output topic
    decisions: int = 0
    replay_decisions: int = 0
    matches_replay: bool | None = False  # None: not checked (wall clock)
    restarts: int = 0
    idle_cpu: list[float] = field(default_factory=list)  # per worker, CPU s per s while idle
    aggregate_inputs: int = 0  # messages on the aggregate-inputs topic: facts and watermarks
    ready_empty: float | None = None  # seconds from launch to /ready, empty tables
    ready_recovered: float | None = None  # the same after the stream
    join_stable: float | None = None  # a second worker joining after the stream: to stable
    open_orders: float | None = None  # orderwatch_open_orders of the recovered worker
    changelogs: list[Changelog] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    @property
    def cpu_ms_per_event(self) -> float:
        """All workers' CPU over the timed span, per event (milliseconds)."""
        return 1000 * sum(self.cpu) / self.events


def parse_workers(text: str) -> list[int]:
    """``"1,2"`` → ``[1, 2]``: distinct positive counts, in the given order."""
    counts: list[int] = []
    for part in text.split(","):
        count = int(part)
        if count < 1:
            raise ValueError(f"a worker count must be at least 1, not {count}")
        if count not in counts:
            counts.append(count)
    return counts


def schedule(counts: list[int], runs: int) -> list[tuple[int, int]]:
    """(worker count, run index) in turns: every count's first run, then every count's second..."""
    return [(count, index) for index in range(runs) for count in counts]


def _cpu_of_pid(pid: int) -> float:
    """User + system CPU seconds of a process, from ``/proc/PID/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine, from ``/proc/stat``."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Scraped(Protocol):
    """What the sampler reads a worker through: an HTTP GET of its web port (``WorkerRun``)."""

    def get(self, path: str) -> tuple[int, bytes]: ...


class _Sampler:
    """Reads every worker's ``/metrics`` once per call: handled messages and process CPU.

    A worker that restarts (exit 75 and its supervisor) starts its counters again from 0 and
    handles again what it had not committed: its readings then add to what it had counted, so
    the sum still reaches N (counting the repeated messages twice; such a run is flagged).
    """

    def __init__(self, workers: Sequence[_Scraped]) -> None:
        self.workers = workers
        self.processed = [0.0] * len(workers)
        self.cpu = [0.0] * len(workers)
        self._raw = [(0.0, 0.0)] * len(workers)  # the last reading of each process

    def __call__(self) -> float:
        for i, worker in enumerate(self.workers):
            try:
                body = worker.get("/metrics")[1]
            except OSError:  # restarting: keep what it had counted
                continue
            processed, cpu = metric_sum(body, *PROCESSED), metric_sum(body, CPU)
            last_processed, last_cpu = self._raw[i]
            if processed < last_processed or cpu < last_cpu:  # a new process
                last_processed, last_cpu = 0.0, 0.0
            self.processed[i] += processed - last_processed
            self.cpu[i] += cpu - last_cpu
            self._raw[i] = (processed, cpu)
        return sum(self.processed)


def _assigned(worker: WorkerRun) -> int:
    return int(worker.metric("orderwatch_assigned_partitions"))


def _wait_stable(workers: list[WorkerRun], partitions: int, timeout: float = 120.0) -> list[int]:
    """Wait until every worker is ready and the partitions are all assigned, over
    :data:`STABLE_READINGS` readings 0.5 s apart; return the partitions per worker."""
    deadline = time.monotonic() + timeout
    streak = 0
    while time.monotonic() < deadline:
        try:
            ready = all(w.get("/ready")[0] == 200 for w in workers)
            assigned = [_assigned(w) for w in workers]
        except OSError:
            ready, assigned = False, []
        stable = (
            ready
            and sum(assigned) == partitions
            and (len(workers) > partitions or all(a > 0 for a in assigned))
        )
        streak = streak + 1 if stable else 0
        if streak >= STABLE_READINGS:
            return assigned
        time.sleep(0.5)
    raise SystemExit(f"the group of {len(workers)} workers was not stable in {timeout:g} s")


def _timed_start(worker: WorkerRun) -> float:
    started = time.perf_counter()
    worker.start(timeout=300)
    return time.perf_counter() - started


async def _topic_size(bootstrap: str, topic: str) -> int:
    """Messages on ``topic``: the sum of its partitions' end offsets."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in await topic_partitions(bootstrap, topic)]
        return sum((await consumer.end_offsets(parts)).values()) if parts else 0
    finally:
        await consumer.stop()


async def _read_changelog(bootstrap: str, topic: str, table: str) -> Changelog:
    """Every record of ``topic`` from its start to its end offsets."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    log = Changelog(table)
    try:
        parts = [TopicPartition(topic, p) for p in await topic_partitions(bootstrap, topic)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        last: dict[bytes, int] = {}  # key → size of its last record, None value: deleted
        remaining = {tp for tp, end in ends.items() if end > 0}
        deadline = time.monotonic() + 120
        while remaining and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for tp, records in batch.items():
                for record in records:
                    size = len(record.key or b"") + len(record.value or b"")
                    log.records += 1
                    log.bytes += size
                    if record.value is None:
                        last.pop(record.key, None)
                    else:
                        last[record.key] = size
                    if record.offset + 1 >= ends[tp]:
                        remaining.discard(tp)
        log.live_keys = len(last)
        log.live_bytes = sum(last.values())
        return log
    finally:
        await consumer.stop()


def _decide(workers: list[WorkerRun], lines: list[bytes], expected: set[str]) -> list[Any]:
    """Advance the clock to the stream's end and read the outputs until replay's decisions."""
    first = workers[0]
    first.advance_clock(max(at for line in lines if (at := occurred(line))))
    outputs: list[Any] = asyncio.run(
        consume_outputs(
            first.bootstrap,
            first.prefix,
            until=lambda got: expected <= decisions(got),
            timeout=180,
            settle=3.0,
        )
    )
    return outputs


def run_once(
    *,
    bootstrap: str,
    work: Path,
    lines: list[bytes],
    expected: set[str],
    workers: int,
    index: int,
    partitions: int,
    recovery: bool,
    broker_pid: int | None,
    idle: float = 0.0,
    clock: str = "event",
) -> Run:
    result = Run(workers, index, len(lines))
    group = [WorkerRun(bootstrap, work, partitions=partitions, clock=clock)]
    group += [
        WorkerRun(bootstrap, work, partitions=partitions, clock=clock, name=group[0].name)
        for _ in range(workers - 1)
    ]
    prefix = group[0].prefix
    asyncio.run(create_topics(bootstrap, {prefix + topic: partitions for topic in INPUTS}))
    try:
        for worker in group:
            _timed_start(worker)
        if recovery and workers == 1:
            group[0].stop()
            group[0] = WorkerRun(
                bootstrap, work, partitions=partitions, clock=clock, name=group[0].name
            )
            result.ready_empty = _timed_start(group[0])
        result.assigned = _wait_stable(group, partitions)
        sampler = _Sampler(group)
        if idle > 0:  # what the ready, idle group burns: timers, watermarks, the lag reader
            sampler()
            idle0, started = list(sampler.cpu), time.perf_counter()
            time.sleep(idle)
            sampler()
            span = time.perf_counter() - started
            result.idle_cpu = [(b - a) / span for a, b in zip(idle0, sampler.cpu, strict=True)]
        sampler()
        cpu0 = list(sampler.cpu)
        busy0, total0 = _machine_ticks()
        self0 = _self_cpu()
        broker0 = _cpu_of_pid(broker_pid) if broker_pid else None
        result.load = (os.getloadavg()[0], 0.0)
        produced: list[float] = []

        def produce() -> None:
            started = time.perf_counter()
            asyncio.run(produce_lines(bootstrap, prefix, lines))
            produced.append(time.perf_counter() - started)

        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        result.seconds = until_counted(sampler, len(lines), f"{workers} worker(s)")
        producer.join()
        busy1, total1 = _machine_ticks()
        result.bench_cpu = _self_cpu() - self0
        if broker_pid and broker0 is not None:
            result.broker_cpu = _cpu_of_pid(broker_pid) - broker0
        result.machine_busy = (busy1 - busy0) / max(1, total1 - total0)
        result.load = (result.load[0], os.getloadavg()[0])
        result.produce_seconds = produced[0] if produced else float("nan")
        result.processed = list(sampler.processed)
        result.aggregate_inputs = asyncio.run(
            _topic_size(bootstrap, f"{prefix}{group[0].name}-aggregate-inputs")
        )
        result.cpu = [end - start for start, end in zip(cpu0, sampler.cpu, strict=True)]
        if clock == "event":
            outputs = _decide(group, lines, expected)
            got = decisions(outputs)
            result.decisions = len(got)
            result.replay_decisions = len(expected)
            result.matches_replay = got == expected
        else:  # deadlines fire against the time: no replay to compare with
            outputs = asyncio.run(
                consume_outputs(bootstrap, prefix, until=lambda _: True, timeout=10, settle=3.0)
            )
            result.matches_replay = None
        result.outputs = {
            topic: sum(1 for o in outputs if o["_kafka"]["topic"] == prefix + topic)
            for topic in OUTPUT_TOPICS
        }
        result.restarts = sum(w.restarts for w in group)
        for worker in group:
            if worker.restarts:  # its counters began again: the run's numbers are suspect
                print(
                    f"a worker restarted {worker.restarts} time(s); its log ends:\n"
                    + worker.log_text()[-3000:],
                    file=sys.stderr,
                )
        if recovery and workers == 1:
            # A rebalance with state: a second worker joins and takes half of the partitions
            # (it restores their changelogs; the first revokes them).
            joiner = WorkerRun(
                bootstrap, work, partitions=partitions, clock=clock, name=group[0].name
            )
            group.append(joiner)
            started = time.perf_counter()
            joiner.start(timeout=300)
            _wait_stable(group, partitions, timeout=300)
            result.join_stable = time.perf_counter() - started
            joiner.stop()
            group.pop()
            group[0].stop()
            result.changelogs = [
                asyncio.run(
                    _read_changelog(bootstrap, f"{prefix}{group[0].name}-{table}-changelog", table)
                )
                for table in TABLES
            ]
            group[0] = WorkerRun(
                bootstrap, work, partitions=partitions, clock=clock, name=group[0].name
            )
            result.ready_recovered = _timed_start(group[0])
            result.open_orders = group[0].metric("orderwatch_open_orders")
    finally:
        for worker in group:
            worker.stop()
    return result


# -- the report -------------------------------------------------------------------------------


def _range(values: list[float], fmt: str) -> str:
    low, high = min(values), max(values)
    median = statistics.median(values)
    if len(values) == 1:
        return format(median, fmt)
    return f"{format(median, fmt)} ({format(low, fmt)} – {format(high, fmt)})"


def run_row(run: Run, base_rate: float) -> str:
    """A run's row of the report's table."""
    per_worker = ", ".join(
        f"{p:,.0f} ev / {c:.1f} s" for p, c in zip(run.processed, run.cpu, strict=True)
    )
    outputs = " / ".join(str(run.outputs.get(topic, 0)) for topic in OUTPUT_TOPICS)
    idle = ", ".join(f"{c:.2f}" for c in run.idle_cpu) or "—"
    broker = f"{run.broker_cpu:.1f}" if run.broker_cpu is not None else "—"
    return (
        f"| {run.workers} | {run.index + 1} | {'+'.join(map(str, run.assigned))} | "
        f"{run.seconds:.2f} | {run.rate:,.0f} | {run.rate / base_rate:.2f} | {per_worker} | "
        f"{run.cpu_ms_per_event:.3f} | {idle} | {run.aggregate_inputs:,} | "
        f"{run.bench_cpu:.1f} | {broker} | "
        f"{100 * run.machine_busy:.0f} % | {run.load[0]:.2f} → {run.load[1]:.2f} | {outputs} | "
        f"{_matches(run)}{f' ({run.restarts} worker restart(s))' if run.restarts else ''} |"
    )


def _matches(run: Run) -> str:
    if run.matches_replay is None:
        return "— (wall clock)"
    return "yes" if run.matches_replay else f"no ({run.decisions} of {run.replay_decisions})"


def summary_rows(runs: list[Run]) -> list[str]:
    """One row per worker count: medians (and ranges) of rate, speedup and CPU per event."""
    counts = sorted({run.workers for run in runs})
    base = statistics.median(run.rate for run in runs if run.workers == counts[0])
    reference = {
        topic: {run.outputs.get(topic, 0) for run in runs if run.workers == counts[0]}
        for topic in OUTPUT_TOPICS
    }
    rows = []
    for count in counts:
        mine = [run for run in runs if run.workers == count]
        same = all(
            {run.outputs.get(topic, 0) for run in mine} == reference[topic]
            and len(reference[topic]) == 1
            for topic in OUTPUT_TOPICS
        )
        rows.append(
            f"| {count} | {len(mine)} | {_range([r.seconds for r in mine], '.2f')} | "
            f"{_range([r.rate for r in mine], ',.0f')} | "
            f"{_range([r.rate / base for r in mine], '.2f')} | "
            f"{_range([r.cpu_ms_per_event for r in mine], '.3f')} | "
            f"{_range([r.rate / count for r in mine], ',.0f')} | "
            f"{_range([100 * r.machine_busy for r in mine], '.0f')} | "
            f"{'yes' if same else 'NO'} | "
            f"{_all_match(mine)} |"
        )
    return rows


def _all_match(runs: list[Run]) -> str:
    if any(r.matches_replay is None for r in runs):
        return "—"
    return "yes" if all(r.matches_replay for r in runs) else "NO"


def state_rows(runs: list[Run]) -> list[str]:
    """The recovery and changelog measurements of the runs that made them."""
    rows = []
    for run in runs:
        if run.ready_recovered is None:
            continue
        for log in run.changelogs:
            rows.append(
                f"| {run.index + 1} | {log.table} | {log.records:,} | {log.bytes:,} | "
                f"{log.live_keys:,} | {log.bytes_per_live_key:,.0f} |"
            )
    return rows


def recovery_rows(runs: list[Run]) -> list[str]:
    rows = []
    for run in runs:
        if run.ready_recovered is None or run.ready_empty is None:
            continue
        records = sum(log.records for log in run.changelogs)
        size = sum(log.bytes for log in run.changelogs)
        join = f"{run.join_stable:.1f}" if run.join_stable is not None else "—"
        rows.append(
            f"| {run.index + 1} | {run.ready_empty:.1f} | {run.ready_recovered:.1f} | "
            f"{run.ready_recovered - run.ready_empty:.1f} | {records:,} | {size / 1e6:.2f} | "
            f"{size / 1e6 / (run.ready_recovered - run.ready_empty):.1f} | "
            f"{run.open_orders:,.0f} | {join} |"
        )
    return rows


def report(
    runs: list[Run], *, command: str, broker: str, partitions: int, clock: str = "event"
) -> str:
    counts = sorted({run.workers for run in runs})
    base = statistics.median(run.rate for run in runs if run.workers == counts[0])
    lines = [
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {runs[0].events:,} events, "
        f"workers {', '.join(map(str, counts))}, {partitions} partitions, {clock} clock, "
        f"broker {broker}",
        "",
        f"- command: `{command}`",
        f"- machine: {machine()}",
        f"- every worker with `ORDERWATCH_CLOCK={clock}`, `memory://` tables; the "
        "producer (this process's thread) and the broker share the machine with them",
        "",
        "| workers | run | partitions each | seconds | events/s | speedup | per worker: "
        "events / CPU s | worker CPU ms/event | idle CPU s/s per worker | aggregate-inputs "
        "messages | bench CPU s | "
        "broker CPU s | machine busy | load 1 min | "
        "outputs (breaches / recommendations / dead letters) | decisions = replay's |",
        "|---:|---:|---|---:|---:|---:|---|---:|---|---:|---:|---:|---:|---|---|---|",
        *(run_row(run, base) for run in runs),
        "",
        "Summary: median (min – max); speedup over the median one-worker rate; CPU ms/event is "
        "every worker's process CPU over the timed span divided by the events.",
        "",
        "| workers | runs | seconds | events/s | speedup | worker CPU ms/event | events/s per "
        "worker | machine busy % | outputs = one worker's | decisions = replay's |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
        *summary_rows(runs),
        "",
    ]
    recovery = recovery_rows(runs)
    if recovery:
        lines += [
            "Restarts of the one-worker runs (launch to `/ready`), before the stream (empty "
            "tables) and after it (tables rebuilt from their changelogs), the restore rate "
            "(changelog MB / difference), and, after the stream, a second worker joining (launch "
            "to a stable group of two: the rebalance with state):",
            "",
            "| run | empty s | recovered s | difference s | changelog records | changelog MB "
            "| restore MB/s | open orders | join s |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            *recovery,
            "",
            "| run | changelog | records | bytes | live keys | bytes per live key |",
            "|---:|---|---:|---:|---:|---:|",
            *state_rows(runs),
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--broker", required=True, help="bootstrap servers of a running broker")
    parser.add_argument("--workers", type=parse_workers, default=[1, 2], help="e.g. 1,2")
    parser.add_argument("--partitions", type=int, default=8, help="default 8, the worker's")
    parser.add_argument(
        "--clock",
        choices=("event", "wall"),
        default="event",
        help="the workers' clock; wall: no advance-clock, no comparison with replay",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per worker count")
    parser.add_argument("--recovery", action="store_true", help="time restarts (one worker)")
    parser.add_argument("--broker-pid", type=int, help="the broker's pid, to read its CPU")
    parser.add_argument(
        "--idle", type=float, default=5.0, help="seconds of the ready group's idle CPU reading"
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "scaling.md")
    args = parser.parse_args(argv)
    lines = simulated_lines(args.events)
    expected = decisions(replayed_outputs(lines))
    print(f"{len(lines):,} events; replay decides {len(expected):,} ids", flush=True)
    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as workdir:
        for workers, index in schedule(args.workers, args.runs):
            run = run_once(
                bootstrap=args.broker,
                work=Path(workdir),
                lines=lines,
                expected=expected,
                workers=workers,
                index=index,
                partitions=args.partitions,
                recovery=args.recovery,
                broker_pid=args.broker_pid,
                idle=args.idle,
                clock=args.clock,
            )
            print(
                f"{workers} worker(s), run {index + 1}: {run.seconds:.2f} s, "
                f"{run.rate:,.0f} events/s, CPU {[round(c, 1) for c in run.cpu]} s, "
                f"machine {100 * run.machine_busy:.0f} % busy, outputs {run.outputs}, "
                f"decisions = replay's: {run.matches_replay}",
                flush=True,
            )
            runs.append(run)
    command = f"python -m bench.scaling {shlex.join(argv if argv is not None else sys.argv[1:])}"
    text = report(
        runs, command=command, broker=args.broker, partitions=args.partitions, clock=args.clock
    )
    record(text, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
