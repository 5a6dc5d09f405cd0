"""Fencing: a worker that may have lost its partitions writes nothing more of what it held.

A worker stopped longer than the session timeout (SIGSTOP, a VM stall, a long pause) is removed
from the group, and its partitions go to another worker. When it runs again it still holds
fetched messages and unwritten state. Two things keep that from reaching Kafka:

- Every changelog record carries a stamp (:data:`~streams.worker.tables.Stamp`): the group
generation
  the writer's partitions were assigned in, and a sequence. The new owner's generation is newer,
  and a table's restore keeps the newest stamp of each key (:class:`~streams.worker.tables.Stamps`),
  wherever a late record landed. This holds whatever the timing.
- :meth:`Fence.check`, before a batch sends anything: the group coordinator must have accepted a
  heartbeat of the member the batch's partitions were assigned to within the session timeout
  (a heartbeat during a rebalance counts: the member stays in the group). A worker resumed
  after its session expired waits until its heartbeats are answered again; if that is as
  another member (it was removed and joined again), the batch is fenced and the worker stops
  (exit 75: a restart reads the group's committed offsets and the changelogs again). This
  early stop keeps a resumed worker from sending its outputs and state at all; it can race
  with a stop right after the check, which is what the stamps are for. A batch that merely
  straddles an ordinary rebalance (the same member throughout) writes on, with the stamp of
  its own generation.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from streams.worker.failures import Fenced
from streams.worker.faust_fixes.heartbeats import follow_heartbeats
from streams.worker.tables import Stamp

__all__ = ["Fence", "Fenced", "Term"]

log = logging.getLogger("orderwatch.worker")

#: How long (seconds) a check waits for the coordinator before it gives up on the batch.
GIVE_UP_SECONDS = 120.0


Term = tuple[int, str]
"""An assignment: (group generation, member id)."""


class Fence:
    """The worker's current assignment, and the session its accepted heartbeats renew."""

    def __init__(
        self, session_timeout: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        #: The assignment the partitions' processors were built for.
        self.term: Term = (-1, "")
        self._session = session_timeout
        self._clock = clock
        self._sequence = 0
        self._renewed_at = -math.inf
        self._renewed_member = ""
        self._coordinator: Any = None
        self.tracking = False

    def assigned(self, generation: int, member: str) -> None:
        """The partitions were assigned (again) to ``member`` in ``generation``."""
        self.term = (generation, member)

    def renewed(self, sent_at: float, member: str) -> None:
        """The coordinator accepted a heartbeat ``member`` sent at ``sent_at`` (this clock):
        its session lasts at least a session timeout from then."""
        if sent_at >= self._renewed_at:
            self._renewed_at = sent_at
            self._renewed_member = member

    def stamp(self, term: Term) -> Stamp:
        """A stamp for writes made under ``term``; each is newer than the last."""
        self._sequence += 1
        return term[0], self._sequence

    def held(self, term: Term) -> bool:
        """Does this worker surely still hold the assignment of ``term`` now?"""
        if not self.tracking:
            return True
        return (
            self._renewed_member == term[1]
            and self._clock() - self._renewed_at < self._session * 0.8
        )

    def removed(self, term: Term) -> bool:
        """Has the group removed the member of ``term`` (it is another member now, or none)?

        The coordinator forgets its member id as soon as a heartbeat is refused as unknown,
        before it joins again: a batch must not wait for that join, which waits for the batch.
        """
        current = getattr(self._coordinator, "member_id", term[1])
        renewed = self._renewed_member
        return current != term[1] or bool(renewed and renewed != term[1])

    async def check(self, term: Term) -> None:
        """Return once writes made under ``term`` may be sent; raise :class:`Fenced` if the
        group moved on without this worker."""
        started = self._clock()
        while not self.held(term):
            if self.removed(term):
                raise Fenced(
                    f"this batch's partitions were assigned in generation {term[0]}; the worker "
                    "was removed from the group since (stalled past its session timeout)"
                )
            waited = self._clock() - started
            if waited >= GIVE_UP_SECONDS:
                raise Fenced(f"no heartbeat accepted for {waited:.0f} s")
            await asyncio.sleep(0.05)

    def watch(self, coordinator: Any) -> bool:
        """Follow the heartbeats of aiokafka's group ``coordinator``
        (:func:`~streams.worker.faust_fixes.heartbeats.follow_heartbeats`). False if it has
        not the expected shape: the stamps alone fence writes then."""
        if not follow_heartbeats(coordinator, self.renewed, self._clock):
            return False
        self._coordinator = coordinator
        self.tracking = True
        return True
