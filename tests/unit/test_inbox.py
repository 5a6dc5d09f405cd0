"""A worker's aggregate partition: waiting items, source watermarks, and their table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streams import wire
from streams.core import codec
from streams.core.facts import OrderHealth, SkuComplaint
from streams.inbox import (
    FACTS,
    SKU,
    AppliedInputs,
    PartitionInbox,
    inventory_source,
    order_source,
)

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
PARTITIONS = 2


def health(at: datetime) -> tuple[OrderHealth, bytes]:
    fact = OrderHealth("m1", "o1", "m1", at, T0)
    return fact, wire.pack(wire.FACT, at, codec.encode_fact(fact))


def test_nothing_is_released_until_every_source_has_announced() -> None:
    inbox = PartitionInbox(0, PARTITIONS)
    inbox.observe(order_source(0), T0, None)
    assert inbox.boundary(FACTS) is None
    inbox.observe(order_source(1), T0 + timedelta(hours=1), None)
    assert inbox.boundary(FACTS) == T0  # the slowest source
    assert inbox.boundary(SKU) is None  # SKUs also wait for every inventory partition
    inbox.observe(inventory_source(0), T0, None)
    inbox.observe(inventory_source(1), T0, None)
    assert inbox.boundary(SKU) == T0


def test_a_watermark_never_goes_back() -> None:
    inbox = PartitionInbox(1, PARTITIONS)
    assert inbox.observe(order_source(0), T0, None)
    assert not inbox.observe(order_source(0), T0 - timedelta(seconds=1), None)
    assert inbox.watermarks[order_source(0)] == T0


def test_items_and_watermarks_survive_through_the_table() -> None:
    table: dict[bytes, bytes] = {}
    inbox = PartitionInbox(1, PARTITIONS)
    fact, envelope = health(T0)
    complaint = SkuComplaint("m1/S1", "o1", "c1", "m1", "S1", "damaged", T0)
    assert inbox.add(fact, envelope, table) == FACTS
    sku_envelope = wire.pack(wire.FACT, T0, codec.encode_fact(complaint))
    assert inbox.add(complaint, sku_envelope, table) == SKU
    inbox.observe(order_source(0), T0, table)
    assert all(key.startswith(b"1/") for key in table)

    restored = PartitionInbox(1, PARTITIONS)
    restored.restore(table, list(table))
    assert restored.watermarks == inbox.watermarks
    released = restored.sequencers[FACTS].pop(T0 + timedelta(seconds=1))
    assert isinstance(released, tuple)
    at, (key, item) = released
    assert (at, item) == (T0, fact)
    assert key in table  # so the worker can delete it once applied
    other_partition = PartitionInbox(0, PARTITIONS)
    other_partition.restore(table, list(table))
    assert len(other_partition.sequencers[FACTS]) == 0
    assert other_partition.watermarks == {}


def test_the_same_item_twice_is_kept_once_in_the_table() -> None:
    table: dict[bytes, bytes] = {}
    inbox = PartitionInbox(0, PARTITIONS)
    fact, envelope = health(T0)
    inbox.add(fact, envelope, table)
    inbox.add(fact, envelope, table)
    assert len(table) == 1


def test_an_applied_input_is_deletable_only_once_its_message_is_committed() -> None:
    applied = AppliedInputs()
    applied.note("aggregate-inputs", 1, 10, b"1/i/a")
    applied.note("aggregate-inputs", 1, 11, b"1/i/b")
    applied.note("inventory", 1, 3, b"1/i/c")
    applied.note("aggregate-inputs", 2, 5, b"2/i/d")
    assert applied.deletable(1) == []  # nothing committed yet

    applied.committed("aggregate-inputs", 1, 11)  # offsets up to 10 are committed
    assert applied.deletable(1) == [b"1/i/a"]
    assert applied.deletable(1) == []  # handed out once
    applied.committed("aggregate-inputs", 1, 12)
    applied.committed("inventory", 1, 4)
    assert sorted(applied.deletable(1)) == [b"1/i/b", b"1/i/c"]
    assert applied.deletable(2) == []  # partition 2's message is not committed


def test_moved_partitions_forget_what_they_applied() -> None:
    applied = AppliedInputs()
    applied.note("aggregate-inputs", 0, 1, b"0/i/a")
    applied.clear()
    applied.committed("aggregate-inputs", 0, 5)
    assert applied.deletable(0) == []
