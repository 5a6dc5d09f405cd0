"""A SKU stored by a format-2 worker (every open and closed order, inventory id and complaint in
one value) is read by this release and moved to its pages, deciding on as if never stored.

Half a simulated month is replayed; then every SKU's state is written as format 2 wrote it,
read back, and its pages dropped, as a worker that restored format-2 state has them; the rest of
the stream must give what an uninterrupted replay gives.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from streams.core import state_codec
from streams.core.aggregates import SKU, SKU_STOCK
from streams.core.engine import Engine
from streams.core.events import decode_event
from streams.core.facts import SkuComplaint
from streams.core.output_json import serialize
from streams.core.sku import _REVIEWS, SkuState
from streams.policy_files import load_policy
from streams.tools.simulator import generate_events

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _us(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def as_format_2(engine: Engine, key: str, state: SkuState) -> bytes:
    """The SKU's state as a format-2 worker stored it (plain JSON, which every format reads)."""
    queue = engine.queue_pages(key)
    claims = [entry for slot in state.queue.slots for entry in queue.queue_page(slot.number) or []]
    opened = [(position, claim) for position, claim in claims if claim.closed_at is None]
    boundary = state.queue.boundary
    seen = engine.ledgers.pages(SKU_STOCK, key).timelines
    complaints: dict[str, SkuComplaint] = engine.ledgers.pages(SKU, key).timelines
    windows: dict[str, Any] = {}
    policy = engine.policy
    for _, name in _REVIEWS:
        review = getattr(policy, name)
        entries = sorted(
            (c.filed_at, k) for k, c in complaints.items() if c.reason in review.reasons
        )
        if entries or name in state.crossings:
            windows[name] = [[[_us(at), k] for at, k in entries], sorted(k for _, k in entries)]
    stock_as_of = state.stock_as_of
    raw = {
        "v": 2,
        "k": "sku",
        "merchant_id": state.merchant_id,
        "sku": state.sku,
        "stock_as_of": None if stock_as_of is None else [_us(stock_as_of[0]), stock_as_of[1]],
        "available": state.available,
        "inventory_seen": {event_id: _us(at) for event_id, at in seen.items()},
        "closed_orders": {
            order_id: _us(claim.closed_at)
            for (_, order_id), claim in claims
            if claim.closed_at is not None
        },
        "open_orders": {
            order_id: [_us(placed_at), c.quantity, _us(c.fulfillment_due), c.shortages]
            for (placed_at, order_id), c in opened
        },
        "queue": [[_us(placed_at), order_id] for (placed_at, order_id), _ in opened],
        "at_risk": sorted(
            order_id
            for position, _ in opened
            if boundary is not None and position >= boundary
            for order_id in [position[1]]
        ),
        "complaints": windows,
        "crossings": {n: [c.above, c.count] for n, c in state.crossings.items()},
    }
    return json.dumps(raw).encode()


def _stock_swings(engine: Engine, after: datetime) -> list[Any]:
    """Each SKU's stock to nothing, plenty and nothing again (every open order short, covered,
    then short a second time), and an inventory id seen before told again with other stock."""
    swings: list[Any] = []
    for number, state in enumerate(engine.skus.values()):
        repeated = state.stock_as_of
        for step, available in enumerate((0, 100_000, 0, 7)):
            event_id = f"swing-{number}-{step}"
            if step == 3 and repeated is not None:
                event_id = repeated[1]  # a duplicate: changes nothing
            raw = {
                "event_id": event_id,
                "type": "inventory.updated",
                "occurred_at": (after + timedelta(seconds=10 * step + 1)).isoformat(),
                "merchant_id": state.merchant_id,
                "sku": state.sku,
                "available": available,
            }
            swings.append(decode_event(json.dumps(raw).encode()))
    return sorted(swings, key=lambda event: event.occurred_at)


def _events() -> list[Any]:
    return [
        decode_event(json.dumps(raw).encode())
        for raw in generate_events(
            seed=13, orders=2000, merchants=1, skus_per_merchant=3, orders_per_hour=150.0
        )
    ]


def test_a_format_2_sku_decides_on_as_if_never_stored() -> None:
    events = _events()
    half = len(events) // 2
    whole, restored = Engine(load_policy()), Engine(load_policy())
    for event in events[:half]:
        whole.process(event)
        restored.process(event)
    assert any(state.queue.boundary is not None for state in restored.skus.values())
    assert any(state.crossings for state in restored.skus.values())
    for key, state in list(restored.skus.items()):
        restored.skus[key] = state_codec.decode_sku(as_format_2(restored, key, state))
        assert restored.skus[key].unspilled or not state.queue.open_orders
    restored.ledgers._queues.clear()
    for kind_subject in [ks for ks in restored.ledgers._pages if ks[0] in (SKU, SKU_STOCK)]:
        del restored.ledgers._pages[kind_subject]
    later_whole: list[str] = []
    later_restored: list[str] = []
    for event in _stock_swings(restored, events[half - 1].occurred_at) + events[half:]:
        later_whole += [serialize(o) for o in whole.process(event)]
        later_restored += [serialize(o) for o in restored.process(event)]
    end = max(event.occurred_at for event in events) + timedelta(days=120)
    later_whole += [serialize(o) for o in whole.advance_to(end)]
    later_restored += [serialize(o) for o in restored.advance_to(end)]
    assert any("STOCKOUT_RISK" in line for line in later_whole)
    assert later_restored == later_whole
