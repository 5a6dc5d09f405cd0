"""Topics orderwatch creates: explicit retention, compacted changelogs, compression settings."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import (  # type: ignore[import-untyped]
    LeaderNotAvailableError,
    NodeNotReadyError,
)

from streams.errors import ConfigurationError
from streams.kafka import admin as admin_module
from streams.kafka import topics
from streams.kafka.topics import (
    _cleanup_policies,
    changelog_problem,
    changelog_topics,
    required_topics,
    topic_configs,
)
from streams.settings import load_settings
from streams.worker import OrderwatchWorker

DAY_MS = 24 * 3600 * 1000


def test_input_and_internal_topics_keep_14_days_and_outputs_30_by_default() -> None:
    settings = load_settings(topic_prefix="shop-", app_id="ow")
    configs = {name: topic_configs(settings, name) for name in required_topics(settings)}
    for name in ("shop-orders", "shop-inventory", "shop-tracking", "shop-complaints"):
        assert configs[name] == {"cleanup.policy": "delete", "retention.ms": str(14 * DAY_MS)}
    for name in ("shop-ow-order-events", "shop-ow-clock", "shop-ow-aggregate-inputs"):
        assert configs[name] == {"cleanup.policy": "delete", "retention.ms": str(14 * DAY_MS)}
    for name in ("shop-deadline-breaches", "shop-dispute-recommendations", "shop-dead-letter"):
        assert configs[name] == {"cleanup.policy": "delete", "retention.ms": str(30 * DAY_MS)}
    for name in changelog_topics(settings):
        assert configs[name] == {"cleanup.policy": "compact"}
    assert len(changelog_topics(settings)) == 7
    assert all(name in configs for name in changelog_topics(settings))


def test_retention_comes_from_its_settings_in_seconds_or_iso_8601(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORDERWATCH_INPUT_RETENTION", "P3D")
    monkeypatch.setenv("ORDERWATCH_OUTPUT_RETENTION", "7200")
    monkeypatch.setenv("ORDERWATCH_TOPIC_BREACHES", "late")
    settings = load_settings()
    assert topic_configs(settings, "orders")["retention.ms"] == str(3 * DAY_MS)
    assert topic_configs(settings, "late")["retention.ms"] == str(7_200_000)


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("ORDERWATCH_INPUT_RETENTION", "30", "greater than or equal to 1 minute (given '30')"),
        ("ORDERWATCH_OUTPUT_RETENTION", "-1", "greater than or equal to 1 minute (given '-1')"),
        ("ORDERWATCH_OUTPUT_RETENTION", "forever", "valid timedelta"),
        ("ORDERWATCH_PRODUCER_COMPRESSION", "brotli", "'none', 'gzip', 'snappy', 'lz4' or 'zstd'"),
    ],
)
def test_a_bad_retention_or_codec_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, problem: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"setting {variable}: ")
    assert problem in message


def test_a_codec_whose_library_is_missing_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aiokafka import codec  # type: ignore[import-untyped]

    monkeypatch.setattr(codec, "has_zstd", lambda: False)
    with pytest.raises(ConfigurationError) as raised:
        load_settings(producer_compression="zstd")
    assert str(raised.value) == (
        "setting --producer-compression: the zstd codec's library is not installed (aiokafka "
        "needs cramjam for it) (given 'zstd')"
    )


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_every_codec_kafka_producers_use_is_installed(codec: str) -> None:
    """cramjam comes with orderwatch: input compressed with any of them can be read."""
    from aiokafka.record.default_records import (  # type: ignore[import-untyped]
        DefaultRecordBatch,
        DefaultRecordBatchBuilder,
    )

    attribute = {"gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}[codec]
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=attribute,
        is_transactional=False,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    payload = b'{"type": "order.placed"}' * 50
    builder.append(0, timestamp=None, key=b"o-1", value=payload, headers=[])
    batch = DefaultRecordBatch(bytes(builder.build()))
    assert batch.compression_type == attribute
    assert [record.value for record in batch] == [payload]


def test_the_producers_compress_as_the_setting_says() -> None:
    assert load_settings().compression_type() is None
    settings = load_settings(producer_compression="LZ4")
    assert settings.producer_compression == "lz4"
    assert settings.compression_type() == "lz4"
    worker = OrderwatchWorker(load_settings(producer_compression="zstd"))
    assert worker.app.conf.producer_compression_type == "zstd"


@pytest.mark.parametrize("policy", ["compact", " compact ", "compact,compact"])
def test_a_compacted_changelog_is_accepted(policy: str) -> None:
    assert changelog_problem("ow-orders-changelog", policy) is None


@pytest.mark.parametrize("policy", ["delete", "compact,delete", "delete,compact", ""])
def test_a_changelog_that_deletes_by_age_is_refused_naming_it_and_the_fix(policy: str) -> None:
    problem = changelog_problem("ow-orders-changelog", policy)
    assert problem is not None
    assert "\n" not in problem
    assert problem.startswith(
        f"changelog topic 'ow-orders-changelog' has cleanup.policy={policy}: "
    )
    assert "set cleanup.policy=compact on it" in problem


def test_cleanup_policies_are_read_from_describe_configs_answers() -> None:
    """Resources are (error, message, type, name, entries); entries (name, value, ...)."""
    answers = [
        SimpleNamespace(
            resources=[
                (0, "", 2, "a-changelog", [("cleanup.policy", "delete", False, 1, False, [])]),
                (0, "", 2, "b-changelog", [("cleanup.policy", "compact", False, 5, False)]),
                (3, "unknown topic", 2, "c-changelog", []),
            ]
        )
    ]
    assert _cleanup_policies(answers) == {"a-changelog": "delete", "b-changelog": "compact"}


# -- a cluster that is moving at start ---------------------------------------------------------


def test_a_moving_cluster_is_asked_again_until_it_settles(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A node that just died still leads partitions for a few seconds: the start waits for the
    cluster to notice rather than exit at once (measured: a worker started right after a
    three-node cluster lost its first node exited 75 on NodeNotReadyError)."""
    answers: list[BaseException | list[str]] = [
        NodeNotReadyError("node 1"),
        LeaderNotAvailableError(),
        ["created"],
    ]

    async def once(settings: Any) -> list[str]:
        answer = answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    monkeypatch.setattr(topics, "_ensure_topics", once)
    monkeypatch.setattr(topics, "_SETTLE_PAUSE", 0.01)
    settings = load_settings(broker="x:1")
    caplog.set_level(logging.WARNING, logger="orderwatch.worker")
    assert asyncio.run(topics.ensure_topics(settings)) == ["created"]
    assert [r.message.split(":")[0] for r in caplog.records] == [
        "Kafka is moving (NodeNotReadyError",
        "Kafka settled",
    ]


def test_a_cluster_that_does_not_settle_or_a_bad_setting_fails_the_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []

    async def moving(settings: Any) -> list[str]:
        calls.append(1)
        raise NodeNotReadyError("node 1")

    monkeypatch.setattr(topics, "_ensure_topics", moving)
    monkeypatch.setattr(topics, "_SETTLE_PAUSE", 0.01)
    with pytest.raises(NodeNotReadyError):
        asyncio.run(topics.ensure_topics(load_settings(broker="x:1"), settle=0.1))
    assert 3 <= len(calls) <= 11

    async def refused(settings: Any) -> list[str]:
        calls.append(1)
        raise ConfigurationError("topic 'x' has 3 partitions")

    calls.clear()
    monkeypatch.setattr(topics, "_ensure_topics", refused)
    with pytest.raises(ConfigurationError):
        asyncio.run(topics.ensure_topics(load_settings(broker="x:1")))
    assert len(calls) == 1  # a bad setting is not retried


def test_faust_declares_no_topic_itself(tmp_path: Path) -> None:
    """Every topic is created by ``ensure_topics`` before Faust starts. Faust's own declaration
    asks the first broker it knows for the controller, with no other: a node down stopped the
    worker at every start. Here no broker answers at all, and declaring returns at once."""
    worker = OrderwatchWorker(load_settings(broker="127.0.0.1:9", data_dir=tmp_path))
    topic = worker.app.topic(changelog_topics(worker.settings)[0])
    asyncio.run(asyncio.wait_for(topic.maybe_declare(), timeout=5))


# -- creating topics: one path for the worker's start and for every other caller ----------------


class _Admin:
    """aiokafka's admin client as topic creation uses it: a cluster that creates what it is
    asked (answering ``answers`` by topic name: an error code and message), every partition
    led at once."""

    def __init__(self, existing: dict[str, int] | None = None) -> None:
        self.topics = dict(existing or {})
        self.answers: dict[str, tuple[int, str | None]] = {}
        self.created: list[Any] = []
        self.closed = False

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self.closed = True

    async def list_topics(self) -> list[str]:
        return list(self.topics)

    async def describe_topics(self, names: list[str] | None = None) -> list[dict[str, Any]]:
        return [
            {"topic": name, "error_code": 0, "partitions": [{"leader": 1}] * count}
            for name, count in self.topics.items()
            if names is None or name in names
        ]

    async def describe_configs(self, resources: list[Any]) -> list[Any]:
        entries = [(0, "", 2, r.name, [("cleanup.policy", "compact")]) for r in resources]
        return [SimpleNamespace(resources=entries)]

    async def create_topics(self, new_topics: list[Any], timeout_ms: int) -> Any:
        errors = []
        for topic in new_topics:
            code, message = self.answers.get(topic.name, (0, None))
            if code == 0:
                self.created.append(topic)
                self.topics[topic.name] = topic.num_partitions
            errors.append((topic.name, code, message))
        return SimpleNamespace(topic_errors=errors)


def test_the_worker_creates_what_is_missing_with_its_retention_and_leaves_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = load_settings(broker="x:1", partitions=3, topic_prefix="shop-")
    orders = settings.topic("orders")
    admin = _Admin({orders: 3})

    async def started(client: Any, settings: Any) -> Any:
        return client

    monkeypatch.setattr(topics, "AIOKafkaAdminClient", lambda **_: admin)
    monkeypatch.setattr(topics, "start_client", started)
    created = asyncio.run(topics.ensure_topics(settings))
    assert created == [name for name in required_topics(settings) if name != orders]
    assert {t.name: t.topic_configs for t in admin.created} == {
        name: topic_configs(settings, name) for name in created
    }
    assert {(t.num_partitions, t.replication_factor) for t in admin.created} == {(3, 1)}
    assert admin.closed


def test_create_topics_creates_the_missing_ones_and_checks_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admin = _Admin({"kept": 2, "other-count": 5})
    monkeypatch.setattr(admin_module, "_admin", lambda *_: admin)
    assert asyncio.run(admin_module.create_topics("x:1", {"new": 4, "kept": 2})) == ["new"]
    assert [(t.name, t.num_partitions, t.topic_configs) for t in admin.created] == [("new", 4, {})]
    with pytest.raises(ConfigurationError, match="'other-count' on x:1 has 5 partitions"):
        asyncio.run(admin_module.create_topics("x:1", {"other-count": 2}))


def test_a_topic_the_broker_refuses_is_one_line_and_one_created_meanwhile_is_fine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admin = _Admin()
    admin.answers = {
        "racing": (36, None),  # TOPIC_ALREADY_EXISTS: another worker created it
        "too-safe": (38, "Replication factor: 3 larger than available brokers: 1."),
    }
    monkeypatch.setattr(admin_module, "_admin", lambda *_: admin)
    with pytest.raises(ConfigurationError) as raised:
        asyncio.run(admin_module.create_topics("x:1", {"racing": 1, "too-safe": 1}, 3))
    assert str(raised.value) == (
        "the broker at x:1 refused to create topic 'too-safe' (1 partitions, replication "
        "factor 3): InvalidReplicationFactorError: Replication factor: 3 larger than "
        "available brokers: 1."
    )


def test_a_cluster_moving_while_topics_are_created_is_asked_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A controller that moved is a passing refusal: the worker's start asks again."""
    settings = load_settings(broker="x:1")
    admin = _Admin()
    admin.answers = dict.fromkeys(required_topics(settings), (41, None))  # NOT_CONTROLLER

    async def started(client: Any, settings: Any) -> Any:
        return client

    refused = admin.create_topics
    calls: list[int] = []

    async def refused_once(new_topics: list[Any], timeout_ms: int) -> Any:
        calls.append(len(new_topics))
        answer = await refused(new_topics, timeout_ms)
        admin.answers = {}  # the new controller answers
        return answer

    monkeypatch.setattr(admin, "create_topics", refused_once)
    monkeypatch.setattr(topics, "AIOKafkaAdminClient", lambda **_: admin)
    monkeypatch.setattr(topics, "start_client", started)
    monkeypatch.setattr(topics, "_SETTLE_PAUSE", 0.01)
    assert asyncio.run(topics.ensure_topics(settings)) == required_topics(settings)
    assert calls == [len(required_topics(settings))] * 2
