"""Fault injection on the real broker: worker SIGKILLs, broker restarts, group changes.

A scenario produces a simulated stream at a steady pace to a group of event-time workers and,
while it flows, applies a plan of faults: ``kill`` (SIGKILL one worker, start a new one in its
place), ``broker`` (``scripts/kafka.sh restart``: the broker stops and comes back on the same log
directory), ``grow`` (one more worker joins the group), ``shrink`` (one leaves, gracefully) and
``freeze`` (SIGSTOP one worker for a time within ``freeze_seconds``, longer than the session
timeout, then SIGCONT: the group moves its partitions meanwhile, and it resumes with what it
held).
Once the group has consumed everything it advances the clock, reads every output, and compares
them with ``orderwatch replay --until`` of the same lines, by id and by content.

Other faults (frozen workers and brokers, a cluster's nodes) and the wall-clock scenarios live
in ``envelope.py``; a scenario's ``clock``, ``compression`` and ``worker_env`` choose the rest.

The CI-sized variants run in ``test_faults.py`` and ``test_envelope.py``; the soak runs from the
command line (``--envelope``: the envelope's scenarios too, each run)::

    python tests/integration/faults.py --kills 20 --broker-restarts 2 --runs 3 --envelope

against the broker of ``scripts/kafka.sh`` (started if it is not running).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from aiokafka import (  # type: ignore[import-untyped]
    AIOKafkaConsumer,
    AIOKafkaProducer,
    TopicPartition,
)
from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]
from worker_harness import (
    OUTPUT_TOPICS,
    Output,
    WorkerRun,
    group_lag,
    message_of,
    partitions_of,
    replayed_outputs,
    wait_for,
)

from streams.worker.failures import EXIT_KAFKA_UNAVAILABLE

REPO = Path(__file__).resolve().parents[2]
KAFKA_SH = REPO / "scripts" / "kafka.sh"
# The processor's own clock readings: the only fields allowed to differ from replay.
CLOCK_FIELDS = ("detected_at", "issued_at", "rejected_at")
#: Says whether a recommendation's ``respond_by`` had passed when it was issued, and what the
#: seller should do follows from it: both depend on the processor's clock, like ``issued_at``.
#: Free in the comparison wherever any output carries the flag.
RESPOND_BY_FIELDS = ("respond_by_passed", "actions")


#: How long the harness waits before it starts a worker that stopped itself while starting
#: again (systemd's unit waits 5 s: ``RestartSec``).
RESTART_PAUSE = 2.0


@dataclass
class Scenario:
    """What to produce, how fast, and which faults to apply while it flows."""

    orders: int = 1000
    merchants: int = 4
    seed: int = 11
    rate: float = 300.0  # events produced per second
    bad_lines: int = 20  # malformed lines mixed into the stream
    plan: tuple[str, ...] = ("kill", "kill", "kill")
    workers: int = 1  # at the start
    partitions: int = 4
    broker_downtime: float = 5.0
    guarantee: str = "at_least_once"
    isolation_level: str = "read_uncommitted"
    clock: str = "event"  # ORDERWATCH_CLOCK of the workers
    worker_env: dict[str, str] = field(default_factory=dict)  # more ORDERWATCH_ settings
    #: Compression codec per input topic (e.g. {"orders": "gzip"}); uncompressed if absent.
    compression: dict[str, str] = field(default_factory=dict)
    #: ``ORDERWATCH_KAFKA_HOME`` of the broker or cluster ``scripts/kafka.sh`` runs (None: the
    #: caller's environment decides).
    kafka_home: str | None = None
    freeze_seconds: tuple[float, float] = (10.0, 20.0)  # a frozen worker or broker, at random

    def lines(self) -> list[bytes]:
        from streams.tools.simulator import bad_lines, generate_events

        events = [
            json.dumps(event).encode()
            for event in generate_events(
                seed=self.seed, orders=self.orders, merchants=self.merchants
            )
        ]
        rng = random.Random(self.seed)
        bad = bad_lines(rng)
        for index in range(self.bad_lines):
            events.insert(rng.randrange(len(events)), bad[index % len(bad)])
        return events


@dataclass
class Comparison:
    """Worker outputs against replay's, by id and by content."""

    expected: int
    lost: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    different: list[str] = field(default_factory=list)
    redelivered: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.lost or self.extra or self.different)

    def line(self) -> str:
        return (
            f"{self.expected} outputs expected: {len(self.lost)} lost, {len(self.extra)} extra, "
            f"{len(self.different)} different, {self.redelivered} redelivered"
        )


@dataclass
class Report:
    scenario: Scenario
    comparison: Comparison
    messages: int
    faults: Counter[str]
    seconds: float
    log_lines: dict[str, int]
    #: Replay's outputs the workers' were compared with.
    replayed: list[Output] | None = None
    name: str = ""
    #: The workers' app id (their topics start with it and a dash).
    app_id: str = ""

    def line(self) -> str:
        faults = ", ".join(f"{n} {kind}" for kind, n in sorted(self.faults.items())) or "none"
        return (
            f"{self.messages} messages, faults: {faults}; {self.comparison.line()} "
            f"({self.seconds:.0f} s)"
        )


# ---- comparing ----------------------------------------------------------------------------------


def identity(output: Output) -> str:
    """What names an output across drivers: its id, or a rejection's input and error.

    A rejection's id is built from where the bad input was read (a file line in replay, a
    topic/partition/offset on Kafka), so rejections are matched by what was rejected and why.
    """
    if output["type"] == "event.rejected":
        return f"rejected:{output['raw']}\n{output['error']}"
    # A resolution names its breach too: its own id first.
    return str(
        output.get("resolution_id") or output.get("breach_id") or output.get("recommendation_id")
    )


def content(output: Output, free: tuple[str, ...] = ()) -> str:
    kept = {
        k: v
        for k, v in output.items()
        if k not in CLOCK_FIELDS and k not in free and not k.startswith("_")
    }
    if output["type"] == "event.rejected":
        kept = {"raw": kept["raw"], "error": kept["error"]}
    return json.dumps(kept, sort_keys=True)


def compare(replayed: Iterable[Output], got: Iterable[Output]) -> Comparison:
    """Lost, extra, different and redelivered outputs of ``got`` against ``replayed``.

    A redelivery is the same output again (same id, same rejected offset); it is counted, and
    its content is compared like the first copy's. Where any output carries
    ``respond_by_passed``, it and ``actions`` are free too (:data:`RESPOND_BY_FIELDS`).
    """
    replayed, got = list(replayed), list(got)
    flagged = any("respond_by_passed" in o for o in (*replayed, *got))
    free = RESPOND_BY_FIELDS if flagged else ()
    expected = {identity(o): content(o, free) for o in replayed}
    seen: dict[str, set[str]] = {}
    copies: Counter[str] = Counter()
    for output in got:
        key = identity(output)
        copies[str(output.get("rejection_id") or key)] += 1
        seen.setdefault(key, set()).add(content(output, free))
    result = Comparison(expected=len(expected))
    result.redelivered = sum(n - 1 for n in copies.values())
    result.lost = sorted(expected.keys() - seen.keys())
    result.extra = sorted(seen.keys() - expected.keys())
    result.different = sorted(k for k in expected.keys() & seen.keys() if seen[k] != {expected[k]})
    for key in result.different[:3]:
        result.examples.append(f"replay: {expected[key]}\nworker: {sorted(seen[key])}")
    for key in result.extra[:3]:
        result.examples.append(f"extra: {sorted(seen[key])}")
    for key in result.lost[:3]:
        result.examples.append(f"lost: {expected[key]}")
    return result


def last_occurred(lines: Iterable[bytes]) -> datetime:
    """The largest ``occurred_at`` of the valid events among ``lines``."""
    from streams.core.events import decode_event
    from streams.core.outputs import Rejection

    decoded = (decode_event(line) for line in lines)
    return max(event.occurred_at for event in decoded if not isinstance(event, Rejection))


# ---- the broker ---------------------------------------------------------------------------------


def kafka_sh(*args: str, home: str | None = None) -> str:
    """The last line ``scripts/kafka.sh ARGS`` prints (under ``ORDERWATCH_KAFKA_HOME=home``)."""
    env = {**os.environ, "ORDERWATCH_KAFKA_HOME": home} if home else None
    done = subprocess.run(
        ["bash", str(KAFKA_SH), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env=env,
    )
    if done.returncode != 0:
        raise RuntimeError(f"scripts/kafka.sh {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def managed_broker(home: str | None = None) -> str | None:
    """The address of the broker ``scripts/kafka.sh`` runs, or None."""
    try:
        return kafka_sh("env", home=home).removeprefix("ORDERWATCH_TEST_BROKER=")
    except RuntimeError:
        return None


async def read_all_outputs(bootstrap: str, prefix: str, isolation_level: str) -> list[Output]:
    """Every record of the output topics, up to their end offsets now."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level=isolation_level,
    )
    await consumer.start()
    try:
        parts = [
            TopicPartition(prefix + topic, p)
            for topic in OUTPUT_TOPICS
            for p in await partitions_of(bootstrap, prefix + topic)
        ]
        consumer.assign(parts)
        ends = await consumer.end_offsets(parts)
        outputs: list[Output] = []
        remaining = {tp for tp, end in ends.items() if end > 0}
        deadline = time.monotonic() + 120
        while remaining and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                outputs.extend(json.loads(r.value) for r in records)
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        if remaining:
            raise AssertionError(f"could not read the outputs to their end: {sorted(remaining)}")
        return outputs
    finally:
        await consumer.stop()


# ---- producing ----------------------------------------------------------------------------------


class PacedProducer(threading.Thread):
    """Produces ``lines`` to the contract topics at ``rate`` lines a second, in its own loop.

    Sends survive a broker restart: the client retries for up to five minutes.
    """

    def __init__(
        self,
        bootstrap: str,
        prefix: str,
        lines: list[bytes],
        rate: float,
        compression: dict[str, str] | None = None,
    ) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.prefix, self.lines, self.rate = bootstrap, prefix, lines, rate
        #: Codec per contract topic; each codec gets its own producer (one codec a producer).
        self.compression = compression or {}
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._produce())
        except BaseException as error:  # reported by the scenario
            self.error = error

    async def _produce(self) -> None:
        producers = {
            codec: AIOKafkaProducer(
                bootstrap_servers=self.bootstrap,
                linger_ms=5,
                acks="all",
                enable_idempotence=True,
                request_timeout_ms=300_000,
                retry_backoff_ms=500,
                compression_type=codec,
            )
            for codec in {None, *self.compression.values()}
        }
        try:
            for producer in producers.values():
                await producer.start()  # a failed start is stopped too: no socket left open
            started = time.monotonic()
            for index, line in enumerate(self.lines):
                topic, key = message_of(line)
                producer = producers[self.compression.get(topic)]
                await producer.send(self.prefix + topic, line, key=key)
                self.sent = index + 1
                ahead = started + self.sent / self.rate - time.monotonic()
                if ahead > 0:
                    await asyncio.sleep(ahead)
            for producer in producers.values():
                await producer.flush()
        finally:
            for producer in producers.values():
                await producer.stop()


# ---- the scenario -------------------------------------------------------------------------------


class Group:
    """The workers of one app id; each replacement gets a fresh web port and log."""

    def __init__(self, bootstrap: str, workdir: Path, scenario: Scenario) -> None:
        self.bootstrap, self.workdir, self.scenario = bootstrap, workdir, scenario
        self.name = WorkerRun(bootstrap, workdir).name
        self.running: list[WorkerRun] = []
        self.all: list[WorkerRun] = []
        self.stopped: Counter[str] = Counter()
        self.turn = 0

    def start_one(self, data_dir: str | None = None, *, wait: bool = True) -> WorkerRun:
        """Start a worker and wait until it is ready (again, if it stops itself meanwhile);
        without ``wait``, only launch it, as a supervisor does (:meth:`wait_ready` waits).

        ``data_dir``: the local state of the worker it replaces, as a supervisor restarting a
        process on the same machine keeps it (rocksdb:// resumes from it).
        """
        for _ in range(5):
            worker = WorkerRun(
                self.bootstrap,
                self.workdir,
                supervised=False,  # the group replaces a worker that stops itself
                name=self.name,
                partitions=self.scenario.partitions,
                clock=self.scenario.clock,
                extra_env={
                    "ORDERWATCH_PROCESSING_GUARANTEE": self.scenario.guarantee,
                    **({"ORDERWATCH_DATA_DIR": data_dir} if data_dir else {}),
                    **self.scenario.worker_env,
                },
            )
            self.all.append(worker)
            if not wait:
                worker.start(timeout=None)
                self.running.append(worker)
                return worker
            try:
                worker.start(timeout=120)
            except AssertionError:
                assert worker.process is not None
                code = worker.process.poll()
                if code != EXIT_KAFKA_UNAVAILABLE:
                    worker.stop(kill=True)  # not ready in time: no process outlives the run
                    raise
                worker.stop()
                self.stopped[f"stopped {code}"] += 1
                data_dir = worker.env()["ORDERWATCH_DATA_DIR"]
                time.sleep(RESTART_PAUSE)  # as a supervisor waits before it restarts
                continue
            self.running.append(worker)
            return worker
        raise AssertionError("a worker stopped itself five times in a row while starting")

    def supervise(self, *, wait: bool = True) -> bool:
        """Start a replacement for every worker that stopped by itself (as a supervisor
        would). Its exit code is counted under ``stopped <code>``. Returns True, so that it
        chains into a wait's condition.
        Without ``wait``, a replacement is only launched (see :meth:`start_one`)."""
        for worker in list(self.running):
            assert worker.process is not None
            code = worker.process.poll()
            if code is not None:
                self.running.remove(worker)
                worker.stop()
                self.stopped[f"stopped {code}"] += 1
                if not wait:
                    time.sleep(RESTART_PAUSE)  # as a supervisor waits before it restarts
                self.start_one(worker.env()["ORDERWATCH_DATA_DIR"], wait=wait)
        return True

    def kill_one(self) -> None:
        """SIGKILL the workers in turn, and start a replacement at once."""
        victim = self.running.pop(self.turn % len(self.running))
        self.turn += 1
        victim.stop(kill=True)
        self.start_one(victim.env()["ORDERWATCH_DATA_DIR"])

    def freeze_one(self, seconds: float) -> None:
        """SIGSTOP the workers in turn for ``seconds`` while the others run, then SIGCONT."""
        victim = self.running[self.turn % len(self.running)]
        self.turn += 1
        assert victim.process is not None
        os.kill(victim.process.pid, signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            os.kill(victim.process.pid, signal.SIGCONT)

    def stop_one(self) -> None:
        self.running.pop().stop()

    def stop_all(self) -> None:
        for worker in self.running:
            worker.stop()
        self.running = []

    def wait_ready(self) -> None:
        """Every running worker ready; one that stopped itself meanwhile is replaced."""
        for _ in range(5):
            try:
                for worker in self.running:
                    worker.wait_ready(180)
                return
            except AssertionError:
                stopped = [w for w in self.running if w.process and w.process.poll() is not None]
                if not stopped or any(
                    w.process and w.process.poll() != EXIT_KAFKA_UNAVAILABLE for w in stopped
                ):
                    raise
                self.supervise()
        raise AssertionError("workers kept stopping themselves while getting ready")

    def log_lines(self) -> dict[str, int]:
        """ERROR lines, tracebacks and Faust's own stops (a crash, which exits 75 like a
        transient stop and is told apart by its line) in every worker's log."""
        text = "".join(w.log_text() for w in self.all)
        return {
            "error": sum(1 for line in text.splitlines() if "ERROR" in line),
            "traceback": text.count("Traceback (most recent call last)"),
            "faust stopped": text.count("stopping: Faust stopped on"),
        }


def run_scenario(
    bootstrap: str,
    workdir: Path,
    scenario: Scenario,
    *,
    say: Callable[[str], None] = lambda _: None,
    lines: list[bytes] | None = None,
) -> Report:
    """Produce, apply the plan's faults while producing, finish the backfill, compare.

    ``lines`` (default: the scenario's simulated stream) on the wall clock must leave the
    moment the outputs are read clear of decisions (``envelope.stable_until`` checks it).
    """
    started = time.monotonic()
    lines = scenario.lines() if lines is None else lines
    until = last_occurred(lines) + timedelta(days=1)
    group = Group(bootstrap, workdir, scenario)
    faults: Counter[str] = Counter()
    try:
        for _ in range(scenario.workers):
            group.start_one()
        producer = PacedProducer(
            bootstrap, group.name + "-", lines, scenario.rate, scenario.compression
        )
        producer.start()

        def produced(count: int) -> Callable[[], bool]:
            """A condition: ``count`` lines sent (or the producer gone), the workers supervised."""
            return lambda: group.supervise() and (producer.sent >= count or not producer.is_alive())

        steps = len(scenario.plan)
        for number, fault in enumerate(scenario.plan, start=1):
            # Spread the faults evenly over the production, the last one before it ends.
            wait_for(produced(len(lines) * number // (steps + 1)), 600, "sends")
            say(f"{fault} at {producer.sent}/{len(lines)} lines")
            apply_fault(fault, group, scenario)
            faults[fault] += 1
        producer.join(timeout=900)
        if producer.error is not None:
            raise AssertionError(f"the producer failed: {producer.error!r}")
        group.supervise()
        group.wait_ready()
        prefix = group.name + "-"
        if scenario.clock == "wall":
            from envelope import read_at_now

            comparison, replayed = read_at_now(group, lines, scenario, margin=timedelta(minutes=5))
        else:
            wait_for(
                lambda: (
                    group.supervise() and asyncio.run(group_lag(bootstrap, group.name, prefix)) == 0
                ),
                300,
                "the group to commit every input",
            )
            group.running[0].advance_clock(until.isoformat())
            wait_until_quiet(bootstrap, group.name, group)
            outputs = asyncio.run(read_all_outputs(bootstrap, prefix, scenario.isolation_level))
            replayed = replayed_outputs(lines, until)
            comparison = compare(replayed, outputs)
        log_lines = group.log_lines()
        faults.update(group.stopped)
    finally:
        group.stop_all()
    return Report(
        scenario,
        comparison,
        len(lines),
        faults,
        time.monotonic() - started,
        log_lines,
        replayed,
        app_id=group.name,
    )


def apply_fault(fault: str, group: Group, scenario: Scenario) -> None:
    if fault == "kill":
        group.kill_one()
    elif fault == "broker":
        kafka_sh("restart", str(scenario.broker_downtime))
        group.wait_ready()
    elif fault == "grow":
        group.start_one()
    elif fault == "shrink":
        group.stop_one()
    elif fault == "freeze":
        low, high = scenario.freeze_seconds
        group.freeze_one(random.Random(f"{group.name}{fault}{group.turn}").uniform(low, high))
    else:
        from envelope import ENVELOPE_FAULTS, apply_envelope_fault

        if fault not in ENVELOPE_FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        apply_envelope_fault(fault, group, scenario)


def wait_until_quiet(bootstrap: str, group: str, workers: Group) -> None:
    """After advance-clock: every internal topic read and committed, for a few seconds running."""

    async def lag() -> int:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
        await admin.start()
        await consumer.start()
        try:
            committed = await admin.list_consumer_group_offsets(group)
            ends = await consumer.end_offsets(list(committed))
            return sum(end - committed[tp].offset for tp, end in ends.items())
        finally:
            await consumer.stop()
            await admin.close()

    quiet = 0
    deadline = time.monotonic() + 300
    while quiet < 3:
        if time.monotonic() > deadline:
            raise AssertionError("the group did not finish the backfill within 300 s")
        quiet = quiet + 1 if workers.supervise() and asyncio.run(lag()) == 0 else 0
        time.sleep(2)


# ---- the soak, from the command line ------------------------------------------------------------


def soak_plan(kills: int, broker_restarts: int) -> tuple[str, ...]:
    """Grow to two workers, spread the kills and broker restarts, shrink back to one."""
    middle = ["kill"] * kills
    for index in range(broker_restarts):
        middle.insert((index + 1) * len(middle) // (broker_restarts + 1), "broker")
    return ("grow", *middle, "shrink")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--broker-restarts", type=int, default=2)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--orders", type=int, default=4000)
    parser.add_argument("--rate", type=float, default=75.0)
    parser.add_argument(
        "--envelope",
        action="store_true",
        help="also run the envelope's scenarios each run (envelope.py): frozen workers on both "
        "clocks, a frozen broker, compressed producers, the wall clock's backlog, restart and "
        "burst, and a three-node cluster",
    )
    parser.add_argument(
        "--freezes", type=int, default=8, help="SIGSTOPs of a worker per envelope scenario"
    )
    parser.add_argument(
        "--store",
        choices=("rocksdb://", "memory://"),
        help="the workers' table store (default: the worker's default)",
    )
    args = parser.parse_args()
    if args.store:
        os.environ["ORDERWATCH_TEST_STORE"] = args.store
    # This process's own Kafka clients retry through the broker restarts: no line per retry.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    bootstrap = managed_broker() or kafka_sh("start")
    scenario = Scenario(
        orders=args.orders,
        rate=args.rate,
        plan=soak_plan(args.kills, args.broker_restarts),
    )
    failed = 0
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory(prefix="orderwatch-soak-") as workdir:
            report = run_scenario(
                bootstrap, Path(workdir), scenario, say=lambda s: print(f"  {s}", flush=True)
            )
            report.name = "kills, broker restarts, grow and shrink"
            reports = [report]
            if args.envelope:
                from envelope import soak

                directory = Path(workdir) / "envelope"
                directory.mkdir()
                reports += soak(
                    bootstrap, directory, args, say=lambda s: print(f"  {s}", flush=True)
                )
        for report in reports:
            print(f"run {run}, {report.name}: {report.line()}; worker log: {report.log_lines}")
            for example in report.comparison.examples:
                print("  " + example.replace("\n", "\n  "))
            failed += not report.comparison.clean
        lost, extra, different = (
            sum(len(getattr(r.comparison, kind)) for r in reports)
            for kind in ("lost", "extra", "different")
        )
        print(f"run {run}: {lost} lost, {extra} extra, {different} different", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
