"""The worker's way of reading a stream decides what replay decides, aggregates included.

A worker reads each partition's orders, tracking and complaints topics at their own pace, in
batches of any size, so an order's events reach the core in another order than replay reads
them, and partitions run ahead of one another. The core is built for that: each partition's
clock follows its slowest topic, aggregate inputs wait until every partition's clock (its
watermark) has passed them, and facts are timelines read as of the clock. This test drives the
worker's own :class:`~streams.core.processor.PartitionProcessor`, one per partition, as the
worker drives it: input topics read in random batches, facts and watermarks queued on each
aggregate partition's log and read in random batches too, watermarks announced at random
moments. It compares every breach and recommendation with replay's, by id and by content.
(The worker itself is compared on a real broker in ``tests/integration``; this finds a
divergence in seconds, for any schedule hypothesis picks.)
"""

from __future__ import annotations

import json
import random
from collections import deque
from datetime import datetime
from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.aggregates import DictLedgers, DictStore
from streams.core.carrier import CarrierState
from streams.core.events import InventoryUpdated, OrderEvent, decode_event
from streams.core.facts import sku_subject
from streams.core.merchant import MerchantState
from streams.core.order import OrderState
from streams.core.outputs import DeadlineBreached, DeadlineResolved, RecommendationIssued, Rejection
from streams.core.processor import (
    Actions,
    AggregateRead,
    ClockRead,
    OrderRead,
    PartitionProcessor,
    Read,
    StockRead,
    WatermarkRead,
)
from streams.core.sequencer import Item
from streams.core.sku import SkuState
from streams.core.timekeeping import EventTime
from streams.policy_files import load_policy
from streams.replay import replay_lines
from streams.tools.simulator import generate_events
from streams.worker import partition_for

POLICY = load_policy()
PARTITIONS = 3
ORDER_TOPICS = ("orders", "tracking", "complaints")
TOPIC = {
    "order.placed": "orders",
    "order.cancelled": "orders",
    "order.refunded": "orders",
    "tracking.submitted": "tracking",
    "carrier.scanned": "tracking",
}


@cache
def stream() -> tuple[bytes, ...]:
    return tuple(
        json.dumps(event).encode() for event in generate_events(seed=3, orders=1500, merchants=3)
    )


@cache
def replayed() -> dict[str, str]:
    decided: dict[str, str] = {}
    replay_lines(stream(), lambda output: _keep(decided, output), policy=POLICY)
    return decided


def _keep(decided: dict[str, str], output: object) -> None:
    """Record a decision's content under its id (rejections are not compared here)."""
    if key := _id(output):
        assert isinstance(output, DeadlineBreached | DeadlineResolved | RecommendationIssued)
        # Only the processor's clock readings may differ between drivers, and what follows
        # from issued_at: whether respond_by had passed, and so the actions of a reason that
        # has actions for a missed window.
        clock = {"detected_at", "issued_at", "respond_by_passed"}
        if isinstance(output, RecommendationIssued) and _missable(output.reason):
            clock.add("actions")
        decided[key] = output.model_dump_json(exclude=clock)


def _missable(reason: str) -> bool:
    return POLICY.recommendations[reason].when_missed is not None


def _id(output: object) -> str:
    if isinstance(output, DeadlineBreached):
        return output.breach_id
    if isinstance(output, DeadlineResolved):
        return output.resolution_id
    if isinstance(output, RecommendationIssued):
        return output.recommendation_id
    return ""  # event.rejected: the worker's carry Kafka coordinates, not compared here


class Stores:
    def __init__(self) -> None:
        self.skus: DictStore[SkuState] = DictStore()
        self.carriers: DictStore[CarrierState] = DictStore()
        self.merchants: DictStore[MerchantState] = DictStore()
        ledgers = DictLedgers()
        self.pages = ledgers.pages
        self.queue_pages = ledgers.queue_pages


class Keeper:
    """The inbox table of one aggregate partition: what waits, by the read that brought it."""

    def __init__(self) -> None:
        self.kept: dict[int, Item] = {}
        self.watermarks: dict[str, datetime] = {}

    def keep(self, item: Item, ref: int) -> int:
        self.kept[ref] = item
        return ref

    def keep_watermark(self, source: str, watermark: datetime) -> None:
        self.watermarks[source] = watermark


def _route(key: str) -> int:
    return partition_for(key, PARTITIONS)


class PartitionedWorker:
    """One processor per partition, with the worker's topics between them: each aggregate
    partition's log of facts, stock levels and watermarks, read in order, in batches."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.orders: DictStore[OrderState] = DictStore()
        self.stores = Stores()
        self.keepers = {p: Keeper() for p in range(PARTITIONS)}
        self.processors = {
            p: PartitionProcessor.for_worker(
                p,
                POLICY,
                partitions=PARTITIONS,
                orders=self.orders,
                aggregates=self.stores,
                time=EventTime(POLICY.allowed_lateness, ORDER_TOPICS),
                keeper=self.keepers[p],
                route=_route,
            )
            for p in range(PARTITIONS)
        }
        self.logs: dict[int, deque[Read[int]]] = {p: deque() for p in range(PARTITIONS)}
        self.unannounced: dict[str, datetime] = {}
        self.decided: dict[str, str] = {}
        self._refs = 0

    def _ref(self) -> int:
        self._refs += 1
        return self._refs

    def read(self, partition: int, topic: str, events: list[OrderEvent | InventoryUpdated]) -> None:
        reads: list[Read[int]] = [
            StockRead(self._ref(), event)
            if isinstance(event, InventoryUpdated)
            else OrderRead(self._ref(), topic, event)
            for event in events
        ]
        self._carry_out(self.processors[partition].handle(reads, None))

    def pump(self, partition: int, most: int) -> None:
        """The aggregate partition reads up to ``most`` messages of its log."""
        log = self.logs[partition]
        batch = [log.popleft() for _ in range(min(most, len(log)))]
        self._carry_out(self.processors[partition].handle(batch, None))

    def announce(self) -> None:
        """The watermark timer: every pending watermark to every aggregate partition."""
        pending, self.unannounced = self.unannounced, {}
        for source, watermark in pending.items():
            for log in self.logs.values():
                log.append(WatermarkRead(self._ref(), source, watermark))

    def advance_clock(self, until: datetime) -> None:
        for processor in self.processors.values():
            self._carry_out(processor.handle([ClockRead(self._ref(), until)], None))
        self.announce()
        while any(self.logs.values()):
            for partition in self.processors:
                self.pump(partition, self.rng.randint(1, 50))

    def _carry_out(self, actions: Actions[int, int]) -> None:
        assert not actions.failed, actions.failed
        assert not actions.rejected, actions.rejected
        for output in actions.outputs:
            _keep(self.decided, output)
        for fact in actions.facts:
            self.logs[_route(fact.subject)].append(AggregateRead(self._ref(), fact))
        for _, stock in actions.forward_stock:
            key = sku_subject(stock.merchant_id, stock.sku)
            self.logs[_route(key)].append(AggregateRead(self._ref(), stock))
        assert not actions.forward  # every order event is read on its key's partition
        # Sent after the facts they follow.
        self.unannounced.update(actions.announce)


def _queues(misplaced_stock: bool) -> dict[tuple[int, str], list[OrderEvent | InventoryUpdated]]:
    """Each input partition's events; stock levels on their key's partition, or (mis-keyed)
    on another one, which forwards them."""
    queues: dict[tuple[int, str], list[OrderEvent | InventoryUpdated]] = {}
    for line in stream():
        event = decode_event(line)
        if isinstance(event, Rejection):
            continue
        if isinstance(event, InventoryUpdated):
            home = _route(sku_subject(event.merchant_id, event.sku))
            where = ((home + misplaced_stock) % PARTITIONS, "inventory")
        else:
            topic = TOPIC.get(event.type, "complaints")
            where = (partition_for(event.order_id, PARTITIONS), topic)
        queues.setdefault(where, []).append(event)
    return queues


@settings(max_examples=5, deadline=None)
@given(
    schedule=st.integers(min_value=0, max_value=2**32),
    most=st.sampled_from([1, 50, 2000]),
    misplaced_stock=st.booleans(),
)
def test_any_read_schedule_batches_and_pacing_decide_what_replay_decides(
    schedule: int, most: int, misplaced_stock: bool
) -> None:
    rng = random.Random(schedule)
    queues = _queues(misplaced_stock)
    read = dict.fromkeys(queues, 0)
    worker = PartitionedWorker(rng)
    while live := [where for where in queues if read[where] < len(queues[where])]:
        step = rng.random()
        if step < 0.6:
            where = rng.choice(live)
            batch = queues[where][read[where] : read[where] + rng.randint(1, most)]
            read[where] += len(batch)
            worker.read(*where, batch)
        elif step < 0.9:
            worker.pump(rng.randrange(PARTITIONS), rng.randint(1, most))
        else:
            worker.announce()
    worker.advance_clock(max(e.occurred_at for q in queues.values() for e in q))

    expected = replayed()
    assert {"order", "sku", "carrier", "merchant"} <= _scopes()
    assert worker.decided.keys() == expected.keys()
    different = [key for key in expected if worker.decided[key] != expected[key]]
    assert not different, f"{len(different)} differ, e.g. {worker.decided[different[0]]}"
    # Every input that waited was kept where the worker keeps it, its inbox table.
    assert all(keeper.kept for keeper in worker.keepers.values())


@cache
def _scopes() -> frozenset[str]:
    scopes: set[str] = set()
    replay_lines(
        stream(),
        lambda o: scopes.add(o.scope) if isinstance(o, RecommendationIssued) else None,
        policy=POLICY,
    )
    return frozenset(scopes)
