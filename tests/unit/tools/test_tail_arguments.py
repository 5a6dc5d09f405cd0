"""``orderwatch tail``: which topic a name means, what a line looks like, and its arguments
(all without a broker; reading is tests/integration/test_tail.py's)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from aiokafka import TopicPartition  # type: ignore[import-untyped]
from click.testing import CliRunner

from streams.cli import main
from streams.settings import TOPIC_ROLES, load_settings
from streams.tools.tail import TailOptions, _starts, format_message, resolve_topic


@pytest.fixture(autouse=True)
def _no_orderwatch_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("ORDERWATCH_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(
    ("name", "topic"),
    [
        ("orders", "shop-orders"),
        ("breaches", "shop-deadline-breaches"),
        ("deadline-breaches", "shop-deadline-breaches"),
        ("recommendations", "shop-dispute-recommendations"),
        ("dispute-recommendations", "shop-dispute-recommendations"),
        ("dead-letter", "shop-dead-letter"),
        ("dead_letter", "shop-dead-letter"),
        ("shop-orders", "shop-orders"),  # literal: not prefixed twice
        ("__consumer_offsets", "__consumer_offsets"),
    ],
)
def test_roles_and_default_names_get_the_prefix_others_are_literal(name: str, topic: str) -> None:
    settings = load_settings(topic_prefix="shop-")
    assert resolve_topic(settings, name) == topic


def test_every_contract_role_resolves_to_its_configured_name() -> None:
    settings = load_settings(topic_breaches="alarms")
    assert resolve_topic(settings, "breaches") == "alarms"
    assert resolve_topic(settings, "deadline-breaches") == "alarms"
    for role in TOPIC_ROLES:
        assert resolve_topic(settings, role) == settings.topic(role)


def record(value: bytes | None, **fields: object) -> SimpleNamespace:
    base: dict[str, object] = {
        "topic": "orders",
        "partition": 2,
        "offset": 41,
        "timestamp": 1_700_000_000_000,
        "key": b"o-1",
        "headers": [("ce_id", b"abc")],
    }
    base.update(fields)
    return SimpleNamespace(value=value, **base)


def test_a_plain_line_is_the_value_byte_for_byte() -> None:
    value = b'{"type":"order.placed", "order_id":"o-1"}'
    assert format_message(record(value), meta=False) == value
    assert format_message(record(None), meta=False) == b"null"


def test_meta_wraps_the_value_with_where_it_was_read() -> None:
    line = json.loads(format_message(record(b'{"a": 1}'), meta=True))
    assert line == {
        "topic": "orders",
        "partition": 2,
        "offset": 41,
        "timestamp": 1_700_000_000_000,
        "key": "o-1",
        "headers": {"ce_id": "abc"},
        "value": {"a": 1},
    }


def test_meta_keeps_a_value_that_is_not_json_as_text_or_hex() -> None:
    assert json.loads(format_message(record(b"not json"), meta=True))["value"] == "not json"
    assert json.loads(format_message(record(b"\xff\x00"), meta=True))["value"] == "ff00"
    assert json.loads(format_message(record(None, key=None), meta=True))["key"] is None


def test_last_starts_n_before_the_end_never_before_the_beginning() -> None:
    a, b = TopicPartition("t", 0), TopicPartition("t", 1)
    beginning, end = {a: 0, b: 5}, {a: 10, b: 7}
    assert _starts(TailOptions(), beginning, end) == {a: 0, b: 5}
    assert _starts(TailOptions(last=3), beginning, end) == {a: 7, b: 5}
    assert _starts(TailOptions(last=0), beginning, end) == {a: 10, b: 7}


def test_options_refuse_negative_counts() -> None:
    with pytest.raises(ValueError, match="last"):
        TailOptions(last=-1)
    with pytest.raises(ValueError, match="max_messages"):
        TailOptions(max_messages=0)


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ([], "Missing argument 'TOPIC'"),
        (["orders", "--last", "-1"], "--last"),
        (["orders", "--max", "0"], "--max"),
        (["orders", "--last", "many"], "--last"),
        (["orders", "--follow", "--bogus"], "--bogus"),
    ],
)
def test_bad_arguments_exit_2_naming_the_problem(args: list[str], problem: str) -> None:
    result = CliRunner().invoke(main, ["tail", *args])
    assert result.exit_code == 2
    assert problem in result.output


def test_a_bad_connection_setting_is_one_line_and_exit_1() -> None:
    result = CliRunner().invoke(main, ["tail", "orders", "--broker", "no-port-here"])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert "--broker" in result.output


def test_help_names_every_option() -> None:
    result = CliRunner().invoke(main, ["tail", "--help"])
    assert result.exit_code == 0
    for option in (
        "--follow",
        "--last",
        "--max",
        "--meta",
        "--quiet",
        "--broker",
        "--topic-prefix",
    ):
        assert option in result.output
