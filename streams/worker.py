"""The Faust worker: the core driven on Kafka, partitioned, with state in changelogged tables.

How an event travels (this file, then ``core/order.py`` for the decisions):

1. An agent reads raw bytes from ``orders``, ``tracking`` and ``complaints`` (co-partitioned on
   ``order_id``) and the internal clock topic, decodes and validates them with the contract
   models; what cannot be used goes to ``dead-letter`` and the partition keeps flowing.
2. An event whose ``order_id`` belongs to another partition (mis-keyed, unkeyed) is forwarded
   to the internal ``order-events`` topic keyed by ``order_id``, so every order is processed on
   its key's partition and its table entry lives there.
3. The core decides (:func:`streams.core.order.apply`); outputs are produced to the output
   topics, internal facts to the ``aggregate-inputs`` topic keyed by their aggregate, whose
   agent (also reading ``inventory``) keeps SKUs, carriers and merchants in their own tables.
4. Deadlines: each partition keeps an index of its orders by next due time (rebuilt from the
   table when partitions are assigned). In wall-clock mode a timer fires what is due; in
   event-time mode the partition's clock follows its events (and ``advance-clock`` messages).
5. Aggregates (event time): every order and inventory partition announces its clock to every
   aggregate partition; inputs wait in the ``inbox`` table (:mod:`streams.inbox`) until the
   slowest announced clock has passed them, then go in event-time order, as in replay.

The inbox table is written only while handling a message of its own partition (its changelog
partition is that message's); the others are created with ``use_partitioner=True``: their
changelog partition is the key's partition, which is where every key is processed, so the timer
may write them too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]
from aiokafka.errors import KafkaError  # type: ignore[import-untyped]
from aiokafka.partitioner import murmur2  # type: ignore[import-untyped]
from faust.types import TP

from streams import __version__, wire
from streams.connection import client_options, faust_options
from streams.consumer import ResumingTransport
from streams.core import carrier, codec, merchant
from streams.core.aggregates import CARRIER, MERCHANT, apply_item, release
from streams.core.clock import PartitionClock, from_the_future, idle_floor, partition_clock
from streams.core.events import InventoryUpdated, OrderEvent, decode_event
from streams.core.facts import Fact, sku_subject
from streams.core.ids import rejection_id
from streams.core.outputs import (
    DeadlineBreached,
    EventRejected,
    KafkaSource,
    RecommendationIssued,
    Rejection,
)
from streams.core.partition import OrderPartition
from streams.core.policy import Policy
from streams.core.sequencer import Item, closing, position
from streams.core.serialization import raw_text, serialize
from streams.core.timeutil import EPOCH
from streams.failures import (
    SkippedOffsets,
    StalledPartition,
    is_infrastructure,
    stop_worker,
)
from streams.headers import cloudevents_source, headers
from streams.inbox import (
    FACTS,
    SKU,
    AppliedInputs,
    PartitionInbox,
    decode_item,
    inventory_source,
    order_source,
)
from streams.metrics import Metrics
from streams.offsets import OffsetGuard
from streams.outage import OutageLog
from streams.policies import load_policy
from streams.settings import Settings
from streams.tables import DurableTable, StateStore
from streams.topics import changelog_topic
from streams.web import OrderwatchWeb

__all__ = ["OrderwatchWorker", "describe_startup", "partition_for", "run"]

log = logging.getLogger("orderwatch.worker")

S = TypeVar("S")
STALL_CHECK_SECONDS = 20.0
#: Seconds between two readings of the input partitions' log ends for the consumer lag.
LAG_CHECK_SECONDS = 5.0
#: How often (seconds) the event-time worker looks for inputs with nothing unread.
IDLE_CHECK_SECONDS = 1.0
_YEAR_SECONDS = 365 * 24 * 3600.0


def partition_for(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2) gives ``key``."""
    return partition_for_bytes(key.encode("utf-8"), partitions)


def partition_for_bytes(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions  # type: ignore[no-any-return]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _key_for_partition(prefix: str, partition: int, partitions: int) -> str:
    """A key the default partitioner sends to ``partition`` (to keep per-partition records)."""
    for attempt in range(100_000):
        key = f"{prefix}{partition}-{attempt}"
        if partition_for(key, partitions) == partition:
            return key
    raise RuntimeError(f"no key found for partition {partition}")  # pragma: no cover


class OrderwatchWorker:
    """Builds the Faust app (topics, tables, agents, timer, web views) from :class:`Settings`."""

    def __init__(self, settings: Settings, *, policy: Policy | None = None) -> None:
        self.settings = settings
        self.policy = policy or load_policy(settings.policy)
        self.metrics = Metrics()
        self.metrics.set_build_info(self.policy.ref)
        self.event_time = settings.clock == "event"
        self.partitions = settings.partitions
        # The orders of each partition this worker owns, their states in the orders table.
        self._partitions: dict[int, OrderPartition] = {}
        self._clocks: dict[int, PartitionClock] = {}
        self._inventory_clocks: dict[int, PartitionClock] = {}
        self._unannounced: dict[str, datetime] = {}
        self._inboxes: dict[int, PartitionInbox] = {}
        # Idle-input lifts sent to the clock topic, not to be sent again (see _check_idle).
        self._lifts_sent: dict[TP, datetime] = {}
        self._applied = AppliedInputs()
        self._handling: tuple[str, int, int] | None = None
        self._ready = False
        self.outage = OutageLog()
        self._ce_source = cloudevents_source(settings.app_id)
        self.app = self._make_app()
        self._offsets: OffsetGuard[TP] = OffsetGuard()
        self._offset_reader: AIOKafkaConsumer | None = None
        self._offset_reader_lock = asyncio.Lock()
        self._declare()
        for role in ("orders", "tracking", "complaints", "inventory"):
            self.metrics.declare_topic(settings.topic(role))
        self.metrics.track_clock(self.clock_seconds)
        self.metrics.track_ready(self.is_ready)

    # -- wiring ---------------------------------------------------------------------------

    def _make_app(self) -> faust.App:
        s = self.settings
        app = faust.App(
            s.app_id,
            broker=s.broker_urls(),
            store=s.store,
            datadir=str(s.data_dir),
            topic_partitions=s.partitions,
            topic_replication_factor=s.replication_factor,
            web_host=s.web_host,
            web_bind=s.web_host,
            web_port=s.web_port,
            web_enabled=True,
            processing_guarantee=s.processing_guarantee,
            broker_session_timeout=s.session_timeout,
            broker_heartbeat_interval=s.heartbeat_interval,
            key_serializer="raw",
            value_serializer="raw",
            autodiscover=False,
            topic_disable_leader=True,
            consumer_auto_offset_reset="earliest",
            # Faust's own stall check also watches the tables' changelog partitions, which only
            # recovery reads, and logs an error for each every few seconds after 5 minutes; the
            # worker watches the partitions it reads itself (streams.offsets).
            stream_processing_timeout=_YEAR_SECONDS,
            # Faust lets un-prefixed variables (BROKER_URL, WEB_PORT, ...) override what it is
            # given; an empty environment keeps ORDERWATCH_ settings the only source.
            env={},
            # The security protocol, SASL login and TLS context of every client Faust makes.
            **faust_options(s),
        )
        # Faust's consumer, but one that also resumes never-committed partitions at their start.
        app.transport = ResumingTransport(app.conf.broker_consumer, app)
        # Faust's web server without Faust's own views.
        app.web = OrderwatchWeb(app)
        return app

    def _topic(self, name: str, *, internal: bool = False) -> faust.TopicT:
        return self.app.topic(
            name,
            partitions=self.partitions,
            replicas=self.settings.replication_factor,
            key_serializer="raw",
            value_serializer="raw",
            internal=internal,
        )

    def _table(self, name: str, *, by_key: bool = True) -> DurableTable:
        # Keys and values are raw bytes: a key's changelog partition is then murmur2 of the same
        # bytes as the input topic's key, i.e. the partition that processes it.
        changelog = self.app.topic(
            changelog_topic(self.settings, name),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=self.partitions,
            replicas=self.settings.replication_factor,
            # Faust's default changelog is written with acks=0 and also deletes by age: state
            # must be acknowledged, and kept (compacted) for as long as its key lives.
            acks=True,
            compacting=True,
            deleting=False,
            internal=True,
            maxsize=131_072,
            allow_empty=True,
        )
        table = self.app.Table(
            name,
            partitions=self.partitions,
            key_type=bytes,  # Faust derives the changelog's "raw" serializers from these types
            value_type=bytes,
            use_partitioner=by_key,
            changelog_topic=changelog,
        )
        if by_key:
            return DurableTable(table, lambda key: partition_for_bytes(key, self.partitions))
        # Inbox keys start with their partition: "<partition>/...".
        return DurableTable(table, lambda key: int(key.split(b"/", 1)[0]))

    def _declare(self) -> None:
        s = self.settings
        self.inputs = {
            role: self._topic(s.topic(role)) for role in ("orders", "tracking", "complaints")
        }
        self.inventory = self._topic(s.topic("inventory"))
        self.out_breaches = self._topic(s.topic("breaches"))
        self.out_recommendations = self._topic(s.topic("recommendations"))
        self.out_dead_letter = self._topic(s.topic("dead_letter"))
        self.order_events = self._topic(s.internal_topic("order-events"), internal=True)
        self._forwarded_topic = self.order_events.get_topic_name()
        self._input_names = frozenset(t.get_topic_name() for t in self.inputs.values())
        self.clock_topic = self._topic(s.internal_topic("clock"), internal=True)
        self.aggregate_inputs = self._topic(s.internal_topic("aggregate-inputs"), internal=True)
        self.orders = StateStore(self._table("orders"), codec.encode_order, codec.decode_order)
        # Written at most once a tick (and at advance-clock): a clock restored a little behind
        # only re-fires nothing (what fired is in the orders' state) and announces less.
        self.clocks = StateStore(self._table("clocks"), _pack_clock, _unpack_clock)
        self.skus = StateStore(self._table("skus"), codec.encode_sku, codec.decode_sku)
        self.carriers = StateStore(
            self._table("carriers"), codec.encode_carrier, codec.decode_carrier
        )
        self.merchants = StateStore(
            self._table("merchants"), codec.encode_merchant, codec.decode_merchant
        )
        # Written only while handling a message of the partition it belongs to (keys say which).
        self.inbox_table = self._table("inbox", by_key=False)
        self._clock_keys = [
            _key_for_partition("clock-", p, self.partitions) for p in range(self.partitions)
        ]
        self._inventory_clock_keys = [
            _key_for_partition("inventory-clock-", p, self.partitions)
            for p in range(self.partitions)
        ]

        order_channel = self.app.topic(
            *(
                t.get_topic_name()
                for t in (*self.inputs.values(), self.order_events, self.clock_topic)
            ),
            key_serializer="raw",
            value_serializer="raw",
        )
        # Topics this worker writes in transactions (exactly_once) have commit markers between
        # offsets: their jumps are normal, so only the topics producers write are guarded then.
        inputs = [*self.inputs.values(), self.inventory]
        internal = [self.order_events, self.clock_topic, self.aggregate_inputs]
        guarded = inputs if s.processing_guarantee == "exactly_once" else [*inputs, *internal]
        self._guarded_topics = {topic.get_topic_name() for topic in guarded}
        self.app.agent(order_channel, name="orderwatch.orders")(self._order_agent)
        aggregate_channel = self.app.topic(
            self.inventory.get_topic_name(),
            self.aggregate_inputs.get_topic_name(),
            key_serializer="raw",
            value_serializer="raw",
        )
        self.app.agent(aggregate_channel, name="orderwatch.aggregates")(self._aggregate_agent)
        if self.event_time:
            self.app.timer(s.tick_interval, name="orderwatch.watermarks")(
                _stopping_on_kafka_failure(self._announce, "the watermark timer")
            )
            self.app.timer(IDLE_CHECK_SECONDS, name="orderwatch.idle-inputs")(
                _stopping_on_kafka_failure(self._check_idle, "the idle-input timer")
            )
        else:
            self.app.timer(s.tick_interval, name="orderwatch.deadlines")(
                _stopping_on_kafka_failure(self._tick, "the deadline timer")
            )
        self.app.timer(1.0, name="orderwatch.outage")(self._check_outage)
        self.app.timer(STALL_CHECK_SECONDS, name="orderwatch.progress")(self._check_progress)
        self.app.timer(LAG_CHECK_SECONDS, name="orderwatch.consumer-lag")(self._observe_lag)
        self.app.on_partitions_assigned.connect(self._on_assigned)  # type: ignore[arg-type]
        self._follow_commits()
        self.app.on_rebalance_complete.connect(self._on_rebalance_complete)  # type: ignore[arg-type]
        self.app.on_before_shutdown.connect(self._on_shutdown)  # type: ignore[arg-type]
        self.orders.table.table.on_recover(self._on_orders_recovered)
        self.app.page("/health")(self._health_view)  # type: ignore[arg-type]
        self.app.page("/ready")(self._ready_view)  # type: ignore[arg-type]
        self.app.page("/metrics")(self._metrics_view)  # type: ignore[arg-type]

    # -- web ------------------------------------------------------------------------------

    # Faust stores these bound methods as the views' GET handlers: they receive the request only.

    async def _health_view(self, request: Any) -> Any:
        """The process is up."""
        return self.app.web.json({"status": "ok", "version": __version__})

    def is_ready(self) -> bool:
        """Partitions are assigned, the tables recovered, and Kafka is reachable."""
        return bool(
            self._ready
            and not self.app.rebalancing
            and not self.app.in_recovery
            and not self.outage.active
        )

    def clock_seconds(self) -> float:
        """The processor's clock for the metrics: the time (wall clock), or the earliest clock
        of the owned partitions whose clock has started (event time; NaN while none has)."""
        if not self.event_time:
            return time.time()
        started = [c.value for c in self._clocks.values() if c.value > EPOCH]
        return min(started).timestamp() if started else math.nan

    async def _ready_view(self, request: Any) -> Any:
        ready = self.is_ready()
        return self.app.web.json({"ready": ready}, status=200 if ready else 503)

    async def _metrics_view(self, request: Any) -> Any:
        """Prometheus exposition of this worker's own registry."""
        # aiohttp refuses a charset inside content_type, so the full type goes in the header.
        return self.app.web.bytes(
            self.metrics.exposition(), headers={"Content-Type": self.metrics.content_type}
        )

    async def _check_outage(self) -> None:
        self.outage.check()

    async def _check_idle(self) -> None:
        """Event time: lift each input that has nothing unread on a partition this worker owns
        to the idle slack behind the partition's leading input, when that moves the clock.

        The leading marks are taken before the log ends are read, so every event behind them
        was already written: with producers that write each topic in event-time order and run
        less than the slack apart, no event is later read behind the lifted clock. The lift
        goes through the clock topic, so the agent applies it between two events.
        """
        if not self._ready or self.app.rebalancing or self.outage.active:
            return
        slack, lateness = self.settings.idle_slack, self.policy.allowed_lateness
        leading = {
            partition: (floor, dict(clock.seen), dict(clock.floors), clock.value)
            for partition, clock in self._clocks.items()
            if (floor := idle_floor(clock.seen, slack)) is not None
        }
        # The inputs, and the forwarded events once they had a say.
        tps = [
            TP(name, partition)
            for partition, (_, seen, _, _) in leading.items()
            for name in sorted(self._input_names | ({self._forwarded_topic} & seen.keys()))
        ]
        if not tps:
            return
        ends = await self._log_ends(tps)
        if ends is None:
            return  # the outage log says so
        idle: dict[int, list[TP]] = {}
        for tp in tps:
            read_to = self._offsets.next_offset(tp)
            floor, _, floors, _ = leading[tp.partition]
            lifted = max(floors.get(tp.topic, EPOCH), self._lifts_sent.get(tp, EPOCH))
            if read_to is not None and read_to >= ends[tp] and floor > lifted:
                idle.setdefault(tp.partition, []).append(tp)
        for partition, topics in idle.items():
            floor, seen, floors, value = leading[partition]
            raised = {**floors, **{tp.topic: floor for tp in topics}}
            moved = partition_clock(seen, raised, self._input_names, lateness)
            if moved is None or moved <= value:
                continue  # an input with unread messages holds the clock anyway
            for tp in topics:
                self._lifts_sent[tp] = floor
                payload = wire.pack(wire.IDLE, floor, tp.topic.encode())
                await self.clock_topic.send(value=payload, partition=partition)

    async def _log_ends(self, tps: list[TP]) -> dict[TP, int] | None:
        """Each partition's end offset now, or None when Kafka does not answer."""
        reader = await self._offset_reader_started()
        try:
            ends = await reader.end_offsets([TopicPartition(*tp) for tp in tps])
        except KafkaError:
            return None
        return {tp: ends[TopicPartition(*tp)] for tp in tps}

    async def _check_progress(self) -> None:
        """Stop the worker if a partition it owns has unread messages and none came since the
        last look (see :mod:`streams.offsets`); its restart reads them."""
        tps = self._offsets.partitions()
        if not tps or not self._ready or self.app.rebalancing or self.outage.active:
            self._offsets.forget_looks()  # a pause is no stall
            return
        ends = await self._log_ends(tps)
        if ends is None:
            return  # the outage log says so
        stalled = self._offsets.stalled(ends)
        if stalled:
            tp, at, end = stalled[0]
            stop_worker(
                StalledPartition(
                    f"{end - at} messages unread and none handed over in {STALL_CHECK_SECONDS:g} s"
                ),
                f"{tp[0]}[{tp[1]}]@{at}",
            )

    async def _observe_lag(self) -> None:
        """``orderwatch_consumer_lag_messages``: each owned input partition's unread messages."""
        inputs = self._input_names | {self.inventory.get_topic_name()}
        tps = [tp for tp in self._offsets.partitions() if tp.topic in inputs]
        if self.app.rebalancing or self.outage.active:
            return
        ends = await self._log_ends(tps) if tps else {}
        if ends is None:
            return  # the outage log says so
        lag = {}
        for tp in tps:
            read_to = self._offsets.next_offset(tp)
            if read_to is not None:
                lag[tp.topic, tp.partition] = ends[tp] - read_to
        self.metrics.set_consumer_lag(lag)

    # -- partitions -----------------------------------------------------------------------

    def _owned(self) -> set[int]:
        topic = self.inputs["orders"].get_topic_name()
        return {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == topic}

    async def _on_assigned(self, sender: Any, assigned: Iterable[Any], **_: Any) -> None:
        self._ready = False
        # What the last message changed is written before the caches go (its inputs already
        # left the inbox table).
        await self._flush_states()
        for store in self._stores():
            store.forget()
        self._inboxes = {}
        self._lifts_sent = {}
        self._applied.clear()

    async def _on_rebalance_complete(self, sender: Any, **_: Any) -> None:
        await self._rebuild(fire=False)
        try:
            starts = await self._resume_offsets()
        except KafkaError as error:
            # Unguarded until the next assignment; the progress check still sees a stall.
            log.warning("cannot read where the assigned partitions resume: %s", error)
            starts = {}
        self._offsets.reset(starts)

    async def _resume_offsets(self) -> dict[Any, int]:
        """Where each guarded partition now assigned resumes: the group's committed offset, or
        the log's start if it is empty. Read with a client of its own (Faust's consumer is
        mid-rebalance)."""
        tps = [tp for tp in self.app.consumer.assignment() if tp.topic in self._guarded_topics]
        if not tps:
            return {}
        reader = await self._offset_reader_started()
        starts = {}
        parts = [TopicPartition(*tp) for tp in tps]
        beginnings = await reader.beginning_offsets(parts)
        for tp, part in zip(tps, parts, strict=True):
            committed = await reader.committed(part)
            # Never committed: the consumer starts at the log's first message.
            starts[tp] = committed if committed is not None else beginnings[part]
        return starts

    async def _on_orders_recovered(self) -> None:
        # Tables may finish recovering from their changelogs after the rebalance completed:
        # rebuild again, now with every recovered order, and only now fire what is due.
        await self._rebuild(fire=True)

    async def _rebuild(self, *, fire: bool) -> None:
        """Rebuild the deadline index and clocks of the partitions this worker now owns.

        With ``fire`` (tables recovered), whatever the restored event-time clocks have already
        reached fires at once: an ``advance-clock`` handled before a partition moved here is
        not lost.
        """
        owned = self._owned()
        self._partitions = {p: OrderPartition(self.policy, self.orders) for p in owned}
        for key in self.orders.keys():  # noqa: SIM118 - a method of StateStore, not a dict
            owner = self._partitions.get(partition_for(key, self.partitions))
            if owner is not None:
                owner.restore([key])
        self._rebuild_inboxes(owned)
        self._clocks = {}
        self._inventory_clocks = {}
        if self.event_time:
            for partition in owned:
                inventory = self.clocks.get(self._inventory_clock_keys[partition])
                if inventory is not None:
                    self._inventory_clocks[partition] = inventory
                stored = self.clocks.get(self._clock_keys[partition])
                if stored is not None:
                    self._clocks[partition] = stored
                    if fire:
                        await self._fire_due(partition, stored.value)
        await self._flush_states()
        self.metrics.set_assigned_partitions(len(owned))
        self.metrics.set_open_orders(self._open_orders())
        self._ready = True
        # Logged once per rebalance: when the tables have recovered.
        log.log(
            logging.INFO if fire else logging.DEBUG,
            "ready: %d partitions, %d open orders",
            len(owned),
            self._open_orders(),
        )

    def _open_orders(self) -> int:
        """Orders with a deadline ahead, on the partitions this worker owns."""
        return sum(len(orders) for orders in self._partitions.values())

    # -- the order agent ------------------------------------------------------------------

    async def _order_agent(self, stream: Any) -> None:
        clock_topic = self.clock_topic.get_topic_name()
        async for event in stream.events():
            message = event.message
            await self._check_order(message)
            started = time.perf_counter()
            try:
                if message.topic == clock_topic:
                    await self._clock_message(message.partition, message.value)
                else:
                    await self._order_message(message)
                # Before the message is acknowledged: its state reaches the producer first.
                await self.orders.flush()
            except Exception as error:  # see streams.failures: the one error policy
                if is_infrastructure(error):
                    stop_worker(error, _where(message))
                self.orders.forget()
                log.exception(
                    "failed to process %s[%d]@%d", message.topic, message.partition, message.offset
                )
                await self._reject(message, PROCESSING_FAILED)
            self.metrics.observe_processing(time.perf_counter() - started)

    async def _offset_reader_started(self) -> Any:
        """A client of its own for the group's committed offsets and the logs' ends (started
        once: the rebalance callback and the progress timer may both ask first)."""
        async with self._offset_reader_lock:
            if self._offset_reader is None:
                # Started like Faust's own clients: its failures are Kafka's (KafkaError),
                # which the error policy handles; the start checks of streams.connection are
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
                self._offset_reader = reader
        return self._offset_reader

    async def _on_shutdown(self, sender: Any, **_: Any) -> None:
        log.info("stopping")
        await self._close_offset_reader()

    async def _close_offset_reader(self) -> None:
        async with self._offset_reader_lock:
            reader, self._offset_reader = self._offset_reader, None
        if reader is not None:
            await reader.stop()

    async def _check_order(self, message: Any) -> None:
        """Stop the worker if the consumer skipped offsets before this message (see
        :mod:`streams.offsets`); the restart reads them again."""
        if message.topic not in self._guarded_topics:
            return
        first = not self._offsets.knows(message.tp)
        if first:
            # Where Faust's consumer sought to, once it has: that is where it must resume.
            sought = getattr(self.app.consumer, "_committed_offset", {}).get(message.tp)
            if isinstance(sought, int):
                self._offsets.expect(message.tp, sought)
        skipped_from = self._offsets.admit(message.tp, message.offset)
        if skipped_from is None:
            return
        if first and await self._committed_here(message):
            # The group's commit was not yet visible when the partition was assigned (seen
            # right after a worker restart): nothing was skipped.
            return
        stop_worker(
            SkippedOffsets(
                f"the consumer skipped offsets {skipped_from} to {message.offset - 1} "
                "(Faust drops messages fetched while a rebalance completes)"
            ),
            _where(message),
        )

    async def _committed_here(self, message: Any) -> bool:
        """Has the group committed exactly up to this message (a start read too early)?"""
        try:
            reader = await self._offset_reader_started()
            committed = await reader.committed(TopicPartition(message.topic, message.partition))
        except KafkaError:
            return False
        return bool(committed == message.offset)

    async def _order_message(self, message: Any) -> None:
        decoded = decode_event(message.value or b"")
        if isinstance(decoded, Rejection):
            await self._reject(message, decoded)
            return
        if isinstance(decoded, InventoryUpdated):
            # Inventory belongs on its own topic; accept it here all the same.
            await self._forward_inventory(decoded, message.value, None)
            return
        if message.topic != self._forwarded_topic:  # counted once, where it first arrived
            self.metrics.observe_event(message.topic, decoded.type, decoded.occurred_at)
        partition = partition_for(decoded.order_id, self.partitions)
        if partition != message.partition:
            await self.order_events.send(key=decoded.order_id.encode(), value=message.value)
            return
        latest = self._latest(self._clocks.get(partition))
        if rejection := from_the_future(decoded.occurred_at, latest, self.policy):
            await self._reject(message, rejection)
            return
        await self._apply(partition, decoded, message.topic)

    def _latest(self, clock: PartitionClock | None) -> datetime | None:
        """What an event may not be far ahead of: the latest event its partition accepted
        (event time), or the time (wall clock)."""
        if not self.event_time:
            return _utc_now()
        return max(clock.seen.values()) if clock is not None and clock.seen else None

    async def _apply(self, partition: int, event: OrderEvent, topic: str) -> None:
        now = self._now(partition, topic, event.occurred_at)
        if self.event_time:
            await self._fire_due(partition, now)
        step = self._orders_of(partition).apply(event, now)
        if step.duplicate:
            self.metrics.observe_duplicate(topic)
        else:
            for deadline in step.late:
                self.metrics.observe_late_event(deadline)
            await self._emit(step.outputs, step.facts)
            self.metrics.set_open_orders(self._open_orders())
        if self.event_time and now > EPOCH:
            # Only now: the facts this step sent (some at times up to ``now``) are on their way.
            self._unannounced[order_source(partition)] = now

    def _orders_of(self, partition: int) -> OrderPartition:
        owner = self._partitions.get(partition)
        if owner is None:
            owner = self._partitions[partition] = OrderPartition(self.policy, self.orders)
        return owner

    def _now(self, partition: int, topic: str, occurred_at: datetime) -> datetime:
        """The partition's clock after seeing this event (wall-clock mode: the system time)."""
        if not self.event_time:
            return _utc_now()
        clock = self._clocks.setdefault(partition, PartitionClock())
        if clock.observe(topic, occurred_at, self.policy.allowed_lateness, self._input_names):
            self.clocks.put(self._clock_keys[partition], clock)
        return clock.value

    async def _clock_message(self, partition: int, value: bytes | None) -> None:
        """A message of the clock topic: ``advance-clock``, or an input found idle."""
        kind, moment, payload = wire.unpack(value or b"")
        if not self.event_time:
            # The time moves a wall clock, nothing else: an advance would fire early.
            log.warning("ignored a clock message: this worker runs on the wall clock")
            return
        if kind == wire.IDLE:
            await self._lift_partition(partition, payload.decode(), moment)
        else:
            await self._advance_partition(partition, moment)

    async def _lift_partition(self, partition: int, topic: str, floor: datetime) -> None:
        """``topic`` had nothing unread on this partition while the leading input was at
        ``floor`` + the idle slack: it holds the clock no further back (see _check_idle)."""
        clock = self._clocks.setdefault(partition, PartitionClock())
        if clock.lift(topic, floor, self.policy.allowed_lateness, self._input_names):
            self.clocks.put(self._clock_keys[partition], clock)
            await self._fire_due(partition, clock.value)
            self._unannounced[order_source(partition)] = clock.value

    async def _advance_partition(self, partition: int, target: datetime) -> None:
        """An ``advance-clock`` message: move this partition's clock forward and fire."""
        clock = self._clocks.setdefault(partition, PartitionClock())
        if target > clock.value:
            clock.value = target
            self.clocks.put(self._clock_keys[partition], clock)
        await self._fire_due(partition, clock.value)
        # The moment itself is closed too, for this partition's order and inventory sources.
        inventory = self._inventory_clocks.setdefault(partition, PartitionClock())
        if target > inventory.value:
            inventory.value = target
            self.clocks.put(self._inventory_clock_keys[partition], inventory)
        self._unannounced[order_source(partition)] = closing(clock.value)
        self._unannounced[inventory_source(partition)] = closing(inventory.value)
        await self._announce()

    async def _fire_due(self, partition: int, now: datetime) -> None:
        owner = self._partitions.get(partition)
        if owner is None:
            return
        for step in owner.fire(now):
            await self._emit(step.outputs, step.facts)
        self.metrics.set_open_orders(self._open_orders())

    async def _tick(self) -> None:
        """Wall-clock mode: fire what is due, and the aggregates' time-driven checks."""
        if not self._ready or self.app.rebalancing:
            return
        now = _utc_now()
        for partition in list(self._partitions):
            await self._fire_due(partition, now)
        for partition in list(self._inboxes):
            await self._release(partition, FACTS, now)
        await self._flush_states()

    # -- aggregates -----------------------------------------------------------------------

    async def _announce(self) -> None:
        """Event-time mode: tell every aggregate partition how far each source's clock got.

        Runs on a timer (and at ``advance-clock``), so a busy partition announces a few times a
        second rather than once per event. Every fact a source sent before is ahead of it on
        the topic, so the watermark never overtakes an item. The partition clocks are written
        to their table here too.
        """
        await self.clocks.flush()
        pending, self._unannounced = self._unannounced, {}
        for source, watermark in pending.items():
            value = wire.pack(wire.WATERMARK, watermark, source.encode())
            for partition in range(self.partitions):
                await self.aggregate_inputs.send(value=value, partition=partition)

    def _rebuild_inboxes(self, owned: set[int]) -> None:
        """Waiting items and watermarks from the inbox table; checks from the aggregates."""
        self._inboxes = {p: PartitionInbox(p, self.partitions) for p in owned}
        if self.event_time:
            table = self.inbox_table
            keys = list(table.keys())
            for inbox in self._inboxes.values():
                inbox.restore(table, keys)
        self._schedule_checks(CARRIER, self.carriers, carrier.next_check)
        self._schedule_checks(MERCHANT, self.merchants, merchant.next_check)

    def _schedule_checks(
        self, kind: str, store: StateStore[S], next_check: Callable[[S, Policy], datetime | None]
    ) -> None:
        for key in store.keys():  # noqa: SIM118 - a method of StateStore, not a dict
            owner = self._inboxes.get(partition_for(key, self.partitions))
            state = store.get(key) if owner is not None else None
            if owner is not None and state is not None:
                owner.sequencers[FACTS].schedule(kind, key, next_check(state, self.policy))

    def _follow_commits(self) -> None:
        """Tell :class:`AppliedInputs` which offsets Faust has committed."""
        tables = self.app.tables
        commit = tables.on_commit

        def on_commit(offsets: Any) -> None:
            commit(offsets)
            for tp, offset in offsets.items():
                self._applied.committed(tp.topic, tp.partition, offset)

        tables.on_commit = on_commit  # type: ignore[method-assign]

    async def _flush_states(self) -> None:
        """Every state changed and not yet written (outside an agent: timers, rebalances)."""
        await self.orders.flush()
        await self.clocks.flush()
        await self._flush_aggregates()

    def _stores(self) -> tuple[StateStore[Any], ...]:
        return (self.orders, self.clocks, self.skus, self.carriers, self.merchants)

    async def _flush_aggregates(self) -> None:
        for store in (self.skus, self.carriers, self.merchants):
            await store.flush()
        await self.inbox_table.flush()
        sequencers = [s for inbox in self._inboxes.values() for s in inbox.sequencers.values()]
        self.metrics.set_aggregate_inputs_waiting(
            sum(len(s) for s in sequencers),
            min((at for s in sequencers if (at := s.oldest()) is not None), default=None),
        )

    def _inbox(self, partition: int) -> PartitionInbox:
        inbox = self._inboxes.get(partition)
        if inbox is None:
            inbox = self._inboxes[partition] = PartitionInbox(partition, self.partitions)
        return inbox

    async def _aggregate_agent(self, stream: Any) -> None:
        """Stock levels and the aggregate-inputs topic: facts, forwarded stock, watermarks."""
        inventory_topic = self.inventory.get_topic_name()
        async for event in stream.events():
            message = event.message
            await self._check_order(message)
            try:
                self._handling = (message.topic, message.partition, message.offset)
                for key in self._applied.deletable(message.partition):
                    self.inbox_table.pop(key, None)
                if message.topic == inventory_topic:
                    await self._inventory_message(message)
                else:
                    await self._aggregate_message(message)
                await self._flush_aggregates()
            except Exception as error:  # see streams.failures: the one error policy
                if is_infrastructure(error):
                    stop_worker(error, _where(message))
                for store in (self.skus, self.carriers, self.merchants):
                    store.forget()
                log.exception(
                    "failed to process %s[%d]@%d", message.topic, message.partition, message.offset
                )
                await self._reject(message, PROCESSING_FAILED)

    async def _aggregate_message(self, message: Any) -> None:
        envelope = message.value or b""
        kind, moment, payload = wire.unpack(envelope)
        partition = message.partition
        if kind == wire.WATERMARK:
            inbox = self._inbox(partition)
            if inbox.observe(payload.decode("utf-8"), moment, self.inbox_table):
                await self._release(partition, SKU)
                await self._release(partition, FACTS)
            return
        await self._take(partition, decode_item(envelope), envelope)

    async def _inventory_message(self, message: Any) -> None:
        decoded = decode_event(message.value or b"")
        if isinstance(decoded, Rejection):
            await self._reject(message, decoded)
            return
        if not isinstance(decoded, InventoryUpdated):
            await self._reject(
                message,
                Rejection(
                    "wrong_topic",
                    f"The inventory topic carries only inventory.updated events, not "
                    f"{decoded.type}; send order events to the orders, tracking or complaints "
                    "topic.",
                ),
            )
            return
        partition = message.partition
        latest = self._latest(self._inventory_clocks.get(partition))
        if rejection := from_the_future(decoded.occurred_at, latest, self.policy):
            await self._reject(message, rejection)
            return
        self.metrics.observe_event(message.topic, decoded.type, decoded.occurred_at)
        if self.event_time:
            clock = self._inventory_clocks.setdefault(partition, PartitionClock())
            if clock.observe(
                "inventory", decoded.occurred_at, self.policy.allowed_lateness, ("inventory",)
            ):
                self.clocks.put(self._inventory_clock_keys[partition], clock)
                self._unannounced[inventory_source(partition)] = clock.value
        await self._forward_inventory(decoded, message.value, partition)

    async def _forward_inventory(
        self, event: InventoryUpdated, raw: bytes, partition: int | None
    ) -> None:
        """Take a stock level here when it arrived on its key's partition, else forward it."""
        envelope = wire.pack(wire.INVENTORY, event.occurred_at, raw)
        key = sku_subject(event.merchant_id, event.sku)
        if partition is not None and partition_for(key, self.partitions) == partition:
            await self._take(partition, event, envelope)
        else:
            await self.aggregate_inputs.send(key=key.encode(), value=envelope)

    async def _take(self, partition: int, item: Item, envelope: bytes) -> None:
        """Event time: queue the item for its watermark. Wall clock: apply it now."""
        if self.event_time:
            group = self._inbox(partition).add(item, envelope, self.inbox_table)
            await self._release(partition, group)
            return
        outputs, scheduled = apply_item(self, item, position(item)[0], self.policy)
        if scheduled is not None:
            self._inbox(partition).sequencers[FACTS].schedule(*scheduled)
        await self._emit(outputs, [])

    async def _release(self, partition: int, group: str, until: datetime | None = None) -> None:
        """Apply, in event-time order, what the watermark (or ``until``) has passed."""
        inbox = self._inbox(partition)
        boundary = until if until is not None else inbox.boundary(group)
        if boundary is None:
            return
        applied = release(inbox.sequencers[group], boundary, self, self.policy, _inbox_item)
        for payload, outputs in applied:
            if payload is not None and payload[0] is not None:
                assert self._handling is not None  # only agents release with keys
                self._applied.note(*self._handling, payload[0])
            await self._emit(outputs, [])

    # -- output ---------------------------------------------------------------------------

    async def _emit(
        self,
        outputs: Sequence[DeadlineBreached | RecommendationIssued],
        facts: Sequence[Fact],
    ) -> None:
        for output in outputs:
            value = serialize(output).encode("utf-8")
            attributes = headers(output, self._ce_source)
            if isinstance(output, DeadlineBreached):
                await self.out_breaches.send(
                    key=output.order_id.encode(), value=value, headers=attributes
                )
            else:
                await self.out_recommendations.send(
                    key=output.subject.encode(), value=value, headers=attributes
                )
        if outputs:
            self.metrics.observe_outputs(outputs)
        for fact in facts:
            await self.aggregate_inputs.send(
                key=fact.subject.encode(),
                value=wire.pack(wire.FACT, fact.at, codec.encode_fact(fact)),
            )

    async def _reject(self, message: Any, rejection: Rejection) -> None:
        raw = message.value or b""
        key = message.key.decode("utf-8", errors="replace") if message.key is not None else None
        source = f"{message.topic}:{message.partition}:{message.offset}"
        rejected = EventRejected(
            rejection_id=rejection_id(source, raw),
            source=KafkaSource(
                topic=message.topic, partition=message.partition, offset=message.offset
            ),
            key=key,
            raw=raw_text(raw),
            error=rejection.error,
            rejected_at=_utc_now(),
            reason=rejection.reason,
        )
        self.metrics.observe_rejection(message.topic, rejection.reason)
        await self.out_dead_letter.send(
            key=message.key,
            value=serialize(rejected).encode("utf-8"),
            headers=headers(rejected, self._ce_source),
        )


PROCESSING_FAILED = Rejection(
    "processing_failed",
    "orderwatch failed to process this message; see the worker log for the error",
)


def _stopping_on_kafka_failure(
    timer: Callable[[], Awaitable[None]], what: str
) -> Callable[[], Awaitable[None]]:
    """A timer body under the error policy: Kafka failing stops the worker (its other errors
    are Faust's to log)."""

    async def run() -> None:
        try:
            await timer()
        except Exception as error:
            if is_infrastructure(error):
                stop_worker(error, what)
            raise

    return run


def _inbox_item(payload: tuple[bytes | None, Item]) -> Item:
    """The item of an inbox entry (its inbox key, None when not stored, comes first)."""
    return payload[1]


def _where(message: Any) -> str:
    return f"{message.topic}[{message.partition}]@{message.offset}"


def _pack_clock(clock: PartitionClock) -> bytes:
    return json.dumps(
        {"value": wire.to_micros(clock.value)}
        | {"seen": {topic: wire.to_micros(at) for topic, at in clock.seen.items()}}
    ).encode()


def _unpack_clock(data: bytes) -> PartitionClock:
    stored = json.loads(data)
    seen = {topic: wire.from_micros(at) for topic, at in stored["seen"].items()}
    return PartitionClock(wire.from_micros(stored["value"]), seen)


def describe_startup(worker: OrderwatchWorker) -> str:
    """What the worker logs when it starts: the settings that matter and the policy."""
    s = worker.settings
    security: str = s.security_protocol
    if s.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        security += f" ({s.sasl_mechanism} as {s.sasl_username})"
    return (
        f"orderwatch {__version__}: app {s.app_id}, broker {s.broker} {security}, "
        f"{s.partitions} partitions, "
        f"{s.clock}-clock, policy {worker.policy.ref.name} {worker.policy.ref.version}, "
        f"web http://{s.web_host}:{s.web_port}/"
    )


def run(worker: OrderwatchWorker) -> None:
    """Run the Faust worker until it is stopped (logging is :func:`streams.logs`'s, set up
    before: Faust leaves it alone)."""
    from faust.worker import Worker

    class _Worker(Worker):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            # Faust's terminal spinner animates on every log record; a service needs none.
            self.spinner = None

    level = worker.settings.log_level.upper()
    _Worker(
        worker.app, loglevel=level, quiet=True, override_logging=False
    ).execute_from_commandline()
