"""The wall clock's read frontier: an input is caught up as of a time only once the agent has
handled every offset below a log end read after that time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from streams.worker.frontier import MAX_PENDING, ReadFrontier

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TP = ("tracking", 0)


class Message(NamedTuple):
    topic: str
    partition: int
    offset: int


def handled(frontier: ReadFrontier, *offsets: int) -> None:
    frontier.handled([Message(*TP, offset) for offset in offsets])


def test_a_partition_with_nothing_unread_at_its_resume_offset_is_caught_up() -> None:
    frontier = ReadFrontier()
    frontier.resume({TP: 10})
    frontier.found({TP: 10}, T0)
    assert list(frontier.ripe()) == [(TP, T0, None)]
    assert list(frontier.ripe()) == []  # reported once


def test_an_end_ripens_only_once_every_offset_below_it_was_handled() -> None:
    frontier = ReadFrontier()
    frontier.resume({TP: 0})
    frontier.found({TP: 5}, T0)
    handled(frontier, 0, 1, 2, 3)  # fetched or not, offset 4 was not handed to a processor
    assert list(frontier.ripe()) == []
    handled(frontier, 4)
    assert list(frontier.ripe()) == [(TP, T0, None)]


def test_ends_found_while_a_backlog_is_read_ripen_in_order_and_report_the_latest() -> None:
    frontier = ReadFrontier()
    frontier.resume({TP: 0})
    frontier.found({TP: 100}, T0)
    frontier.found({TP: 200}, T0 + timedelta(seconds=1))
    frontier.found({TP: 300}, T0 + timedelta(seconds=2))
    handled(frontier, *range(250))
    assert list(frontier.ripe()) == [(TP, T0 + timedelta(seconds=1), None)]
    handled(frontier, *range(250, 300))
    assert list(frontier.ripe()) == [(TP, T0 + timedelta(seconds=2), None)]


def test_an_end_found_again_unchanged_is_caught_up_as_of_the_later_time() -> None:
    frontier = ReadFrontier()
    frontier.resume({TP: 0})
    frontier.found({TP: 3}, T0)
    frontier.found({TP: 3}, T0 + timedelta(seconds=1))
    handled(frontier, 0, 1, 2)
    assert list(frontier.ripe()) == [(TP, T0 + timedelta(seconds=1), None)]


def test_a_partition_whose_resume_offset_is_unknown_is_never_caught_up_by_its_end_alone() -> None:
    frontier = ReadFrontier()
    frontier.found({TP: 0}, T0)
    assert list(frontier.ripe()) == []


def test_a_reset_forgets_what_was_handled_and_found() -> None:
    frontier = ReadFrontier()
    frontier.resume({TP: 0})
    handled(frontier, 0, 1)
    frontier.found({TP: 2}, T0)
    frontier.reset()
    assert list(frontier.ripe()) == []
    frontier.found({TP: 2}, T0)
    assert list(frontier.ripe()) == []  # handled offsets are known again only from a resume


def test_pending_ends_are_bounded_and_the_oldest_are_kept() -> None:
    frontier = ReadFrontier()
    frontier.resume({TP: 0})
    for n in range(MAX_PENDING + 10):
        frontier.found({TP: n + 1}, T0 + timedelta(seconds=n))
    handled(frontier, 0)
    assert list(frontier.ripe()) == [(TP, T0, None)]


def test_the_leading_mark_taken_before_the_time_travels_with_it() -> None:
    frontier = ReadFrontier()
    frontier.resume({TP: 0})
    lead = T0 - timedelta(days=3)
    frontier.found({TP: 0}, T0, {0: lead, 1: T0})
    assert list(frontier.ripe()) == [(TP, T0, lead)]
