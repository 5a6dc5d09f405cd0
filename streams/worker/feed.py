"""The console's live feed: the output topics, read by a consumer of this worker's own, as
server-sent events (``GET /events``).

The consumer has no group: it is assigned every partition of ``deadline-breaches``,
``dispute-recommendations`` and ``dead-letter`` and commits nothing, so every worker of a group
serves all outputs, whichever worker decided them, and a console works against any worker. It
starts :data:`BACKLOG_PER_PARTITION` messages back on each partition (a fresh page shows the
recent breaches at once), then follows the topics live. The latest :data:`KEEP` outputs stay in
memory; a browser that reconnects with ``Last-Event-ID`` gets only what came after that id when
it is still kept, else everything kept.

The consumer starts with the first subscriber (a worker nobody watches reads nothing more) and
stops with the worker (:meth:`OutputFeed.close`, which also ends every open stream, so the web
server stops without waiting for browsers).

One server-sent event per output: ``event:`` its ``type`` (``deadline.breached``,
``deadline.resolved``, ``recommendation.issued``, ``event.rejected``), ``id:`` its id (the
``ce_id`` header), ``data:`` its JSON on one line. A comment line every
:data:`HEARTBEAT_SECONDS` keeps proxies from closing an idle stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]

from streams.kafka.admin import partitions_of

__all__ = [
    "BACKLOG_PER_PARTITION",
    "HEARTBEAT_SECONDS",
    "KEEP",
    "FeedEvent",
    "OutputFeed",
    "event_of",
    "since",
]

log = logging.getLogger("orderwatch.feed")

#: How many messages back on each output partition the feed starts.
BACKLOG_PER_PARTITION = 50
#: How many of the latest outputs are kept for pages that connect later.
KEEP = 1000
#: Seconds between two comment lines on an idle stream.
HEARTBEAT_SECONDS = 15.0
#: Outputs waiting for one browser before it is dropped (it reconnects with Last-Event-ID).
SUBSCRIBER_QUEUE = 2000
#: Seconds between two tries to start the consumer.
RETRY_SECONDS = 5.0

_ID_FIELDS = ("resolution_id", "breach_id", "recommendation_id", "rejection_id")


@dataclass(frozen=True, slots=True)
class FeedEvent:
    """One output as a server-sent event."""

    id: str
    type: str
    data: str

    def encode(self) -> bytes:
        return f"id: {self.id}\nevent: {self.type}\ndata: {self.data}\n\n".encode()


def event_of(value: bytes | None, headers: Iterable[tuple[str, bytes]] = ()) -> FeedEvent | None:
    """The server-sent event of one output message (None: not an output object)."""
    if value is None:
        return None
    try:
        output = json.loads(value)
    except ValueError:
        return None
    if not isinstance(output, dict) or not isinstance(output.get("type"), str):
        return None
    ce_id = dict(headers).get("ce_id")
    ident = ce_id.decode("utf-8", "replace") if ce_id else ""
    if not ident:
        ident = next((str(output[f]) for f in _ID_FIELDS if output.get(f)), "")
    # Re-encoded: one line whatever the producer wrote, and no field can end the event.
    data = json.dumps(output, separators=(",", ":"), ensure_ascii=False)
    kind = "".join(c for c in output["type"] if c.isprintable() and c not in "\r\n")
    return FeedEvent(id="".join(c for c in ident if c not in "\r\n"), type=kind, data=data)


def since(kept: Iterable[FeedEvent], last_event_id: str | None) -> list[FeedEvent]:
    """What a page that last saw ``last_event_id`` still needs of ``kept``: what came after
    that id, or all of it when the id is not kept (or not given)."""
    events = list(kept)
    if last_event_id:
        for index in range(len(events) - 1, -1, -1):
            if events[index].id == last_event_id:
                return events[index + 1 :]
    return events


class OutputFeed:
    """The output topics, read from a bounded way back, then live, and fanned out to
    subscribers (one queue each)."""

    def __init__(
        self,
        client_options: Mapping[str, Any],
        topics: Iterable[str],
        *,
        isolation_level: str = "read_uncommitted",
        backlog_per_partition: int = BACKLOG_PER_PARTITION,
        keep: int = KEEP,
    ) -> None:
        self.client_options = dict(client_options)
        self.topics = tuple(topics)
        self.isolation_level = isolation_level
        self.backlog_per_partition = backlog_per_partition
        self.kept: deque[FeedEvent] = deque(maxlen=keep)
        self.subscribers: set[asyncio.Queue[FeedEvent | None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def ensure_started(self) -> None:
        """Start reading (once), in the running loop."""
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="orderwatch.feed")

    @contextlib.asynccontextmanager
    async def subscribe(
        self, last_event_id: str | None = None
    ) -> AsyncIterator[tuple[list[FeedEvent], asyncio.Queue[FeedEvent | None]]]:
        """What is kept (after ``last_event_id``) and a queue of what comes next; ``None`` in
        the queue ends the stream (the worker stops, or the browser fell too far behind).
        Reading starts with :meth:`ensure_started`."""
        queue: asyncio.Queue[FeedEvent | None] = asyncio.Queue(maxsize=SUBSCRIBER_QUEUE)
        if self._closed:
            queue.put_nowait(None)
        self.subscribers.add(queue)
        try:
            yield since(self.kept, last_event_id), queue
        finally:
            self.subscribers.discard(queue)

    def publish(self, event: FeedEvent) -> None:
        """Keep ``event`` and hand it to every subscriber."""
        self.kept.append(event)
        for queue in list(self.subscribers):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                # A browser this far behind reconnects and catches up from what is kept.
                self.subscribers.discard(queue)
                _end(queue)

    async def close(self) -> None:
        """Stop reading and end every open stream."""
        self._closed = True
        for queue in list(self.subscribers):
            _end(queue)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while not self._closed:
            consumer = AIOKafkaConsumer(
                **self.client_options,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="latest",
                isolation_level=self.isolation_level,
                client_id="orderwatch-console-feed",
            )
            try:
                await consumer.start()
                try:
                    await self._position(consumer)
                    await self._follow(consumer)
                finally:
                    await consumer.stop()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the feed must never stop the worker
                log.warning(
                    "console feed: cannot read the output topics (%s: %s); retrying in %.0f s",
                    type(error).__name__,
                    error,
                    RETRY_SECONDS,
                )
                await asyncio.sleep(RETRY_SECONDS)

    async def _position(self, consumer: Any) -> None:
        """Assign every output partition, each ``backlog_per_partition`` back from its end."""
        options = dict(self.client_options)
        found = await partitions_of(options.pop("bootstrap_servers"), self.topics, options)
        parts = [
            TopicPartition(topic, partition) for topic in self.topics for partition in found[topic]
        ]
        if not parts:
            raise LookupError(f"none of the topics {', '.join(self.topics)} exists yet")
        consumer.assign(parts)
        starts = await consumer.beginning_offsets(parts)
        ends = await consumer.end_offsets(parts)
        for tp in parts:
            consumer.seek(tp, max(starts[tp], ends[tp] - self.backlog_per_partition))

    async def _follow(self, consumer: Any) -> None:
        while not self._closed:
            batch = await consumer.getmany(timeout_ms=1000, max_records=500)
            for records in batch.values():
                for record in records:
                    event = event_of(record.value, record.headers)
                    if event is not None:
                        self.publish(event)


def _end(queue: asyncio.Queue[FeedEvent | None]) -> None:
    """Put the end marker in ``queue``, making room for it when it is full."""
    while True:
        try:
            queue.put_nowait(None)
            return
        except asyncio.QueueFull:
            queue.get_nowait()
