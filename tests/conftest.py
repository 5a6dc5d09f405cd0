"""Suite-wide fixtures and markers: the Kafka broker the integration tests run against.

Which broker:

- ``ORDERWATCH_TEST_BROKER=host:port`` set: that broker, a real Apache Kafka (CI starts one with
  ``scripts/kafka.sh start``; ``eval "$(scripts/kafka.sh env)"`` exports it locally).
- unset: an embedded Tansu broker (``streams.brokers.EmbeddedBroker``, from the ``embedded``
  extra) started once for the session and stopped at its end. Tansu is memory-only and has no
  transactions.

Markers:

- ``broker``: the test needs a broker (it uses the ``kafka_bootstrap`` fixture).
- ``durable_broker``: the test needs what Tansu lacks (durability across a broker restart,
  transactions); skipped on Tansu.

``ORDERWATCH_REQUIRE_BROKER=1`` (set by CI) turns every skip of a test marked ``broker`` or
``durable_broker`` into a failure, and fails the session if no such test ran at all, so that a
missing broker cannot pass silently.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

from streams.brokers import EmbeddedBroker
from streams.errors import ConfigurationError

BROKER_ENV = "ORDERWATCH_TEST_BROKER"
REQUIRE_ENV = "ORDERWATCH_REQUIRE_BROKER"
BROKER_MARKERS = ("broker", "durable_broker")

BrokerKind = Literal["apache", "tansu"]


@dataclass
class _BrokerRun:
    """What this session saw of its broker, for the terminal summary and the final verdict."""

    notes: list[str] = field(default_factory=list)
    passed: int = 0  # tests marked broker or durable_broker that passed


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
            f"orderwatch broker: {REQUIRE_ENV} is set but no test marked broker or durable_broker "
            "passed (none collected, all deselected or all failed): failing the run",
            red=True,
        )
