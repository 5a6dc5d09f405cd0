"""Faust's Kafka consumer, made to resume every partition at its committed offset, and nowhere
else, after a rebalance.

Works around: faust-streaming 0.15.3 resuming partitions before it seeks them, and aiokafka 0.14
seeking only to committed offsets above 0. Fails without it:
``tests/unit/worker/faust_fixes/test_consumer.py::test_records_fetched_before_the_seek_are_not_handed_over``
(and the rest of that module); on a broker,
``tests/integration/test_worker_group.py::test_a_restarted_worker_reads_partitions_its_group_never_committed``.

When a rebalance completes, Faust resumes fetching the assigned partitions, then seeks each to
its committed offset. Two things go wrong in between:

- **Never-committed partitions are not sought.** aiokafka seeks only to a committed offset
  above 0, so a partition the group never committed (or committed at 0) stays wherever its
  fetcher left it. Seen on the real broker: a complaints partition with 66 messages, never
  committed, read by no worker after any number of restarts.
- **What is fetched before the seek reaches the agents.** After a table recovery the flow of
  messages is already active (Faust resumed it to read the changelogs), so records fetched
  between the partitions' resumption and the seek's end are handed over, from wherever the
  fetcher's position was: past messages an earlier fetch read and Faust dropped. Seen in the
  fault suite: a worker joining a group got a partition's offset 243 first, with 235 committed,
  and its offset guard stopped it, five restarts in a row.

:class:`ResumingConsumer` seeks never-committed partitions too (to offset 0 if committed there,
to the log's first offset if never committed), and never hands over a stream partition's
records fetched before its seek: fetches and seeks take turns, and a fetch that returns for a
partition resumed but not yet sought is dropped (the seek that follows reads it again).
Changelog partitions are left to Faust's recovery.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from faust.types.transports import ConsumerT

__all__ = ["ResumingConsumer", "ResumingTransport", "install_resuming_consumer"]


class ResumingConsumer(faust_aiokafka.Consumer):
    """Seeks every stream partition at a rebalance's end, committed or not, and hands over
    nothing of a stream partition fetched before its seek."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Stream partitions resumed since the last seek: what is fetched for them is stale.
        self._unsought: set[TP] = set()
        # A fetch and a seek never overlap: a fetch's records are all from before the seek,
        # or all from after it.
        self._turns = asyncio.Lock()

    def resume_partitions(self, tps: Iterable[TP]) -> None:
        tps = set(tps)
        changelogs = self.app.tables.changelog_topics
        self._unsought.update(tp for tp in tps if tp.topic not in changelogs)
        super().resume_partitions(tps)

    async def _getmany(self, active_partitions: set[TP] | None, timeout: float) -> Any:
        async with self._turns:
            records = await super()._getmany(active_partitions, timeout)
        stale = self._unsought.intersection(records)
        if not stale:
            return records
        return {tp: batch for tp, batch in records.items() if tp not in stale}

    async def seek_to_committed(self) -> Mapping[TP, int]:
        async with self._turns:
            committed: Mapping[TP, int] = await super().seek_to_committed()
            changelogs = self.app.tables.changelog_topics
            unmoved = [
                tp for tp, offset in committed.items() if not offset and tp.topic not in changelogs
            ]
            if unmoved:
                never = [tp for tp in unmoved if committed[tp] is None]
                starts = dict(await self.earliest_offsets(*never)) if never else {}
                await self.seek_wait({tp: starts.get(tp, 0) for tp in unmoved})
            self._unsought.difference_update(committed)
        return committed


# mode names a service's logger after the module of its class: this one's records are Faust's
# consumer's, and belong with them (set after the class, which mode's subclass hook would undo).
ResumingConsumer.logger = faust_aiokafka.logger


class ResumingTransport(faust_aiokafka.Transport):
    """Faust's aiokafka transport with :class:`ResumingConsumer`."""

    Consumer: ClassVar[type[ConsumerT]] = ResumingConsumer


def install_resuming_consumer(app: faust.App) -> None:
    """Give ``app`` (not started yet) the :class:`ResumingConsumer`."""
    app.transport = ResumingTransport(app.conf.broker_consumer, app)
