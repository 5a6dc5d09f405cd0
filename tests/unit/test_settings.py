"""Worker settings: ORDERWATCH_ variables, flags that win, one-line errors, masked secrets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from streams.cli import main
from streams.errors import ConfigurationError
from streams.kafka.topics import required_topics
from streams.settings import load_settings, unknown_variables
from streams.worker import OrderwatchWorker
from streams.worker.failures import EXIT_KAFKA_UNAVAILABLE


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
        ("ORDERWATCH_BATCH_SIZE", "0"),
        ("ORDERWATCH_PRODUCER_LINGER", "0.0005"),
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
    settings = load_settings(
        security_protocol="SASL_SSL", sasl_username="svc", sasl_password="hunter2"
    )
    described = settings.describe()
    assert "hunter2" not in described
    assert "sasl_password=**********" in described
    assert "sasl_username=svc" in described


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
    # Down or not yet up as much as mistyped: transient, retried by the supervisor.
    assert result.exit_code == EXIT_KAFKA_UNAVAILABLE
    assert "cannot reach the Kafka broker at ORDERWATCH_BROKER='127.0.0.1:1'" in result.output


def test_advance_clock_names_the_broker_flag_it_cannot_reach() -> None:
    result = CliRunner().invoke(
        main, ["advance-clock", "--broker", "127.0.0.1:1", "--until", "2026-01-01T00:00:00Z"]
    )
    assert result.exit_code != 0
    assert "cannot reach the Kafka broker at --broker='127.0.0.1:1'" in result.output
    assert "ORDERWATCH_BROKER" not in result.output


def test_the_worker_names_the_broker_flag_it_cannot_resolve() -> None:
    result = CliRunner().invoke(main, ["worker", "--broker", "nohost.invalid:1"])
    assert result.exit_code != 0
    assert "cannot reach the Kafka broker at --broker='nohost.invalid:1'" in result.output
    assert len(result.output.strip().splitlines()) == 1


# ---- naming the source of a value ------------------------------------------------------------


def test_a_bad_flag_is_named_by_its_flag_and_a_bad_variable_by_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ConfigurationError, match=r"^setting --partitions: .*\(given 0\)$"):
        load_settings(partitions=0)
    monkeypatch.setenv("ORDERWATCH_PARTITIONS", "0")
    with pytest.raises(ConfigurationError, match=r"^setting ORDERWATCH_PARTITIONS: "):
        load_settings()


def test_source_of_says_flag_or_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERWATCH_APP_ID", "from-env")
    settings = load_settings(broker="kafka-1:9092")
    assert settings.source_of("broker") == "--broker"
    assert settings.source_of("app_id") == "ORDERWATCH_APP_ID"
    assert settings.source_of("topic_prefix") == "ORDERWATCH_TOPIC_PREFIX"  # a default
    assert settings.given("broker") == "--broker='kafka-1:9092'"


def test_the_worker_command_names_the_flag_of_a_bad_value() -> None:
    result = CliRunner().invoke(main, ["worker", "--security-protocol", "TLS"])
    assert result.exit_code != 0
    assert result.output.strip().splitlines() == [
        "Error: setting --security-protocol: Input should be 'PLAINTEXT', 'SSL', "
        "'SASL_PLAINTEXT' or 'SASL_SSL' (given 'TLS')"
    ]


# ---- unknown variables -----------------------------------------------------------------------


def test_an_unknown_variable_stops_the_start_naming_the_nearest_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORDERWATCH_BROKERS", "kafka-1:9092")
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    assert str(raised.value) == (
        "unknown setting ORDERWATCH_BROKERS: did you mean ORDERWATCH_BROKER?"
    )


@pytest.mark.parametrize(
    ("variable", "nearest"),
    [
        ("ORDERWATCH_SASL_PASWORD", "ORDERWATCH_SASL_PASSWORD"),
        ("ORDERWATCH_SSL_CA_FILE", "ORDERWATCH_SSL_CAFILE"),
        ("orderwatch_partition", "ORDERWATCH_PARTITIONS"),
        ("ORDERWATCH_SECURITY", "ORDERWATCH_SECURITY_PROTOCOL"),
    ],
)
def test_unknown_variables_get_the_nearest_setting(variable: str, nearest: str) -> None:
    assert unknown_variables({variable: "x"}) == [(variable, nearest)]


def test_a_variable_like_no_setting_gets_no_guess() -> None:
    assert unknown_variables({"ORDERWATCH_ZZZZZZZZ": "1"}) == [("ORDERWATCH_ZZZZZZZZ", None)]


def test_settings_tools_variables_and_empty_ones_are_not_unknown() -> None:
    environ = {
        "ORDERWATCH_BROKER": "b:1",
        "ORDERWATCH_SASL_PASSWORD": "x",
        "ORDERWATCH_TEST_BROKER": "127.0.0.1:9092",
        "ORDERWATCH_TEST_LOGLEVEL": "debug",
        "ORDERWATCH_REQUIRE_BROKER": "1",
        "ORDERWATCH_KAFKA_HOME": "/tmp/k",
        "ORDERWATCH_KAFKA_HEAP": "-Xmx1g",
        "ORDERWATCH_BROKERS": "",
        "OTHER_BROKERS": "x",
    }
    assert unknown_variables(environ) == []


def test_every_orderwatch_variable_the_project_uses_is_a_setting_or_a_tool_variable() -> None:
    """The repository's own scripts and docs use no variable the check would refuse."""
    repo = Path(__file__).resolve().parents[2]
    files = [repo / ".ci" / "run", *repo.glob("*.md"), *repo.glob("*.toml")]
    files += [*repo.glob("*.yml"), *repo.glob("Dockerfile*")]
    for folder in ("streams", "tests", "scripts", "bench", "docs", "examples", "deploy"):
        files += [
            p
            for p in (repo / folder).rglob("*")
            if p.suffix in (".py", ".sh", ".md", ".yml", ".yaml", ".env")
        ]
    used: set[str] = set()
    for path in files:
        if path in (Path(__file__), repo / "streams" / "settings.py"):
            continue  # typos on purpose; the tool prefixes themselves
        text = path.read_text(errors="ignore")
        # A name ending in "_" is a family in prose (ORDERWATCH_KAFKA_, ORDERWATCH_TEST_); an
        # error message quoted in the docs names a typo on purpose.
        names = re.findall(r"(?<!unknown setting )ORDERWATCH_[A-Z_]*", text)
        used |= {name for name in names if name[-1] != "_"}
    assert len(used) > 10
    refused = unknown_variables(dict.fromkeys(used, "1"))
    assert refused == []


def test_the_worker_command_refuses_an_unknown_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERWATCH_BROKERS", "127.0.0.1:1")
    result = CliRunner().invoke(main, ["worker"])
    assert result.exit_code != 0
    assert result.output.strip().splitlines() == [
        "Error: unknown setting ORDERWATCH_BROKERS: did you mean ORDERWATCH_BROKER?"
    ]


def test_a_data_dir_that_cannot_be_created_is_a_bad_setting(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file, not a directory")
    settings = load_settings(broker="127.0.0.1:9", data_dir=tmp_path / "taken" / "data")
    with pytest.raises(ConfigurationError, match=r"^ORDERWATCH_DATA_DIR: cannot create .*taken"):
        OrderwatchWorker(settings)
    # A missing parent is no problem: the app's own directory is made with its parents.
    nested = tmp_path / "a" / "b"
    OrderwatchWorker(load_settings(broker="127.0.0.1:9", data_dir=nested, app_id="x"))
    assert (nested / "x").is_dir()


def test_the_web_token_is_masked_and_an_empty_one_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = load_settings(web_token="open-sesame")
    assert "open-sesame" not in settings.describe()
    assert "open-sesame" not in repr(settings)
    monkeypatch.setenv("ORDERWATCH_WEB_TOKEN", " ")
    with pytest.raises(ConfigurationError, match=r"^setting ORDERWATCH_WEB_TOKEN: .*empty"):
        load_settings()


def test_the_web_url_is_an_http_url_and_defaults_to_host_and_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from streams.worker.app import advertised_url

    assert advertised_url(load_settings(web_port=7001)) == "http://127.0.0.1:7001"
    given = load_settings(web_url="http://worker-2:6066/")
    assert advertised_url(given) == "http://worker-2:6066"
    monkeypatch.setenv("ORDERWATCH_WEB_URL", "worker-2:6066")
    with pytest.raises(ConfigurationError, match=r"^setting ORDERWATCH_WEB_URL: .*http://"):
        load_settings()
