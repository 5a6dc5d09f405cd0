"""Wall clock: which inputs of a partition had nothing unread, and as of when.

A deadline on the wall clock fires only once every input that could meet it has been read past
it (:class:`~streams.core.timekeeping.WallTime`). An input's part of that is known here: every
half second the worker takes the time ``at``, *then* reads each owned input partition's log end
(:meth:`ReadFrontier.found`). Every message written before ``at`` lies below that end, so once the
agent has *handled* every offset below it (:meth:`ReadFrontier.handled`, after the batch went
through its processor), the input is caught up as of ``at`` (:meth:`ReadFrontier.ripe`). A
backlog keeps the end ahead of what was handled, so the input holds the clock back by its
events' own time until the backlog is read.

Handled, not fetched: a message Faust fetched but the agent did not hand to its processor yet
(a batch in progress, a worker frozen with a full buffer) never counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

__all__ = ["MAX_PENDING", "ReadFrontier"]

TopicPartition = tuple[str, int]

#: Log ends kept per partition while the agent works through a backlog: the oldest are the
#: first to ripen, so a newer one is dropped when there are this many.
MAX_PENDING = 32


class ReadFrontier:
    """Per input partition: the next offset the agent has not handled, and the log ends found
    (with the time taken before reading them) that it has not reached yet."""

    def __init__(self) -> None:
        self._handled: dict[TopicPartition, int] = {}
        self._pending: dict[TopicPartition, list[tuple[int, datetime]]] = {}

    def reset(self) -> None:
        """Partitions moved: what was handled or found says nothing of the new assignment."""
        self._handled = {}
        self._pending = {}

    def resume(self, starts: Mapping[TopicPartition, int]) -> None:
        """Each assigned partition resumes at ``starts`` (the group's committed offset): every
        offset below it counts as handled."""
        handled = self._handled
        for tp, start in starts.items():
            key = (tp[0], tp[1])
            if start > handled.get(key, -1):
                handled[key] = start

    def handled(self, messages: Iterable[Any]) -> None:
        """The agent's processors have handled ``messages`` (Kafka messages)."""
        handled = self._handled
        for message in messages:
            key = (message.topic, message.partition)
            following = message.offset + 1
            if following > handled.get(key, -1):
                handled[key] = following

    def found(self, ends: Mapping[Any, int], at: datetime) -> None:
        """Each partition's log end, read after the time ``at`` was taken."""
        for tp, end in ends.items():
            key = (tp[0], tp[1])
            pending = self._pending.setdefault(key, [])
            if pending and pending[-1][0] == end:
                pending[-1] = (end, at)  # nothing written since: caught up as of later
            elif len(pending) < MAX_PENDING:
                pending.append((end, at))

    def ripe(self) -> Iterator[tuple[TopicPartition, datetime]]:
        """(partition, time) for each partition whose handled offsets reached a log end found:
        every message written before that time was handled (the latest such time)."""
        for key, pending in self._pending.items():
            handled = self._handled.get(key)
            if handled is None or not pending or pending[0][0] > handled:
                continue
            at = pending[0][1]
            while pending and pending[0][0] <= handled:
                at = pending.pop(0)[1]
            yield key, at
