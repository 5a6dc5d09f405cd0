"""Table recovery never seeks for an assignment that a new rebalance replaced.

The crash seen in a kill run, ``ValueError('Offset must be a positive integer')`` from
recovery, reproduced on Faust's own ``Recovery``: once a new rebalance has begun (its signal
set, a new standby partition registered with no start offset), Faust's ``_wait`` still starts
the standby seek, and aiokafka's ``seek`` refuses ``None``. The seek is aiokafka's real one.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaConsumer  # type: ignore[import-untyped]
from aiokafka.structs import TopicPartition  # type: ignore[import-untyped]
from faust.tables.recovery import RebalanceAgain, Recovery, ServiceStopped
from faust.types import TP

from streams.settings import load_settings
from streams.worker import OrderwatchWorker
from streams.worker.faust_fixes.recovery import GuardedRecovery, seek_positions, stale_partitions
from streams.worker.tables import STAMP_HEADER, DurableTable, StampedTable, pack_stamp

OLD = TP("app-orders-changelog", 0)
NEW = TP("app-orders-changelog", 1)


class _Consumer:
    """Faust's consumer as recovery uses it, seeking with aiokafka's own ``seek`` (whose only
    dependency, the fetcher, records the seeks)."""

    def __init__(self) -> None:
        self.seeks: list[dict[TP, int]] = []
        self._fetcher = self
        self._seeking: dict[TP, int] = {}

    def seek_to(self, tp: TopicPartition, offset: int) -> None:
        self._seeking[TP(tp.topic, tp.partition)] = offset

    async def seek_wait(self, partitions: dict[TP, Any]) -> None:
        self._seeking = {}
        for tp, offset in partitions.items():
            AIOKafkaConsumer.seek(self, TopicPartition(tp.topic, tp.partition), offset)
        self.seeks.append(self._seeking)


def _recovery(kind: type[Recovery]) -> Recovery:
    app = faust.App("recovery-test", broker="kafka://127.0.0.1:1")
    return kind(app, app.tables)


def _rebalanced(recovery: Recovery) -> dict[TP, int | None]:
    """The state a new rebalance leaves: its signal set, a new standby partition with no start
    offset (``Recovery.add_standby`` registers it as ``None``)."""
    recovery.signal_recovery_start.set()
    return {OLD: 41, NEW: None}


def test_seek_positions_take_the_built_offsets_and_the_log_start_for_the_rest() -> None:
    offsets: dict[TP, int | None] = {OLD: 41, NEW: None, TP("t", 2): -1, TP("t", 3): 0}
    assert seek_positions([OLD, NEW, TP("t", 2), TP("t", 3)], offsets) == {
        OLD: 41,
        NEW: 0,
        TP("t", 2): 0,
        TP("t", 3): 0,
    }
    assert seek_positions([TP("t", 9)], {}) == {TP("t", 9): 0}


def test_faust_recovery_seeks_a_replaced_assignment_and_crashes() -> None:
    """The cause: the seek of a stale step runs with an offset never built."""

    async def scenario() -> None:
        recovery = _recovery(Recovery)
        consumer: Any = _Consumer()
        offsets: Any = _rebalanced(recovery)
        with pytest.raises(ValueError, match="Offset must be a positive integer"):
            await recovery._wait(recovery._seek_offsets(consumer, {OLD, NEW}, offsets, "standby"))

    asyncio.run(scenario())


def test_the_workers_recovery_restarts_instead_of_seeking_a_replaced_assignment(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        worker = OrderwatchWorker(load_settings(broker="127.0.0.1:9", data_dir=tmp_path))
        tables: Any = worker.app.tables
        recovery = tables.recovery  # Faust's, as the worker set it up
        consumer: Any = _Consumer()
        offsets: Any = _rebalanced(recovery)
        with pytest.raises(RebalanceAgain):
            await recovery._wait(recovery._seek_offsets(consumer, {OLD, NEW}, offsets, "standby"))
        assert consumer.seeks == []

    asyncio.run(scenario())


def test_guarded_recovery_reads_a_partition_with_no_start_offset_from_its_start() -> None:
    async def scenario() -> None:
        recovery = _recovery(GuardedRecovery)
        consumer: Any = _Consumer()
        offsets: Any = {OLD: 41, NEW: None}
        await recovery._wait(recovery._seek_offsets(consumer, {OLD, NEW}, offsets, "standby"))
        assert consumer.seeks == [{OLD: 41, NEW: 0}]

    asyncio.run(scenario())


# -- local state the changelog never had ------------------------------------------------------


def test_an_offset_outside_the_changelog_is_stale() -> None:
    starts = {OLD: 0, NEW: 10}
    ends = {OLD: 42, NEW: 20}
    assert stale_partitions({OLD: 41, NEW: 9}, starts, ends) == []  # up to date; at the start
    assert stale_partitions({OLD: 42}, starts, ends) == [OLD]  # the log never reached it
    assert stale_partitions({OLD: 500, NEW: 3}, starts, ends) == [OLD, NEW]  # NEW: deleted
    assert stale_partitions({OLD: 5}, {}, {}) == []  # nothing known: kept


class _Offsets:
    """A consumer's view of the changelog's offsets, as recovery asks for them."""

    def __init__(self, start: int, end: int) -> None:
        self.start, self.end = start, end

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        return dict.fromkeys(tps, self.start)

    async def highwaters(self, *tps: TP) -> dict[TP, int]:
        return dict.fromkeys(tps, self.end)


def test_rocksdb_state_from_another_log_is_discarded_and_restored(tmp_path: Path) -> None:
    """A data directory kept across a broker whose topics were created again: its offsets are
    past the new changelog's end, so its partitions are read again from the changelog."""
    app = faust.App("recovery-test", store="rocksdb://", datadir=str(tmp_path))
    table = StampedTable(app, name="orders", key_type=bytes, value_type=bytes, partitions=4)
    changelog = table.changelog_topic_name
    durable = DurableTable(table, lambda key: int(key[:1]), _unsent)
    table.apply_changelog_batch(
        [_record(changelog, b"1-a", b"old state", 40), _record(changelog, b"2-b", b"kept", 3)]
    )
    recovery: Any = GuardedRecovery(app, app.tables)
    stale, fresh = TP(changelog, 1), TP(changelog, 2)
    for tp in (stale, fresh):
        recovery.tp_to_table[tp] = table
    offsets: Any = {stale: 40, fresh: 3}

    asyncio.run(recovery._build_offsets(_Offsets(0, 10), {stale, fresh}, offsets, "active"))
    assert durable.get(b"1-a") is None
    assert table.persisted_offset(stale) is None
    assert offsets[stale] == -1  # read from the log's start
    assert durable.get(b"2-b") == b"kept"
    assert offsets[fresh] == 3


async def _unsent(*_: Any) -> None:
    raise AssertionError("nothing is sent")


def _record(topic: str, key: bytes, value: bytes, offset: int) -> Any:
    message = SimpleNamespace(
        topic=topic,
        key=key,
        value=value,
        partition=int(key[:1]),
        offset=offset,
        headers=[(STAMP_HEADER, pack_stamp((1, offset)))],
    )
    return SimpleNamespace(message=message)


# -- the bulk read before Faust's own ---------------------------------------------------------


class _Reader:
    """A reader that records what it was asked and moves each position to the end asked."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls: list[tuple[str, dict[TP, int | None], dict[TP, int]]] = []

    async def read(self, positions: Any, ends: Any, apply: Any, title: str) -> int:
        self.calls.append((title, dict(positions), dict(ends)))
        await asyncio.sleep(self.delay)
        for tp, end in ends.items():
            if end > (positions.get(tp) or -1) + 1:
                apply(tp, [_record(tp.topic, f"{tp.partition}-k".encode(), b"v", end - 1)])
                positions[tp] = end - 1
        return len(ends)


def _stamped_recovery(reader: _Reader) -> tuple[Any, DurableTable, str]:
    app = faust.App("recovery-test", broker="kafka://127.0.0.1:1")
    table = StampedTable(app, name="orders", key_type=bytes, value_type=bytes, partitions=4)
    durable = DurableTable(table, lambda key: int(key[:1]), _unsent)
    recovery: Any = GuardedRecovery(app, app.tables)
    recovery.reader = reader
    return recovery, durable, table.changelog_topic_name


def test_actives_are_read_in_bulk_up_to_faust_s_highwater_before_faust_seeks() -> None:
    reader = _Reader()
    recovery, durable, changelog = _stamped_recovery(reader)
    first, second = TP(changelog, 1), TP(changelog, 2)
    for tp in (first, second):
        recovery.tp_to_table[tp] = durable.table
    recovery.active_highwaters.update({first: 99, second: -1})  # Faust's: the log's end - 1
    offsets: Any = {first: None, second: None}

    asyncio.run(recovery._build_offsets(_Offsets(0, 100), {first, second}, offsets, "active"))
    assert reader.calls == [("active", {first: -1, second: -1}, {first: 100, second: 0})]
    assert offsets == {first: 99, second: -1}  # Faust starts where the reader stopped
    assert durable.get(b"1-k") == b"v"

    consumer: Any = _Consumer()
    asyncio.run(recovery._seek_offsets(consumer, {first, second}, offsets, "active"))
    assert consumer.seeks == [{first: 99, second: 0}]
    assert len(reader.calls) == 1  # actives are not read again at the seek


def test_standbys_are_read_in_bulk_to_the_log_end_at_their_seek() -> None:
    reader = _Reader()
    recovery, durable, changelog = _stamped_recovery(reader)
    standby = TP(changelog, 3)
    recovery.tp_to_table[standby] = durable.table
    offsets: Any = {standby: 9}
    consumer: Any = _Consumer()
    consumer.highwaters = _Offsets(0, 50).highwaters

    asyncio.run(recovery._build_offsets(_Offsets(0, 50), {standby}, offsets, "standby"))
    assert reader.calls == []  # not before the actives are recovered
    asyncio.run(recovery._seek_offsets(consumer, {standby}, offsets, "standby"))
    assert reader.calls == [("standby", {standby: 9}, {standby: 50})]
    assert consumer.seeks == [{standby: 49}]


def _one_active_partition(reader: _Reader) -> tuple[Any, TP]:
    """A recovery with one active partition of a stamped table, its log ending at offset 9."""
    recovery, durable, changelog = _stamped_recovery(reader)
    tp = TP(changelog, 1)
    recovery.tp_to_table[tp] = durable.table
    recovery.active_highwaters[tp] = 9
    return recovery, tp


def test_a_bulk_read_is_not_cut_by_faust_s_step_timeout() -> None:
    """Faust's ``_wait`` treats a step that outlasts its timeout as the service stopping."""

    async def scenario(kind: str) -> None:
        recovery, tp = _one_active_partition(_Reader(delay=0.3))
        offsets: Any = {tp: None}
        step = recovery._build_offsets(_Offsets(0, 10), {tp}, offsets, "active")
        if kind == "faust":
            # The same step, timed as Faust times its other steps: cut, as a stop.
            with pytest.raises(ServiceStopped):
                await Recovery._wait(recovery, step, timeout=0.05)
        else:
            await recovery._wait(step, timeout=0.05)
            assert offsets == {tp: 9}

    asyncio.run(scenario("faust"))
    asyncio.run(scenario("guarded"))


def test_a_rebalance_cancels_a_bulk_read_where_it_stands() -> None:
    async def scenario() -> None:
        recovery, tp = _one_active_partition(_Reader(delay=5.0))
        offsets: Any = {tp: None}
        step = recovery._wait(recovery._build_offsets(_Offsets(0, 10), {tp}, offsets, "active"))
        waiting = asyncio.ensure_future(step)
        await asyncio.sleep(0.1)
        recovery.signal_recovery_start.set()
        with pytest.raises(RebalanceAgain):
            await asyncio.wait_for(waiting, 2.0)
        assert offsets == {tp: -1}  # nothing applied, nothing moved

    asyncio.run(scenario())
