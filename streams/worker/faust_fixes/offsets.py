"""Every offset of a partition, in order: a guard against messages Faust drops in a rebalance.

Works around: faust-streaming 0.15.3 dropping messages its fetcher read while the flow was
suspended in a rebalance, its read position moved past them. Fails without it:
``tests/unit/worker/test_failures.py::test_a_skipped_offset_stops_the_worker_before_the_message_is_handled``
(and ``tests/unit/worker/faust_fixes/test_offsets.py``); the fault suite saw the drops
(``tests/integration/test_faults.py``).

When partitions are assigned, Faust seeks them to their committed offsets and then resumes the
flow of messages. Messages its fetcher reads in between are dropped (the flow is still
suspended) while its read position moves past them: the agent never sees them, their offsets
are never acknowledged, the group's committed offset stops there for good, and the state they
should have changed lacks them. The fault suite saw a partition taken back in a rebalance resume
7 offsets past its committed one, and the first message of a partition never committed dropped.

:class:`OffsetGuard` notices the jump: after an assignment, a partition's first message must be
at the group's committed offset (or the log's start, if the partition was empty), and each
next one at the offset after. The worker stops when one is not (the error policy's answer to a
failure of Kafka's side, :mod:`streams.worker.failures`): nothing past the gap is committed, so the
restarted worker reads the dropped messages again. A seek back from inside the agent is no
remedy: the consumer's fetcher may be waiting for the agent, and Faust's read position is moved
by messages it fetched meanwhile.

The same bookkeeping tells a partition that stalled: unread messages on it, and not one of them
handed over since the last look (seen in the fault suite too: a partition the group had never
committed, never read by the worker it was assigned to after a restart). The worker stops then
as well, so that its restart reads it.

A partition's offsets also jump legitimately at a transaction's commit marker, so a worker
whose own topics are written in transactions guards only the topics producers write.

They jump too when retention deleted messages before the group read them: the committed offset
(or the read position of a worker far behind) is below the log's start, the consumer resets to
the log's start (``auto_offset_reset=earliest``, as Faust's consumer is configured), and the
offsets in between are gone for good. A restart cannot read them, so stopping would only
restart forever. The policy (:class:`ExpiredOffsets`): a jump to a message with nothing before
it left in the log (log start ≥ its offset) is retention's; the worker goes on from there,
counts the offsets it skipped (``orderwatch_offsets_expired_total``) and logs it once. A jump
over messages still in the log is Faust's drop, and stops the worker as before. Where a
partition resumes is never below its log's start (:meth:`OffsetGuard.reset`'s ``floors``), so
a partition whose unread messages all expired is not a stalled one.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Generic, TypeVar

__all__ = ["ExpiredOffsets", "OffsetGuard"]

P = TypeVar("P", bound=Hashable)


class OffsetGuard(Generic[P]):
    """Per partition: the next offset the agent should see."""

    def __init__(self) -> None:
        self._next: dict[P, int] = {}
        self._floors: dict[P, int] = {}
        self._looked: dict[P, tuple[int, int]] = {}
        self._admitted: set[P] = set()

    def reset(self, starts: Mapping[P, int], floors: Mapping[P, int] | None = None) -> None:
        """Partitions were (re)assigned; each resumes at ``starts`` (unknown ones unchecked).

        ``floors`` are the logs' starts: a start below its floor was overtaken by retention,
        and the partition's position (lag, stalls) counts from the floor; its first message
        still shows the jump (see :class:`ExpiredOffsets`).
        """
        self._next = dict(starts)
        self._floors = dict(floors or {})
        self._looked = {}
        self._admitted = set()

    def knows(self, tp: P) -> bool:
        """Has a message of ``tp`` been admitted since the last :meth:`reset`?"""
        return tp in self._admitted

    def expect(self, tp: P, offset: int) -> None:
        """Where ``tp`` resumes, learnt after the :meth:`reset` (before its first message)."""
        self._next[tp] = offset

    def next_offset(self, tp: P) -> int | None:
        """The offset the agent should see next on ``tp`` (None: not known), at least the log's
        start when the assignment read it."""
        expected = self._next.get(tp)
        if expected is None:
            return None
        return max(expected, self._floors.get(tp, expected))

    def partitions(self) -> list[P]:
        """The partitions whose next offset is known."""
        return list(self._next)

    def forget_looks(self) -> None:
        """The next :meth:`stalled` only takes a look (the flow was paused meanwhile)."""
        self._looked = {}

    def stalled(self, ends: Mapping[P, int]) -> list[tuple[P, int, int]]:
        """Partitions that had unread messages at the last call and none handed over since:
        (partition, next offset, end offset) each. The first call only takes a look."""
        looked = self._looked
        self._looked = {
            tp: (at, end) for tp, end in ends.items() if (at := self.next_offset(tp)) is not None
        }
        return [
            (tp, at, end)
            for tp, (at, end) in self._looked.items()
            if (before := looked.get(tp)) is not None and before[0] == at and before[1] > at
        ]

    def admit(self, tp: P, offset: int) -> int | None:
        """The first offset skipped before this message of ``tp``, or None (none was)."""
        expected = self._next.get(tp)
        self._next[tp] = offset + 1
        self._admitted.add(tp)
        if expected is not None and offset > expected:
            return expected
        return None


class ExpiredOffsets(Generic[P]):
    """The policy for offsets retention deleted before the group read them.

    Each expired offset is counted once per process, however many times its partition is
    assigned again before a commit moves past it.
    """

    def __init__(self) -> None:
        self._counted_to: dict[P, int] = {}

    def expired(self, tp: P, skipped_from: int, offset: int, log_start: int) -> int | None:
        """The consumer jumped from ``skipped_from`` to ``offset`` on ``tp``, whose log now
        starts at ``log_start``. None when messages of the jump are still in the log (not
        retention's doing); else how many of its offsets were not counted before (0: all
        were)."""
        if log_start < offset:
            return None
        counted_to = self._counted_to.get(tp, skipped_from)
        self._counted_to[tp] = max(counted_to, offset)
        return max(0, offset - max(skipped_from, counted_to))
