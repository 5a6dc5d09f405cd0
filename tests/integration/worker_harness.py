"""Run ``orderwatch worker`` as a real process against the test broker, feed it, read it."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, TypeVar

from aiokafka import (  # type: ignore[import-untyped]
    AIOKafkaConsumer,
    AIOKafkaProducer,
    TopicPartition,
)
from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]
from aiokafka.helpers import create_ssl_context  # type: ignore[import-untyped]

from streams.core.output_json import serialize
from streams.tools.send import Unroutable, route
from streams.worker.failures import EXIT_KAFKA_UNAVAILABLE

T = TypeVar("T")
#: An output as the tests read it: its JSON object, and where the worker published it under
#: ``_kafka`` (``topic``, ``key``, ``headers`` as (name, bytes) pairs, the ``value`` bytes).
Output = dict[str, Any]

INPUT_TOPICS = ("orders", "inventory", "tracking", "complaints")
OUTPUT_TOPICS = ("deadline-breaches", "dispute-recommendations", "dead-letter")
#: The end of each partition after what :func:`produce_lines` wrote (the embedded broker's
#: reported end offsets can be short).
PRODUCED_ENDS: dict[TopicPartition, int] = {}
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "orders.jsonl"


def security_options(env: Mapping[str, str]) -> dict[str, Any]:
    """aiokafka's security arguments for the ``ORDERWATCH_`` security variables in ``env``
    (made here with aiokafka alone, not with orderwatch's code: the test's own clients)."""
    protocol = env.get("ORDERWATCH_SECURITY_PROTOCOL", "PLAINTEXT")
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol.startswith("SASL_"):
        options.update(
            sasl_mechanism=env.get("ORDERWATCH_SASL_MECHANISM", "PLAIN"),
            sasl_plain_username=env["ORDERWATCH_SASL_USERNAME"],
            sasl_plain_password=env["ORDERWATCH_SASL_PASSWORD"],
        )
    if protocol.endswith("SSL"):
        options["ssl_context"] = create_ssl_context(cafile=env.get("ORDERWATCH_SSL_CAFILE"))
    return options


def example_lines() -> list[bytes]:
    """The example stream's non-blank lines, malformed ones included."""
    return [line for line in EXAMPLES.read_bytes().splitlines() if line.strip()]


def occurred(line: bytes) -> str | None:
    """A line's ``occurred_at`` when it is an event object, else None."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event.get("occurred_at") if isinstance(event, dict) else None


def decisions(outputs: Iterable[Output]) -> set[str]:
    """Breach, resolution and recommendation ids (every scope): what worker and replay must
    agree on (a resolution names its breach too: its own id first)."""
    return {
        str(o.get("resolution_id") or o.get("breach_id") or o.get("recommendation_id"))
        for o in outputs
        if o["type"] in ("deadline.breached", "deadline.resolved", "recommendation.issued")
    }


def replayed_outputs(
    lines: Iterable[bytes] | None = None, until: datetime | None = None
) -> list[Output]:
    """What ``orderwatch replay [--until UNTIL]`` writes for ``lines`` (default: the example
    stream), each output line as its JSON object."""
    from streams.policy_files import load_policy
    from streams.replay import replay_lines

    outputs: list[Output] = []
    replay_lines(
        example_lines() if lines is None else lines,
        lambda output: outputs.append(json.loads(serialize(output))),
        policy=load_policy(),
        until=until,
    )
    return outputs


def committed_all(*workers: WorkerRun) -> None:
    """Wait until the workers' group has committed every message of the input topics (a
    restarted worker reads from the last commit, so counters of one process would not do)."""
    first = workers[0]
    wait_for(
        lambda: run(group_lag(first.bootstrap, first.name, first.prefix, first.security)) == 0,
        120,
        "the workers to commit every input",
    )


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    """Poll ``condition`` until true; a worker that cannot answer (restarting) is not yet."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def wait_until_shared(workers: list[WorkerRun], timeout: float = 90) -> None:
    """Wait until ``workers`` (one group) hold every partition between them and all are ready."""
    wait_for(
        lambda: (
            sum(worker.metric("orderwatch_assigned_partitions") for worker in workers)
            == workers[0].partitions
            and all(worker.get("/ready")[0] == 200 for worker in workers)
        ),
        timeout,
        f"the {len(workers)} workers to share the partitions",
    )


def backfill(
    workers: list[WorkerRun],
    lines: list[bytes],
    *,
    until: list[bytes] | None = None,
    isolation_level: str = "read_uncommitted",
    expected: set[str] | None = None,
) -> list[Output]:
    """Wait until the workers committed ``lines``, advance the clock, read the outputs.

    The clock goes to the last ``occurred_at`` of ``until`` (default ``lines``); reading stops
    once every ``expected`` decision (default: replay's of the example stream) has arrived, or
    after 90 s.
    """
    committed_all(*workers)
    first = workers[0]
    first.advance_clock(max(at for line in (until or lines) if (at := occurred(line))))
    wanted = decisions(replayed_outputs()) if expected is None else expected
    return run(
        consume_outputs(
            first.bootstrap,
            first.prefix,
            until=lambda got: wanted <= decisions(got),
            security=first.security,
            timeout=90,
            isolation_level=isolation_level,
        )
    )


async def group_lag(
    bootstrap: str, group: str, prefix: str, security: Mapping[str, Any] | None = None
) -> int:
    """Messages of the input topics the group has not committed yet (read as a member of no
    generation would: the embedded broker answers no admin listing of a group's offsets)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        request_timeout_ms=10_000,
        **(security or {}),
    )
    await consumer.start()
    try:
        parts = [
            TopicPartition(prefix + topic, p)
            for topic in INPUT_TOPICS
            for p in (
                consumer.partitions_for_topic(prefix + topic)
                or await partitions_of(bootstrap, prefix + topic, security)
            )
        ]
        ends = await consumer.end_offsets(parts)
        lag = 0
        for tp, end in ends.items():
            committed = await consumer.committed(tp)
            end = max(end, PRODUCED_ENDS.get(tp, 0))
            lag += max(0, end - (committed if committed is not None and committed >= 0 else 0))
        return lag
    finally:
        await consumer.stop()


async def partitions_of(
    bootstrap: str, topic: str, security: Mapping[str, Any] | None = None
) -> set[int]:
    """The partitions of ``topic`` as the broker's metadata lists them now (none if it is
    missing). Every topic is described: a request naming it could create it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **(security or {}))
    await admin.start()
    try:
        described = await admin.describe_topics()
    finally:
        await admin.close()
    return {
        int(partition["partition"])
        for found in described
        if found["topic"] == topic
        for partition in found["partitions"]
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class WorkerRun:
    """One worker process with its own app id and topic prefix (so tests never collide).

    ``extra_env`` goes to the worker's environment last; ``ORDERWATCH_`` security variables in
    it also configure the harness's own clients of this worker's topics (:attr:`security`).
    ``supervised`` (the default) restarts the worker when it stops itself with exit 75, as a
    deployment's supervisor would (see streams.worker.failures); ``restarts`` counts those.
    """

    bootstrap: str
    workdir: Path
    partitions: int = 4
    clock: str = "event"
    name: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}")
    web_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    loglevel: str = field(
        default_factory=lambda: os.environ.get("ORDERWATCH_TEST_LOGLEVEL", "warning")
    )
    supervised: bool = True
    restarts: int = 0
    _log: IO[bytes] | None = None
    _supervisor: threading.Thread | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def prefix(self) -> str:
        return f"{self.name}-"

    @property
    def security(self) -> dict[str, Any]:
        """aiokafka security arguments for this worker's broker (see :func:`security_options`)."""
        return security_options(self.extra_env)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERWATCH_")}
        env.update(
            ORDERWATCH_BROKER=self.bootstrap,
            ORDERWATCH_APP_ID=self.name,
            ORDERWATCH_TOPIC_PREFIX=self.prefix,
            ORDERWATCH_PARTITIONS=str(self.partitions),
            ORDERWATCH_CLOCK=self.clock,
            ORDERWATCH_WEB_PORT=str(self.web_port),
            ORDERWATCH_DATA_DIR=str(self.workdir / f"data-{self.web_port}"),
        )
        # The table store every test's workers use (default: the worker's own default).
        store = os.environ.get("ORDERWATCH_TEST_STORE")
        if store:
            env["ORDERWATCH_STORE"] = store
        env.update(self.extra_env)
        return env

    def start(self, *, timeout: float | None = 90.0) -> None:
        """Launch the worker and wait up to ``timeout`` s until it is ready (None: do not wait)."""
        self.launch()
        if self.supervised:
            self._supervisor = threading.Thread(target=self._supervise, daemon=True)
            self._supervisor.start()
        if timeout is not None:
            self.wait_ready(timeout)

    def launch(self) -> None:
        """Start the worker process (again), its output appended to its log; no waiting, and
        no supervision of its own (see :meth:`start`)."""
        if self._log is not None:
            self._log.close()
        self._log = (self.workdir / f"worker-{self.web_port}.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streams", "worker", "--loglevel", self.loglevel],
            env=self.env(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def _supervise(self) -> None:
        while not self._stopping.wait(0.2):
            if self.process is not None and self.process.poll() == EXIT_KAFKA_UNAVAILABLE:
                self.restarts += 1
                self.launch()

    def _stopped_for_good(self) -> bool:
        assert self.process is not None
        code = self.process.poll()
        return code is not None and not (self.supervised and code == EXIT_KAFKA_UNAVAILABLE)

    def log_text(self) -> str:
        """Everything the worker process wrote so far (every launch of it)."""
        path = self.workdir / f"worker-{self.web_port}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def get(self, path: str) -> tuple[int, bytes]:
        """Status and body of ``GET`` ``path`` on the worker's web server."""
        return http_get(self.web_port, path)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._stopped_for_good():
                raise AssertionError(f"worker exited early:\n{self.log_text()[-4000:]}")
            try:
                status, _ = self.get("/ready")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"worker not ready after {timeout} s:\n{self.log_text()[-4000:]}")

    def stop(self, *, kill: bool = False) -> None:
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join()
        try:
            self._stop(kill=kill)
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None

    def _stop(self, *, kill: bool) -> None:
        stop_process(self.process, kill=kill)

    def metric(self, name: str, **labels: str) -> float:
        """The sum of the samples of ``name`` matching ``labels`` in /metrics."""
        _, body = self.get("/metrics")
        total = 0.0
        for line in body.decode().splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            head, _, value = line.rpartition(" ")
            if all(f'{k}="{v}"' in head for k, v in labels.items()):
                total += float(value)
        return total

    def advance_clock(self, until: str) -> None:
        """``orderwatch advance-clock --until UNTIL`` for this worker's app and topics."""
        subprocess.run(
            [sys.executable, "-m", "streams", "advance-clock", "--until", until],
            env=self.env(),
            check=True,
            capture_output=True,
        )


def http_get(port: int, path: str) -> tuple[int, bytes]:
    """Status and body of ``GET http://127.0.0.1:PORT/PATH`` (an error status is an answer)."""
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def stop_process(process: subprocess.Popen[bytes] | None, *, kill: bool = False) -> None:
    """SIGTERM (or SIGKILL) a child process still running; SIGKILL it after 30 s."""
    if process is None or process.poll() is not None:
        return
    if kill:
        process.kill()
    else:
        process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def kcat_path() -> str:
    """kcat's path; skips the test where it is missing (fails it in CI)."""
    import pytest

    kcat = shutil.which("kcat")
    if kcat is None:
        if os.environ.get("CI"):
            pytest.fail("kcat is missing in CI (Debian package kcat)")
        pytest.skip("kcat is not installed (Debian package kcat)")
    return kcat


def message_of(line: bytes) -> tuple[str, bytes | None]:
    """The contract topic and key ``orderwatch send`` gives one JSON line; a line it cannot
    route goes to ``orders`` unkeyed here (for dead-letter tests)."""
    try:
        return route(line)
    except Unroutable:
        return "orders", None


async def produce_lines(
    bootstrap: str,
    prefix: str,
    lines: Iterable[bytes],
    *,
    security: Mapping[str, Any] | None = None,
) -> int:
    """Produce ``lines`` as :func:`message_of` routes them; how many were sent."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, **(security or {}))
    await producer.start()
    sent: list[asyncio.Future[Any]] = []
    try:
        for line in lines:
            topic, key = message_of(line)
            sent.append(await producer.send(prefix + topic, line, key=key))
        for record in await asyncio.gather(*sent):
            tp = TopicPartition(record.topic, record.partition)
            PRODUCED_ENDS[tp] = max(PRODUCED_ENDS.get(tp, 0), record.offset + 1)
    finally:
        await producer.stop()
    return len(sent)


async def consume_outputs(
    bootstrap: str,
    prefix: str,
    *,
    until: Callable[[list[Output]], bool],
    timeout: float,
    isolation_level: str = "read_uncommitted",
    settle: float = 2.0,
    security: Mapping[str, Any] | None = None,
) -> list[Output]:
    """Read the output topics from the start until ``until(outputs)`` is true or time is up.

    Once ``until`` holds, reading goes on for ``settle`` seconds, so outputs that should not be
    there (duplicates, decisions replay does not make) are read too.
    """
    consumer = AIOKafkaConsumer(
        *(prefix + topic for topic in OUTPUT_TOPICS),
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        isolation_level=isolation_level,
        **(security or {}),
    )
    await consumer.start()
    outputs: list[Output] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if until(outputs):
                deadline = min(deadline, time.monotonic() + settle)
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    output = json.loads(record.value)
                    output["_kafka"] = {
                        "topic": record.topic,
                        "key": record.key.decode() if record.key is not None else None,
                        "headers": [(name, value) for name, value in record.headers],
                        "value": record.value,
                    }
                    outputs.append(output)
    finally:
        await consumer.stop()
    return outputs


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``coro`` run to its end in a new event loop."""
    return asyncio.run(coro)
