"""Building blocks of the aggregate processors: rolling windows and threshold crossings."""

from __future__ import annotations

from bisect import insort
from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["Crossing", "RollingSet"]


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
