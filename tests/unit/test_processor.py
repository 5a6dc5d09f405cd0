"""The partition processor as the worker drives it: one partition of many, its clocks injected.

Replay's engine drives it as one partition with one clock (the rules tests); the partitioned
property test drives many, in random batches. These are the worker-only paths: routing,
screening, watermarks, the wall clock, and a failing read.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from streams.core import order
from streams.core.aggregates import DictStore
from streams.core.events import InventoryUpdated, OrderEvent, decode_event
from streams.core.facts import sku_subject
from streams.core.inbox import AggregateInbox, inventory_source, order_source
from streams.core.processor import (
    AggregateRead,
    ClockRead,
    OrderRead,
    PartitionProcessor,
    StockRead,
    WatermarkRead,
)
from streams.core.sequencer import Item
from streams.core.timekeeping import EventTime, Timekeeper, WallTime
from streams.policies import load_policy
from streams.worker import partition_for

POLICY = load_policy()
PARTITIONS = 4
T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
TOPICS = ("orders", "tracking", "complaints")


def _route(key: str) -> int:
    return partition_for(key, PARTITIONS)


def _orders_on(partition: int, count: int = 1) -> list[str]:
    found = (f"o{n}" for n in range(10_000) if _route(f"o{n}") == partition)
    return [next(found) for _ in range(count)]


def _order_on(partition: int) -> str:
    return _orders_on(partition)[0]


def _sku_on(partition: int) -> str:
    return next(f"s{n}" for n in range(1000) if _route(sku_subject("m1", f"s{n}")) == partition)


def placed(order_id: str, at: datetime) -> OrderEvent:
    event = decode_event(
        json.dumps(
            {
                "event_id": f"{order_id}-placed",
                "type": "order.placed",
                "occurred_at": at.isoformat(),
                "merchant_id": "m1",
                "order_id": order_id,
                "sku": "s1",
                "quantity": 1,
                "unit_price": "10.00",
                "currency": "USD",
                "destination_country": "US",
            }
        ).encode()
    )
    assert isinstance(event, OrderEvent)
    return event


def stock(sku: str, at: datetime) -> InventoryUpdated:
    event = decode_event(
        json.dumps(
            {
                "event_id": f"{sku}-{at.timestamp()}",
                "type": "inventory.updated",
                "occurred_at": at.isoformat(),
                "merchant_id": "m1",
                "sku": sku,
                "available": 0,
            }
        ).encode()
    )
    assert isinstance(event, InventoryUpdated)
    return event


class Keeper:
    def __init__(self) -> None:
        self.kept: list[tuple[Item, int]] = []
        self.watermarks: dict[str, datetime] = {}

    def keep(self, item: Item, ref: int) -> int:
        self.kept.append((item, ref))
        return ref

    def keep_watermark(self, source: str, watermark: datetime) -> None:
        self.watermarks[source] = watermark


class Stores:
    def __init__(self) -> None:
        self.skus: DictStore[Any] = DictStore()
        self.carriers: DictStore[Any] = DictStore()
        self.merchants: DictStore[Any] = DictStore()


def processor(partition: int, time: Timekeeper | None = None) -> PartitionProcessor[int, int]:
    return PartitionProcessor(
        partition,
        POLICY,
        orders=DictStore(),
        aggregates=Stores(),
        time=time or EventTime(POLICY.allowed_lateness, TOPICS),
        inbox=AggregateInbox(PARTITIONS),
        keeper=Keeper(),
        route=_route,
    )


def test_an_order_event_of_another_partition_is_forwarded_untouched() -> None:
    here = processor(0)
    event = placed(_order_on(1), T0)
    actions = here.handle([OrderRead(7, "orders", event)])
    assert actions.forward == [(7, event)]
    assert len(here.orders) == 0
    assert actions.facts == []
    assert actions.announce == {}


def test_the_orders_clock_follows_the_slowest_topic_and_is_announced_once() -> None:
    here = processor(0)
    order_id = _order_on(0)
    first = here.handle([OrderRead(1, "orders", placed(order_id, T0))])
    assert first.announce == {}  # tracking and complaints have not spoken
    time = here.time
    assert isinstance(time, EventTime)
    time.lift("tracking", T0)
    time.lift("complaints", T0)
    second = here.handle([OrderRead(2, "orders", placed(_orders_on(0, 2)[1], T0))])
    assert second.announce == {order_source(0): T0 - POLICY.allowed_lateness}
    assert here.handle([]).announce == {}  # nothing moved: nothing to announce again


def test_an_event_far_ahead_of_its_partition_is_rejected_and_changes_nothing() -> None:
    here = processor(0)
    here.handle([OrderRead(1, "orders", placed(_order_on(0), T0))])
    late = placed(_orders_on(0, 2)[1], T0 + POLICY.max_ahead + timedelta(seconds=1))
    actions = here.handle([OrderRead(2, "orders", late)])
    [(ref, rejection)] = actions.rejected
    assert (ref, rejection.reason) == (2, "from_the_future")
    assert late.order_id not in here.orders.states  # type: ignore[operator]


def test_a_stock_level_waits_for_every_source_then_is_applied_by_the_read_that_let_it_go() -> None:
    here = processor(2)
    level = stock(_sku_on(2), T0)
    actions = here.handle([StockRead(1, level)])
    assert actions.forward_stock == []
    assert here.waiting == 1
    assert here.keeper.kept == [(level, 1)]
    marks = [
        WatermarkRead(10 + n, source(p), T0 + timedelta(seconds=1))
        for n, (source, p) in enumerate(
            (s, p) for p in range(PARTITIONS) for s in (order_source, inventory_source)
        )
    ]
    released = here.handle(marks)
    assert here.waiting == 0
    assert released.applied == [(marks[-1].ref, 1)]  # the last watermark completed the set


def test_a_stock_level_read_on_another_partition_is_forwarded_and_still_moves_its_clock() -> None:
    here = processor(0)
    level = stock(_sku_on(3), T0)
    actions = here.handle([StockRead(1, level)])
    assert actions.forward_stock == [(1, level)]
    assert actions.announce == {inventory_source(0): T0 - POLICY.allowed_lateness}


def test_on_the_wall_clock_ticks_fire_and_clock_messages_are_ignored() -> None:
    here = processor(0, WallTime())
    order_id = _order_on(0)
    placed_at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
    actions = here.handle([OrderRead(1, "orders", placed(order_id, placed_at))], now=placed_at)
    assert actions.outputs == []
    assert actions.announce == {}
    ignored = here.handle([ClockRead(2, placed_at + timedelta(days=30))], now=placed_at)
    assert ignored.ignored_clock == 1
    assert ignored.outputs == []
    fired = here.tick(placed_at + timedelta(days=30))
    assert "fulfillment" in {o.deadline for o in fired.outputs if hasattr(o, "deadline")}


def test_a_read_that_fails_is_reported_and_the_batch_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    here = processor(0)
    good, bad = _orders_on(0, 2)
    real_apply = order.apply

    def apply(state: Any, event: OrderEvent, now: datetime, policy: Any) -> Any:
        if event.order_id == bad:
            raise ArithmeticError("a bug")
        return real_apply(state, event, now, policy)

    monkeypatch.setattr(order, "apply", apply)
    reads = [OrderRead(1, "orders", placed(bad, T0)), OrderRead(2, "orders", placed(good, T0))]
    actions = here.handle(reads)
    [(ref, error)] = actions.failed
    assert ref == 1
    assert isinstance(error, ArithmeticError)
    assert here.orders.states.get(good) is not None  # type: ignore[attr-defined]
    assert here.orders.states.get(bad) is None  # type: ignore[attr-defined]


def test_facts_arrive_as_aggregate_reads_and_wait_in_their_group() -> None:
    here = processor(1)
    order_id = _order_on(1)
    facts = processor(1).handle([OrderRead(1, "orders", placed(order_id, T0))]).facts
    assert facts  # the order's demand and health
    actions = here.handle([AggregateRead(5, fact) for fact in facts])
    assert actions.outputs == []
    assert here.waiting == len(facts)


def test_on_the_wall_clock_an_input_ahead_of_the_time_waits_for_a_tick_that_reports_it() -> None:
    here = processor(0, WallTime())
    level = stock(_sku_on(0), T0 + timedelta(hours=1))
    waiting = here.handle([StockRead(3, level)], now=T0)
    assert waiting.applied == []
    assert here.waiting == 1
    released = here.tick(T0 + timedelta(hours=2))
    assert released.applied == [(None, 3)]  # the driver drops it from its table itself
    assert here.waiting == 0
