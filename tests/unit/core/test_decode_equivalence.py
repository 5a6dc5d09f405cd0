"""decode_event, sped up for replay, decides exactly as the pydantic adapter it calls.

``decode_event`` calls the adapter's validator directly (not through ``TypeAdapter``) and the
timestamp validator converts to UTC inline. Over valid simulator events and many mutated ones
(wrong types, bad timestamps and offsets, missing and extra fields, broken JSON and UTF-8), it
must give what the public ``TypeAdapter.validate_json`` path gives: the same event, every
timestamp the same instant with ``datetime.UTC`` as its tzinfo, or the same rejection (reason
and sentence).
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from pydantic import BaseModel, ValidationError

from streams.core import events
from streams.core.events import decode_event, describe_validation_error
from streams.core.outputs import Rejection
from streams.tools.simulator import bad_lines, generate_events

_ODD_VALUES: list[Any] = [
    "2026-01-05T10:00:00Z",
    "2026-01-05T10:00:00.5+08:00",
    "2026-01-05T10:00:00-00:00",
    "2026-01-05T10:00:00",
    "2026-01-05",
    "2026-02-30T10:00:00Z",
    "1970-12-31T23:00:00-02:00",
    "2199-12-31T23:59:59-01:00",
    "2200-01-01T00:00:00Z",
    1767607200,
    "",
    "x" * 129,
    "é" * 128,
    "NaN",
    "12.30",
    -1,
    2.5,
    10**30,
    None,
    True,
    [],
    {},
    "USD",
    "XX",
    "express",
    "delivered",
]


def _reference(raw: bytes) -> BaseModel | Rejection:
    """decode_event as it was: through ``TypeAdapter.validate_json``."""
    try:
        return events._ADAPTER.validate_json(raw)
    except ValidationError as error:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as bad:
            return Rejection(
                "not_utf8",
                f"The message is not valid UTF-8 (byte 0x{raw[bad.start]:02x} at position "
                f"{bad.start}); producers must send UTF-8 encoded JSON.",
            )
        return Rejection(events._reason(error), describe_validation_error(error))


def _corpus() -> list[bytes]:
    rng = random.Random(11)
    lines = [
        json.dumps(event).encode() for event in islice(generate_events(seed=3, orders=300), 1500)
    ]
    mutated = []
    for line in lines:
        event = json.loads(line)
        for _ in range(rng.choice((1, 1, 2))):
            key = rng.choice([*event, "released_at", "shipping_price", "extra"])
            if rng.random() < 0.15:
                event.pop(key, None)
            else:
                event[key] = rng.choice(_ODD_VALUES)
        text = json.dumps(event, ensure_ascii=rng.random() < 0.5).encode()
        if rng.random() < 0.05:
            text = text[:-1]
        elif rng.random() < 0.05:
            text = text.replace(b"e", b"\xff", 1)
        mutated.append(text)
    return lines + mutated + bad_lines(random.Random(5))


def test_decode_event_gives_what_the_adapter_gives_on_valid_and_mutated_events() -> None:
    kinds = {"event": 0, "rejection": 0}
    for raw in _corpus():
        got, expected = decode_event(raw), _reference(raw)
        assert type(got) is type(expected), raw
        if isinstance(expected, Rejection):
            kinds["rejection"] += 1
            assert got == expected, raw
            continue
        kinds["event"] += 1
        assert isinstance(got, BaseModel)
        assert got.model_dump() == expected.model_dump(), raw
        assert got.model_fields_set == expected.model_fields_set, raw
        given = json.loads(raw)
        for name, value in got.__dict__.items():
            if isinstance(value, datetime):
                assert value.tzinfo is UTC, (name, raw)
                assert value == datetime.fromisoformat(given[name]), (name, raw)
    assert kinds["event"] > 1000
    assert kinds["rejection"] > 500
