"""Orders by their next due time: what both drivers fire when their clock moves.

Each order has at most one live schedule, its earliest: a later schedule of an order already
due sooner changes nothing, and an earlier one supersedes it (the old heap entry is skipped when
it surfaces). An order is due once the clock has reached its time: ``due_at <= now``.
"""

from __future__ import annotations

import heapq
from datetime import datetime

__all__ = ["DeadlineIndex"]


class DeadlineIndex:
    """A heap of (due time, order id) with one live schedule per order."""

    __slots__ = ("_heap", "_scheduled")

    def __init__(self) -> None:
        self._heap: list[tuple[datetime, str]] = []
        self._scheduled: dict[str, datetime] = {}

    def __len__(self) -> int:
        """Orders with a live schedule."""
        return len(self._scheduled)

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._scheduled

    def schedule(self, order_id: str, due_at: datetime | None) -> None:
        """Be due at ``due_at`` unless already due sooner (None: nothing to schedule)."""
        if due_at is None:
            return
        scheduled = self._scheduled.get(order_id)
        if scheduled is None or due_at < scheduled:
            self._scheduled[order_id] = due_at
            heapq.heappush(self._heap, (due_at, order_id))

    def discard(self, order_id: str) -> None:
        """Forget the order's schedule (it closed)."""
        self._scheduled.pop(order_id, None)

    def pop_due(self, now: datetime) -> str | None:
        """The next order due at or before ``now``, no longer scheduled; None when none is."""
        heap, scheduled = self._heap, self._scheduled
        while heap and heap[0][0] <= now:
            due_at, order_id = heapq.heappop(heap)
            if scheduled.get(order_id) == due_at:
                del scheduled[order_id]
                return order_id
        return None
