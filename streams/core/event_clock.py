"""The one rule about time both drivers share: a single event cannot move the clock.

The event-time clock follows the largest ``occurred_at`` seen. An event dated far ahead of the
rest (a mistyped year inside the accepted range) would move it there and fire every other
order's deadlines. So an event more than the policy's ``engine.max_ahead`` (30 days) ahead of
the latest event accepted before it is rejected as from the future: in replay, the latest of
the stream; in the worker, the latest of the partition that owns it (on the wall clock: the
time). The first event of a stream has nothing to be ahead of.

The other side of the rule is the worker's: it reads each input topic of a partition at its own
pace, so a partition's event-time clock follows the slowest input (:func:`partition_clock`).
An input with nothing unread has no say beyond a bound: it holds the clock at most ``slack``
(event time) behind the leading input, so a partition that never sees a complaint still fires
its deadlines. Replay reads one ordered stream and needs neither.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime, timedelta

from streams.core.dates import EPOCH, format_utc
from streams.core.outputs import Rejection
from streams.core.policy import Policy

__all__ = ["PartitionClock", "from_the_future", "idle_floor", "partition_clock"]


def from_the_future(
    occurred_at: datetime, latest: datetime | None, policy: Policy
) -> Rejection | None:
    """Why an event at ``occurred_at`` is rejected, or None when it is not too far ahead."""
    if latest is None or occurred_at <= latest + policy.max_ahead:
        return None
    days = (occurred_at - latest).days
    limit = policy.max_ahead.total_seconds() / 86400
    return Rejection(
        "from_the_future",
        f"Field 'occurred_at' is {format_utc(occurred_at)}, {days} days after the latest event "
        f"before it ({format_utc(latest)}); an event more than {limit:g} days ahead is taken as "
        "a mistyped time: correct occurred_at and send the event again.",
    )


def partition_clock(
    seen: Mapping[str, datetime],
    floors: Mapping[str, datetime],
    inputs: Iterable[str],
    lateness: timedelta,
) -> datetime | None:
    """A partition's event-time clock: the slowest input's mark, less the allowed lateness.

    ``seen`` holds each topic's largest ``occurred_at`` read on the partition (a topic beyond
    ``inputs`` joins once seen); ``floors`` the marks that topics with nothing unread were
    lifted to (see :func:`idle_floor`). None while one of ``inputs`` has neither.
    """
    marks = dict(seen)
    for topic, floor in floors.items():
        marks[topic] = max(marks.get(topic, floor), floor)
    if not marks or any(topic not in marks for topic in inputs):
        return None
    return min(marks.values()) - lateness


def idle_floor(seen: Mapping[str, datetime], slack: timedelta) -> datetime | None:
    """How far an input with nothing unread is lifted: ``slack`` behind the leading input."""
    return max(seen.values()) - slack if seen else None


class PartitionClock:
    """Event-time clock of one partition, fed by the co-partitioned input topics.

    Each input topic's partition is read at its own pace, so the clock follows the slowest
    (:func:`partition_clock`): it stands still until every input topic has
    had an event on this partition or has nothing unread, and an input with nothing unread
    holds it at most the idle slack behind the leading one (``floors``, learnt again after a
    restart). ``advance-clock`` moves it on too (a backfill's last step). So a deadline never
    fires before the events that could meet it were read.
    """

    __slots__ = ("floors", "seen", "value")

    def __init__(self, value: datetime = EPOCH, seen: dict[str, datetime] | None = None) -> None:
        self.value = value
        self.seen = seen if seen is not None else {}
        self.floors: dict[str, datetime] = {}

    def observe(
        self, topic: str, occurred_at: datetime, lateness: timedelta, inputs: Collection[str]
    ) -> bool:
        """Note an event of ``topic``; True when the clock moved."""
        if occurred_at <= self.seen.get(topic, EPOCH):
            return False
        self.seen[topic] = occurred_at
        return self._follow(lateness, inputs)

    def lift(
        self, topic: str, floor: datetime, lateness: timedelta, inputs: Collection[str]
    ) -> bool:
        """``topic`` had nothing unread while the leading input was at ``floor`` + the slack;
        True when the clock moved."""
        if floor <= self.floors.get(topic, EPOCH):
            return False
        self.floors[topic] = floor
        return self._follow(lateness, inputs)

    def _follow(self, lateness: timedelta, inputs: Collection[str]) -> bool:
        moved = partition_clock(self.seen, self.floors, inputs, lateness)
        if moved is not None and moved > self.value:
            self.value = moved
            return True
        return False
