"""The deadline index both drivers fire from: each order's earliest schedule, due at its time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streams.core.due_index import DeadlineIndex

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def drain(index: DeadlineIndex, now: datetime) -> list[str]:
    due = []
    while (order_id := index.pop_due(now)) is not None:
        due.append(order_id)
    return due


def test_an_order_is_due_once_the_clock_reaches_its_time_not_before() -> None:
    index = DeadlineIndex()
    index.schedule("o-1", T0)

    assert drain(index, T0 - SECOND) == []
    assert drain(index, T0) == ["o-1"]
    assert drain(index, T0 + SECOND) == []  # once: it is no longer scheduled
    assert len(index) == 0


def test_orders_come_due_in_time_order() -> None:
    index = DeadlineIndex()
    for order_id, minutes in (("late", 30), ("early", 10), ("middle", 20)):
        index.schedule(order_id, T0 + timedelta(minutes=minutes))

    assert drain(index, T0 + timedelta(hours=1)) == ["early", "middle", "late"]


def test_an_earlier_schedule_supersedes_and_a_later_one_changes_nothing() -> None:
    index = DeadlineIndex()
    index.schedule("o-1", T0 + timedelta(hours=2))
    index.schedule("o-1", T0)  # sooner: now due at T0
    index.schedule("o-1", T0 + timedelta(hours=5))  # later: ignored

    assert len(index) == 1
    assert drain(index, T0) == ["o-1"]
    assert drain(index, T0 + timedelta(days=1)) == []  # the superseded entries are skipped


def test_a_discarded_order_never_comes_due_and_none_is_no_schedule() -> None:
    index = DeadlineIndex()
    index.schedule("closed", T0)
    index.schedule("open", T0)
    index.schedule("undated", None)
    index.discard("closed")

    assert "closed" not in index
    assert "undated" not in index
    assert drain(index, T0) == ["open"]
