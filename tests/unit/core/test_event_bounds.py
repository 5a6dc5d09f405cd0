"""Numbers the core cannot compute with are rejected; every number it accepts, it computes with."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from streams.core.engine import Engine
from streams.core.events import MAX_COUNT, MAX_MONEY, MAX_QUANTITY, decode_event
from streams.core.outputs import Rejection
from streams.policy_files import load_policy

PLACED: dict[str, Any] = {
    "event_id": "e-1",
    "type": "order.placed",
    "occurred_at": "2026-01-05T10:00:00Z",
    "merchant_id": "m-1",
    "order_id": "o-1",
    "sku": "sku-1",
    "quantity": 1,
    "unit_price": "9.99",
    "currency": "USD",
    "destination_country": "US",
}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("unit_price", "1e26"),
        ("unit_price", 1e26),
        ("shipping_price", "1000000000.01"),
        ("quantity", 10**30),
        ("quantity", MAX_QUANTITY + 1),
        ("unit_price", "1." + "0" * 40 + "1"),
    ],
)
def test_an_order_with_a_number_out_of_range_is_rejected_naming_the_field(
    field: str, value: Any
) -> None:
    error = decode_event(json.dumps(PLACED | {field: value}).encode())
    assert isinstance(error, Rejection)
    assert error.reason == "invalid_field"
    assert error.error.startswith(f"Field '{field}' of order.placed")


def test_a_stock_level_out_of_range_is_rejected_naming_the_field() -> None:
    stock = {
        "event_id": "e-2",
        "type": "inventory.updated",
        "occurred_at": "2026-01-05T09:00:00Z",
        "merchant_id": "m-1",
        "sku": "sku-1",
        "available": MAX_COUNT + 1,
    }
    error = decode_event(json.dumps(stock).encode())
    assert isinstance(error, Rejection)
    assert error.reason == "invalid_field"
    assert error.error.startswith("Field 'available' of inventory.updated")


def test_the_largest_accepted_numbers_go_through_every_deadline_and_refund() -> None:
    """Order value, USD conversion, refund rate and stock-outs at the bounds: no exception."""
    largest = PLACED | {
        "quantity": MAX_QUANTITY,
        "unit_price": str(MAX_MONEY),
        "shipping_price": str(MAX_MONEY),
        "currency": "IDR",
    }
    lines = [
        largest,
        PLACED | {"event_id": "e-3", "order_id": "o-2", "unit_price": "0.0000000001"},
        {
            "event_id": "e-4",
            "type": "order.refunded",
            "occurred_at": "2026-01-06T10:00:00Z",
            "merchant_id": "m-1",
            "order_id": "o-1",
            "amount": str(MAX_MONEY),
            "reason": "damaged",
        },
    ]
    engine = Engine(load_policy())
    outputs = []
    for line in lines:
        event = decode_event(json.dumps(line).encode())
        assert not isinstance(event, Rejection), event
        outputs += engine.process(event)
    outputs += engine.advance_to(engine.clock + timedelta(days=60))
    overdue = [o for o in outputs if getattr(o, "reason", None) == "FULFILLMENT_OVERDUE"]
    assert {o.order_id for o in overdue} == {"o-2"}  # o-1 was refunded before its deadline
