"""An aggregate partition's inbox: watermarks only move forward, and a group's inputs wait for
the slowest of its sources."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streams.core.inbox import ALL, FACTS, SKU, AggregateInbox, inventory_source, order_source

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def test_a_watermark_is_news_only_when_it_moves_forward() -> None:
    inbox: AggregateInbox[str] = AggregateInbox(1)

    assert inbox.observe(order_source(0), T0)
    assert not inbox.observe(order_source(0), T0)  # heard again: nothing to keep or release
    assert not inbox.observe(order_source(0), T0 - SECOND)  # never back
    assert inbox.watermarks[order_source(0)] == T0
    assert inbox.observe(order_source(0), T0 + SECOND)
    assert inbox.watermarks[order_source(0)] == T0 + SECOND


def test_a_group_waits_until_every_source_has_spoken_then_for_the_slowest() -> None:
    inbox: AggregateInbox[str] = AggregateInbox(2)
    inbox.observe(order_source(0), T0 + 3 * SECOND)
    inbox.observe(inventory_source(0), T0 + 3 * SECOND)
    inbox.observe(inventory_source(1), T0 + 3 * SECOND)

    assert inbox.boundary(SKU) is None  # order partition 1 has not spoken
    assert inbox.boundary(FACTS) is None
    inbox.observe(order_source(1), T0 + SECOND)
    assert inbox.boundary(FACTS) == T0 + SECOND  # carriers and merchants: orders only
    assert inbox.boundary(SKU) == T0 + SECOND
    inbox.observe(order_source(1), T0 + 5 * SECOND)
    assert inbox.boundary(FACTS) == T0 + 3 * SECOND  # the cached boundary moved on too


def test_a_single_clock_inbox_has_one_group_behind_one_source() -> None:
    inbox: AggregateInbox[str] = AggregateInbox.single_clock()

    assert inbox.sources == {order_source(0)}
    assert inbox.check_group == ALL
    assert inbox.boundary(ALL) is None
    inbox.observe(order_source(0), T0)
    assert inbox.boundary(ALL) == T0
