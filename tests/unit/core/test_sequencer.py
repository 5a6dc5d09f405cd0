"""The event-time order of aggregate inputs, and timelines counted as of a clock."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from streams.core.facts import OrderHealth, merge_health
from streams.core.sequencer import Check, Sequencer
from streams.core.window import Timelines

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def drain(sequencer: Sequencer[str], boundary: datetime) -> list[Check | str]:
    released: list[Check | str] = []
    while (due := sequencer.pop(boundary)) is not None:
        released.append(due if isinstance(due, Check) else due[1])
    return released


def test_items_come_out_in_event_time_order_whatever_order_they_went_in() -> None:
    sequencer: Sequencer[str] = Sequencer()
    sequencer.add((T0 + 2 * SECOND, 0, "b"), "third")
    sequencer.add((T0, 5, "z"), "second")
    sequencer.add((T0, 1, "a"), "first")
    assert drain(sequencer, T0 + 3 * SECOND) == ["first", "second", "third"]


def test_the_boundary_is_strict_an_item_at_the_clock_waits() -> None:
    sequencer: Sequencer[str] = Sequencer()
    sequencer.add((T0, 0, "a"), "at the clock")
    assert drain(sequencer, T0) == []
    assert len(sequencer) == 1
    assert drain(sequencer, T0 + timedelta(microseconds=1)) == ["at the clock"]


def test_a_check_comes_after_every_item_of_its_moment_and_before_later_ones() -> None:
    sequencer: Sequencer[str] = Sequencer()
    sequencer.schedule("merchant", "m1", T0)
    sequencer.add((T0, 5, "o2"), "same moment")
    sequencer.add((T0 + SECOND, 0, "x"), "later")
    assert drain(sequencer, T0 + 2 * SECOND) == [
        "same moment",
        Check(T0, "merchant", "m1"),
        "later",
    ]


def test_an_aggregate_has_one_pending_check_the_last_scheduled() -> None:
    sequencer: Sequencer[str] = Sequencer()
    sequencer.schedule("carrier", "m1/ups", T0 + 5 * SECOND)
    sequencer.schedule("carrier", "m1/ups", T0 + SECOND)
    sequencer.schedule("merchant", "m1", T0 + 2 * SECOND)
    sequencer.schedule("merchant", "m1", None)
    assert sequencer.checks() == {("carrier", "m1/ups"): T0 + SECOND}
    assert drain(sequencer, T0 + 10 * SECOND) == [Check(T0 + SECOND, "carrier", "m1/ups")]


def _view(timeline: OrderHealth, now: datetime) -> tuple[tuple[int, ...] | None, datetime | None]:
    """Counts (placed, refunded) for a day after placement."""
    ends = timeline.placed_at + timedelta(days=1)
    if now >= ends:
        return None, None
    refunded = timeline.refunded_at
    counted = (1, 1 if refunded is not None and refunded <= now else 0)
    upcoming = refunded if refunded is not None and now < refunded < ends else ends
    return counted, upcoming


def test_timelines_count_what_is_known_as_of_the_clock_and_move_with_it() -> None:
    timelines: Timelines[OrderHealth] = Timelines(2)
    timelines.advance(T0, _view)
    refund_at = T0 + timedelta(hours=3)
    timelines.put("o1", OrderHealth("m1", "o1", "m1", T0, T0, refunded_at=refund_at), _view)
    assert timelines.totals == [1, 0]  # the refund is known, but not yet happened
    assert timelines.next_change() == refund_at
    timelines.advance(refund_at, _view)
    assert timelines.totals == [1, 1]
    timelines.advance(T0 + timedelta(days=1), _view)
    assert timelines.totals == [0, 0]
    assert timelines.entries == {}
    assert timelines.next_change() is None


def test_merged_timelines_are_the_same_in_any_order() -> None:
    placed = OrderHealth("m1", "o1", "m1", T0, T0)
    tracked = OrderHealth("m1", "o1", "m1", T0 + SECOND, T0, tracked_at=T0 + SECOND)
    refunded = OrderHealth("m1", "o1", "m1", T0 + 2 * SECOND, T0, refunded_at=T0 + 2 * SECOND)
    one = merge_health(merge_health(placed, tracked), refunded)
    other = merge_health(merge_health(refunded, placed), tracked)
    assert one == other
    assert (one.tracked_at, one.refunded_at) == (T0 + SECOND, T0 + 2 * SECOND)


def test_waiting_before_says_false_only_when_pop_has_nothing_to_give() -> None:
    """``waiting_before`` lets the engine skip a release: it may say True for a superseded
    check (pop then cleans it up and gives None), never False while pop would give something."""
    rng = random.Random(7)
    for _ in range(200):
        sequencer: Sequencer[str] = Sequencer()
        for step in range(rng.randrange(1, 30)):
            moment = T0 + rng.randrange(0, 20) * SECOND
            choice = rng.random()
            if choice < 0.4:
                sequencer.add((moment, rng.randrange(6), f"k{step}"), f"item{step}")
            elif choice < 0.8:
                sequencer.schedule("merchant", f"m{rng.randrange(3)}", moment)
            elif choice < 0.9:
                sequencer.schedule("carrier", f"c{rng.randrange(2)}", None)
            else:
                boundary = T0 + rng.randrange(0, 20) * SECOND
                if not sequencer.waiting_before(boundary):
                    assert sequencer.pop(boundary) is None
                drain(sequencer, boundary)
        boundary = T0 + rng.randrange(0, 22) * SECOND
        waiting = sequencer.waiting_before(boundary)
        released = drain(sequencer, boundary)
        if not waiting:
            assert released == []
        assert not sequencer.waiting_before(boundary) or sequencer.pop(boundary) is None
    empty: Sequencer[str] = Sequencer()
    assert not empty.waiting_before(T0)
    empty.add((T0, 0, "a"), "x")
    assert not empty.waiting_before(T0)  # strict, like pop
    assert empty.waiting_before(T0 + SECOND)
