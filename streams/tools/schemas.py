"""The published contract, generated from the models: JSON Schemas, examples and AsyncAPI.

The pydantic models in :mod:`streams.core.events` and :mod:`streams.core.outputs` are the source;
``schemas/`` is derived from them by :func:`write_schemas` (``orderwatch schemas``), and a test
fails when the committed files are stale. The directory holds:

- ``<type>.schema.json``: one JSON Schema (draft 2020-12) per message type, 9 inputs and 4 outputs.
  Inputs are published in pydantic's *validation* mode (what the processor accepts: money as a
  JSON number or a decimal string), outputs in *serialization* mode (what it writes: timestamps as
  RFC 3339 UTC strings with a ``Z``, optional fields left out rather than null). ``type`` is
  required in every schema.
- ``input-event.schema.json``: any input message, the union discriminated on ``type``.
- ``asyncapi.yaml``: the topics of contract section 1 (AsyncAPI 3.0.0) with their messages and keys.
- ``examples/<type>.json``: one example message per type. The outputs are not written by hand: they
  are what the real core emits when it replays the example inputs.

Everything is deterministic (sorted keys, 2-space indent, a trailing newline), so a byte
comparison is the staleness check.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, get_args

import yaml
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, JsonSchemaValue
from pydantic_core import core_schema

from streams import __version__
from streams.core.dates import format_utc
from streams.core.events import (
    INPUT_MODELS,
    InputEvent,
    _check_country,
    _check_currency,
)
from streams.core.iso_codes import COUNTRY_CODES, CURRENCY_CODES
from streams.core.outputs import (
    DeadlineBreached,
    DeadlineResolved,
    EventRejected,
    RecommendationIssued,
)
from streams.kafka.headers import (
    CONTENT_TYPE,
    DEAD_LETTER_HEADERS,
    SPEC_VERSION,
    cloudevents_source,
)

__all__ = [
    "ASYNCAPI_FILE",
    "INPUT_EVENT_FILE",
    "INPUT_TYPES",
    "OUTPUT_TYPES",
    "SCHEMA_BASE_URL",
    "TOPICS",
    "Topic",
    "example_inputs",
    "example_name",
    "example_outputs",
    "render_schemas",
    "schema_name",
    "write_schemas",
]

SCHEMA_BASE_URL: Final = "https://orderwatch.dev/schemas/"
JSON_SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
ASYNCAPI_FILE: Final = "asyncapi.yaml"
INPUT_EVENT_FILE: Final = "input-event.schema.json"
EXAMPLES_DIR: Final = "examples"
_GENERATED_NOTE: Final = "Generated from the pydantic models by 'orderwatch schemas'; do not edit."

OUTPUT_MODELS: Final[tuple[type[BaseModel], ...]] = (
    DeadlineBreached,
    DeadlineResolved,
    RecommendationIssued,
    EventRejected,
)

# RFC 3339 date-time: with an offset on input (a timestamp without one is rejected), in UTC with
# a ``Z`` on output. ``format: date-time`` says the same, but validators only assert formats when
# asked to; a pattern always holds.
_DATE: Final = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_TIME: Final = r"[0-9]{2}:[0-9]{2}:[0-9]{2}"
INPUT_TIMESTAMP_PATTERN: Final = rf"^{_DATE}[Tt]{_TIME}(\.[0-9]+)?([Zz]|[+-][0-9]{{2}}:[0-9]{{2}})$"
OUTPUT_TIMESTAMP_PATTERN: Final = rf"^{_DATE}T{_TIME}(\.[0-9]{{1,6}})?Z$"
# A decimal string that is >= 0 (digits with an optional fraction and exponent, no sign but +).
NON_NEGATIVE_DECIMAL_PATTERN: Final = r"^\+?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
DECIMAL_PATTERN: Final = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"

# What the after-validators of events.py check, as JSON Schema keywords.
_VALIDATOR_KEYWORDS: Final[Mapping[Callable[..., Any], JsonSchemaValue]] = {
    _check_currency: {
        "enum": sorted(CURRENCY_CODES),
        "description": "ISO 4217 currency code, in capitals.",
    },
    _check_country: {
        "enum": sorted(COUNTRY_CODES),
        "description": "ISO 3166-1 alpha-2 country code, in capitals.",
    },
}


def _message_type(model: type[BaseModel]) -> str:
    """The ``type`` value of a message model (its ``Literal``)."""
    (value,) = get_args(model.model_fields["type"].annotation)
    return str(value)


INPUT_TYPES: Final[tuple[str, ...]] = tuple(_message_type(m) for m in INPUT_MODELS)
OUTPUT_TYPES: Final[tuple[str, ...]] = tuple(_message_type(m) for m in OUTPUT_MODELS)


def schema_name(message_type: str) -> str:
    """The file of one message type's schema, relative to the schemas directory."""
    return f"{message_type}.schema.json"


def example_name(message_type: str) -> str:
    """The file of one message type's example, relative to the schemas directory."""
    return f"{EXAMPLES_DIR}/{message_type}.json"


# -- JSON Schema -----------------------------------------------------------------------------


class _ContractSchema(GenerateJsonSchema):
    """pydantic's generator, plus what our validators and serializers enforce."""

    def datetime_schema(self, schema: core_schema.DatetimeSchema) -> JsonSchemaValue:
        json_schema = super().datetime_schema(schema)
        if schema.get("tz_constraint") == "aware":
            json_schema["pattern"] = INPUT_TIMESTAMP_PATTERN
        return json_schema

    def decimal_schema(self, schema: core_schema.DecimalSchema) -> JsonSchemaValue:
        json_schema = super().decimal_schema(schema)
        ge = schema.get("ge")
        pattern = NON_NEGATIVE_DECIMAL_PATTERN if ge is not None and ge >= 0 else DECIMAL_PATTERN
        for branch in json_schema.get("anyOf", [json_schema]):
            if branch.get("type") == "string" and "pattern" not in branch:
                branch["pattern"] = pattern
        return json_schema

    def function_after_schema(
        self, schema: core_schema.AfterValidatorFunctionSchema
    ) -> JsonSchemaValue:
        json_schema = super().function_after_schema(schema)
        keywords = _VALIDATOR_KEYWORDS.get(schema["function"]["function"])
        if keywords is not None:
            json_schema = {**json_schema, **keywords}
        return json_schema

    def ser_schema(
        self,
        schema: (
            core_schema.SerSchema | core_schema.IncExSeqSerSchema | core_schema.IncExDictSerSchema
        ),
    ) -> JsonSchemaValue | None:
        if schema.get("type") == "function-plain" and schema.get("function") is format_utc:
            return {"type": "string", "format": "date-time", "pattern": OUTPUT_TIMESTAMP_PATTERN}
        return super().ser_schema(schema)


def _identify(json_schema: JsonSchemaValue, name: str, title: str | None = None) -> JsonSchemaValue:
    head: JsonSchemaValue = {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": SCHEMA_BASE_URL + name,
        "$comment": _GENERATED_NOTE,
    }
    if title is not None:
        head["title"] = title
    return {**json_schema, **head}


def _require_type(json_schema: JsonSchemaValue) -> None:
    """``type`` selects the model: it is required even where the model has a default."""
    json_schema["properties"]["type"].pop("default", None)
    required: list[str] = json_schema.setdefault("required", [])
    if "type" not in required:
        required.insert(0, "type")


def _omit_nulls(json_schema: JsonSchemaValue) -> None:
    """Outputs leave optional fields out of the JSON rather than writing null (outputs.py)."""
    required = set(json_schema.get("required", ()))
    for name, prop in json_schema["properties"].items():
        if name in required or "anyOf" not in prop:
            continue
        branches = [b for b in prop["anyOf"] if b != {"type": "null"}]
        if len(branches) == len(prop["anyOf"]):
            continue
        del prop["anyOf"]
        if prop.get("default", 0) is None:
            del prop["default"]
        if len(branches) == 1:
            prop.update(branches[0])
        else:
            prop["anyOf"] = branches


def model_schema(model: type[BaseModel]) -> JsonSchemaValue:
    """The published JSON Schema of one message model."""
    is_output = model in OUTPUT_MODELS
    mode: JsonSchemaMode = "serialization" if is_output else "validation"
    json_schema = model.model_json_schema(mode=mode, schema_generator=_ContractSchema)
    _require_type(json_schema)
    if is_output:
        _omit_nulls(json_schema)
    return _identify(json_schema, schema_name(_message_type(model)))


def input_event_schema() -> JsonSchemaValue:
    """Any input message: the union of the input models, discriminated on ``type``."""
    adapter: TypeAdapter[Any] = TypeAdapter(InputEvent)
    json_schema = adapter.json_schema(mode="validation", schema_generator=_ContractSchema)
    for definition in json_schema["$defs"].values():
        if "type" in definition.get("properties", {}):
            _require_type(definition)
    json_schema["description"] = (
        "Any input event of orderwatch: one JSON object whose 'type' selects its fields."
    )
    return _identify(json_schema, INPUT_EVENT_FILE, title="InputEvent")


# -- Examples --------------------------------------------------------------------------------

_MERCHANT: Final = "m-5f3a91"
_ORDER: Final = "ord-7731004"
_TRACKING: Final = "YT2601051234567890"


def example_inputs() -> dict[str, dict[str, Any]]:
    """One example per input type, in the order they happened: one order's story.

    The order is placed in Shenzhen time (an offset other than Z), shipped late (its fulfillment
    deadline passes first; the tracking resolves that breach), scanned once, and ends with a size
    complaint settled by a partial refund; another order is cancelled by its customer.
    """
    examples: list[dict[str, Any]] = [
        {
            "type": "inventory.updated",
            "event_id": "evt-01HQ0001",
            "occurred_at": "2026-01-05T08:30:00+08:00",
            "merchant_id": _MERCHANT,
            "sku": "TEE-BLK-M",
            "available": 3,
            "warehouse_id": "szx-2",
        },
        {
            "type": "order.placed",
            "event_id": "evt-01HQ0002",
            "occurred_at": "2026-01-05T09:12:44+08:00",
            "merchant_id": _MERCHANT,
            "order_id": _ORDER,
            "sku": "TEE-BLK-M",
            "quantity": 2,
            "unit_price": "12.99",
            "shipping_price": "3.50",
            "currency": "USD",
            "destination_country": "US",
            "program": "standard",
        },
        {
            "type": "order.cancelled",
            "event_id": "evt-01HQ0003",
            "occurred_at": "2026-01-06T11:02:10Z",
            "merchant_id": _MERCHANT,
            "order_id": "ord-7731005",
            "cancelled_by": "customer",
        },
        {
            "type": "tracking.submitted",
            "event_id": "evt-01HQ0004",
            "occurred_at": "2026-01-10T16:40:00Z",
            "merchant_id": _MERCHANT,
            "order_id": _ORDER,
            "carrier": "YunExpress",
            "tracking_number": _TRACKING,
        },
        {
            "type": "carrier.scanned",
            "event_id": "evt-01HQ0005",
            "occurred_at": "2026-01-11T03:15:00Z",
            "merchant_id": _MERCHANT,
            "order_id": _ORDER,
            "tracking_number": _TRACKING,
            "status": "accepted",
        },
        {
            "type": "complaint.filed",
            "event_id": "evt-01HQ0006",
            "occurred_at": "2026-01-19T20:05:31Z",
            "merchant_id": _MERCHANT,
            "order_id": _ORDER,
            "complaint_id": "tkt-88213",
            "reason": "size_fit",
            "photos": 2,
            "message": "Runs two sizes small, I can't wear it.",
            "requested": "return",
        },
        {
            "type": "complaint.responded",
            "event_id": "evt-01HQ0007",
            "occurred_at": "2026-01-20T09:30:00Z",
            "merchant_id": _MERCHANT,
            "order_id": _ORDER,
            "complaint_id": "tkt-88213",
        },
        {
            "type": "complaint.resolved",
            "event_id": "evt-01HQ0008",
            "occurred_at": "2026-01-22T14:00:00Z",
            "merchant_id": _MERCHANT,
            "order_id": _ORDER,
            "complaint_id": "tkt-88213",
            "outcome": "partial_refund",
        },
        {
            "type": "order.refunded",
            "event_id": "evt-01HQ0009",
            "occurred_at": "2026-01-22T14:00:05Z",
            "merchant_id": _MERCHANT,
            "order_id": _ORDER,
            "amount": "8.00",
            "reason": "size_fit",
        },
    ]
    return {example["type"]: example for example in examples}


# A line a producer got wrong (its timestamp has no offset): replayed after the cancellation so
# the example rejection is real too.
_BAD_LINE: Final = (
    '{"type": "order.placed", "event_id": "evt-01HQ0010", "occurred_at": "2026-01-07 14:03:00", '
    f'"merchant_id": "{_MERCHANT}", "order_id": "ord-7731006", "sku": "TEE-BLK-L", '
    '"quantity": 1, "unit_price": "12.99", "currency": "USD", "destination_country": "US"}'
)
_BAD_LINE_AFTER: Final = "order.cancelled"
EXAMPLE_SOURCE: Final = "example-events.jsonl"


def example_lines() -> list[bytes]:
    """The example inputs as JSON Lines, with one bad line, as the example outputs replay them."""
    lines: list[bytes] = []
    for message_type, example in example_inputs().items():
        lines.append(json.dumps(example).encode("utf-8"))
        if message_type == _BAD_LINE_AFTER:
            lines.append(_BAD_LINE.encode("utf-8"))
    return lines


def example_outputs() -> dict[str, dict[str, Any]]:
    """The first output of each type that the real core emits when replaying the examples."""
    from streams.core.output_json import serialize
    from streams.core.outputs import OutputEvent
    from streams.policy_files import load_policy
    from streams.replay import replay_lines

    emitted: list[OutputEvent] = []
    replay_lines(example_lines(), emitted.append, policy=load_policy(), source_name=EXAMPLE_SOURCE)
    examples: dict[str, dict[str, Any]] = {}
    for output in emitted:
        examples.setdefault(output.type, json.loads(serialize(output)))
    missing = [t for t in OUTPUT_TYPES if t not in examples]
    if missing:
        raise RuntimeError(
            f"replaying the example inputs emitted no {', '.join(missing)}: "
            "change the examples in streams/tools/schemas.py so every output type occurs"
        )
    return {t: examples[t] for t in OUTPUT_TYPES}


# -- AsyncAPI --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Topic:
    """One topic of contract section 1, as orderwatch sees it."""

    name: str
    direction: Literal["in", "out"]
    types: tuple[str, ...]
    key: str
    description: str

    @property
    def operation_id(self) -> str:
        verb = "receive" if self.direction == "in" else "send"
        return verb + "".join(part.capitalize() for part in self.name.split("-"))


_ORDER_KEY: Final = (
    "The order_id of the event's order. Producers should key order-scoped events by order_id "
    "and use Kafka's default (murmur2) partitioner; a message with another key or none is "
    "still handled correctly."
)

TOPICS: Final[tuple[Topic, ...]] = (
    Topic(
        "orders",
        "in",
        ("order.placed", "order.cancelled", "order.refunded"),
        _ORDER_KEY,
        "Orders placed, cancelled and refunded on the marketplace.",
    ),
    Topic(
        "inventory",
        "in",
        ("inventory.updated",),
        "merchant_id and sku joined by a slash: merchant_id/sku.",
        "The seller's shippable stock per SKU, all warehouses together.",
    ),
    Topic(
        "tracking",
        "in",
        ("tracking.submitted", "carrier.scanned"),
        _ORDER_KEY,
        "Tracking numbers submitted by the seller and the carrier's scans of the parcel.",
    ),
    Topic(
        "complaints",
        "in",
        ("complaint.filed", "complaint.responded", "complaint.resolved"),
        _ORDER_KEY,
        "Customer complaints (tickets): filed, answered by the seller, resolved.",
    ),
    Topic(
        "deadline-breaches",
        "out",
        ("deadline.breached", "deadline.resolved"),
        "The order_id of the order whose deadline passed.",
        "A deadline of the policy passed without the event that meets it; later, once, that "
        "the breached order met it late or ended (its resolution follows its breach).",
    ),
    Topic(
        "dispute-recommendations",
        "out",
        ("recommendation.issued",),
        "The recommendation's subject: order_id (scope order), merchant_id/sku (sku), "
        "merchant_id/carrier (carrier, the carrier name lowercased and trimmed) or merchant_id "
        "(merchant).",
        "What the seller should do, by when, and why.",
    ),
    Topic(
        "dead-letter",
        "out",
        ("event.rejected",),
        "The key of the rejected message, unchanged (no key when it had none).",
        "Input messages that could not be used, with a sentence saying what was wrong.",
    ),
)

_KAFKA_BINDING_VERSION: Final = "0.5.0"


def _sorted(value: Any) -> Any:
    """``value`` with every mapping's keys sorted, as the JSON files are."""
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


def _models_by_type() -> dict[str, type[BaseModel]]:
    return {_message_type(m): m for m in (*INPUT_MODELS, *OUTPUT_MODELS)}


def asyncapi_document(examples: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of orderwatch's topics, from orderwatch's point of view."""
    models = _models_by_type()
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for topic in TOPICS:
        channels[topic.name] = {
            "address": topic.name,
            "title": topic.name,
            "description": (
                f"{topic.description} Default topic name; it can be changed by configuration "
                "(one prefix for all topics, or each name)."
            ),
            "messages": {t: {"$ref": f"#/components/messages/{t}"} for t in topic.types},
        }
        operations[topic.operation_id] = {
            "action": "receive" if topic.direction == "in" else "send",
            "title": f"{'Consume' if topic.direction == 'in' else 'Produce'} {topic.name}",
            "channel": {"$ref": f"#/channels/{topic.name}"},
            "messages": [{"$ref": f"#/channels/{topic.name}/messages/{t}"} for t in topic.types],
        }
        for message_type in topic.types:
            model = models[message_type]
            extra = {"headers": _output_headers(message_type)} if topic.direction == "out" else {}
            messages[message_type] = extra | {
                "name": message_type,
                "title": message_type,
                "summary": (model.__doc__ or message_type).strip().splitlines()[0],
                "contentType": "application/json",
                "payload": {"$ref": f"./{schema_name(message_type)}"},
                "bindings": {
                    "kafka": {
                        "key": {"type": "string", "description": topic.key},
                        "bindingVersion": _KAFKA_BINDING_VERSION,
                    }
                },
                "examples": [
                    {
                        "name": message_type.replace(".", "-"),
                        "summary": f"An example {message_type} (see {example_name(message_type)})",
                        "payload": _sorted(dict(examples[message_type])),
                    }
                ],
            }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "orderwatch",
            "version": __version__,
            "description": (
                "Order-lifecycle monitor for marketplace sellers: reads order, inventory, "
                "tracking and complaint events from Kafka and writes deadline breaches, dispute "
                "recommendations and rejected inputs. Every message value is one JSON object "
                "(UTF-8) whose 'type' field names its schema; keys are UTF-8 strings."
            ),
            "license": {"name": "Apache-2.0"},
        },
        "defaultContentType": "application/json",
        "servers": _SERVERS,
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "securitySchemes": _SECURITY_SCHEMES},
    }


_SERVERS: Final = {
    "local": {
        "host": "127.0.0.1:9092",
        "protocol": "kafka",
        "description": (
            "A broker without TLS or authentication (ORDERWATCH_SECURITY_PROTOCOL=PLAINTEXT, "
            "the default), such as a local development broker. The address is "
            "ORDERWATCH_BROKER."
        ),
    },
    "secured": {
        "host": "{bootstrap}",
        "protocol": "kafka-secure",
        "description": (
            "A cluster behind TLS (ORDERWATCH_SECURITY_PROTOCOL=SSL or SASL_SSL; the CA in "
            "ORDERWATCH_SSL_CAFILE), authenticated with SASL (ORDERWATCH_SASL_MECHANISM, "
            "_USERNAME, _PASSWORD) or a client certificate (ORDERWATCH_SSL_CERTFILE, "
            "_KEYFILE). Every client orderwatch starts uses the same settings."
        ),
        "variables": {
            "bootstrap": {
                "description": "host:port of a bootstrap server (ORDERWATCH_BROKER)",
                "examples": ["kafka.example.com:9093"],
            }
        },
        "security": [
            {"$ref": f"#/components/securitySchemes/{name}"}
            for name in ("scramSha512", "scramSha256", "plain", "clientCertificate")
        ],
    },
}

_SECURITY_SCHEMES: Final = {
    "scramSha512": {
        "type": "scramSha512",
        "description": "SASL SCRAM-SHA-512 over TLS (ORDERWATCH_SASL_MECHANISM=SCRAM-SHA-512).",
    },
    "scramSha256": {
        "type": "scramSha256",
        "description": "SASL SCRAM-SHA-256 over TLS (ORDERWATCH_SASL_MECHANISM=SCRAM-SHA-256).",
    },
    "plain": {
        "type": "plain",
        "description": "SASL PLAIN over TLS (ORDERWATCH_SASL_MECHANISM=PLAIN).",
    },
    "clientCertificate": {
        "type": "X509",
        "description": (
            "A TLS client certificate (ORDERWATCH_SSL_CERTFILE and ORDERWATCH_SSL_KEYFILE)."
        ),
    },
}


def _text_header(description: str, **schema: Any) -> dict[str, Any]:
    return {"type": "string", "description": description} | schema


def _output_headers(message_type: str) -> dict[str, Any]:
    """The Kafka headers of an output message (:mod:`streams.kafka.headers`), as a JSON Schema."""
    properties = {
        "content-type": _text_header("The value's media type.", const=CONTENT_TYPE),
        "ce_specversion": _text_header("CloudEvents spec version.", const=SPEC_VERSION),
        "ce_id": _text_header(
            "The output's id: breach_id, resolution_id, recommendation_id or rejection_id "
            "(deduplicate on it)."
        ),
        "ce_type": _text_header("The value's type field.", const=message_type),
        "ce_source": _text_header(
            "The worker's application: /orderwatch/ followed by ORDERWATCH_APP_ID.",
            examples=[cloudevents_source("orderwatch")],
        ),
        "ce_time": _text_header(
            "When the processor decided it: detected_at, issued_at or rejected_at (RFC 3339).",
            format="date-time",
        ),
    }
    required = list(properties)
    if message_type == "event.rejected":
        names = DEAD_LETTER_HEADERS
        properties |= {
            names["topic"]: _text_header("The topic the rejected message was read from."),
            names["partition"]: _text_header("Its partition, in decimal.", pattern="^[0-9]+$"),
            names["offset"]: _text_header("Its offset, in decimal.", pattern="^[0-9]+$"),
            names["reason"]: _text_header("The reason field: what kind of problem it has."),
        }
        required.append(names["reason"])
    else:
        properties["ce_subject"] = _text_header(
            "The order_id (deadline.breached, deadline.resolved) or the subject "
            "(recommendation.issued)."
        )
        required.append("ce_subject")
    return {
        "type": "object",
        "description": (
            "Kafka headers (UTF-8 text): CloudEvents 1.0 attributes in Kafka binary mode"
            + (
                ", and where the rejected message came from"
                if message_type == "event.rejected"
                else ""
            )
            + "."
        ),
        "properties": properties,
        "required": required,
    }


# -- Files -----------------------------------------------------------------------------------


def _json_text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def _yaml_text(value: Any) -> str:
    body = yaml.safe_dump(
        value, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100
    )
    return f"# {_GENERATED_NOTE}\n{body}"


def render_schemas() -> dict[str, str]:
    """Every generated file: its path relative to the schemas directory, and its text."""
    models = _models_by_type()
    examples = {**example_inputs(), **example_outputs()}
    files: dict[str, str] = {}
    for message_type in (*INPUT_TYPES, *OUTPUT_TYPES):
        files[schema_name(message_type)] = _json_text(model_schema(models[message_type]))
    files[INPUT_EVENT_FILE] = _json_text(input_event_schema())
    files[ASYNCAPI_FILE] = _yaml_text(asyncapi_document(examples))
    for message_type, example in examples.items():
        files[example_name(message_type)] = _json_text(example)
    return files


def _orphans(directory: Path, expected: Mapping[str, str]) -> list[str]:
    """Generated-looking files that the models no longer produce (a removed type)."""
    found = [p.name for p in directory.glob("*.schema.json")]
    found += [f"{EXAMPLES_DIR}/{p.name}" for p in (directory / EXAMPLES_DIR).glob("*.json")]
    return [name for name in found if name not in expected]


def write_schemas(directory: Path, *, check: bool = False) -> list[str]:
    """Write the generated files into ``directory`` (or only compare, with ``check``).

    Returns the relative names of the files that differ from what the models generate, are
    missing, or are left over from a type that no longer exists; without ``check`` those are
    the files it wrote (or deleted). An empty list means ``directory`` is up to date.
    """
    files = render_schemas()
    stale: list[str] = []
    for name, text in files.items():
        path = directory / name
        data = text.encode("utf-8")
        try:
            current: bytes | None = path.read_bytes()
        except FileNotFoundError:
            current = None
        if current == data:
            continue
        stale.append(name)
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    for name in _orphans(directory, files):
        stale.append(name)
        if not check:
            (directory / name).unlink()
    return sorted(stale)
