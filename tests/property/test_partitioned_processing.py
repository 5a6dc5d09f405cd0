"""The worker's way of reading a stream decides what replay decides, aggregates included.

A worker reads each partition's orders, tracking and complaints topics at their own pace, so an
order's events reach the core in another order than replay reads them, and partitions run ahead
of one another. The core is built for that: each partition's clock follows its slowest topic,
aggregate inputs wait in a :class:`~streams.core.sequencer.Sequencer` until every partition's
clock (its watermark) has passed them, and facts are timelines read as of the clock. This test
drives the pure core that way, in memory, over random read schedules, and compares every breach
and recommendation with replay's, by id and by content. (The worker itself is compared on a real
broker in ``tests/integration``; this finds a divergence in seconds, for any schedule hypothesis
picks.)
"""

from __future__ import annotations

import json
import random
from datetime import datetime
from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core import order
from streams.core.aggregates import DictStore, release
from streams.core.carrier import CarrierState
from streams.core.clock import PartitionClock
from streams.core.events import InventoryUpdated, OrderEvent, decode_event
from streams.core.facts import Fact
from streams.core.inbox import AggregateInbox, inventory_source, order_source
from streams.core.merchant import MerchantState
from streams.core.outputs import DeadlineBreached, RecommendationIssued, Rejection
from streams.core.partition import OrderPartition
from streams.core.sequencer import Item, closing
from streams.core.sku import SkuState
from streams.core.timeutil import EPOCH
from streams.policies import load_policy
from streams.replay import replay_lines
from streams.simulator import generate_events
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
        assert isinstance(output, DeadlineBreached | RecommendationIssued)
        # Only the processor's clock readings may differ between drivers.
        decided[key] = output.model_dump_json(exclude={"detected_at", "issued_at"})


def _id(output: object) -> str:
    if isinstance(output, DeadlineBreached):
        return output.breach_id
    if isinstance(output, RecommendationIssued):
        return output.recommendation_id
    return ""  # event.rejected: the worker's carry Kafka coordinates, not compared here


class Stores:
    def __init__(self) -> None:
        self.skus: DictStore[SkuState] = DictStore()
        self.carriers: DictStore[CarrierState] = DictStore()
        self.merchants: DictStore[MerchantState] = DictStore()


class PartitionedCore:
    """The pure core driven as the worker drives it, partitions and topics read in any order."""

    def __init__(self) -> None:
        self.orders: DictStore[order.OrderState] = DictStore()
        self.partitions = {p: OrderPartition(POLICY, self.orders) for p in range(PARTITIONS)}
        self.clocks = {p: PartitionClock() for p in range(PARTITIONS)}
        self.inbox: AggregateInbox[Item] = AggregateInbox(PARTITIONS)
        self.stores = Stores()
        self.decided: dict[str, str] = {}

    def read(self, partition: int, topic: str, event: OrderEvent | InventoryUpdated) -> None:
        if isinstance(event, InventoryUpdated):
            self._queue([event])
            self._announce(inventory_source(partition), event.occurred_at - POLICY.allowed_lateness)
            return
        clock = self.clocks[partition]  # it follows the slowest of the three topics
        clock.observe(topic, event.occurred_at, POLICY.allowed_lateness, ORDER_TOPICS)
        now = clock.value
        self._fire(partition, now)
        self._settle(self.partitions[partition].apply(event, now))
        if now > EPOCH:
            self._announce(order_source(partition), now)

    def advance_clock(self, until: datetime) -> None:
        for partition in range(PARTITIONS):
            self._fire(partition, until)
        for partition in range(PARTITIONS):
            self._announce(order_source(partition), closing(until))
            self._announce(inventory_source(partition), closing(until))

    def _fire(self, partition: int, now: datetime) -> None:
        for step in self.partitions[partition].fire(now):
            self._settle(step)

    def _settle(self, step: order.Step) -> None:
        for output in step.outputs:
            _keep(self.decided, output)
        self._queue(step.facts)

    def _queue(self, items: list[Fact] | list[InventoryUpdated]) -> None:
        for item in items:
            self.inbox.add(item, item)

    def _announce(self, source: str, watermark: datetime) -> None:
        """As an aggregate partition hears a watermark: release what each group's sources
        have all passed (the SKU group waits for inventory too)."""
        if not self.inbox.observe(source, watermark):
            return
        for group, inputs in self.inbox.sequencers.items():
            boundary = self.inbox.boundary(group)
            if boundary is None:
                continue
            for _, outputs in release(inputs, boundary, self.stores, POLICY, lambda item: item):
                for output in outputs:
                    _keep(self.decided, output)


def _queues() -> dict[tuple[int, str], list[OrderEvent | InventoryUpdated]]:
    queues: dict[tuple[int, str], list[OrderEvent | InventoryUpdated]] = {}
    for line in stream():
        event = decode_event(line)
        if isinstance(event, Rejection):
            continue
        if isinstance(event, InventoryUpdated):
            where = (partition_for(f"{event.merchant_id}/{event.sku}", PARTITIONS), "inventory")
        else:
            topic = TOPIC.get(event.type, "complaints")
            where = (partition_for(event.order_id, PARTITIONS), topic)
        queues.setdefault(where, []).append(event)
    return queues


@settings(max_examples=5)
@given(schedule=st.integers(min_value=0, max_value=2**32), most=st.sampled_from([1, 50, 2000]))
def test_any_read_schedule_of_partitions_and_topics_decides_what_replay_decides(
    schedule: int, most: int
) -> None:
    rng = random.Random(schedule)
    queues = _queues()
    read = dict.fromkeys(queues, 0)
    core = PartitionedCore()
    while live := [where for where in queues if read[where] < len(queues[where])]:
        where = rng.choice(live)
        batch = queues[where][read[where] : read[where] + rng.randint(1, most)]
        read[where] += len(batch)
        for event in batch:
            core.read(*where, event)
    core.advance_clock(max(e.occurred_at for q in queues.values() for e in q))

    expected = replayed()
    assert {"order", "sku", "carrier", "merchant"} <= _scopes()
    assert core.decided.keys() == expected.keys()
    different = [key for key in expected if core.decided[key] != expected[key]]
    assert not different, f"{len(different)} differ, e.g. {core.decided[different[0]]}"


@cache
def _scopes() -> frozenset[str]:
    scopes: set[str] = set()
    replay_lines(
        stream(),
        lambda o: scopes.add(o.scope) if isinstance(o, RecommendationIssued) else None,
        policy=POLICY,
    )
    return frozenset(scopes)
