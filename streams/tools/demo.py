"""``orderwatch demo``: the whole pipeline on this machine, with nothing to set up.

It starts the embedded broker (Tansu, from the ``embedded`` extra; or uses ``--broker``), one
worker (``python -m streams worker`` in event time, with a temporary data directory, a free web
port and an app id and topic prefix of its own), and sends the simulator's marketplace to it from
this process: several stores, one malformed message in :data:`BAD_LINE_EVERY`, event time
compressed to :data:`SPEED` hours a second, so the first fulfillment deadline (5 days after
release) breaches about ten seconds after the start. A live terminal view (:mod:`demo_view`)
reads the output topics and the worker's ``/metrics``.

Ctrl-C (or SIGTERM, SIGHUP, ``--duration``) stops everything in order: this process's Kafka
clients, the worker (its process group: SIGTERM, then SIGKILL), the broker, then the temporary
directory; against ``--broker`` it deletes the topics it created. A worker that dies stops the
demo too, and its last log lines are printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import quote

from aiokafka import (  # type: ignore[import-untyped]
    AIOKafkaConsumer,
    AIOKafkaProducer,
    TopicPartition,
)
from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]
from rich.console import Console
from rich.live import Live

from streams.errors import ConfigurationError
from streams.kafka.connection import client_options, start_client
from streams.kafka.topics import ensure_topics
from streams.settings import ENV_PREFIX, Settings, load_settings
from streams.tools.demo_view import DemoState, feed_line, render
from streams.tools.embedded_broker import EmbeddedBroker, EmbeddedBrokerError
from streams.tools.send import ROLE_OF_TYPE, Unroutable, route
from streams.tools.simulator import DEFAULT_START, bad_lines, generate_events

__all__ = ["DemoOptions", "demo_lines", "run_demo"]

_T = TypeVar("_T")

#: Hours of event time sent per second of wall time.
SPEED: Final = 12.0
#: The simulated marketplace: stores, and orders placed per hour of event time.
MERCHANTS: Final = 6
ORDERS_PER_HOUR: Final = 2.0
DEFAULT_ORDERS: Final = 5000
#: One malformed message after every this many events (they reach the dead-letter topic).
BAD_LINE_EVERY: Final = 50
PARTITIONS: Final = 4
#: The demo's producer writes every topic from one stream in event-time order, so an input with
#: nothing unread may hold a partition's clock back only a little (the default is a day).
IDLE_SLACK_SECONDS: Final = 3600
#: Seconds the worker has to stop after SIGTERM, before SIGKILL.
WORKER_STOP_TIMEOUT: Final = 20.0
#: Seconds this process's Kafka clients have to stop, and to delete topics on ``--broker``.
CLIENT_STOP_TIMEOUT: Final = 10.0
#: Both, once the embedded broker died.
BROKERLESS_STOP_TIMEOUT: Final = 3.0
WORKER_LOG_LINES: Final = 30
#: Seconds between queries of the stores' health (``GET /merchants/{id}``).
MERCHANT_EVERY: Final = 5
OUTPUT_ROLES: Final = ("breaches", "recommendations", "dead_letter")


@dataclass(frozen=True)
class DemoOptions:
    """What ``orderwatch demo`` was asked for."""

    broker: str | None = None
    orders: int = DEFAULT_ORDERS
    seed: int = 1
    duration: float | None = None
    live: bool = True


class _Stopped(Exception):
    """Ctrl-C (or another stop) came while the demo was starting."""


def demo_lines(
    *, seed: int, orders: int, bad_every: int = BAD_LINE_EVERY
) -> Iterator[tuple[bytes, datetime | None]]:
    """The demo's messages: each simulated event with its ``occurred_at``, and after every
    ``bad_every`` events a malformed line (with None) from :func:`bad_lines`."""
    bad = bad_lines(random.Random(seed))
    random.Random(seed).shuffle(bad)
    events = generate_events(
        seed=seed, orders=orders, merchants=MERCHANTS, orders_per_hour=ORDERS_PER_HOUR
    )
    for count, event in enumerate(events, 1):
        yield (
            json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode(),
            datetime.fromisoformat(event["occurred_at"]),
        )
        if bad_every and count % bad_every == 0:
            yield bad[(count // bad_every - 1) % len(bad)], None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def _environment_without_settings() -> Iterator[None]:
    """``ORDERWATCH_`` variables hidden while the embedded demo's settings are read: it needs
    none, and one meant for another broker (a SASL login) would break it."""
    saved = {k: v for k, v in os.environ.items() if k.upper().startswith(ENV_PREFIX)}
    for key in saved:
        del os.environ[key]
    try:
        yield
    finally:
        os.environ.update(saved)


def run_demo(options: DemoOptions, console: Console | None = None) -> int:
    """Run the demo until Ctrl-C, ``--duration``, or the death of its worker or broker; the
    exit status."""
    return asyncio.run(_Demo(options, console or Console()).run())


class _Demo:
    def __init__(self, options: DemoOptions, console: Console) -> None:
        self.options = options
        self.console = console
        self.live_view = options.live and console.is_terminal
        self.name = f"demo-{uuid.uuid4().hex[:8]}"
        self.web_port = _free_port()
        self.started = time.monotonic()
        self.workdir: Path | None = None
        self.broker: EmbeddedBroker | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.settings: Settings | None = None
        self.state: DemoState | None = None
        self.stop = asyncio.Event()
        self.why = "stopped"
        self.failed = False
        self.topics_created = False
        self.worker_died = False
        # Cut short once the broker is gone: nothing would flush or commit anyway.
        self.client_stop_timeout = CLIENT_STOP_TIMEOUT
        self.worker_stop_timeout = WORKER_STOP_TIMEOUT
        self.broker_log: str | None = None
        self.topics_left: str | None = None
        self.tasks: list[asyncio.Task[None]] = []

    # ---- the whole run ------------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        for number in signals:
            loop.add_signal_handler(number, self._interrupted)
        try:
            try:
                await self._start()
                await self._watch()
            except _Stopped:
                pass
            except (ConfigurationError, EmbeddedBrokerError) as error:
                self._say(str(error), style="red")
                self.why = "could not start"
                self.failed = True
            finally:
                await self._shutdown()
        finally:
            for number in signals:
                loop.remove_signal_handler(number)
        self._summary()
        return 1 if self.failed else 0

    def _interrupted(self) -> None:
        if not self.stop.is_set():  # a second Ctrl-C while stopping changes no reason
            self.why = "stopped by a signal"
        self.stop.set()

    async def _until_stopped(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        """Await ``coroutine`` unless a stop comes first (then cancel it, raise _Stopped)."""
        task = asyncio.ensure_future(coroutine)
        stopping = asyncio.ensure_future(self.stop.wait())
        try:
            await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            raise _Stopped
        return task.result()

    def _say(self, text: str, style: str | None = None) -> None:
        self.console.print(
            f"orderwatch demo: {text}", style=style, markup=False, highlight=False, soft_wrap=True
        )

    async def _start(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="orderwatch-demo-"))
        embedded = self.options.broker is None
        if embedded:
            self._say("starting the embedded Kafka broker (memory only)")
            self.broker = EmbeddedBroker()
            await self._until_stopped(self.broker.astart())
            bootstrap = self.broker.bootstrap
        else:
            assert self.options.broker is not None
            bootstrap = self.options.broker
        overrides: dict[str, Any] = {
            "broker": bootstrap,
            "app_id": self.name,
            "topic_prefix": f"{self.name}-",
            "partitions": PARTITIONS,
        }
        if embedded:
            with _environment_without_settings():
                self.settings = load_settings(**overrides)
        else:
            self.settings = load_settings(**overrides)
        self._say(f"creating topics {self.settings.topic_prefix}* on {bootstrap}")
        await self._until_stopped(ensure_topics(self.settings))
        self.topics_created = True
        self._start_worker(bootstrap, embedded)
        self.state = DemoState(
            started=self.started,
            broker=bootstrap,
            embedded=embedded,
            web_url=f"http://127.0.0.1:{self.web_port}/",
            speed=SPEED,
        )
        self.tasks = [
            asyncio.create_task(self._produce(), name="demo-producer"),
            asyncio.create_task(self._consume(), name="demo-consumer"),
            asyncio.create_task(self._scrape(), name="demo-metrics"),
        ]
        for task in self.tasks:
            task.add_done_callback(self._task_done)

    def _start_worker(self, bootstrap: str, embedded: bool) -> None:
        assert self.workdir is not None
        assert self.settings is not None
        env = dict(os.environ)
        if embedded:
            env = {k: v for k, v in env.items() if not k.upper().startswith(ENV_PREFIX)}
        env.update(
            ORDERWATCH_BROKER=bootstrap,
            ORDERWATCH_APP_ID=self.settings.app_id,
            ORDERWATCH_TOPIC_PREFIX=self.settings.topic_prefix,
            ORDERWATCH_PARTITIONS=str(PARTITIONS),
            ORDERWATCH_CLOCK="event",
            ORDERWATCH_IDLE_SLACK=str(IDLE_SLACK_SECONDS),
            ORDERWATCH_WEB_HOST="127.0.0.1",
            ORDERWATCH_WEB_PORT=str(self.web_port),
            ORDERWATCH_DATA_DIR=str(self.workdir / "data"),
            ORDERWATCH_LOG_LEVEL="warning",
        )
        self._say(f"starting the worker (web {self.web_port}, log {self.workdir / 'worker.log'})")
        with (self.workdir / "worker.log").open("wb") as log:
            self.worker = subprocess.Popen(
                [sys.executable, "-m", "streams", "worker"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                # A process group of its own: Ctrl-C reaches this process alone, which stops
                # the worker before the broker it talks to.
                start_new_session=True,
            )

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None and not self.stop.is_set():
            self.why = f"{task.get_name()} failed: {type(error).__name__}: {error}"
            self.failed = True
            self.stop.set()

    async def _watch(self) -> None:
        """Draw the view until a stop: a signal, ``--duration``, or the worker's exit."""
        assert self.state is not None
        ends = None if self.options.duration is None else self.started + self.options.duration
        live: Live | None = None
        if self.live_view:
            live = Live(console=self.console, auto_refresh=False, screen=True)
            live.start()
        else:
            self._say(f"console {self.state.web_url} (Ctrl-C stops the demo)")
        last_status = time.monotonic()
        try:
            while not self.stop.is_set():
                now = time.monotonic()
                if self.worker is not None and self.worker.poll() is not None:
                    self.why = f"the worker exited with status {self.worker.returncode}"
                    self.worker_died = True
                    self.failed = True
                    break
                if self.broker is not None and not self.broker.running:
                    self.why = "the embedded broker exited"
                    self.broker_log = self.broker.log_tail(WORKER_LOG_LINES)
                    self.failed = True
                    self.client_stop_timeout = BROKERLESS_STOP_TIMEOUT
                    self.worker_stop_timeout = BROKERLESS_STOP_TIMEOUT
                    break
                if ends is not None and now >= ends:
                    self.why = f"--duration {self.options.duration:g} s passed"
                    break
                if live is not None:
                    live.update(render(self.state, now, height=self.console.height), refresh=True)
                elif now - last_status >= 5:
                    last_status = now
                    self._say(self._status_line(now))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), 0.25)
        finally:
            if live is not None:
                live.stop()

    def _status_line(self, now: float) -> str:
        state = self.state
        assert state is not None
        opened = "-" if state.open_orders is None else f"{state.open_orders:,}"
        return (
            f"sent {state.sent:,} events ({state.events_per_second(now):,.0f}/s), "
            f"open orders {opened}, breaches {state.breaches:,}, recommendations "
            f"{state.recommendations:,}, dead letters {state.dead_letters:,}"
        )

    # ---- the three clients ------------------------------------------------------------------

    async def _produce(self) -> None:
        """Send the simulated stream, paced so event time passes at :data:`SPEED`."""
        settings, state = self.settings, self.state
        assert settings is not None
        assert state is not None
        producer = AIOKafkaProducer(
            **client_options(settings),
            client_id=f"{settings.app_id}-demo",
            acks=1,
            linger_ms=5,
        )
        await start_client(producer, settings)
        topics = {role: settings.topic(role) for role in set(ROLE_OF_TYPE.values())}
        loop = asyncio.get_running_loop()
        began = loop.time()
        sent = bad = 0
        latest: datetime | None = None
        pending: list[asyncio.Future[Any]] = []
        try:
            for line, at in demo_lines(seed=self.options.seed, orders=self.options.orders):
                if at is not None:
                    latest = at if latest is None or at > latest else latest
                    due = began + (at - DEFAULT_START).total_seconds() / 3600 / SPEED
                    if due - loop.time() > 0.02:
                        state.record_sent(time.monotonic(), sent, bad, latest)
                        await asyncio.gather(*pending)
                        pending.clear()
                        await asyncio.sleep(max(0.0, due - loop.time()))
                try:
                    role, key = route(line)
                except Unroutable:
                    role, key = "orders", None  # as a stray producer would: the worker rejects it
                    bad += 1
                else:
                    if at is None:
                        bad += 1
                pending.append(await producer.send(topics[role], line, key=key))
                sent += 1
            await asyncio.gather(*pending)
            state.record_sent(time.monotonic(), sent, bad, latest)
            state.sending_done = True
        finally:
            await asyncio.wait_for(producer.stop(), self.client_stop_timeout)

    async def _consume(self) -> None:
        """Read the output topics from their start (no consumer group) into the view."""
        settings, state = self.settings, self.state
        assert settings is not None
        assert state is not None
        role_of = {settings.topic(role): role for role in OUTPUT_ROLES}
        consumer = AIOKafkaConsumer(
            **client_options(settings),
            client_id=f"{settings.app_id}-demo-view",
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await start_client(consumer, settings)
        try:
            consumer.assign(
                [TopicPartition(topic, p) for topic in role_of for p in range(settings.partitions)]
            )
            while True:
                batches = await consumer.getmany(timeout_ms=250, max_records=500)
                now = time.monotonic()
                for records in batches.values():
                    for record in records:
                        row = state.apply_output(role_of[record.topic], record.value, now)
                        if row is not None and not self.live_view:
                            self.console.print(
                                feed_line(row), markup=False, highlight=False, soft_wrap=True
                            )
        finally:
            await asyncio.wait_for(consumer.stop(), self.client_stop_timeout)

    async def _scrape(self) -> None:
        """The worker's /metrics once a second (open orders, its clock, readiness), and each
        store's ``GET /merchants/{id}`` every few seconds where the worker serves it."""
        state = self.state
        assert state is not None
        root = f"http://127.0.0.1:{self.web_port}"

        def get(path: str) -> str:
            with urllib.request.urlopen(root + path, timeout=2) as response:
                body: bytes = response.read()
                return body.decode("utf-8", "replace")

        for count in itertools.count():
            with contextlib.suppress(OSError):
                state.apply_metrics(await asyncio.to_thread(get, "/metrics"))
            if count % MERCHANT_EVERY == 0 and state.worker_ready:
                for store in state.store_ids():
                    try:
                        body = await asyncio.to_thread(get, f"/merchants/{quote(store)}")
                        state.apply_merchant(store, json.loads(body))
                    except (OSError, ValueError):
                        break  # not served (yet): warnings from recommendations meanwhile
            await asyncio.sleep(1.0)

    # ---- stopping ---------------------------------------------------------------------------

    async def _shutdown(self) -> None:
        """Clients, then the worker, then the broker, then the topics (``--broker``) and the
        temporary directory; each step runs whatever happened before it."""
        self.stop.set()  # what the clients raise while stopping is no reason of its own
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(BaseException):
                await task
        if self.worker is not None:
            await asyncio.to_thread(_stop_group, self.worker, self.worker_stop_timeout)
            if self.worker_died:
                self._print_worker_log()
        if self.broker is not None:
            await asyncio.to_thread(self.broker.stop)
            if self.broker_log is not None:
                self._say(f"the embedded broker's last log lines ({WORKER_LOG_LINES} at most):")
                for line in self.broker_log.splitlines():
                    self.console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)
        elif self.settings is not None and self.topics_created:
            try:
                await asyncio.wait_for(_delete_topics(self.settings), CLIENT_STOP_TIMEOUT)
            except Exception as error:
                self.topics_left = f"{type(error).__name__}: {error}"
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _print_worker_log(self) -> None:
        assert self.workdir is not None
        try:
            lines = (self.workdir / "worker.log").read_text(errors="replace").splitlines()
        except OSError:
            return
        if not lines:
            self._say("the worker wrote no log")
            return
        self._say(f"the worker's last log lines ({WORKER_LOG_LINES} at most):")
        for line in lines[-WORKER_LOG_LINES:]:
            self.console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)

    def _summary(self) -> None:
        state = self.state
        elapsed = time.monotonic() - self.started
        text = f"{self.why} after {elapsed:.0f} s"
        if state is not None:
            text += (
                f"; sent {state.sent:,} events ({state.bad:,} bad): {state.breaches:,} breaches, "
                f"{state.recommendations:,} recommendations, {state.dead_letters:,} dead letters"
            )
            if state.first_breach_after is not None:
                text += f"; first breach {state.first_breach_after:.1f} s after start"
        self._say(text)
        gone = ["worker"] if self.worker is not None else []
        if self.broker is not None:
            gone.append("broker")
        elif self.topics_created and self.topics_left is None:
            gone.append("topics")
        gone.append("temporary files")
        self._say(f"{', '.join(gone[:-1])}{' and ' if len(gone) > 1 else ''}{gone[-1]} removed")
        if self.topics_left is not None and self.settings is not None:
            self._say(
                f"could not delete the topics {self.settings.topic_prefix}* ({self.topics_left})",
                style="yellow",
            )


def _stop_group(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM the process's group, wait ``timeout`` s, then SIGKILL the group; reaps it."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        # Not reaped yet, so the group id is still the worker's own.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)


async def _delete_topics(settings: Settings) -> None:
    """Delete every topic of the demo's prefix (``--broker``: leave the cluster as found)."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(settings.topic_prefix)]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()
