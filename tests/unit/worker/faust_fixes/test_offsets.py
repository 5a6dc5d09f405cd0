"""The offset guard: a partition's messages must come one offset after another."""

from __future__ import annotations

from streams.worker.faust_fixes.offsets import ExpiredOffsets, OffsetGuard

Partition = tuple[str, int]
TP: Partition = ("tracking", 0)


def _guard(start: int = 670) -> OffsetGuard[Partition]:
    guard: OffsetGuard[Partition] = OffsetGuard()
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


# -- retention overtook the committed offset ------------------------------------------------------


def test_a_start_below_the_logs_start_is_read_from_the_logs_start() -> None:
    """Retention deleted offsets 670 to 799 before the group read them: the partition's
    position (lag, stalls) counts from the log's start, its first message still shows the jump."""
    guard: OffsetGuard[Partition] = OffsetGuard()
    guard.reset({TP: 670}, {TP: 800})
    assert guard.next_offset(TP) == 800
    assert guard.stalled({TP: 800}) == []
    assert guard.stalled({TP: 800}) == [], "every unread message expired: nothing to read"
    assert guard.admit(TP, 800) == 670
    assert guard.next_offset(TP) == 801


def test_a_start_above_the_logs_start_is_kept() -> None:
    guard: OffsetGuard[Partition] = OffsetGuard()
    guard.reset({TP: 670}, {TP: 12})
    assert guard.next_offset(TP) == 670
    assert guard.admit(TP, 671) == 670


def test_a_jump_to_the_logs_start_is_retentions_and_counted_once() -> None:
    expiry: ExpiredOffsets[Partition] = ExpiredOffsets()
    assert expiry.expired(TP, 670, 800, log_start=800) == 130
    # Assigned again before a commit moved past them: the same offsets are not counted twice.
    assert expiry.expired(TP, 670, 800, log_start=800) == 0
    # Retention moved on while the worker was behind: only the new ones count.
    assert expiry.expired(TP, 850, 900, log_start=900) == 50
    assert expiry.expired(("tracking", 1), 0, 5, log_start=5) == 5


def test_a_log_that_started_even_later_is_retentions_too() -> None:
    """The message was read, then deleted too, before the log's start was asked."""
    assert ExpiredOffsets[Partition]().expired(TP, 670, 800, log_start=820) == 130


def test_a_jump_over_messages_still_in_the_log_is_not_retentions() -> None:
    """Faust dropped 800 to 806 (still in the log): the worker must stop and read them again."""
    expiry: ExpiredOffsets[Partition] = ExpiredOffsets()
    assert expiry.expired(TP, 670, 807, log_start=800) is None
    assert expiry.expired(TP, 670, 807, log_start=0) is None
