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
from streams.core.clock import PartitionClock
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
from streams.core.timekeeping import EventTime, Timekeeper, WallTime, capped_clock
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


def wall() -> WallTime:
    return WallTime(POLICY.allowed_lateness, TOPICS)


def tracking(order_id: str, at: datetime) -> OrderEvent:
    event = decode_event(
        json.dumps(
            {
                "event_id": f"{order_id}-tracking",
                "type": "tracking.submitted",
                "occurred_at": at.isoformat(),
                "merchant_id": "m1",
                "order_id": order_id,
                "carrier": "USPS",
                "tracking_number": "9400100000000000000000",
            }
        ).encode()
    )
    assert isinstance(event, OrderEvent)
    return event


def _deadlines(outputs: list[Any]) -> set[str]:
    return {o.deadline for o in outputs if hasattr(o, "deadline")}


def test_on_the_wall_clock_ticks_fire_once_every_input_was_read_and_clock_messages_are_ignored():
    here = processor(0, wall())
    order_id = _order_on(0)
    placed_at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
    later = placed_at + timedelta(days=30)
    actions = here.handle([OrderRead(1, "orders", placed(order_id, placed_at))], now=placed_at)
    assert actions.outputs == []
    ignored = here.handle([ClockRead(2, later)], now=placed_at)
    assert ignored.ignored_clock == 1
    assert ignored.outputs == []
    # Tracking and complaints were never read nor found caught up: nothing may fire yet.
    assert here.tick(later).outputs == []
    for topic in TOPICS:
        here.caught_up(topic, later)
    fired = here.tick(later)
    assert "fulfillment" in _deadlines(fired.outputs)
    assert fired.announce[order_source(0)] == later


def test_on_the_wall_clock_a_backlog_is_read_before_a_deadline_it_meets_fires() -> None:
    """Tracking submitted in time but read a month late (a restart, an outage): no breach."""
    here = processor(0, wall())
    order_id = _order_on(0)
    placed_at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    now = placed_at + timedelta(days=30)
    here.handle([OrderRead(1, "orders", placed(order_id, placed_at))], now=now)
    here.caught_up("orders", now)
    here.caught_up("complaints", now)
    # The tracking topic has a backlog: it holds the clock where its events are.
    assert _deadlines(here.tick(now).outputs) == set()
    shipped = here.handle(
        [OrderRead(2, "tracking", tracking(order_id, placed_at + timedelta(days=1)))], now=now
    )
    assert _deadlines(shipped.outputs) == set()
    assert here.time.orders_clock(now) == placed_at + timedelta(days=1) - POLICY.allowed_lateness
    here.caught_up("tracking", now)
    fired = _deadlines(here.tick(now).outputs)
    assert "fulfillment" not in fired  # met by the tracking read from the backlog
    assert "confirmed_fulfillment" in fired  # never scanned: a true breach


def test_the_wall_clock_never_runs_ahead_of_the_time_nor_back() -> None:
    here = processor(0, wall())
    for topic in TOPICS:
        here.caught_up(topic, T0 + timedelta(hours=1))
    assert here.time.orders_clock(T0) == T0  # capped by the time read
    assert here.time.orders_clock(T0 + timedelta(hours=2)) == T0 + timedelta(hours=1)
    here.handle([OrderRead(1, "orders", placed(_order_on(0), T0 + timedelta(days=2)))], now=T0)
    assert here.time.orders_clock(T0) == T0 + timedelta(hours=1)  # never back


def test_a_restored_wall_clock_stands_until_its_inputs_are_found_caught_up() -> None:
    restored = PartitionClock(T0, dict.fromkeys(TOPICS, T0))
    here = processor(0, WallTime(POLICY.allowed_lateness, TOPICS, orders=restored))
    later = T0 + timedelta(days=3)
    assert here.time.orders_clock(later) == T0
    for topic in TOPICS:
        here.caught_up(topic, later)
    assert here.time.orders_clock(later) == later


def test_capped_clock_takes_the_smallest_mark_and_a_caught_up_input_does_not_hold_it_back() -> None:
    lateness = timedelta(minutes=5)
    now = T0 + timedelta(days=1)
    seen = {"orders": T0, "tracking": T0 + timedelta(hours=2)}
    assert capped_clock(seen, {}, TOPICS, lateness, now) is None  # complaints: no mark yet
    caught = {"complaints": T0 + timedelta(hours=1)}
    assert capped_clock(seen, caught, TOPICS, lateness, now) == T0 - lateness
    caught["orders"] = now
    assert capped_clock(seen, caught, TOPICS, lateness, now) == T0 + timedelta(hours=1)
    caught["complaints"] = now
    assert capped_clock(seen, caught, TOPICS, lateness, now) == T0 + timedelta(hours=2) - lateness
    caught["tracking"] = now + timedelta(hours=1)  # a time after now is capped
    assert capped_clock(seen, caught, TOPICS, lateness, now) == now
    forwarded = {**seen, "order-events": T0}  # a topic beyond the inputs joins once seen
    assert capped_clock(forwarded, caught, TOPICS, lateness, now) == T0 - lateness


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


def test_on_the_wall_clock_aggregates_apply_inputs_behind_every_sources_watermark() -> None:
    here = processor(0, wall())
    level = stock(_sku_on(0), T0 + timedelta(hours=1))
    waiting = here.handle([StockRead(3, level)], now=T0 + timedelta(hours=3))
    assert waiting.applied == []
    assert here.waiting == 1
    assert here.tick(T0 + timedelta(hours=3)).applied == []  # no source announced yet
    sources = [order_source(p) for p in range(PARTITIONS)]
    sources += [inventory_source(p) for p in range(PARTITIONS)]
    marks = [WatermarkRead(10 + n, s, T0 + timedelta(hours=2)) for n, s in enumerate(sources)]
    released = here.handle(marks, now=T0 + timedelta(hours=3))
    assert [handle for _, handle in released.applied] == [3]
    assert here.waiting == 0
