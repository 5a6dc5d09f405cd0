"""The published contract in schemas/ is generated from the models and agrees with the core."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator, FormatChecker

from streams.core.events import INPUT_MODELS, decode_event
from streams.core.output_json import serialize
from streams.core.outputs import EventRejected, KafkaSource, OutputEvent, Rejection
from streams.kafka.headers import headers
from streams.policy_files import load_policy
from streams.replay import replay_lines
from streams.tools.schemas import (
    ASYNCAPI_FILE,
    INPUT_EVENT_FILE,
    INPUT_TYPES,
    OUTPUT_TYPES,
    example_inputs,
    example_lines,
    example_name,
    schema_name,
    write_schemas,
)

REPO = Path(__file__).resolve().parents[3]
SCHEMAS = REPO / "schemas"
ORDERS_EXAMPLE = REPO / "examples" / "orders.jsonl"
ALL_TYPES = (*INPUT_TYPES, *OUTPUT_TYPES)
CONTRACT_TOPICS = {
    "orders": "in",
    "inventory": "in",
    "tracking": "in",
    "complaints": "in",
    "deadline-breaches": "out",
    "dispute-recommendations": "out",
    "dead-letter": "out",
}


def _format_checker() -> FormatChecker:
    """jsonschema's format checks, with date-time asserted even without its optional extra."""
    checker = FormatChecker()
    if "date-time" not in checker.checkers:

        @checker.checks("date-time", raises=ValueError)
        def _date_time(instance: object) -> bool:
            if not isinstance(instance, str):
                return True
            return datetime.fromisoformat(instance).tzinfo is not None and instance[10] in "Tt"

    return checker


FORMATS = _format_checker()


def _load(name: str) -> Any:
    return json.loads((SCHEMAS / name).read_text(encoding="utf-8"))


def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(_load(name), format_checker=FORMATS)


def _errors(validator: Draft202012Validator, instance: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"
        for error in validator.iter_errors(instance)
    ]


# -- (a) the committed files are what the models generate ------------------------------------


def test_committed_schemas_are_what_the_models_generate() -> None:
    stale = write_schemas(SCHEMAS, check=True)
    assert stale == [], f"stale files in schemas/: {stale}; run 'orderwatch schemas' and commit"


def test_the_check_reports_changed_missing_and_left_over_files_and_writes_nothing(
    tmp_path: Path,
) -> None:
    assert write_schemas(tmp_path) != []
    assert write_schemas(tmp_path, check=True) == []
    (tmp_path / schema_name("order.placed")).write_text("{}\n", encoding="utf-8")
    (tmp_path / ASYNCAPI_FILE).unlink()
    (tmp_path / schema_name("order.shipped")).write_text("{}\n", encoding="utf-8")

    stale = write_schemas(tmp_path, check=True)

    assert stale == sorted(
        [ASYNCAPI_FILE, schema_name("order.placed"), schema_name("order.shipped")]
    )
    assert not (tmp_path / ASYNCAPI_FILE).exists()
    assert write_schemas(tmp_path) == stale
    assert write_schemas(tmp_path, check=True) == []
    assert not (tmp_path / schema_name("order.shipped")).exists()


def test_generation_is_deterministic(tmp_path: Path) -> None:
    write_schemas(tmp_path / "one")
    write_schemas(tmp_path / "two")
    one = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.*"))
    assert one == sorted(p.relative_to(tmp_path / "two") for p in (tmp_path / "two").rglob("*.*"))
    for name in one:
        text = (tmp_path / "one" / name).read_bytes()
        assert text == (tmp_path / "two" / name).read_bytes()
        assert text.endswith(b"\n")
        assert not text.endswith(b"\n\n")


# -- (b) examples validate, and the schemas are valid 2020-12 --------------------------------


@pytest.mark.parametrize("name", [*map(schema_name, ALL_TYPES), INPUT_EVENT_FILE])
def test_schema_is_valid_draft_2020_12_with_an_id(name: str) -> None:
    schema = _load(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith("/" + name)


@pytest.mark.parametrize("message_type", ALL_TYPES)
def test_example_validates_against_its_schema(message_type: str) -> None:
    example = _load(example_name(message_type))
    assert example["type"] == message_type
    assert _errors(_validator(schema_name(message_type)), example) == []


@pytest.mark.parametrize("message_type", INPUT_TYPES)
def test_example_input_validates_against_the_input_union(message_type: str) -> None:
    assert _errors(_validator(INPUT_EVENT_FILE), _load(example_name(message_type))) == []


def test_the_input_union_rejects_an_unknown_type() -> None:
    example = {**_load(example_name("order.cancelled")), "type": "order.shipped"}
    assert _errors(_validator(INPUT_EVENT_FILE), example) != []


# Changes to a valid order.placed that the models reject: the schema must reject them too.
REJECTED_BY_BOTH = {
    "timestamp without offset": {"occurred_at": "2026-01-05T09:12:44"},
    "date only": {"occurred_at": "2026-01-05"},
    "lowercase currency": {"currency": "usd"},
    "unknown currency": {"currency": "XYZ"},
    "unknown country": {"destination_country": "XX"},
    "alpha-3 country": {"destination_country": "USA"},
    "negative price": {"unit_price": -1},
    "negative price string": {"unit_price": "-1.00"},
    "price not a number": {"unit_price": "12,99"},
    "zero quantity": {"quantity": 0},
    "quantity as string": {"quantity": "2"},
    "empty order_id": {"order_id": ""},
    "event_id too long": {"event_id": "e" * 129},
    "unknown program": {"program": "priority"},
}


@pytest.mark.parametrize("change", REJECTED_BY_BOTH.values(), ids=REJECTED_BY_BOTH.keys())
def test_schema_rejects_what_the_model_rejects(change: dict[str, Any]) -> None:
    message = {**example_inputs()["order.placed"], **change}
    assert isinstance(decode_event(json.dumps(message)), Rejection)
    assert _errors(_validator(schema_name("order.placed")), message) != []


ACCEPTED_BY_BOTH = {
    "price as number": {"unit_price": 12.99, "shipping_price": 0},
    "offset timestamp": {"occurred_at": "2026-01-05T09:12:44.250-05:00"},
    "released_at": {"released_at": "2026-01-05T10:00:00Z"},
    "unknown extra field": {"coupon": "NEWYEAR"},
}


@pytest.mark.parametrize("change", ACCEPTED_BY_BOTH.values(), ids=ACCEPTED_BY_BOTH.keys())
def test_schema_accepts_what_the_model_accepts(change: dict[str, Any]) -> None:
    message = {**example_inputs()["order.placed"], **change}
    assert not isinstance(decode_event(json.dumps(message)), Rejection)
    assert _errors(_validator(schema_name("order.placed")), message) == []


# -- (c) example inputs decode to their model ------------------------------------------------


@pytest.mark.parametrize("model", INPUT_MODELS, ids=INPUT_TYPES)
def test_example_input_decodes_to_the_model_of_its_type(model: type[Any]) -> None:
    message_type = model.model_fields["type"].annotation.__args__[0]
    raw = (SCHEMAS / example_name(message_type)).read_bytes()
    decoded = decode_event(raw)
    assert not isinstance(decoded, Rejection), decoded
    assert type(decoded) is model
    assert decoded.type == message_type


# -- (d) type is required everywhere ---------------------------------------------------------


def _object_schemas(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    definitions = schema.get("$defs", {})
    if "properties" in schema:
        yield "(root)", schema
    for name, definition in definitions.items():
        if "type" in definition.get("properties", {}):
            yield name, definition


@pytest.mark.parametrize("name", [*map(schema_name, ALL_TYPES), INPUT_EVENT_FILE])
def test_type_is_required_in_every_message_schema(name: str) -> None:
    found = list(_object_schemas(_load(name)))
    assert found
    for where, schema in found:
        assert "type" in schema["required"], where
        assert "const" in schema["properties"]["type"], where


def test_the_input_union_covers_every_input_type() -> None:
    union = _load(INPUT_EVENT_FILE)
    assert union["discriminator"]["propertyName"] == "type"
    assert sorted(union["discriminator"]["mapping"]) == sorted(INPUT_TYPES)
    assert len(union["oneOf"]) == len(INPUT_TYPES)


@pytest.mark.parametrize("message_type", OUTPUT_TYPES)
def test_output_timestamps_are_utc_date_time_strings(message_type: str) -> None:
    properties = _load(schema_name(message_type))["properties"]
    stamps = [name for name in properties if name.endswith("_at") or name == "respond_by"]
    assert stamps
    for name in stamps:
        assert properties[name]["type"] == "string", name
        assert properties[name]["format"] == "date-time", name


# -- (e) asyncapi.yaml -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def asyncapi() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((SCHEMAS / ASYNCAPI_FILE).read_text("utf-8"))
    return document


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _pointer(document: Any, pointer: str) -> Any:
    node = document
    for part in pointer.lstrip("/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_asyncapi_is_version_3_with_every_topic_of_the_contract(asyncapi: dict[str, Any]) -> None:
    assert asyncapi["asyncapi"] == "3.0.0"
    assert asyncapi["info"]["title"] == "orderwatch"
    addresses = {channel["address"] for channel in asyncapi["channels"].values()}
    assert addresses == set(CONTRACT_TOPICS)


def test_asyncapi_operations_receive_inputs_and_send_outputs(asyncapi: dict[str, Any]) -> None:
    actions = {
        _pointer(asyncapi, op["channel"]["$ref"].removeprefix("#"))["address"]: op["action"]
        for op in asyncapi["operations"].values()
    }
    expected = {t: "receive" if d == "in" else "send" for t, d in CONTRACT_TOPICS.items()}
    assert actions == expected


def test_asyncapi_describes_every_message_with_its_key(asyncapi: dict[str, Any]) -> None:
    messages = asyncapi["components"]["messages"]
    assert sorted(messages) == sorted(ALL_TYPES)
    for message_type, message in messages.items():
        assert message["payload"] == {"$ref": f"./{schema_name(message_type)}"}
        key = message["bindings"]["kafka"]["key"]
        assert key["type"] == "string", message_type
        assert key["description"], message_type


def test_every_asyncapi_ref_resolves(asyncapi: dict[str, Any]) -> None:
    refs = list(_refs(asyncapi))
    assert refs
    for ref in refs:
        if ref.startswith("#"):
            assert _pointer(asyncapi, ref.removeprefix("#")) is not None, ref
        else:
            path, _, fragment = ref.partition("#")
            target = json.loads((SCHEMAS / path).read_text(encoding="utf-8"))
            if fragment:
                _pointer(target, fragment)


def test_asyncapi_payload_schemas_are_of_their_message(asyncapi: dict[str, Any]) -> None:
    for message_type, message in asyncapi["components"]["messages"].items():
        schema = json.loads((SCHEMAS / message["payload"]["$ref"]).read_text(encoding="utf-8"))
        assert schema["properties"]["type"]["const"] == message_type


def test_asyncapi_headers_are_what_the_worker_writes(asyncapi: dict[str, Any]) -> None:
    messages = asyncapi["components"]["messages"]
    emitted: list[OutputEvent] = []
    replay_lines(example_lines(), emitted.append, policy=load_policy())
    where = KafkaSource(topic="orders", partition=2, offset=17)
    seen = set()
    for output in emitted:
        if isinstance(output, EventRejected):
            output = output.model_copy(update={"source": where})
        written = {name: value.decode() for name, value in headers(output, "/orderwatch/shop")}
        validator = Draft202012Validator(
            messages[output.type]["headers"], format_checker=FormatChecker()
        )
        assert [e.message for e in validator.iter_errors(written)] == [], output.type
        seen.add(output.type)
    assert seen == set(OUTPUT_TYPES)
    assert not any("headers" in messages[t] for t in INPUT_TYPES)


def test_asyncapi_servers_name_their_security_schemes(asyncapi: dict[str, Any]) -> None:
    schemes = asyncapi["components"]["securitySchemes"]
    secured = asyncapi["servers"]["secured"]
    assert secured["protocol"] == "kafka-secure"
    used = {ref["$ref"].rsplit("/", 1)[1] for ref in secured["security"]}
    assert used == set(schemes)
    assert {scheme["type"] for scheme in schemes.values()} >= {"scramSha512", "X509"}


# -- (f) what the core really emits validates against the output schemas ---------------------


def _replay_sources() -> dict[str, list[bytes]]:
    sources = {"schema examples": example_lines()}
    if ORDERS_EXAMPLE.is_file():
        sources["examples/orders.jsonl"] = ORDERS_EXAMPLE.read_bytes().splitlines()
    return sources


REPLAY_SOURCES = _replay_sources()


@pytest.mark.parametrize("source", REPLAY_SOURCES)
def test_replayed_outputs_validate_against_their_schemas(source: str) -> None:
    emitted: list[OutputEvent] = []
    replay_lines(REPLAY_SOURCES[source], emitted.append, policy=load_policy(), source_name=source)
    assert emitted
    validators = {t: _validator(schema_name(t)) for t in OUTPUT_TYPES}
    failures: list[str] = []
    for number, output in enumerate(emitted, start=1):
        message = json.loads(serialize(output))
        failures += [
            f"output {number} ({output.type}) {error}"
            for error in _errors(validators[message["type"]], message)
        ]
    assert failures == [], "\n".join(failures[:20])
    if source == "schema examples":
        assert {output.type for output in emitted} == set(OUTPUT_TYPES)
