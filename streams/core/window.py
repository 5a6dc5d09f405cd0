"""Building blocks of the aggregate processors: rolling windows, threshold crossings, and
timelines counted as of a clock."""

from __future__ import annotations

import heapq
from bisect import insort
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeAlias, TypeVar

from streams.core.dates import EPOCH

__all__ = ["Crossing", "RollingSet", "Timelines", "View"]

T = TypeVar("T")

View: TypeAlias = Callable[[T, datetime], tuple[tuple[int, ...] | None, datetime | None]]
"""How one timeline counts at a moment, and the next moment that changes (None: never).

Counted as None, and with no next change, the timeline is forgotten.
"""


@dataclass(slots=True)
class Crossing:
    """Whether a measure is over its threshold, and how many times it crossed it.

    A recommendation is issued when the threshold is first crossed, and again only after the
    measure has dropped back below it and crossed again; ``count`` numbers the crossings so the
    recommendation's id does not depend on which fact crossed it.
    """

    above: bool = False
    count: int = 0

    def update(self, breached: bool) -> bool:
        """Record the measure's side of the threshold; True when this is a new crossing."""
        if breached and not self.above:
            self.above = True
            self.count += 1
            return True
        if not breached:
            self.above = False
        return False


@dataclass(slots=True)
class RollingSet:
    """Distinct keys with a timestamp, forgetting those that fall out of a time window."""

    entries: list[tuple[datetime, str]] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)

    def add(self, moment: datetime, key: str) -> bool:
        """Add ``key`` at ``moment``; False when it was already counted."""
        if key in self.keys:
            return False
        self.keys.add(key)
        insort(self.entries, (moment, key))
        return True

    def expire(self, horizon: datetime) -> None:
        """Forget every entry at or before ``horizon``."""
        cut = 0
        while cut < len(self.entries) and self.entries[cut][0] <= horizon:
            self.keys.discard(self.entries[cut][1])
            cut += 1
        if cut:
            del self.entries[:cut]

    def __len__(self) -> int:
        return len(self.entries)


@dataclass(slots=True)
class Timelines(Generic[T]):
    """An aggregate's per-order timelines, summed as of the aggregate's clock ``now``.

    Each timeline contributes a vector of counts decided by a :data:`View` at ``now``; a heap of
    the moments at which a contribution changes lets :meth:`advance` recount only those. So the
    totals are always those of every timeline read as of ``now``, whatever order the timelines
    were learnt in.
    """

    width: int
    now: datetime = EPOCH
    entries: dict[str, T] = field(default_factory=dict)
    counted: dict[str, tuple[int, ...]] = field(default_factory=dict)
    totals: list[int] = field(default_factory=list)
    changes: list[tuple[datetime, str]] = field(default_factory=list, compare=False, repr=False)
    change_at: dict[str, datetime] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.totals:
            self.totals = [0] * self.width

    def put(self, key: str, timeline: T, view: View[T]) -> None:
        """Learn (or replace) one timeline and count it as of ``now``."""
        self.entries[key] = timeline
        self._recount(key, view)

    def advance(self, now: datetime, view: View[T]) -> None:
        """Move ``now`` forward (never back), recounting the timelines that changed by then."""
        if now <= self.now:
            return
        self.now = now
        changes = self.changes
        if not changes or changes[0][0] > now:
            return
        change_at = self.change_at
        while changes and changes[0][0] <= now:
            moment, key = heapq.heappop(changes)
            if change_at.get(key) == moment:
                del change_at[key]
                self._recount(key, view)

    def next_change(self) -> datetime | None:
        """The next moment a count changes by time alone (a query: nothing is changed).

        :meth:`_recount` keeps the heap's top current, so this is a look at it; the scan of
        ``change_at`` is only for a heap built by hand with a superseded change on top.
        """
        changes = self.changes
        if not changes:
            return None
        moment, key = changes[0]
        if self.change_at.get(key) == moment:
            return moment
        return min(self.change_at.values(), default=None)

    def _recount(self, key: str, view: View[T]) -> None:
        counts, next_change = view(self.entries[key], self.now)
        counted = self.counted
        old = counted.pop(key, None)
        if old != counts:
            totals = self.totals
            if old is not None:
                for index, value in enumerate(old):
                    if value:
                        totals[index] -= value
            if counts is not None:
                for index, value in enumerate(counts):
                    if value:
                        totals[index] += value
        if counts is not None:
            counted[key] = counts
        change_at = self.change_at
        if next_change is None:
            change_at.pop(key, None)
            if counts is None:
                del self.entries[key]
        elif change_at.get(key) != next_change:
            change_at[key] = next_change
            heapq.heappush(self.changes, (next_change, key))
        changes = self.changes
        while changes and change_at.get(changes[0][1]) != changes[0][0]:
            heapq.heappop(changes)  # superseded: keep the top current for next_change
