"""Worker throughput against a raw aiokafka loop and a bare Faust agent on the same broker.

Run from the repository root::

    python -m bench.worker_throughput [--events N] [--broker HOST:PORT] [--partitions P]
        [--baseline DIR --baseline-label TEXT] [--rounds R]

Every line reads the same pre-produced stream (``streams.tools.simulator``, keyed as the contract
says) from its own copy of the four input topics, under its own group / app id:

- raw aiokafka: the simplest useful loop, in this process: an aiokafka consumer group reads the
  four input topics, validates each value with the contract models (``decode_event``) and
  produces one message per input; timed from its first fetched batch until it handled the last
  message (then its producer is flushed, inside the time);
- bare Faust agent, per message: ``bench.bare_agent`` (a minimal ``faust.App``, raw
  serializers, one agent over the four topics that ``json.loads`` each value and ``await
  topic.send(...)`` one message per input), a process of its own;
- bare Faust agent, batched: the same over ``stream.take_events(1000, within=0.1)`` with
  ``topic.send_soon(...)``;
- ``orderwatch worker`` (event-time clock), a process of its own;
- with ``--baseline DIR``: ``orderwatch worker`` of the source tree ``DIR`` (another commit,
  run with ``PYTHONPATH=DIR``), in turn with this tree's worker, ``--rounds`` times each, so
  that two versions are compared in one run on one broker.

The three processes are timed the same way: from the moment their ``/ready`` answers 200 until
their own count of handled input messages, read from their ``/metrics`` every 0.1 s, reaches
N (the worker's: ``orderwatch_events_consumed_total`` + ``orderwatch_events_rejected_total``,
counted as a message's handling starts; the bare agents': messages whose output was handed to
the producer). The bare agents' outputs are then checked: N messages on their output topic.

``ORDERWATCH_BENCH_PROFILE=DIR`` (the benchmark's knob, never the worker's): the worker and the
bare agents are sampled by ``py-spy record --pid`` (100 Hz, non-blocking) from ready until they
have handled N messages, their collapsed stacks written to ``DIR/worker.pyspy.txt`` and
``DIR/bare-MODE.pyspy.txt`` (summarise with ``python -m bench.profile_summary``); such a run's
numbers are of profiled processes, not to be compared with unprofiled runs.

Results go to ``bench/results/worker_throughput.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from itertools import islice
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # type: ignore[import-untyped]

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))

from worker_harness import WorkerRun, free_port, http_get, produce_lines, stop_process  # noqa: E402

from bench.record import record  # noqa: E402
from streams.core.events import decode_event  # noqa: E402
from streams.kafka.admin import create_topics  # noqa: E402
from streams.tools.embedded_broker import EmbeddedBroker  # noqa: E402
from streams.tools.simulator import generate_events  # noqa: E402

INPUTS = ("orders", "inventory", "tracking", "complaints")
#: Seconds between two readings of a process's count of handled messages (one ``/metrics``
#: request each: the worker's exposition costs it about 2 ms of CPU).
POLL = 0.1
TIMEOUT = 900.0


def simulated_lines(events: int) -> list[bytes]:
    """The first ``events`` events of the simulator's seed-3 stream, as compact JSON lines (the
    stream every line of this benchmark, and ``bench.scaling``, reads)."""
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


def until_counted(count: Callable[[], float], expected: int, what: str) -> float:
    """Seconds from now until ``count()`` reaches ``expected`` (read every :data:`POLL` s)."""
    started = time.perf_counter()
    while True:
        done = count()
        if done >= expected:
            return time.perf_counter() - started
        if time.perf_counter() - started > TIMEOUT:
            raise SystemExit(f"{what} handled {done} of {expected} in {TIMEOUT:g} s")
        time.sleep(POLL)


class Profiler:
    """``py-spy record --pid`` of a process, stopped (SIGINT: it writes its file) on demand."""

    def __init__(self, pid: int, out: Path) -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        self.out = out
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("py-spy")),
                "record",
                "--pid",
                str(pid),
                "--format",
                "raw",
                "--rate",
                "100",
                "--nonblocking",
                "-o",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(1.0)  # py-spy attaches

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        _, err = self.process.communicate(timeout=60)
        if not self.out.exists():
            raise SystemExit(f"py-spy wrote no profile: {err.decode(errors='replace')}")


#: The worker's counters of input messages whose handling started: valid and rejected ones.
PROCESSED = ("orderwatch_events_consumed_total", "orderwatch_events_rejected_total")


def metric_sum(body: bytes, *names: str) -> float:
    """The sum of every sample of the metrics ``names`` in a Prometheus exposition."""
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith(
            tuple(f"{name}{{" for name in names) + tuple(f"{name} " for name in names)
        ):
            total += float(line.rpartition(" ")[2])
    return total


def worker_processed(worker: WorkerRun) -> float:
    """Input messages the worker consumed or rejected, from one read of its ``/metrics``."""
    return metric_sum(worker.get("/metrics")[1], *PROCESSED)


def _worker_run(worker: WorkerRun, expected: int, profile: Path | None) -> float:
    try:
        worker.start()
        profiler = None
        if profile is not None:
            assert worker.process is not None
            profiler = Profiler(worker.process.pid, profile / "worker.pyspy.txt")
        try:
            return until_counted(lambda: worker_processed(worker), expected, "the worker")
        finally:
            if profiler is not None:
                profiler.stop()
    finally:
        worker.stop()


class BareRun:
    """``python -m bench.bare_agent`` as a process, with its own app id and topic prefix."""

    def __init__(self, bootstrap: str, workdir: Path, mode: str) -> None:
        self.bootstrap, self.workdir, self.mode = bootstrap, workdir, mode
        self.prefix = f"b{uuid.uuid4().hex[:10]}-"
        self.web_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = workdir / f"bare-{self.web_port}.log"

    def start(self, timeout: float = 90.0) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERWATCH_")}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.bare_agent",
                    "--broker",
                    self.bootstrap,
                    "--prefix",
                    self.prefix,
                    "--web-port",
                    str(self.web_port),
                    "--mode",
                    self.mode,
                    "--datadir",
                    str(self.workdir / f"bare-data-{self.web_port}"),
                ],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"bare agent exited:\n{self.log.read_text()[-4000:]}")
            try:
                if self._get("/ready")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"bare agent not ready in {timeout:g} s:\n{self.log.read_text()[-4000:]}")

    def _get(self, path: str) -> tuple[int, bytes]:
        return http_get(self.web_port, path)

    def processed(self) -> float:
        _, body = self._get("/metrics")
        return float(body.split()[-1])

    def stop(self) -> None:
        stop_process(self.process)


async def _count_outputs(bootstrap: str, topic: str, expected: int, timeout: float) -> int:
    """Messages read from ``topic``'s start until ``expected`` or ``timeout`` s (read, not the
    end offsets: the embedded broker's reported ends can be short)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        count = 0
        deadline = time.monotonic() + timeout
        while count < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            count += sum(len(records) for records in batch.values())
        return count
    finally:
        await consumer.stop()


def _bare_run(bare: BareRun, expected: int, profile: Path | None) -> float:
    try:
        bare.start()
        profiler = None
        if profile is not None:
            assert bare.process is not None
            profiler = Profiler(bare.process.pid, profile / f"bare-{bare.mode}.pyspy.txt")
        try:
            seconds = until_counted(bare.processed, expected, f"the bare agent ({bare.mode})")
        finally:
            if profiler is not None:
                profiler.stop()
        out = asyncio.run(_count_outputs(bare.bootstrap, bare.prefix + "bare-out", expected, 60))
        if out < expected:
            raise SystemExit(f"the bare agent ({bare.mode}) produced {out} of {expected}")
        return seconds
    finally:
        bare.stop()


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} × {cpu}, CPython {platform.python_version()}, "
        f"faust-streaming {metadata.version('faust-streaming')}, "
        f"aiokafka {metadata.version('aiokafka')}"
    )


def _feed(bootstrap: str, prefix: str, partitions: int, lines: list[bytes], *extra: str) -> None:
    topics = {prefix + t: partitions for t in (*INPUTS, *extra)}
    asyncio.run(create_topics(bootstrap, topics))
    asyncio.run(produce_lines(bootstrap, prefix, lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--broker", help="bootstrap servers (default: start the embedded broker)")
    parser.add_argument(
        "--out", type=Path, default=REPO / "bench" / "results" / "worker_throughput.md"
    )
    parser.add_argument("--baseline", type=Path, help="a source tree of another commit")
    parser.add_argument("--baseline-label", default="baseline", help="what --baseline is")
    parser.add_argument("--rounds", type=int, default=1, help="worker runs per version")
    args = parser.parse_args(argv)
    profile_dir = os.environ.get("ORDERWATCH_BENCH_PROFILE")
    profile = Path(profile_dir) if profile_dir else None
    embedded = None if args.broker else EmbeddedBroker().start()
    bootstrap: str = args.broker if embedded is None else embedded.bootstrap
    lines = simulated_lines(args.events)
    n = len(lines)
    seconds: dict[str, float] = {}
    try:
        with tempfile.TemporaryDirectory() as workdir:
            work = Path(workdir)
            raw = WorkerRun(bootstrap, work, partitions=args.partitions)
            _feed(bootstrap, raw.prefix, args.partitions, lines, "out")
            seconds["raw"] = asyncio.run(_raw_loop(bootstrap, raw.prefix, n))
            for mode in ("per-message", "batched"):
                bare = BareRun(bootstrap, work, mode)
                _feed(bootstrap, bare.prefix, args.partitions, lines, "bare-out")
                seconds[mode] = _bare_run(bare, n, profile)
            versions: list[tuple[str, dict[str, str]]] = [("worker", {})]
            if args.baseline is not None:
                versions.append(("baseline", {"PYTHONPATH": str(args.baseline.resolve())}))
            for round_ in range(args.rounds):
                for name, env in versions:
                    worker = WorkerRun(bootstrap, work, partitions=args.partitions, extra_env=env)
                    _feed(bootstrap, worker.prefix, args.partitions, lines)
                    key = name if round_ == 0 else f"{name}-{round_ + 1}"
                    seconds[key] = _worker_run(worker, n, profile)
    finally:
        if embedded is not None:
            embedded.stop()
    rate = {name: n / s for name, s in seconds.items()}
    base = rate["per-message"]
    kind = "embedded Tansu" if embedded else f"broker {args.broker}"
    labels = {
        "raw": "raw aiokafka consume → `decode_event` → produce",
        "per-message": "bare Faust agent: `json.loads` and send, per message",
        "batched": "the same agent over `take_events(1000, within=0.1)` with `send_soon`",
        "worker": "`orderwatch worker` (event time)",
        "baseline": f"`orderwatch worker` (event time), {args.baseline_label}",
    }
    for name in list(seconds):
        if "-" in name and name.rsplit("-", 1)[0] in labels:
            stem, number = name.rsplit("-", 1)
            labels[name] = f"{labels[stem]}, round {number}"
    rows = [
        f"| {labels[name]} | {seconds[name]:.2f} | {rate[name]:,.0f} | {rate[name] / base:.3f} |"
        for name in seconds
    ]
    shown = list(argv if argv is not None else sys.argv[1:])
    if args.baseline is not None:  # the tree's path is this machine's: shown as BASE
        shown = [
            "BASE" if arg == str(args.baseline) else arg.replace(str(args.baseline), "BASE")
            for arg in shown
        ]
    report = "\n".join(
        [
            f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {n:,} events, {kind}, "
            f"{args.partitions} partitions" + (", profiled (py-spy)" if profile else ""),
            "",
            f"- command: `python -m bench.worker_throughput {shlex.join(shown)}`"
            + (f" with `ORDERWATCH_BENCH_PROFILE={profile}`" if profile is not None else ""),
            f"- machine: {machine()}",
            "",
            "| loop | seconds | events/s | / bare per message |",
            "|---|---:|---:|---:|",
            *rows,
            "",
        ]
    )
    record(report, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
