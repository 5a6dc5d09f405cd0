"""``orderwatch send`` routing: each line to its type's topic, keyed as the worker reads it."""

from __future__ import annotations

import json

import pytest

from streams.core.events import EVENT_TYPES
from streams.settings import TOPIC_ROLES
from streams.tools.send import ROLE_OF_TYPE, SendSummary, Unroutable, route


def line(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def test_every_input_event_type_has_an_input_topic() -> None:
    assert set(ROLE_OF_TYPE) == set(EVENT_TYPES)
    assert set(ROLE_OF_TYPE.values()) == {"orders", "inventory", "tracking", "complaints"}
    assert set(ROLE_OF_TYPE.values()) <= set(TOPIC_ROLES)


@pytest.mark.parametrize(
    ("event_type", "role"),
    [
        ("order.placed", "orders"),
        ("order.refunded", "orders"),
        ("carrier.scanned", "tracking"),
        ("complaint.resolved", "complaints"),
    ],
)
def test_order_events_are_keyed_by_order_id(event_type: str, role: str) -> None:
    assert route(line(type=event_type, order_id="o-1", merchant_id="m-1")) == (role, b"o-1")


def test_stock_levels_are_keyed_by_merchant_and_sku() -> None:
    raw = line(type="inventory.updated", merchant_id="m-1", sku="sku-9", available=3)
    assert route(raw) == ("inventory", b"m-1/sku-9")


def test_a_routable_event_without_its_key_is_sent_unkeyed_for_the_worker_to_reject() -> None:
    assert route(line(type="order.placed", order_id=5)) == ("orders", None)
    assert route(line(type="inventory.updated", merchant_id="m-1")) == ("inventory", None)


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"order_id": "o-1"}', "type None is not an input event type"),
        (b'{"type": "order.shipped"}', "type 'order.shipped' is not an input event type"),
        (b'{"type": 7}', "type 7 is not an input event type"),
    ],
)
def test_a_line_without_an_input_type_cannot_be_routed(raw: bytes, why: str) -> None:
    with pytest.raises(Unroutable) as raised:
        route(raw)
    assert str(raised.value).startswith(why)


def test_the_summary_counts_by_topic_and_names_what_was_not_sent() -> None:
    summary = SendSummary(lines=5, seconds=2.0)
    summary.by_topic.update({"orders": 3, "tracking": 1})
    summary.unroutable.append((4, "not JSON"))

    assert summary.sent == 4
    assert summary.describe() == (
        "sent 4 events (orders 3, tracking 1) in 2.00 s (2 events/s); "
        "1 line not sent (no input event type)"
    )
