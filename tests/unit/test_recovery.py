"""Table recovery never seeks for an assignment that a new rebalance replaced.

The crash seen in a kill run, ``ValueError('Offset must be a positive integer')`` from
recovery, reproduced on Faust's own ``Recovery``: once a new rebalance has begun (its signal
set, a new standby partition registered with no start offset), Faust's ``_wait`` still starts
the standby seek, and aiokafka's ``seek`` refuses ``None``. The seek is aiokafka's real one.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaConsumer  # type: ignore[import-untyped]
from aiokafka.structs import TopicPartition  # type: ignore[import-untyped]
from faust.tables.recovery import RebalanceAgain, Recovery
from faust.types import TP

from streams.worker.recovery import GuardedRecovery, seek_positions

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


def test_guarded_recovery_restarts_instead_of_seeking_a_replaced_assignment() -> None:
    async def scenario() -> None:
        recovery = _recovery(GuardedRecovery)
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
