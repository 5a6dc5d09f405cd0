"""Every offset of a partition, in order: a guard against messages Faust drops in a rebalance.

When partitions are assigned, Faust seeks them to their committed offsets and then resumes the
flow of messages. Messages its fetcher reads in between are dropped (the flow is still
suspended) while its read position moves past them: the agent never sees them, their offsets
are never acknowledged, the group's committed offset stops there for good, and the state they
should have changed lacks them. The fault suite saw a partition taken back in a rebalance resume
7 offsets past its committed one, and the first message of a partition never committed dropped.

:class:`OffsetGuard` notices the jump: after an assignment, a partition's first message must be
at the group's committed offset (or the log's start, if the partition was empty), and each
next one at the offset after. The worker stops when one is not (the error policy's answer to a
failure of Kafka's side, :mod:`streams.failures`): nothing past the gap is committed, so the
restarted worker reads the dropped messages again. A seek back from inside the agent is no
remedy: the consumer's fetcher may be waiting for the agent, and Faust's read position is moved
by messages it fetched meanwhile.

The same bookkeeping tells a partition that stalled: unread messages on it, and not one of them
handed over since the last look (seen in the fault suite too: a partition the group had never
committed, never read by the worker it was assigned to after a restart). The worker stops then
as well, so that its restart reads it.

A partition's offsets also jump legitimately at a transaction's commit marker, so a worker
whose own topics are written in transactions guards only the topics producers write.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Generic, TypeVar

__all__ = ["OffsetGuard"]

P = TypeVar("P", bound=Hashable)


class OffsetGuard(Generic[P]):
    """Per partition: the next offset the agent should see."""

    def __init__(self) -> None:
        self._next: dict[P, int] = {}
        self._looked: dict[P, tuple[int, int]] = {}
        self._admitted: set[P] = set()

    def reset(self, starts: Mapping[P, int]) -> None:
        """Partitions were (re)assigned; each resumes at ``starts`` (unknown ones unchecked)."""
        self._next = dict(starts)
        self._looked = {}
        self._admitted = set()

    def knows(self, tp: P) -> bool:
        """Has a message of ``tp`` been admitted since the last :meth:`reset`?"""
        return tp in self._admitted

    def expect(self, tp: P, offset: int) -> None:
        """Where ``tp`` resumes, learnt after the :meth:`reset` (before its first message)."""
        self._next[tp] = offset

    def next_offset(self, tp: P) -> int | None:
        """The offset the agent should see next on ``tp`` (None: not known)."""
        return self._next.get(tp)

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
        self._looked = {tp: (self._next[tp], end) for tp, end in ends.items() if tp in self._next}
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
