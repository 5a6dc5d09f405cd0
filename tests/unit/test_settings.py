"""Worker settings: ORDERWATCH_ variables, flags that win, one-line errors, masked secrets."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from streams.cli import main
from streams.errors import ConfigurationError
from streams.settings import load_settings
from streams.topics import required_topics
from streams.worker import OrderwatchWorker


def test_settings_come_from_orderwatch_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERWATCH_BROKER", "kafka-1:9092,kafka-2:9092")
    monkeypatch.setenv("ORDERWATCH_PARTITIONS", "12")
    settings = load_settings()
    assert settings.broker_urls() == ["kafka://kafka-1:9092", "kafka://kafka-2:9092"]
    assert settings.partitions == 12


def test_flags_win_over_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERWATCH_CLOCK", "wall")
    assert load_settings(clock="event").clock == "event"


def test_fausts_own_unprefixed_variables_do_not_override_ours(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BROKER_URL", "kafka://elsewhere:1")
    monkeypatch.setenv("WEB_PORT", "1234")
    worker = OrderwatchWorker(load_settings(broker="127.0.0.1:9092", web_port=7001))
    assert [str(url) for url in worker.app.conf.broker] == ["kafka://127.0.0.1:9092"]
    assert worker.app.conf.web_port == 7001


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ORDERWATCH_PARTITIONS", "0"),
        ("ORDERWATCH_CLOCK", "sideways"),
        ("ORDERWATCH_STORE", "redis://"),
        ("ORDERWATCH_WEB_PORT", "http"),
    ],
)
def test_a_bad_setting_fails_with_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    message = str(raised.value)
    assert "\n" not in message
    assert variable in message
    assert repr(value) in message


def test_the_worker_command_refuses_a_bad_setting_before_starting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORDERWATCH_PARTITIONS", "-3")
    result = CliRunner().invoke(main, ["worker"])
    assert result.exit_code != 0
    assert "ORDERWATCH_PARTITIONS" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_secrets_are_masked_when_settings_are_printed() -> None:
    settings = load_settings(sasl_username="svc", sasl_password="hunter2")
    described = settings.describe()
    assert "hunter2" not in described
    assert "sasl_password=**********" in described


def test_every_topic_carries_the_prefix_and_tables_get_changelogs() -> None:
    settings = load_settings(topic_prefix="shop-", app_id="ow")
    topics = required_topics(settings)
    assert all(topic.startswith("shop-") for topic in topics)
    assert "shop-orders" in topics
    assert "shop-dead-letter" in topics
    assert "shop-ow-orders-changelog" in topics
    assert "shop-ow-order-events" in topics


def test_the_worker_command_names_the_broker_it_cannot_reach(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORDERWATCH_BROKER", "127.0.0.1:1")
    result = CliRunner().invoke(main, ["worker"])
    assert result.exit_code != 0
    assert "cannot reach the Kafka broker at ORDERWATCH_BROKER='127.0.0.1:1'" in result.output


def test_advance_clock_names_the_broker_it_cannot_reach() -> None:
    result = CliRunner().invoke(
        main, ["advance-clock", "--broker", "127.0.0.1:1", "--until", "2026-01-01T00:00:00Z"]
    )
    assert result.exit_code != 0
    assert "cannot reach the Kafka broker at ORDERWATCH_BROKER='127.0.0.1:1'" in result.output
