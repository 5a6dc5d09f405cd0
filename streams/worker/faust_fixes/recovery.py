"""Faust's table recovery, kept from acting on an assignment that a new rebalance replaced.

Works around: faust-streaming 0.15.3's ``Recovery`` starting a step of a replaced assignment,
whose standby seek aiokafka 0.14 refuses (``ValueError('Offset must be a positive integer')``),
and keeping local RocksDB state its changelog never had. Fails without it:
``tests/unit/worker/faust_fixes/test_recovery.py::test_the_workers_recovery_restarts_instead_of_seeking_a_replaced_assignment``
(and ``::test_rocksdb_state_from_another_log_is_discarded_and_restored``); the fault suite saw
the crash (``tests/integration/test_faults.py``).

Faust's recovery loop waits on each step together with the "a rebalance started" signal
(``Recovery._wait``). Two flaws let a step of a stale recovery run on the new assignment:

- The wait for the active changelogs to be read catches every exception, the "rebalance again"
  one included, and goes on to the standby partitions.
- ``_wait`` starts its step even when the signal is already set, and a step that fails at once
  raises its own error rather than "rebalance again".

Between the two, the standby seek runs with the new assignment's standby partitions, whose
start offsets were never built (``None``, as the new assignment registered them): aiokafka's
``seek`` raises ``ValueError('Offset must be a positive integer')``, the recovery service
crashes and the worker exits. Here, a step is not started once a new rebalance has begun (the
loop then restarts recovery for the new assignment), and a seek takes an offset that was never
built as the log's start (reading a changelog from its start is always correct, only slower).

A store that persists (RocksDB) resumes each changelog partition after the offset it holds. An
offset the changelog does not have (the topics were deleted and created again, or the data
directory belongs to another cluster) means the local state is not this log's: that partition's
local store is discarded and read again from the changelog (:func:`stale_partitions`).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import faust
from faust.tables import recovery as faust_recovery
from faust.tables.recovery import RebalanceAgain, Recovery
from faust.types import TP

from streams.worker.faust_fixes.restore import ChangelogReader, Record
from streams.worker.tables import StampedTable

__all__ = ["GuardedRecovery", "install_guarded_recovery", "seek_positions", "stale_partitions"]

log = logging.getLogger("orderwatch.worker")


def seek_positions(tps: Iterable[TP], offsets: Mapping[TP, int | None]) -> dict[TP, int]:
    """Where recovery seeks each changelog partition: the offset it built (Faust's ``-1``, the
    log's start, becomes 0), or 0 for one it never built (``None``) or a negative offset."""
    positions = {}
    for tp in tps:
        offset = offsets.get(tp)
        positions[tp] = offset if isinstance(offset, int) and offset >= 0 else 0
    return positions


def stale_partitions(
    held: Mapping[TP, int], starts: Mapping[TP, int | None], ends: Mapping[TP, int | None]
) -> list[TP]:
    """Changelog partitions whose local store holds an offset (``held``: the last record it
    applied) the log cannot have produced: at or past the log's end, or before its start."""
    stale = []
    for tp, offset in held.items():
        start, end = starts.get(tp), ends.get(tp)
        if (end is not None and offset >= end) or (start is not None and offset < start - 1):
            stale.append(tp)
    return sorted(stale)


class GuardedRecovery(Recovery):
    """Faust's recovery, each step started only while no new rebalance has begun, with the
    changelogs read in bulk by :attr:`reader` (when set) before Faust reads what is left."""

    reader: ChangelogReader | None = None

    async def _wait(self, coro: Any, timeout: Any = None) -> None:
        if self.signal_recovery_start.is_set():
            if inspect.iscoroutine(coro):
                coro.close()  # never started: nothing of the replaced assignment runs
            raise RebalanceAgain()
        if getattr(coro, "cr_code", None) in _READING_STEPS:
            # Faust bounds each step by the broker's request timeout and, when it passes, stops
            # the recovery service as if the worker were stopping. These steps read changelogs
            # whose size is the state's: they end with the log, or with the next rebalance.
            timeout = None
        await super()._wait(coro, timeout=timeout)

    async def _build_offsets(self, consumer: Any, tps: Any, destination: Any, title: str) -> None:
        await self._check_held(consumer, tps, destination)
        await super()._build_offsets(consumer, tps, destination, title)
        if title == "active" and self.reader is not None:
            # Up to the highwater Faust built: what recovery waits for (Faust refuses an offset
            # past it as inconsistent).
            ends = {tp: self.active_highwaters[tp] + 1 for tp in tps}
            await self._read_in_bulk(destination, ends, title)

    async def _seek_offsets(self, consumer: Any, tps: Any, offsets: Any, title: str) -> None:
        if title == "standby" and self.reader is not None:
            # After the actives are restored and the agents run: standbys catch up meanwhile.
            ends = await consumer.highwaters(*tps) if tps else {}
            await self._read_in_bulk(offsets, ends, title)
        positions = seek_positions(tps, offsets)
        unbuilt = sorted(str(tp) for tp in tps if not isinstance(offsets.get(tp), int))
        if unbuilt:
            log.warning(
                "recovery: no start offset for %s changelog partitions %s; reading them from "
                "their start",
                title,
                ", ".join(unbuilt),
            )
        await consumer.seek_wait(positions)

    async def _read_in_bulk(self, offsets: Any, ends: Mapping[TP, int | None], title: str) -> None:
        """Read the partitions of ``ends`` whose tables are stamped, up to those ends."""
        tables = self.tp_to_table
        stamped = {
            tp: end
            for tp, end in ends.items()
            if end is not None and isinstance(tables.get(tp), StampedTable)
        }
        if self.reader is None or not stamped:
            return

        def apply(tp: TP, records: list[Record]) -> None:
            table: Any = tables[tp]
            table.apply_changelog_batch(records)

        await self.reader.read(offsets, stamped, apply, title)

    async def _check_held(self, consumer: Any, tps: Any, destination: Any) -> None:
        """Discard the local state of partitions whose held offset the changelog never had."""
        held = {tp: destination[tp] for tp in tps if isinstance(destination.get(tp), int)}
        if held:
            starts = await consumer.earliest_offsets(*held)
            ends = await consumer.highwaters(*held)
            for tp in stale_partitions(held, starts, ends):
                log.warning(
                    "recovery: the local state of %s[%d] holds offset %d, which its changelog "
                    "(offsets %s to %s) never had: discarded, restored from the changelog",
                    tp.topic,
                    tp.partition,
                    held[tp],
                    starts.get(tp),
                    ends.get(tp),
                )
                table: Any = self.tp_to_table[tp]
                table.discard_partition(tp.partition)
                destination[tp] = None


#: The steps that may read changelogs in bulk: no request timeout applies to them.
_READING_STEPS = (GuardedRecovery._build_offsets.__code__, GuardedRecovery._seek_offsets.__code__)

# mode names a service's logger after the module of its class: keep Faust's recovery logger.
GuardedRecovery.logger = faust_recovery.logger


def install_guarded_recovery(app: faust.App, reader: ChangelogReader | None = None) -> None:
    """Give ``app``'s tables (not started yet) a :class:`GuardedRecovery`, reading the
    changelogs in bulk with ``reader`` first (:mod:`streams.worker.faust_fixes.restore`)."""
    tables: Any = app.tables
    recovery = GuardedRecovery(app, tables, beacon=tables.beacon, loop=tables.loop)
    recovery.reader = reader
    tables._recovery = recovery
