"""orderwatch on a secured Apache Kafka: SASL_SSL with SCRAM (and PLAIN), every client.

The broker is the session's own (``secured_kafka``: ``scripts/kafka.sh start --secured``), so
these tests run whatever ``ORDERWATCH_TEST_BROKER`` says; the test's own producers and
consumers connect over SASL_SSL too, configured with aiokafka alone.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from aiokafka import AIOKafkaConsumer  # type: ignore[import-untyped]
from worker_harness import (
    EXAMPLES,
    Output,
    WorkerRun,
    backfill,
    decisions,
    example_lines,
    produce_lines,
    replayed_outputs,
    run,
    security_options,
)

from streams.kafka.admin import create_topics, wait_for_broker
from streams.tools.send import Unroutable, route

if TYPE_CHECKING:  # the suite's conftest: its fixtures' types
    from tests.conftest import SecuredKafka, TlsFiles

pytestmark = pytest.mark.secured_broker


def orderwatch(
    secured: SecuredKafka, *args: str, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    """``python -m streams ARGS`` against the secured broker, ``env`` over its settings."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ORDERWATCH_")}
    environ.update(secured.env, ORDERWATCH_BROKER=secured.bootstrap, **env)
    return subprocess.run(
        [sys.executable, "-m", "streams", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode != 0, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.fixture(scope="module")
def backfilled(
    secured_kafka: SecuredKafka, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[WorkerRun, list[Output]]]:
    """An event-time worker on SASL_SSL fed the example stream over SASL_SSL, its clock
    advanced with ``orderwatch advance-clock`` over SASL_SSL, its outputs read over SASL_SSL."""
    worker = WorkerRun(
        secured_kafka.bootstrap,
        tmp_path_factory.mktemp("secured-worker"),
        extra_env=secured_kafka.env,
        loglevel="info",
    )
    try:
        worker.start()
        lines = example_lines()
        run(produce_lines(worker.bootstrap, worker.prefix, lines, security=worker.security))
        yield worker, backfill([worker], lines)
    finally:
        worker.stop()


def test_a_worker_on_sasl_ssl_decides_what_replay_decides(
    backfilled: tuple[WorkerRun, list[Output]],
) -> None:
    _, outputs = backfilled
    expected = decisions(replayed_outputs())
    assert expected
    assert decisions(outputs) == expected


def test_the_worker_says_how_it_connects_and_never_prints_the_password(
    backfilled: tuple[WorkerRun, list[Output]], secured_kafka: SecuredKafka
) -> None:
    worker, _ = backfilled
    log = worker.log_text()
    assert "SASL_SSL (SCRAM-SHA-512 as orderwatch)" in log
    assert secured_kafka.password not in log


def test_the_broker_refuses_plaintext_clients(secured_kafka: SecuredKafka) -> None:
    """The secured listener is really secured: a client without TLS and login gets nowhere."""
    done = orderwatch(
        secured_kafka,
        "advance-clock",
        "--until",
        "2026-01-01T00:00:00Z",
        ORDERWATCH_SECURITY_PROTOCOL="PLAINTEXT",
        ORDERWATCH_SASL_USERNAME="",
        ORDERWATCH_SASL_PASSWORD="",
        ORDERWATCH_SSL_CAFILE="",
    )
    assert "ORDERWATCH_SECURITY_PROTOCOL='PLAINTEXT'" in one_line(done)


def test_a_wrong_password_stops_the_worker_with_one_line_naming_the_password_variable(
    secured_kafka: SecuredKafka,
) -> None:
    wrong = "not-" + secured_kafka.password
    done = orderwatch(secured_kafka, "worker", ORDERWATCH_SASL_PASSWORD=wrong)
    line = one_line(done)
    assert "refused the SASL login" in line
    assert "ORDERWATCH_SASL_PASSWORD" in line
    assert wrong not in done.stderr + done.stdout


def test_a_wrong_password_given_as_a_flag_is_named_by_its_flag(
    secured_kafka: SecuredKafka,
) -> None:
    wrong = "not-" + secured_kafka.password
    done = orderwatch(
        secured_kafka,
        "worker",
        "--sasl-password",
        wrong,
        ORDERWATCH_SASL_PASSWORD="",
    )
    line = one_line(done)
    assert "--sasl-password" in line
    assert "ORDERWATCH_SASL_PASSWORD" not in line
    assert wrong not in done.stderr + done.stdout


def test_a_ca_that_did_not_sign_the_broker_stops_the_worker_naming_the_ca_file(
    secured_kafka: SecuredKafka, make_tls: Callable[[str], TlsFiles]
) -> None:
    other = make_tls("other")
    done = orderwatch(secured_kafka, "worker", ORDERWATCH_SSL_CAFILE=str(other.ca))
    line = one_line(done)
    assert f"ORDERWATCH_SSL_CAFILE={str(other.ca)!r}" in line
    assert "certificate verify failed" in line


def test_advance_clock_with_a_wrong_password_names_the_password_variable(
    secured_kafka: SecuredKafka,
) -> None:
    done = orderwatch(
        secured_kafka,
        "advance-clock",
        "--until",
        "2026-01-01T00:00:00Z",
        ORDERWATCH_SASL_PASSWORD="wrong",
    )
    assert "ORDERWATCH_SASL_PASSWORD" in one_line(done)


def test_a_plain_login_never_shows_the_password_even_in_debug_logs(
    secured_kafka: SecuredKafka, tmp_path: Path
) -> None:
    """SASL PLAIN sends the password itself, and aiokafka logs every request at DEBUG."""
    env = {**secured_kafka.env, "ORDERWATCH_SASL_MECHANISM": "PLAIN"}
    worker = WorkerRun(
        secured_kafka.bootstrap, tmp_path, extra_env=env, loglevel="debug", partitions=1
    )
    try:
        worker.start()
    finally:
        worker.stop()
    log = worker.log_text()
    assert "Authenticated as orderwatch via PLAIN" in log  # the login did happen, and was logged
    assert "SaslAuthenticateRequest" in log
    assert secured_kafka.password not in log


async def test_the_broker_helpers_take_security_options(secured_kafka: SecuredKafka) -> None:
    security = security_options(secured_kafka.env)
    await wait_for_broker(secured_kafka.bootstrap, 30, security=security)
    topic = f"secured-{uuid.uuid4().hex[:8]}"
    assert await create_topics(secured_kafka.bootstrap, {topic: 2}, security=security) == [topic]
    with pytest.raises(TimeoutError):
        await wait_for_broker(secured_kafka.bootstrap, 2)  # no TLS, no login: never ready


def test_send_publishes_every_routable_line_over_sasl_ssl(secured_kafka: SecuredKafka) -> None:
    prefix = f"send-{uuid.uuid4().hex[:8]}-"
    done = orderwatch(
        secured_kafka,
        "send",
        str(EXAMPLES),
        "--quiet",
        ORDERWATCH_TOPIC_PREFIX=prefix,
        ORDERWATCH_PARTITIONS="2",
    )
    assert done.returncode == 0, done.stderr
    expected = sum(1 for line in example_lines() if _routable(line))
    assert expected > 0

    async def count() -> int:
        topics = [prefix + topic for topic in ("orders", "inventory", "tracking", "complaints")]
        consumer = AIOKafkaConsumer(
            *topics,
            bootstrap_servers=secured_kafka.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            **security_options(secured_kafka.env),
        )
        await consumer.start()
        seen = 0
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            while seen < expected and loop.time() < deadline:
                batch = await consumer.getmany(timeout_ms=500)
                seen += sum(len(records) for records in batch.values())
        finally:
            await consumer.stop()
        return seen

    assert run(count()) == expected


def test_send_with_a_wrong_password_names_the_password_variable(
    secured_kafka: SecuredKafka,
) -> None:
    done = orderwatch(secured_kafka, "send", str(EXAMPLES), ORDERWATCH_SASL_PASSWORD="wrong")
    assert "ORDERWATCH_SASL_PASSWORD" in one_line(done)


def _routable(line: bytes) -> bool:
    try:
        route(line)
    except Unroutable:
        return False
    return True
