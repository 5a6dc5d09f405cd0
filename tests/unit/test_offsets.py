"""The offset guard: a partition's messages must come one offset after another."""

from __future__ import annotations

from streams.offsets import OffsetGuard

TP = ("tracking", 0)


def _guard(start: int = 670) -> OffsetGuard:
    guard = OffsetGuard()
    guard.reset({TP: start})
    return guard


def test_messages_in_order_from_where_the_partition_resumes_pass() -> None:
    guard = _guard()
    assert [guard.admit(TP, offset) for offset in (670, 671, 672)] == [None, None, None]


def test_offsets_dropped_after_an_assignment_are_noticed() -> None:
    """Seen on a real broker: a partition taken back in a rebalance resumed at 677, not 670."""
    assert _guard().admit(TP, 677) == 670


def test_a_jump_in_the_middle_is_noticed_too() -> None:
    guard = _guard()
    assert guard.admit(TP, 670) is None
    assert guard.admit(TP, 699) == 671


def test_a_partition_with_no_known_start_is_checked_from_its_first_message() -> None:
    guard = _guard()
    other = ("complaints", 3)
    assert guard.admit(other, 5) is None
    assert guard.admit(other, 7) == 6


def test_a_reset_sets_where_each_partition_resumes() -> None:
    guard = _guard()
    assert guard.admit(TP, 670) is None
    guard.reset({TP: 40})
    assert guard.admit(TP, 40) is None
    guard.reset({TP: 0})
    assert guard.admit(TP, 1) == 0  # the first message of a new partition, dropped


def test_a_partition_with_unread_messages_and_no_progress_since_the_last_look_is_stalled() -> None:
    guard = _guard()
    other = ("complaints", 3)
    guard.reset({TP: 670, other: 0})
    assert guard.stalled({TP: 700, other: 0}) == []  # the first call only looks
    assert guard.admit(TP, 670) is None
    assert guard.stalled({TP: 700, other: 0}) == []  # progress, and nothing to read
    # other: messages arrived since the last look; stalled only if none come by the next
    assert guard.stalled({TP: 700, other: 5}) == [(TP, 671, 700)]
    assert guard.stalled({TP: 700, other: 6}) == [(TP, 671, 700), (other, 0, 6)]
    guard.forget_looks()
    assert guard.stalled({TP: 700, other: 5}) == []
    assert guard.partitions() == [TP, other]


def test_where_the_consumer_sought_to_overrides_the_start_read_at_the_assignment() -> None:
    guard = _guard(start=0)  # the group's commit was not read at the assignment
    assert not guard.knows(TP)
    guard.expect(TP, 97)  # ...but the consumer sought to it
    assert guard.admit(TP, 97) is None
    assert guard.knows(TP)
