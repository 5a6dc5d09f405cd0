"""Every value the worker writes has a size bound, whatever a store's volume.

A top seller's month in miniature: one store, one SKU, 420 orders an hour (10,000 a day) until
the SKU has about 5,000 open orders. Pages hold at most a fixed number of entries, so they are
bounded by construction; heads hold one slot per page, a few dozen bytes each. The old layout
(every open and closed order, inventory id and complaint in the SKU's value) wrote 450,523 bytes
for this SKU at 4,887 open orders, and would pass the producer's 1 MB limit at about 11,000.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

from streams.core import state_codec
from streams.core.aggregates import MERCHANT, SKU, SKU_STOCK
from streams.core.engine import Engine
from streams.core.events import decode_event
from streams.core.outputs import Rejection
from streams.policy_files import load_policy
from streams.tools.simulator import generate_events

KB = 1024


def test_a_sku_with_5000_open_orders_writes_no_value_over_its_bound() -> None:
    engine = Engine(load_policy())
    largest: Counter[str] = Counter()

    def note(kind: str, data: bytes) -> None:
        largest[kind] = max(largest[kind], len(data))

    most_open = 0
    events = generate_events(
        seed=3,
        orders=6000,
        merchants=1,
        skus_per_merchant=1,
        orders_per_hour=420.0,
        start=datetime(2026, 1, 1, tzinfo=UTC),
    )
    for number, raw in enumerate(events):
        event = decode_event(json.dumps(raw).encode())
        assert not isinstance(event, Rejection)
        engine.process(event)
        if number % 5000:
            continue
        for key, state in engine.skus.items():
            most_open = max(most_open, state.queue.open_orders)
            note("sku head", state_codec.encode_sku(state))
            queue = engine.queue_pages(key)
            for slot in state.queue.slots:
                note(
                    "queue page", state_codec.encode_queue_page(queue.queue_page(slot.number) or [])
                )
            for kind in (SKU, SKU_STOCK):
                for page in engine.ledgers.pages(kind, key).pages.values():
                    note("ledger page", state_codec.encode_page(page))
        for key, merchant in engine.merchants.items():
            note("merchant head", state_codec.encode_merchant(merchant))
            for page in engine.ledgers.pages(MERCHANT, key).pages.values():
                note("ledger page", state_codec.encode_page(page))
    assert most_open > 4500, most_open
    assert largest["sku head"] <= 4 * KB, largest
    assert largest["merchant head"] <= 4 * KB, largest
    assert largest["queue page"] <= 8 * KB, largest
    assert largest["ledger page"] <= 8 * KB, largest
