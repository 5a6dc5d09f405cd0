"""The partition processor as the worker drives it: one partition of many, its clocks injected.

Replay's engine drives it as one partition with one clock (the rules tests); the partitioned
property test drives many, in random batches. These are the worker-only paths: routing,
screening, watermarks, the wall clock, and a failing read.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from streams.core import order
from streams.core.aggregates import DictLedgers, DictStore
from streams.core.event_clock import PartitionClock
from streams.core.events import InventoryUpdated, OrderEvent, decode_event
from streams.core.facts import sku_subject
from streams.core.inbox import inventory_source, order_source
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
from streams.policy_files import load_policy
from streams.worker import partition_for

POLICY = load_policy()
PARTITIONS = 4
T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
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
        self.watermarks: list[tuple[str, datetime]] = []

    def keep(self, item: Item, ref: int) -> int:
        self.kept.append((item, ref))
        return ref

    def keep_watermark(self, source: str, watermark: datetime) -> None:
        self.watermarks.append((source, watermark))


class Stores:
    def __init__(self) -> None:
        self.skus: DictStore[Any] = DictStore()
        self.carriers: DictStore[Any] = DictStore()
        self.merchants: DictStore[Any] = DictStore()
        ledgers = DictLedgers()
        self.pages = ledgers.pages
        self.queue_pages = ledgers.queue_pages


N = TypeVar("N")


def _build(partition: int, time: Timekeeper[N]) -> PartitionProcessor[int, int, N]:
    return PartitionProcessor.for_worker(
        partition,
        POLICY,
        partitions=PARTITIONS,
        orders=DictStore(),
        aggregates=Stores(),
        time=time,
        keeper=Keeper(),
        route=_route,
    )


def processor(partition: int) -> PartitionProcessor[int, int, None]:
    """A partition on event time: its batches come with no time."""
    return _build(partition, EventTime(POLICY.allowed_lateness, TOPICS))


def on_wall(partition: int, time: WallTime) -> PartitionProcessor[int, int, datetime]:
    """A partition on the wall clock: every batch comes with the time it was read."""
    return _build(partition, time)


def _keeper(here: PartitionProcessor[int, int, None]) -> Keeper:
    keeper = here.keeper
    assert isinstance(keeper, Keeper)
    return keeper


def test_an_order_event_of_another_partition_is_forwarded_untouched() -> None:
    here = processor(0)
    event = placed(_order_on(1), T0)
    actions = here.handle([OrderRead(7, "orders", event)], None)
    assert actions.forward == [(7, event)]
    assert len(here.orders) == 0
    assert actions.facts == []
    assert actions.announce == {}


def test_the_orders_clock_follows_the_slowest_topic_and_is_announced_once() -> None:
    here = processor(0)
    order_id = _order_on(0)
    first = here.handle([OrderRead(1, "orders", placed(order_id, T0))], None)
    assert first.announce == {}  # tracking and complaints have not spoken
    time = here.time
    assert isinstance(time, EventTime)
    time.lift("tracking", T0)
    time.lift("complaints", T0)
    second = here.handle([OrderRead(2, "orders", placed(_orders_on(0, 2)[1], T0))], None)
    assert second.announce == {order_source(0): T0 - POLICY.allowed_lateness}
    assert here.handle([], None).announce == {}  # nothing moved: nothing to announce again


def test_an_event_far_ahead_of_its_partition_is_rejected_and_changes_nothing() -> None:
    here = processor(0)
    here.handle([OrderRead(1, "orders", placed(_order_on(0), T0))], None)
    late = placed(_orders_on(0, 2)[1], T0 + POLICY.max_ahead + timedelta(seconds=1))
    actions = here.handle([OrderRead(2, "orders", late)], None)
    [(ref, rejection)] = actions.rejected
    assert (ref, rejection.reason) == (2, "from_the_future")
    assert here.orders.states.get(late.order_id) is None


def test_a_stock_level_waits_for_every_source_then_is_applied_by_the_read_that_let_it_go() -> None:
    here = processor(2)
    level = stock(_sku_on(2), T0)
    actions = here.handle([StockRead(1, level)], None)
    assert actions.forward_stock == []
    assert here.waiting == 1
    assert _keeper(here).kept == [(level, 1)]
    marks = [
        WatermarkRead(10 + n, source(p), T0 + timedelta(seconds=1))
        for n, (source, p) in enumerate(
            (s, p) for p in range(PARTITIONS) for s in (order_source, inventory_source)
        )
    ]
    released = here.handle(marks, None)
    assert here.waiting == 0
    assert released.applied == [(marks[-1].ref, 1)]  # the last watermark completed the set


def test_a_watermark_heard_again_is_not_kept_again_and_releases_nothing() -> None:
    here = processor(2)
    level = stock(_sku_on(2), T0)
    here.handle([StockRead(1, level)], None)
    sources = [s(p) for p in range(PARTITIONS) for s in (order_source, inventory_source)]
    behind = [WatermarkRead(10 + n, s, T0) for n, s in enumerate(sources)]  # not past T0
    assert here.handle(behind, None).applied == []
    again = [WatermarkRead(20 + n, s, T0) for n, s in enumerate(sources)]
    assert here.handle(again, None).applied == []
    assert _keeper(here).watermarks == [(s, T0) for s in sources]  # each kept once
    assert here.waiting == 1
    past = here.handle([WatermarkRead(30 + n, s, T0 + SECOND) for n, s in enumerate(sources)], None)
    assert past.applied == [(30 + len(sources) - 1, 1)]


def test_a_stock_level_read_on_another_partition_is_forwarded_and_still_moves_its_clock() -> None:
    here = processor(0)
    level = stock(_sku_on(3), T0)
    actions = here.handle([StockRead(1, level)], None)
    assert actions.forward_stock == [(1, level)]
    assert actions.announce == {inventory_source(0): T0 - POLICY.allowed_lateness}


GRACE = timedelta(seconds=5)


def wall() -> WallTime:
    return WallTime(POLICY.allowed_lateness, TOPICS, grace=GRACE)


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


def test_a_wall_clock_tick_fires_once_every_input_was_read_and_clock_messages_are_ignored() -> None:
    here = on_wall(0, wall())
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
    time = wall()
    here = on_wall(0, time)
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
    assert time.orders_clock(now) == placed_at + timedelta(days=1) - POLICY.allowed_lateness
    settled = now + GRACE
    for topic in TOPICS:
        here.caught_up(topic, settled)
    fired = _deadlines(here.tick(settled).outputs)
    assert "fulfillment" not in fired  # met by the tracking read from the backlog
    assert "confirmed_fulfillment" in fired  # never scanned: a true breach


def test_the_wall_clock_never_runs_ahead_of_the_time_nor_back() -> None:
    time = wall()
    here = on_wall(0, time)
    for topic in TOPICS:
        here.caught_up(topic, T0 + timedelta(hours=1))
    assert time.orders_clock(T0) == T0  # capped by the time read
    assert time.orders_clock(T0 + timedelta(hours=2)) == T0 + timedelta(hours=1)
    here.handle([OrderRead(1, "orders", placed(_order_on(0), T0 + timedelta(days=2)))], now=T0)
    assert time.orders_clock(T0) == T0 + timedelta(hours=1)  # never back


def test_a_restored_wall_clock_stands_until_its_inputs_are_found_caught_up() -> None:
    restored = PartitionClock(T0, dict.fromkeys(TOPICS, T0))
    time = WallTime(POLICY.allowed_lateness, TOPICS, orders=restored)
    here = on_wall(0, time)
    later = T0 + timedelta(days=3)
    assert time.orders_clock(later) == T0
    for topic in TOPICS:
        here.caught_up(topic, later)
    assert time.orders_clock(later) == later


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

    def apply(state: Any, event: OrderEvent, now: datetime, policy: Any, **options: Any) -> Any:
        if event.order_id == bad:
            raise ArithmeticError("a bug")
        return real_apply(state, event, now, policy, **options)

    monkeypatch.setattr(order, "apply", apply)
    reads = [OrderRead(1, "orders", placed(bad, T0)), OrderRead(2, "orders", placed(good, T0))]
    actions = here.handle(reads, None)
    [(ref, error)] = actions.failed
    assert ref == 1
    assert isinstance(error, ArithmeticError)
    assert here.orders.states.get(good) is not None
    assert here.orders.states.get(bad) is None


def test_facts_arrive_as_aggregate_reads_and_wait_in_their_group() -> None:
    here = processor(1)
    order_id = _order_on(1)
    facts = processor(1).handle([OrderRead(1, "orders", placed(order_id, T0))], None).facts
    assert facts  # the order's demand and health
    actions = here.handle([AggregateRead(5, fact) for fact in facts], None)
    assert actions.outputs == []
    assert here.waiting == len(facts)


def test_on_the_wall_clock_aggregates_apply_inputs_behind_every_sources_watermark() -> None:
    here = on_wall(0, wall())
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


def test_on_the_wall_clock_a_burst_of_history_is_decided_as_if_read_on_arrival() -> None:
    """The clock already stands at the time when ten days of history arrive at once: an order
    read from it fires nothing until every input was found caught up after it was read, so the
    tracking written with it meets its deadline; the order without tracking is breached."""
    here = on_wall(0, wall())
    now = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    for topic in TOPICS:
        here.caught_up(topic, now)
    assert here.tick(now).outputs == []
    shipped, unshipped = _orders_on(0, 2)
    placed_at = now - timedelta(days=10)
    read_at = now + timedelta(seconds=1)
    burst = [OrderRead(1, "orders", placed(o, placed_at)) for o in (shipped, unshipped)]
    assert here.handle(burst, now=read_at).outputs == []  # behind the clock, yet held
    assert here.tick(read_at).outputs == []  # the inputs were caught up only before the read
    met = tracking(shipped, placed_at + timedelta(days=1))
    assert here.handle([OrderRead(2, "tracking", met)], now=read_at).outputs == []
    for topic in TOPICS:  # caught up, but too soon after the read: the burst may go on
        here.caught_up(topic, read_at + GRACE - timedelta(milliseconds=1))
    assert here.tick(read_at + GRACE).outputs == []
    later = read_at + GRACE
    for topic in TOPICS:
        here.caught_up(topic, later)
    fired = [o for o in here.tick(later).outputs if hasattr(o, "deadline")]
    assert {(o.order_id, o.deadline) for o in fired if o.deadline == "fulfillment"} == {
        (unshipped, "fulfillment")
    }
    assert (shipped, "confirmed_fulfillment") in {(o.order_id, o.deadline) for o in fired}
    assert len(here.orders) == 2  # counted while held and after


def test_in_event_time_an_order_behind_the_clock_fires_at_once() -> None:
    here = processor(0)
    order_id, other = _orders_on(0, 2)
    here.handle([OrderRead(1, topic, placed(other, T0)) for topic in TOPICS], None)
    late = here.handle([OrderRead(2, "orders", placed(order_id, T0 - timedelta(days=30)))], None)
    assert (order_id, "fulfillment") in {
        (o.order_id, o.deadline) for o in late.outputs if hasattr(o, "deadline")
    }


def test_on_the_wall_clock_a_held_order_fires_in_event_time_as_its_burst_is_read() -> None:
    """While a burst is being read an order read from it fires as event time allows: once
    every input was read past its deadline (an input with nothing unread counting at most the
    idle slack behind the leading one)."""
    here = on_wall(0, wall())
    now = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    for topic in TOPICS:
        here.caught_up(topic, now)
    order_id, other = _orders_on(0, 2)
    placed_at = now - timedelta(days=10)
    here.handle([OrderRead(1, "orders", placed(order_id, placed_at))], now=now)
    due = placed_at + timedelta(hours=8) + timedelta(days=5)
    after = due + timedelta(hours=1)
    for topic in ("orders", "tracking"):
        reads = here.handle([OrderRead(2, topic, placed(other, after))], now=now)
        assert _deadlines(reads.outputs) == set()  # complaints: caught up only before the read
    # Lifted the idle slack behind the leading mark taken before the time it was caught up.
    here.caught_up("complaints", now + timedelta(milliseconds=1), here.leading())
    assert _deadlines(here.tick(now).outputs) == set()  # 1 day behind `after`: not yet
    later = after + timedelta(days=1)
    for topic in ("orders", "tracking"):
        here.handle([OrderRead(3, topic, placed(other, later))], now=now)
    here.caught_up("complaints", now + timedelta(milliseconds=2), here.leading())
    fired = here.tick(now).outputs
    assert (order_id, "fulfillment") in {
        (o.order_id, o.deadline) for o in fired if hasattr(o, "deadline")
    }


def test_a_quiet_wall_clock_partition_announces_the_time_in_five_second_steps() -> None:
    here = on_wall(0, wall())
    start = datetime(2026, 3, 10, 9, 0, 2, 500_000, tzinfo=UTC)
    for topic in TOPICS:
        here.caught_up(topic, start)  # first found caught up: the quiet spell starts
    quiet = start + timedelta(seconds=61)  # past ORDERWATCH_QUIET_AFTER's 60 s
    for topic in TOPICS:
        here.caught_up(topic, quiet)
    announced = here.tick(quiet).announce[order_source(0)]
    assert announced == datetime(2026, 3, 10, 9, 1, 0, tzinfo=UTC)
    assert here.tick(quiet + timedelta(seconds=2)).announce == {}  # the same step
