"""Faust's Kafka consumer, made to resume a partition the group never committed at its start.

When a rebalance completes, Faust resumes fetching the assigned partitions, then seeks each to
its committed offset, then resumes the flow of messages to the agents. Whatever its fetcher
reads in between is dropped, and its read position moves past it. The seek puts a committed
partition back; but aiokafka seeks only to a committed offset above 0, so a partition the group
never committed (or committed at 0) stays where the dropped messages left it, and they are
never read. Seen on the real broker: a complaints partition with 66 messages, never committed,
read by no worker after any number of restarts.

:class:`ResumingConsumer` seeks those partitions too: to offset 0 if committed there, to the
log's first offset if never committed. Changelog partitions are left to Faust's recovery.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from faust.types.transports import ConsumerT

__all__ = ["ResumingConsumer", "ResumingTransport"]


class ResumingConsumer(faust_aiokafka.Consumer):
    """Seeks every stream partition at a rebalance's end, committed or not."""

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed: Mapping[TP, int] = await super().seek_to_committed()
        changelogs = self.app.tables.changelog_topics
        unmoved = [
            tp for tp, offset in committed.items() if not offset and tp.topic not in changelogs
        ]
        if unmoved:
            never = [tp for tp in unmoved if committed[tp] is None]
            starts = dict(await self.earliest_offsets(*never)) if never else {}
            await self.seek_wait({tp: starts.get(tp, 0) for tp in unmoved})
        return committed


# mode names a service's logger after the module of its class: this one's records are Faust's
# consumer's, and belong with them (set after the class, which mode's subclass hook would undo).
ResumingConsumer.logger = faust_aiokafka.logger


class ResumingTransport(faust_aiokafka.Transport):
    """Faust's aiokafka transport with :class:`ResumingConsumer`."""

    Consumer: ClassVar[type[ConsumerT]] = ResumingConsumer
