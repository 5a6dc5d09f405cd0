"""The worker's watch over its consumer: offsets in order, progress, lag, idle inputs.

Faust's consumer can skip or stall on a partition around rebalances (see
:mod:`streams.worker.faust_fixes.offsets` and :mod:`streams.worker.faust_fixes.consumer`);
:class:`ConsumerWatch` checks every message's offset before it is handled (telling Faust's skips
from retention's, which it counts and passes), looks every few seconds for a partition that stalled,
reports the consumer lag, and (event time) lifts the clock of a partition whose inputs have nothing
unread. It reads the group's committed offsets and the logs' ends with a Kafka client of its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]
from aiokafka.errors import KafkaError  # type: ignore[import-untyped]
from faust.types import TP

from streams.core.dates import EPOCH
from streams.core.event_clock import PartitionClock, idle_floor, partition_clock
from streams.kafka.connection import client_options
from streams.ops.metrics import Metrics
from streams.ops.outage import OutageLog
from streams.settings import Settings
from streams.worker import wire
from streams.worker.failures import SkippedOffsets, StalledPartition, stop_worker
from streams.worker.faust_fixes.offsets import ExpiredOffsets, OffsetGuard
from streams.worker.frontier import ReadFrontier
from streams.worker.publish import where

__all__ = ["STALL_CHECK_SECONDS", "ConsumerWatch", "now_utc"]

log = logging.getLogger("orderwatch.worker")

#: Seconds between two looks for a stalled partition.
STALL_CHECK_SECONDS = 20.0


def now_utc() -> datetime:
    """The wall clock, as the worker reads it."""
    return datetime.now(UTC)


class ConsumerWatch:
    """Offsets, stalls, lag and idle inputs of the partitions a worker reads."""

    def __init__(
        self,
        app: Any,
        settings: Settings,
        metrics: Metrics,
        outage: OutageLog,
        *,
        guarded: Collection[str],
        inputs: Collection[str],
        forwarded: str,
        inventory: str,
        lateness: timedelta,
        ready: Callable[[], bool],
    ) -> None:
        self.app = app
        self.settings = settings
        self.metrics = metrics
        self.outage = outage
        self.guarded = frozenset(guarded)
        self.inputs = frozenset(inputs)
        self.forwarded = forwarded
        self.inventory = inventory
        self.lateness = lateness
        self._ready = ready
        self.offsets: OffsetGuard[TP] = OffsetGuard()
        self.expiry: ExpiredOffsets[TP] = ExpiredOffsets()
        for topic in self.guarded:
            metrics.observe_expired(topic, 0)  # at 0 from the start, for increase()
        self._reader: AIOKafkaConsumer | None = None
        self._reader_lock = asyncio.Lock()
        # Idle-input lifts sent to the clock topic, not to be sent again (see check_idle).
        self._lifts_sent: dict[TP, datetime] = {}
        #: Wall clock: the inputs with nothing unread (see check_caught_up).
        self.frontier = ReadFrontier()

    def assigned(self) -> None:
        """Partitions are moving: lifts sent and ends found before say nothing of the new
        assignment."""
        self._lifts_sent = {}
        self.frontier.reset()

    # -- every message ----------------------------------------------------------------------

    async def check_order(self, message: Any) -> None:
        """Stop the worker if the consumer skipped offsets before this message that are still
        in the log (see :mod:`streams.worker.faust_fixes.offsets`); the restart reads them again.
        Offsets that retention deleted are counted and logged, and the partition flows on."""
        if message.topic not in self.guarded:
            return
        first = not self.offsets.knows(message.tp)
        sought = None
        if first:
            # Where Faust's consumer sought to, once it has: that is where it must resume.
            sought = getattr(self.app.consumer, "_committed_offset", {}).get(message.tp)
            if isinstance(sought, int):
                self.offsets.expect(message.tp, sought)
        skipped_from = self.offsets.admit(message.tp, message.offset)
        if skipped_from is None:
            return
        committed = await self._group_committed(message)
        if first and committed == message.offset:
            # The group's commit was not yet visible when the partition was assigned (seen
            # right after a worker restart): nothing was skipped.
            return
        if await self._expired(message, skipped_from):
            return
        generation = getattr(message, "generation_id", None)
        stop_worker(
            SkippedOffsets(
                f"the consumer skipped offsets {skipped_from} to {message.offset - 1} "
                "(Faust drops messages fetched while a rebalance completes; "
                f"{'first' if first else 'next'} message of the assignment, group committed "
                f"{committed}, Faust sought {sought}, fetched in generation {generation} "
                f"of {self.app.consumer_generation_id})"
            ),
            where(message),
        )

    async def _group_committed(self, message: Any) -> int | None:
        """The group's committed offset of the message's partition (None: none, or unknown)."""
        try:
            reader = await self.reader()
            committed = await reader.committed(TopicPartition(message.topic, message.partition))
        except KafkaError:
            return None
        return committed if isinstance(committed, int) else None

    async def _expired(self, message: Any, skipped_from: int) -> bool:
        """Did retention delete the offsets skipped before this message? Counted and logged
        once (see :class:`~streams.worker.faust_fixes.offsets.ExpiredOffsets`)."""
        part = TopicPartition(message.topic, message.partition)
        try:
            reader = await self.reader()
            log_start = (await reader.beginning_offsets([part]))[part]
        except KafkaError:
            return False
        count = self.expiry.expired(message.tp, skipped_from, message.offset, log_start)
        if count is None:
            return False
        if count:
            self.metrics.observe_expired(message.topic, count)
            log.warning(
                "%s[%d]: retention deleted %d messages (offsets %d to %d) before the group "
                "read them; resuming at offset %d, the log's start",
                message.topic,
                message.partition,
                count,
                message.offset - count,
                message.offset - 1,
                message.offset,
            )
        return True

    # -- after a rebalance ------------------------------------------------------------------

    async def resume(self) -> None:
        """Expect each guarded partition now assigned to resume where the group committed."""
        try:
            starts, floors = await self._resume_offsets()
        except KafkaError as error:
            # Unguarded until the next assignment; the progress check still sees a stall.
            log.warning("cannot read where the assigned partitions resume: %s", error)
            starts, floors = {}, {}
        self.offsets.reset(starts, floors)
        # Offsets retention deleted count as handled: nothing below the log's start is unread.
        self.frontier.resume({tp: max(at, floors.get(tp, at)) for tp, at in starts.items()})

    async def _resume_offsets(self) -> tuple[dict[Any, int], dict[Any, int]]:
        """Where each guarded partition now assigned resumes (the group's committed offset, or
        the log's start if it never committed), and where its log starts. Read with a client
        of its own (Faust's consumer is mid-rebalance)."""
        tps = [tp for tp in self.app.consumer.assignment() if tp.topic in self.guarded]
        if not tps:
            return {}, {}
        reader = await self.reader()
        starts, floors = {}, {}
        parts = [TopicPartition(*tp) for tp in tps]
        beginnings = await reader.beginning_offsets(parts)
        for tp, part in zip(tps, parts, strict=True):
            committed = await reader.committed(part)
            # Never committed: the consumer starts at the log's first message.
            starts[tp] = committed if committed is not None else beginnings[part]
            floors[tp] = beginnings[part]
        return starts, floors

    # -- timers -----------------------------------------------------------------------------

    def _paused(self) -> bool:
        return not self._ready() or bool(self.app.rebalancing) or self.outage.active

    async def check_progress(self) -> None:
        """Stop the worker if a partition it owns has unread messages and none came since the
        last look (see :mod:`streams.worker.faust_fixes.offsets`); its restart reads them."""
        tps = self.offsets.partitions()
        if not tps or self._paused():
            self.offsets.forget_looks()  # a pause is no stall
            return
        ends = await self.log_ends(tps)
        if ends is None:
            return  # the outage log says so
        stalled = self.offsets.stalled(ends)
        if stalled:
            tp, at, end = stalled[0]
            stop_worker(
                StalledPartition(
                    f"{end - at} messages unread and none handed over in {STALL_CHECK_SECONDS:g} s"
                ),
                f"{tp[0]}[{tp[1]}]@{at}",
            )

    async def observe_lag(self) -> None:
        """``orderwatch_consumer_lag_messages``: each owned input partition's unread messages."""
        inputs = self.inputs | {self.inventory}
        tps = [tp for tp in self.offsets.partitions() if tp.topic in inputs]
        if self.app.rebalancing or self.outage.active:
            return
        ends = await self.log_ends(tps) if tps else {}
        if ends is None:
            return  # the outage log says so
        lag = {}
        for tp in tps:
            read_to = self.offsets.next_offset(tp)
            if read_to is not None:
                lag[tp.topic, tp.partition] = ends[tp] - read_to
        self.metrics.set_consumer_lag(lag)

    async def check_idle(
        self,
        clocks: dict[int, PartitionClock],
        send: Callable[[int, bytes], Awaitable[None]],
    ) -> None:
        """Event time: lift each input that has nothing unread on a partition this worker owns
        to the idle slack behind the partition's leading input, when that moves the clock.

        The leading marks are taken before the log ends are read, so every event behind them
        was already written: with producers that write each topic in event-time order and run
        less than the slack apart, no event is later read behind the lifted clock. The lift
        goes through the clock topic (``send``), so the agent applies it between two batches.
        """
        if self._paused():
            return
        slack, lateness = self.settings.idle_slack, self.lateness
        leading = {
            partition: (floor, dict(clock.seen), dict(clock.floors), clock.value)
            for partition, clock in clocks.items()
            if (floor := idle_floor(clock.seen, slack)) is not None
        }
        # The inputs, and the forwarded events once they had a say.
        tps = [
            TP(name, partition)
            for partition, (_, seen, _, _) in leading.items()
            for name in sorted(self.inputs | ({self.forwarded} & seen.keys()))
        ]
        if not tps:
            return
        ends = await self.log_ends(tps)
        if ends is None:
            return  # the outage log says so
        idle: dict[int, list[TP]] = {}
        for tp in tps:
            read_to = self.offsets.next_offset(tp)
            floor, _, floors, _ = leading[tp.partition]
            lifted = max(floors.get(tp.topic, EPOCH), self._lifts_sent.get(tp, EPOCH))
            if read_to is not None and read_to >= ends[tp] and floor > lifted:
                idle.setdefault(tp.partition, []).append(tp)
        for partition, topics in idle.items():
            floor, seen, floors, value = leading[partition]
            raised = {**floors, **{tp.topic: floor for tp in topics}}
            moved = partition_clock(seen, raised, self.inputs, lateness)
            if moved is None or moved <= value:
                continue  # an input with unread messages holds the clock anyway
            for tp in topics:
                self._lifts_sent[tp] = floor
                await send(partition, wire.pack(wire.IDLE, floor, tp.topic.encode()))

    async def check_caught_up(self, leading: Mapping[int, datetime | None]) -> None:
        """Wall clock: note each owned input partition's log end, read after taking the time
        (:mod:`streams.worker.frontier`); the deadline tick applies those the agents reached.
        ``leading``: each owned partition's latest ``occurred_at``, taken before the time."""
        if self._paused():
            return
        inputs = self.inputs | {self.forwarded, self.inventory}
        tps = [tp for tp in self.app.consumer.assignment() if tp.topic in inputs]
        if not tps:
            return
        at = now_utc()
        ends = await self.log_ends(tps)
        if ends is not None:
            self.frontier.found(ends, at, leading)

    # -- the offset reader ------------------------------------------------------------------

    async def log_ends(self, tps: list[TP]) -> dict[TP, int] | None:
        """Each partition's end offset now, or None when Kafka does not answer."""
        reader = await self.reader()
        try:
            ends = await reader.end_offsets([TopicPartition(*tp) for tp in tps])
        except KafkaError:
            return None
        return {tp: ends[TopicPartition(*tp)] for tp in tps}

    async def reader(self) -> Any:
        """A client of its own for the group's committed offsets and the logs' ends (started
        once: the rebalance callback and the progress timer may both ask first)."""
        async with self._reader_lock:
            if self._reader is None:
                # Started like Faust's own clients: its failures are Kafka's (KafkaError),
                # which the error policy handles; the start checks of streams.kafka.connection are
                # for commands, and ensure_topics made them before the worker started.
                reader = AIOKafkaConsumer(
                    **client_options(self.settings),
                    group_id=self.settings.app_id,
                    enable_auto_commit=False,
                    client_id=f"{self.settings.app_id}-offsets",
                )
                try:
                    await reader.start()
                except BaseException:
                    await reader.stop()
                    raise
                self._reader = reader
        return self._reader

    async def close(self) -> None:
        async with self._reader_lock:
            reader, self._reader = self._reader, None
        if reader is not None:
            await reader.stop()
