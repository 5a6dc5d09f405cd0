"""Every offset of a partition, in order: a guard against messages Faust drops in a rebalance.

When partitions are assigned, Faust seeks them to their committed offsets and then resumes the
flow of messages. Messages its fetcher reads in between are dropped (the flow is still
suspended) while its read position moves past them: the agent never sees them, their offsets
are never acknowledged, the group's committed offset stops there for good, and the state they
should have changed lacks them. The fault suite saw a partition taken back in a rebalance resume
7 offsets past its committed one, and the first message of a partition never committed dropped.

:class:`OffsetGuard` notices the jump: after an assignment, a partition's first message must be
at the group's committed offset (or the log's start, if the group has committed none), and each
next one at the offset after. The worker stops when one is not (the error policy's answer to a
failure of Kafka's side, :mod:`streams.failures`): nothing past the gap is committed, so the
restarted worker reads the dropped messages again. A seek back from inside the agent is no
remedy: the consumer's fetcher may be waiting for the agent, and Faust's read position is moved
by messages it fetched meanwhile.

A partition's offsets also jump legitimately at a transaction's commit marker, so a worker
whose own topics are written in transactions guards only the topics producers write.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

__all__ = ["OffsetGuard"]


class OffsetGuard:
    """Per partition: the next offset the agent should see."""

    def __init__(self) -> None:
        self._next: dict[Hashable, int] = {}

    def reset(self, starts: Mapping[Hashable, int]) -> None:
        """Partitions were (re)assigned; each resumes at ``starts`` (unknown ones unchecked)."""
        self._next = dict(starts)

    def admit(self, tp: Hashable, offset: int) -> int | None:
        """The first offset skipped before this message of ``tp``, or None (none was)."""
        expected = self._next.get(tp)
        self._next[tp] = offset + 1
        if expected is not None and offset > expected:
            return expected
        return None
