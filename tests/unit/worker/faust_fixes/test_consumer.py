"""The consumer's resumption after a rebalance: from the committed offset, and nowhere else.

Faust's consumer thread is replaced by a model of aiokafka's: a log per partition, a read
position that each fetch moves past what it returns, and the group's committed offsets.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from streams.settings import load_settings
from streams.worker.app import OrderwatchWorker


class ConsumerThread:
    """aiokafka as Faust's thread delegates to it: fetches move the position, seeks set it;
    a seek to a committed offset happens only above 0, as aiokafka's does."""

    def __init__(self, ends: dict[TP, int], committed: dict[TP, int | None]) -> None:
        self.ends = ends
        self.committed = committed
        self.position = dict.fromkeys(ends, 0)
        self.calls: list[str] = []
        self.fetch_gate: asyncio.Event | None = None

    async def getmany(self, active: set[TP] | None, timeout: float) -> dict[TP, list[Any]]:
        self.calls.append("fetch")
        if self.fetch_gate is not None:
            await self.fetch_gate.wait()
        records = {}
        for tp in sorted(active or (), key=lambda tp: tp.partition):
            at, end = self.position[tp], self.ends[tp]
            if at < end:
                records[tp] = [SimpleNamespace(offset=o) for o in range(at, end)]
                self.position[tp] = end
        self.calls.append("fetched")
        return records

    async def seek_to_committed(self) -> dict[TP, int | None]:
        self.calls.append("seek")
        for tp, offset in self.committed.items():
            if offset:
                self.position[tp] = offset
        return dict(self.committed)

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        return dict.fromkeys(tps, 0)

    async def seek_wait(self, offsets: dict[TP, int]) -> None:
        self.position.update(offsets)


def _consumer(tmp_path: Path, thread: ConsumerThread) -> Any:
    """The worker's consumer, over ``thread`` (Faust's consumer delegates to its thread)."""
    worker = OrderwatchWorker(load_settings(broker="127.0.0.1:9", data_dir=tmp_path))
    consumer: Any = worker.app.consumer
    consumer._thread = thread
    return consumer


def _offsets(records: dict[TP, list[Any]], tp: TP) -> list[int]:
    return [record.offset for record in records.get(tp, [])]


TRACKING = TP("orderwatch-tracking", 0)


async def test_records_fetched_before_the_seek_are_not_handed_over(tmp_path: Path) -> None:
    """Seen in the fault suite: the fetcher had read past 235..242 (dropped by Faust), the
    partition was resumed while the flow was active, and 243 reached the agent first."""
    thread = ConsumerThread(ends={TRACKING: 250}, committed={TRACKING: 235})
    thread.position[TRACKING] = 243
    consumer = _consumer(tmp_path, thread)
    consumer.resume_partitions({TRACKING})
    assert _offsets(await consumer._getmany({TRACKING}, 1.0), TRACKING) == []
    await consumer.seek_to_committed()
    assert _offsets(await consumer._getmany({TRACKING}, 1.0), TRACKING) == list(range(235, 250))


async def test_a_partition_never_committed_resumes_at_the_logs_start(tmp_path: Path) -> None:
    thread = ConsumerThread(ends={TRACKING: 20}, committed={TRACKING: None})
    thread.position[TRACKING] = 15
    consumer = _consumer(tmp_path, thread)
    consumer.resume_partitions({TRACKING})
    await consumer.seek_to_committed()
    assert _offsets(await consumer._getmany({TRACKING}, 1.0), TRACKING) == list(range(20))


async def test_a_seek_waits_for_the_fetch_under_way(tmp_path: Path) -> None:
    """A fetch overlapping a seek could return records from either side of it."""
    thread = ConsumerThread(ends={TRACKING: 20}, committed={TRACKING: 5})
    consumer = _consumer(tmp_path, thread)
    thread.fetch_gate = asyncio.Event()
    fetching = asyncio.ensure_future(consumer._getmany({TRACKING}, 1.0))
    await asyncio.sleep(0)
    seeking = asyncio.ensure_future(consumer.seek_to_committed())
    await asyncio.sleep(0.01)
    thread.fetch_gate.set()
    await asyncio.gather(fetching, seeking)
    assert thread.calls == ["fetch", "fetched", "seek"]


async def test_changelog_partitions_are_left_to_faust(tmp_path: Path) -> None:
    thread = ConsumerThread(ends={}, committed={})
    consumer = _consumer(tmp_path, thread)
    changelog = TP(next(iter(consumer.app.tables.changelog_topics)), 0)
    thread.ends[changelog] = 9
    thread.position[changelog] = 4
    consumer.resume_partitions({changelog})
    assert _offsets(await consumer._getmany({changelog}, 1.0), changelog) == [4, 5, 6, 7, 8]
