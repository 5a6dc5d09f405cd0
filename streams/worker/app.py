"""The Faust worker: the core's partition processors driven on Kafka, state in changelogged
tables.

How an event travels (this package, then ``core/processor.py`` for a partition's logic):

1. The order agent reads raw bytes from ``orders``, ``tracking`` and ``complaints``
   (co-partitioned on ``order_id``) and the internal clock topic in batches
   (:mod:`streams.worker.agents`); each message becomes a read for its partition's
   :class:`~streams.core.processor.PartitionProcessor`. What cannot be used goes to
   ``dead-letter`` and the partition keeps flowing.
2. An event whose ``order_id`` belongs to another partition (mis-keyed, unkeyed) is forwarded
   to the internal ``order-events`` topic keyed by ``order_id``, so every order is processed on
   its key's partition and its table entry lives there.
3. The processor decides; outputs are produced to the output topics, a batch's facts to the
   ``aggregate-inputs`` topic, one message per aggregate partition
   (:mod:`streams.worker.publish`), whose agent (also reading ``inventory``) keeps SKUs,
   carriers and merchants in their own tables. Outputs, then state, then the commit: how a
   batch is acknowledged is :mod:`streams.worker.acknowledge`.
4. Deadlines: each processor keeps an index of its orders by next due time (rebuilt from the
   table when partitions are assigned, :mod:`streams.worker.partitions`). On the wall clock a
   timer fires what is due; in event time the partition's clock follows its events (and
   ``advance-clock`` messages).
5. Aggregates: inputs wait in the ``inbox`` table (:mod:`streams.worker.inbox_table`) until
   the sources' watermarks have passed them, then go in event-time order, as in replay. In
   event time every order and inventory partition announces its clock to every aggregate
   partition; on the wall clock the time is every watermark.

This module wires it: the Faust app (with the workarounds of :mod:`streams.worker.faust_fixes`
installed), topics, tables, agents, timers, rebalance callbacks and web views. The inbox
table's keys start with their partition, which is their changelog partition; the others are
created with ``use_partitioner=True``: their changelog partition is the key's partition, which
is where every key is processed, so the timers may write them too.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from datetime import timedelta
from typing import Any, NoReturn

import faust
from aiokafka.partitioner import murmur2  # type: ignore[import-untyped]

from streams import __version__
from streams.core.dates import EPOCH
from streams.core.policy import Policy
from streams.errors import ConfigurationError
from streams.kafka.connection import client_options, faust_options
from streams.kafka.headers import Headers, cloudevents_source
from streams.kafka.topics import changelog_topic
from streams.ops.metrics import Metrics
from streams.ops.outage import OutageLog
from streams.policy_files import load_policy
from streams.settings import Settings
from streams.worker.acknowledge import Acknowledgement
from streams.worker.admission import fingerprint
from streams.worker.agents import Loops
from streams.worker.assignor import AdmittingAssignor
from streams.worker.console import ConsoleViews
from streams.worker.failures import (
    EXIT_KAFKA_UNAVAILABLE,
    exit_code_of_stop,
    stop_worker,
    stopping_on_kafka_failure,
)
from streams.worker.faust_fixes.commits import follow_commits
from streams.worker.faust_fixes.consumer import install_resuming_consumer
from streams.worker.faust_fixes.heartbeats import group_coordinator
from streams.worker.faust_fixes.recovery import install_guarded_recovery
from streams.worker.faust_fixes.restore import ChangelogReader
from streams.worker.faust_fixes.web import OrderwatchWeb, install_orderwatch_web
from streams.worker.feed import OutputFeed
from streams.worker.fence import Fence, Fenced
from streams.worker.partitions import Partitions
from streams.worker.publish import Publisher
from streams.worker.queries import Queries, WorkerSource
from streams.worker.stores import DueIndex, Stores
from streams.worker.tables import DurableTable, StampedTable
from streams.worker.watch import STALL_CHECK_SECONDS, ConsumerWatch

__all__ = ["OrderwatchWorker", "describe_startup", "partition_for", "run"]

log = logging.getLogger("orderwatch.worker")

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


class OrderwatchWorker:
    """Builds the Faust app (topics, tables, agents, timers, web views) from :class:`Settings`."""

    def __init__(self, settings: Settings, *, policy: Policy | None = None) -> None:
        self.settings = settings
        self.policy = policy or load_policy(settings.policy)
        self.metrics = Metrics()
        self.metrics.set_build_info(self.policy.ref)
        self.event_time = settings.clock == "event"
        self.partitions = settings.partitions
        self._ready = False
        #: The tables recovered (and what was due fired) since the last assignment: the state
        #: queries answer only then (streams.worker.queries).
        self._recovered = False
        self.outage = OutageLog()
        self.app = self._make_app()
        self._declare()
        for role in ("orders", "tracking", "complaints", "inventory"):
            self.metrics.declare_topic(settings.topic(role))
        self.metrics.track_clock(self.clock_seconds)
        self.metrics.track_ready(self.is_ready)

    # -- wiring ---------------------------------------------------------------------------

    def _make_app(self) -> faust.App:
        s = self.settings
        datadir = s.data_dir / s.app_id
        try:  # Faust creates only the last level
            datadir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigurationError(
                f"ORDERWATCH_DATA_DIR: cannot create {datadir}: {error.strerror}"
            ) from None
        app = faust.App(
            s.app_id,
            broker=s.broker_urls(),
            store=s.store,
            # One directory per app id: two configurations never share a local table.
            datadir=str(datadir),
            topic_partitions=s.partitions,
            topic_replication_factor=s.replication_factor,
            web_host=s.web_host,
            web_bind=s.web_host,
            web_port=s.web_port,
            # Where the other members reach this one: each member's URL travels in the group's
            # assignment, and the state queries forward to the key's owner there.
            canonical_url=advertised_url(s),
            web_enabled=True,
            processing_guarantee=s.processing_guarantee,
            broker_session_timeout=s.session_timeout,
            table_standby_replicas=s.standby_replicas,
            broker_heartbeat_interval=s.heartbeat_interval,
            # A batch's messages go out in a few requests rather than one request each.
            producer_linger=s.producer_linger,
            producer_max_batch_size=1 << 20,
            producer_compression_type=s.compression_type(),
            key_serializer="raw",
            value_serializer="raw",
            autodiscover=False,
            topic_disable_leader=True,
            # Every topic is created and checked before Faust starts (streams.kafka.topics, which
            # waits out a cluster that is moving). Faust's own declaration asks the first broker
            # of its metadata for the controller and has no other: with that node down it
            # raises NodeNotReadyError and the worker stops, again at every restart while the
            # node is down (the three-node soak in tests/integration/envelope.py showed it).
            topic_allow_declare=False,
            consumer_auto_offset_reset="earliest",
            # Faust's own stall check also watches the tables' changelog partitions, which only
            # recovery reads, and logs an error for each every few seconds after 5 minutes; the
            # worker watches the partitions it reads itself (streams.worker.watch).
            stream_processing_timeout=_YEAR_SECONDS,
            # Faust lets un-prefixed variables (BROKER_URL, WEB_PORT, ...) override what it is
            # given; an empty environment keeps ORDERWATCH_ settings the only source.
            env={},
            # The security protocol, SASL login and TLS context of every client Faust makes.
            **faust_options(s),
            # Faust's assignor, admitting only members that run this clock, policy and
            # partition count (streams.worker.admission).
            PartitionAssignor=AdmittingAssignor,
        )
        assignor: Any = app.assignor
        assignor.fingerprint = fingerprint(s, self.policy)
        assignor.group_id = s.app_id
        # Faust's consumer, but one that also resumes never-committed partitions at their start.
        install_resuming_consumer(app)
        # Faust's recovery, but none of its steps runs for an assignment a rebalance replaced,
        # and the changelogs are read in bulk first, with a consumer of its own.
        install_guarded_recovery(app, ChangelogReader(client_options(s)))
        # Faust's web server without Faust's own views.
        install_orderwatch_web(app)
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
        table = self.app.tables.add(
            StampedTable(
                self.app,
                name=name,
                beacon=self.app.tables.beacon,
                partitions=self.partitions,
                key_type=bytes,  # Faust derives the changelog's "raw" serializers from these
                value_type=bytes,
                use_partitioner=by_key,
                changelog_topic=changelog,
                options=_rocksdb_options(),
            )
        )
        send = self._send_record
        if by_key:
            partitions = self.partitions
            return DurableTable(table, lambda key: partition_for_bytes(key, partitions), send)
        # Inbox keys start with their partition: "<partition>/...".
        return DurableTable(table, lambda key: int(key.split(b"/", 1)[0]), send)

    async def _send_record(
        self, topic: str, key: bytes, value: bytes | None, partition: int, headers: Headers
    ) -> Any:
        """A changelog record, through the publisher's producer; its delivery."""
        return await self.publisher.send(topic, key, value, partition, headers)

    def _declare(self) -> None:
        s = self.settings
        self.inputs = {
            role: self._topic(s.topic(role)) for role in ("orders", "tracking", "complaints")
        }
        self.inventory = self._topic(s.topic("inventory"))
        self.order_events = self._topic(s.internal_topic("order-events"), internal=True)
        self.clock_topic = self._topic(s.internal_topic("clock"), internal=True)
        self.aggregate_inputs = self._topic(s.internal_topic("aggregate-inputs"), internal=True)
        outputs = {role: self._topic(s.topic(role)) for role in ("breaches", "recommendations")}
        outputs["dead-letter"] = self._topic(s.topic("dead_letter"))
        topics = {
            name: topic.get_topic_name()
            for name, topic in {
                **outputs,
                "inventory": self.inventory,
                "order-events": self.order_events,
                "clock": self.clock_topic,
                "aggregate-inputs": self.aggregate_inputs,
            }.items()
        }
        self.topic_names = topics
        # The console's live feed: every output partition, by a consumer of this worker's own.
        self.feed = OutputFeed(
            client_options(s),
            [topic.get_topic_name() for topic in outputs.values()],
            isolation_level=(
                "read_committed" if s.processing_guarantee == "exactly_once" else "read_uncommitted"
            ),
        )
        input_names = frozenset(t.get_topic_name() for t in self.inputs.values())

        def route(key: str) -> int:
            return partition_for(key, self.partitions)

        self.publisher = Publisher(
            self.app.maybe_start_producer,
            topics,
            partition_of=route,
            metrics=self.metrics,
            source=cloudevents_source(s.app_id),
        )
        digest = bytes.fromhex(fingerprint(s, self.policy).policy_digest[:8])
        self.stores = Stores(self._table, DueIndex(self.policy, digest), route=route)
        self.processors = Partitions(
            self.policy,
            partitions=self.partitions,
            event_time=self.event_time,
            inputs=input_names,
            route=route,
            stores=self.stores,
            idle_slack=s.idle_slack,
            arrival_grace=timedelta(seconds=s.arrival_grace),
            quiet_after=timedelta(seconds=s.quiet_after),
        )
        # Topics this worker writes in transactions (exactly_once) have commit markers between
        # offsets: their jumps are normal, so only the topics producers write are guarded then.
        inputs = [*self.inputs.values(), self.inventory]
        internal = [self.order_events, self.clock_topic, self.aggregate_inputs]
        guarded = inputs if s.processing_guarantee == "exactly_once" else [*inputs, *internal]
        self.watch = ConsumerWatch(
            self.app,
            s,
            self.metrics,
            self.outage,
            guarded={topic.get_topic_name() for topic in guarded},
            inputs=input_names,
            forwarded=topics["order-events"],
            inventory=topics["inventory"],
            lateness=self.policy.allowed_lateness,
            ready=lambda: self._ready,
        )
        self.fence = Fence(s.session_timeout)
        self.acknowledgement = Acknowledgement(
            partitions=self.processors,
            publisher=self.publisher,
            stores=self.stores,
            fence=self.fence,
            frontier=self.watch.frontier,
            metrics=self.metrics,
        )
        self.loops = Loops(
            partitions=self.processors,
            acknowledgement=self.acknowledgement,
            publisher=self.publisher,
            watch=self.watch,
            stores=self.stores,
            metrics=self.metrics,
            topics=topics,
            batch_size=s.batch_size,
            batch_seconds=s.batch_wait,
            fence=self.fence,
        )
        self._register()

    def _register(self) -> None:
        """The agents, timers, rebalance callbacks and web views."""
        s, app, loops = self.settings, self.app, self.loops
        order_channel = app.topic(
            *(
                t.get_topic_name()
                for t in (*self.inputs.values(), self.order_events, self.clock_topic)
            ),
            key_serializer="raw",
            value_serializer="raw",
        )
        app.agent(order_channel, name="orderwatch.orders")(loops.order_agent)
        aggregate_channel = app.topic(
            self.inventory.get_topic_name(),
            self.aggregate_inputs.get_topic_name(),
            key_serializer="raw",
            value_serializer="raw",
        )
        app.agent(aggregate_channel, name="orderwatch.aggregates")(loops.aggregate_agent)
        if self.event_time:
            app.timer(s.tick_interval, name="orderwatch.watermarks")(
                stopping_on_kafka_failure("the watermark timer")(self._announce)
            )
            app.timer(IDLE_CHECK_SECONDS, name="orderwatch.idle-inputs")(
                stopping_on_kafka_failure("the idle-input timer")(self._check_idle)
            )
        else:
            # One timer, in order: the inputs' ends, the deadlines, the watermarks.
            app.timer(s.tick_interval, name="orderwatch.deadlines")(
                stopping_on_kafka_failure("the deadline timer")(self._tick)
            )
        app.timer(1.0, name="orderwatch.outage")(self._check_outage)
        app.timer(STALL_CHECK_SECONDS, name="orderwatch.progress")(self.watch.check_progress)
        app.timer(LAG_CHECK_SECONDS, name="orderwatch.consumer-lag")(self.watch.observe_lag)
        app.on_partitions_assigned.connect(self._on_assigned)  # type: ignore[arg-type]
        follow_commits(app, self.acknowledgement.committed)
        app.on_rebalance_complete.connect(self._on_rebalance_complete)  # type: ignore[arg-type]
        app.on_before_shutdown.connect(self._on_shutdown)  # type: ignore[arg-type]
        self.stores.orders.table.table.on_recover(self._on_orders_recovered)
        app.page("/health")(self._health_view)  # type: ignore[arg-type]
        app.page("/ready")(self._ready_view)  # type: ignore[arg-type]
        app.page("/metrics")(self._metrics_view)  # type: ignore[arg-type]
        # The state queries (streams.worker.queries), on the aiohttp application itself.
        self.queries = Queries(
            WorkerSource(
                policy=self.policy,
                partitions=self.partitions,
                route=lambda key: partition_for(key, self.partitions),
                owned=self._owned,
                ready=self.is_queryable,
                stores=self.stores,
                assignor=app.assignor,
                orders_topic=self.inputs["orders"].get_topic_name(),
                url=advertised_url(s),
            ),
            token=None if s.web_token is None else s.web_token.get_secret_value(),
        )
        web_server = app.web
        assert isinstance(web_server, OrderwatchWeb)
        self.queries.install(web_server.web_app)
        token = s.web_token
        console = ConsoleViews(self.feed, lambda: token.get_secret_value() if token else None)
        app.page("/")(console.index)  # type: ignore[arg-type]
        app.page("/console/{name}")(console.asset)  # type: ignore[arg-type]
        app.page("/events")(console.events)  # type: ignore[arg-type]

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

    def is_queryable(self) -> bool:
        """Ready, and the tables of this assignment recovered and caught up: the owned
        partitions' states are whole (a rebalance completes before its recovery does)."""
        return self._recovered and self.is_ready()

    def clock_seconds(self) -> float:
        """The processor's clock for the metrics: the earliest clock of the owned partitions
        whose clock has started (NaN while none has)."""
        started = [at for at in self.processors.order_clocks() if at > EPOCH]
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

    # -- timers ---------------------------------------------------------------------------

    async def _check_outage(self) -> None:
        self.outage.check()

    async def _tick(self) -> None:
        """Wall-clock mode: find which inputs have nothing unread, fire what each partition's
        clock reached (and the aggregates' time-driven checks), announce the clocks."""
        if not self._ready or self.app.rebalancing:
            return
        leading = {partition: p.leading() for partition, p in self.processors}
        await self.watch.check_caught_up(leading)
        await self.loops.tick()
        await self.loops.announce()
        self.metrics.set_open_orders(self.processors.open_orders())

    async def _announce(self) -> None:
        """Event time's watermark timer (without arguments: Faust hands a timer that takes one
        the app)."""
        await self.loops.announce()

    async def _check_idle(self) -> None:
        clock_topic = self.topic_names["clock"]

        async def send(partition: int, value: bytes) -> None:
            await self.publisher.send(clock_topic, None, value, partition)

        await self.watch.check_idle(self.processors.clocks(), send)

    # -- partitions -----------------------------------------------------------------------

    def _owned(self) -> set[int]:
        topic = self.inputs["orders"].get_topic_name()
        return {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == topic}

    @stopping_on_kafka_failure("the assignment of partitions")
    async def _on_assigned(self, sender: Any, assigned: Iterable[Any], **_: Any) -> None:
        self._ready = False
        self._recovered = False
        # What the last batch changed is written before the caches go (its inputs already
        # left the inbox table), under the assignment it was made in; a worker that was
        # removed from the group meanwhile stops instead (streams.worker.fence).
        try:
            await self.acknowledgement.flush_states(self.fence.term)
        except Fenced as error:
            stop_worker(error, "a rebalance")
        self._follow_assignment()
        self.stores.forget()
        self.processors.processors = {}
        self.watch.assigned()
        self.acknowledgement.forget_applied()

    def _follow_assignment(self) -> None:
        """The fence follows this assignment, and the heartbeats that keep it."""
        coordinator = group_coordinator(self.app)
        if (
            coordinator is not None
            and not self.fence.tracking
            and not self.fence.watch(coordinator)
        ):
            log.warning("cannot follow the group's heartbeats: writes are fenced by stamps alone")
        member = str(getattr(coordinator, "member_id", ""))
        self.fence.assigned(self.app.consumer_generation_id, member)

    @stopping_on_kafka_failure("the rebuild after a rebalance")
    async def _on_rebalance_complete(self, sender: Any, **_: Any) -> None:
        try:
            await self._rebuild(fire=False)
        except Fenced as error:
            stop_worker(error, "a rebalance")
        await self.watch.resume()

    @stopping_on_kafka_failure("the rebuild and catch-up after recovery")
    async def _on_orders_recovered(self) -> None:
        # Tables may finish recovering from their changelogs after the rebalance completed:
        # rebuild again, now with every recovered order, and only now fire what is due.
        try:
            await self._rebuild(fire=True)
        except Fenced as error:
            stop_worker(error, "a recovery")
        self._recovered = True

    async def _rebuild(self, *, fire: bool) -> None:
        """Rebuild the processors of the partitions this worker now owns.

        With ``fire`` (tables recovered), whatever the restored clocks have already reached
        fires at once: an ``advance-clock`` handled before a partition moved here is
        not lost.
        """
        owned = self._owned()
        began = time.monotonic()
        self.processors.rebuild(owned)
        rebuilt = time.monotonic() - began
        if fire:
            await self.acknowledgement.catch_up()
        await self.acknowledgement.flush_states(self.fence.term)
        if fire:
            repaired = await self.loops.repair(owned)
            if repaired:
                log.warning("rewrote %d state records a stalled worker had overwritten", repaired)
        open_orders = self.processors.open_orders()
        self.metrics.set_assigned_partitions(len(owned))
        self.metrics.set_open_orders(open_orders)
        self._ready = True
        # Logged once per rebalance: when the tables have recovered.
        log.log(
            logging.INFO if fire else logging.DEBUG,
            "ready: %d partitions, %d open orders (rebuilt in %.1f s)",
            len(owned),
            open_orders,
            rebuilt,
        )

    async def _on_shutdown(self, sender: Any, **_: Any) -> None:
        log.info("stopping")
        await self.feed.close()
        await self.queries.close()
        await self.watch.close()


def advertised_url(settings: Settings) -> str:
    """The URL the other workers of the group reach this one's web server at."""
    return settings.web_url or f"http://{settings.web_host}:{settings.web_port}"


def _rocksdb_options() -> dict[str, int]:
    """Each table partition's RocksDB sizes (rocksdb://; the memory store ignores them).

    Faust's defaults are a server's: a 2 GiB block cache and three 64 MiB write buffers for
    each of the 6 tables × partitions databases. A worker's state is small records read
    mostly once per rebalance, so these bound each database to 8 MiB of cache and 2 × 4 MiB
    of buffers. A fresh dict each time: Faust takes keys out of the one it is given.
    """
    return {
        "block_cache_size": 8 << 20,
        "write_buffer_size": 4 << 20,
        "max_write_buffer_number": 2,
    }


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
    """Run the Faust worker until it is stopped (logging is :func:`streams.ops.logs`'s, set up
    before: Faust leaves it alone)."""
    from faust.worker import Worker

    class _Worker(Worker):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            # Faust's terminal spinner animates on every log record; a service needs none.
            self.spinner = None

        def execute_from_commandline(self) -> NoReturn:
            # mode ends the process with exit 1 whatever stopped it: a crashed service (raised
            # again once the loop closed) or an error while starting. Both are logged by then.
            try:
                super().execute_from_commandline()
            except SystemExit as stop:
                error = self.crash_reason or stop.__context__
                code = exit_code_of_stop(stop.code, error)
                if code == EXIT_KAFKA_UNAVAILABLE:
                    log.critical(
                        "stopping: Faust stopped on %s: %s; exit %d, a restart reads on from "
                        "the last commit",
                        type(error).__name__,
                        error,
                        code,
                    )
                raise SystemExit(code) from error

    level = worker.settings.log_level.upper()
    _Worker(
        worker.app, loglevel=level, quiet=True, override_logging=False
    ).execute_from_commandline()
