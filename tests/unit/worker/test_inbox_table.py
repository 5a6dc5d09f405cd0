"""A worker's aggregate partition: waiting items, source watermarks, and their table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from streams.core import state_codec
from streams.core.facts import OrderHealth, SkuComplaint
from streams.core.inbox import FACTS, SKU, AggregateInbox, inventory_source, order_source
from streams.worker import wire
from streams.worker.inbox_table import Ref, TableInbox

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
PARTITIONS = 2


def health(at: datetime) -> tuple[OrderHealth, Ref]:
    fact = OrderHealth("m1", "o1", "m1", at, T0)
    return fact, Ref(
        SimpleNamespace(value=None), wire.pack(wire.FACT, at, state_codec.encode_fact(fact))
    )


def test_nothing_is_released_until_every_source_has_announced() -> None:
    inbox: AggregateInbox[object] = AggregateInbox(PARTITIONS)
    inbox.observe(order_source(0), T0)
    assert inbox.boundary(FACTS) is None
    inbox.observe(order_source(1), T0 + timedelta(hours=1))
    assert inbox.boundary(FACTS) == T0  # the slowest source
    assert inbox.boundary(SKU) is None  # SKUs also wait for every inventory partition
    inbox.observe(inventory_source(0), T0)
    inbox.observe(inventory_source(1), T0)
    assert inbox.boundary(SKU) == T0
    inbox.observe(order_source(0), T0 + timedelta(hours=2))
    assert inbox.boundary(FACTS) == T0 + timedelta(hours=1)  # moved with its slowest source


def test_a_watermark_never_goes_back() -> None:
    inbox: AggregateInbox[object] = AggregateInbox(PARTITIONS)
    assert inbox.observe(order_source(0), T0)
    assert not inbox.observe(order_source(0), T0 - timedelta(seconds=1))
    assert inbox.watermarks[order_source(0)] == T0


def test_items_and_watermarks_survive_through_the_table() -> None:
    table: dict[bytes, bytes] = {}
    keeper = TableInbox(1, table)
    fact, ref = health(T0)
    complaint = SkuComplaint("m1/S1", "o1", "c1", "m1", "S1", "damaged", T0)
    complaint_ref = Ref(None, wire.pack(wire.FACT, T0, state_codec.encode_fact(complaint)))
    key = keeper.keep(fact, ref)
    keeper.keep(complaint, complaint_ref)
    keeper.keep_watermark(order_source(0), T0)
    assert all(key.startswith(b"1/") for key in table)

    waiting, watermarks = TableInbox(1, table).restore(list(table))
    assert watermarks == {order_source(0): T0}
    facts = [item for _, item in waiting if isinstance(item, OrderHealth | SkuComplaint)]
    assert [item.order_id for item in facts] == ["o1", "o1"]
    assert (key, fact) in waiting  # so the worker can delete it once applied
    assert {type(item) for _, item in waiting} == {OrderHealth, SkuComplaint}
    assert TableInbox(0, table).restore(list(table)) == ([], {})


def test_the_same_item_twice_is_kept_once_in_the_table() -> None:
    table: dict[bytes, bytes] = {}
    keeper = TableInbox(0, table)
    fact, ref = health(T0)
    assert keeper.keep(fact, ref) == keeper.keep(fact, ref)
    assert len(table) == 1
