"""Suite-wide fixtures and markers: the Kafka broker the integration tests run against.

Which broker:

- ``ORDERWATCH_TEST_BROKER=host:port`` set: that broker, a real Apache Kafka (CI starts one with
  ``scripts/kafka.sh start``; ``set -a; eval "$(scripts/kafka.sh env)"; set +a`` exports it
  locally, with ``ORDERWATCH_BROKER`` for orderwatch's own commands).
- unset: an embedded Tansu broker (``streams.tools.embedded_broker.EmbeddedBroker``, from the
``embedded``
  extra) started once for the session and stopped at its end. Tansu is memory-only and has no
  transactions.

Markers:

- ``broker``: the test needs a broker (it uses the ``kafka_bootstrap`` fixture).
- ``durable_broker``: the test needs what Tansu lacks (durability across a broker restart,
  transactions); skipped on Tansu.
- ``secured_broker``: the test uses the ``secured_kafka`` fixture, an Apache Kafka of its own
  with a SASL_SSL listener (``scripts/kafka.sh start --secured`` under its own
  ``ORDERWATCH_KAFKA_HOME`` in a temporary directory, started once for the session whatever
  ``ORDERWATCH_TEST_BROKER`` says, stopped at its end). It needs Java, openssl, and Maven unless
  the jars are already resolved; without them it is skipped.

``ORDERWATCH_REQUIRE_BROKER=1`` (set by CI) turns every skip of a test marked ``broker``,
``durable_broker`` or ``secured_broker`` into a failure, and fails the session if no such test
ran at all, so that a missing broker cannot pass silently.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

from streams.errors import ConfigurationError
from streams.tools.embedded_broker import EmbeddedBroker

BROKER_ENV = "ORDERWATCH_TEST_BROKER"
REQUIRE_ENV = "ORDERWATCH_REQUIRE_BROKER"
BROKER_MARKERS = ("broker", "durable_broker", "secured_broker")
REPO = Path(__file__).resolve().parents[1]
KAFKA_SH = REPO / "scripts" / "kafka.sh"

BrokerKind = Literal["apache", "tansu"]


@dataclass
class _BrokerRun:
    """What this session saw of its broker, for the terminal summary and the final verdict."""

    notes: list[str] = field(default_factory=list)
    passed: int = 0  # tests with one of BROKER_MARKERS that passed


_RUN = pytest.StashKey[_BrokerRun]()


def _configured_broker() -> str | None:
    return os.environ.get(BROKER_ENV, "").strip() or None


def _session_broker_kind() -> BrokerKind:
    return "apache" if _configured_broker() else "tansu"


def _broker_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "").strip() not in ("", "0")


def _needs_broker(item: pytest.Item) -> bool:
    return any(item.get_closest_marker(name) is not None for name in BROKER_MARKERS)


# ---- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _local_state_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers a test builds keep their local state (rocksdb://, the default) in the test's own
    directory, never in ``orderwatch-data`` under the working directory, where it would leak
    from one test, or one run, into the next."""
    monkeypatch.setenv("ORDERWATCH_DATA_DIR", str(tmp_path / "orderwatch-data"))


@pytest.fixture(scope="session")
def broker_kind() -> BrokerKind:
    """``"apache"`` when ``ORDERWATCH_TEST_BROKER`` names a broker, else ``"tansu"`` (embedded)."""
    return _session_broker_kind()


@pytest.fixture(scope="session")
def kafka_bootstrap(pytestconfig: pytest.Config) -> Iterator[str]:
    """``"host:port"`` of a running Kafka broker, for the whole session (see the module doc)."""
    run = pytestconfig.stash[_RUN]
    configured = _configured_broker()
    if configured is not None:
        run.notes.append(f"Apache Kafka at {configured} ({BROKER_ENV})")
        yield configured
        return
    started = time.monotonic()
    try:
        broker = EmbeddedBroker().start()
    except ConfigurationError as exc:
        pytest.skip(
            f"no Kafka broker: {BROKER_ENV} is unset and the embedded one is missing: {exc}"
        )
    run.notes.append(
        f"embedded Tansu at {broker.bootstrap}, answering {time.monotonic() - started:.2f} s "
        "after start"
    )
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def system_tool() -> Callable[..., str]:
    """``system_tool(package, *names)``: the path of the first of ``names`` on PATH.

    A missing tool skips the test with the ``apt-get install`` that provides it, unless ``CI``
    or ``ORDERWATCH_REQUIRE_BROKER`` is set: then it fails (a missing tool must not pass).
    """

    def find(package: str, *names: str) -> str:
        for name in names:
            path = shutil.which(name)
            if path is not None:
                return path
        wanted = " or ".join(names)
        if os.environ.get("CI") or _broker_required():
            pytest.fail(
                f"{wanted} is not on PATH, and CI or {REQUIRE_ENV} is set: "
                f"apt-get install {package}"
            )
        pytest.skip(f"{wanted} is not on PATH: apt-get install {package}")

    return find


@dataclass(frozen=True)
class TlsFiles:
    """A CA, and a certificate it signed for 127.0.0.1 and localhost with its key (PEM files)."""

    ca: Path
    cert: Path
    key: Path


def _openssl(directory: Path, *args: str) -> None:
    subprocess.run(
        ["openssl", *args], cwd=directory, check=True, capture_output=True, stdin=subprocess.DEVNULL
    )


@pytest.fixture(scope="session")
def make_tls(
    tmp_path_factory: pytest.TempPathFactory, system_tool: Callable[..., str]
) -> Callable[[str], TlsFiles]:
    """``make_tls(name)``: a fresh CA and a certificate it signed, generated with openssl (see
    ``system_tool`` for a missing openssl)."""
    system_tool("openssl", "openssl")

    def make(name: str) -> TlsFiles:
        directory = tmp_path_factory.mktemp(f"tls-{name}")
        _openssl(
            directory, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
            "-subj", f"/CN={name} test CA", "-keyout", "ca.key", "-out", "ca.pem",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip
        _openssl(
            directory, "req", "-newkey", "rsa:2048", "-nodes", "-sha256", "-subj", "/CN=localhost",
            "-keyout", "cert.key", "-out", "cert.csr",
        )  # fmt: skip
        (directory / "cert.ext").write_text(
            "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
        )
        _openssl(
            directory, "x509", "-req", "-sha256", "-days", "2", "-in", "cert.csr",
            "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-extfile", "cert.ext",
            "-out", "cert.pem",
        )  # fmt: skip
        return TlsFiles(directory / "ca.pem", directory / "cert.pem", directory / "cert.key")

    return make


@dataclass(frozen=True)
class SecuredKafka:
    """The session's secured Apache Kafka: its SASL_SSL address and the ``ORDERWATCH_``
    variables a client needs (``ORDERWATCH_SECURITY_PROTOCOL``, ``_SASL_MECHANISM``,
    ``_SASL_USERNAME``, ``_SASL_PASSWORD``, ``_SSL_CAFILE``), as ``scripts/kafka.sh env`` prints
    them."""

    bootstrap: str
    env: dict[str, str]

    @property
    def password(self) -> str:
        return self.env["ORDERWATCH_SASL_PASSWORD"]


def _kafka_sh(home: Path, *args: str, timeout: float = 600) -> str:
    env = {**os.environ, "ORDERWATCH_KAFKA_HOME": str(home)}
    env.pop("ORDERWATCH_KAFKA_SECURED", None)
    env.setdefault("ORDERWATCH_KAFKA_HEAP", "-Xms128m -Xmx512m")
    done = subprocess.run(
        [str(KAFKA_SH), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise RuntimeError(f"scripts/kafka.sh {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def _reuse_jars(home: Path) -> bool:
    """Link the jars another ``scripts/kafka.sh`` home already resolved for the same pom (saves
    a Maven run); True if there were some."""
    pom = hashlib.sha256((REPO / "scripts" / "kafka" / "pom.xml").read_bytes()).hexdigest()
    for cache in (os.environ.get("ORDERWATCH_KAFKA_HOME"), str(REPO / ".ci" / "cache" / "kafka")):
        if not cache:
            continue
        libs, stamp = Path(cache) / "libs", Path(cache) / "libs.pom.sha256"
        if libs.is_dir() and stamp.is_file() and stamp.read_text().strip() == pom:
            (home / "libs").symlink_to(libs.resolve(), target_is_directory=True)
            shutil.copy(stamp, home / "libs.pom.sha256")
            return True
    return False


@pytest.fixture(scope="session")
def secured_kafka(
    pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecuredKafka]:
    """An Apache Kafka of the session's own with a SASL_SSL listener (see the module doc)."""
    home = tmp_path_factory.mktemp("kafka-secured")
    java = "java" if not os.environ.get("JAVA_HOME") else f"{os.environ['JAVA_HOME']}/bin/java"
    missing = [tool for tool in (java, "openssl", "python3") if shutil.which(tool) is None]
    if not _reuse_jars(home) and shutil.which("mvn") is None:
        missing.append("mvn (the Kafka jars are not resolved yet)")
    if missing:
        pytest.skip(f"no secured Apache Kafka: {', '.join(missing)} not found")
    started = time.monotonic()
    try:
        bootstrap = _kafka_sh(home, "start", "--secured").strip().splitlines()[-1]
        lines = _kafka_sh(home, "env").splitlines()
        env = dict(line.split("=", 1) for line in lines if line.strip())
        env.pop("ORDERWATCH_BROKER", None)
        pytestconfig.stash[_RUN].notes.append(
            f"secured Apache Kafka (SASL_SSL) at {bootstrap}, answering "
            f"{time.monotonic() - started:.1f} s after start"
        )
        yield SecuredKafka(bootstrap, env)
    finally:
        _kafka_sh(home, "stop", timeout=120)


# ---- hooks ---------------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_RUN] = _BrokerRun()


def pytest_report_header(config: pytest.Config) -> list[str]:
    configured = _configured_broker()
    where = f"Apache Kafka at {configured}" if configured else "embedded Tansu (started on demand)"
    required = ", skips of broker tests fail" if _broker_required() else ""
    return [f"orderwatch broker: {where}{required}"]


def pytest_runtest_setup(item: pytest.Item) -> None:
    marker = item.get_closest_marker("durable_broker")
    if marker is not None and _session_broker_kind() == "tansu":
        why = (
            marker.args[0]
            if marker.args
            else ("the embedded Tansu broker is memory-only and has no transactions")
        )
        pytest.skip(f"needs Apache Kafka: {why}; set {BROKER_ENV} to run it")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """With ``ORDERWATCH_REQUIRE_BROKER`` set, a skipped broker test is reported as failed."""
    report = yield
    if not _needs_broker(item):
        return report
    if report.when == "call" and report.passed:
        item.config.stash[_RUN].passed += 1
    if report.skipped and not hasattr(report, "wasxfail") and _broker_required():
        reason = _skip_reason(report)
        report.outcome = "failed"
        report.longrepr = (
            f"{REQUIRE_ENV} is set, so this broker test must run, but it was skipped "
            f"during {report.when}: {reason}"
        )
    return report


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr: Any = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # (path, line, "Skipped: reason")
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _none_ran_but_required(config: pytest.Config) -> bool:
    return _broker_required() and not config.option.collectonly and config.stash[_RUN].passed == 0


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _none_ran_but_required(session.config) and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    for note in config.stash[_RUN].notes:
        terminalreporter.write_line(f"orderwatch broker: {note}")
    if _none_ran_but_required(config) and exitstatus in (
        pytest.ExitCode.OK,
        pytest.ExitCode.TESTS_FAILED,
    ):
        terminalreporter.write_line(
            f"orderwatch broker: {REQUIRE_ENV} is set but no test marked "
            f"{' or '.join(BROKER_MARKERS)} passed (none collected, all deselected or all "
            "failed): failing the run",
            red=True,
        )
