"""The worker's changelogged state: Faust tables written so that no commit overtakes them.

Faust sends a table's changelog records through a buffer of its own (``send_soon``), and before
it commits the consumer's offsets it waits for that buffer only as long as a record leaves it
every 0.1 s, and not for the record it is sending at that moment. So a commit can overtake state
written while handling the messages it covers, and a worker killed just after that commit comes
back with state that lacks input the group will never read again: the loss this module exists
to prevent.

:class:`DurableTable` writes the local store itself and collects the changelog records; the
worker awaits :meth:`DurableTable.flush` before it takes the next batch, so every record is in
the producer before the batch is acknowledged, and Faust's pre-commit flush of the producer waits
for its delivery. Faust still owns the tables' recovery from their changelogs.
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar

import faust

__all__ = [
    "STAMP_HEADER",
    "UNSTAMPED",
    "DurableTable",
    "Stamp",
    "StampedTable",
    "Stamps",
    "StateStore",
    "newest_by_stamp",
    "pack_stamp",
    "stamp_of",
]

S = TypeVar("S")

Stamp = tuple[int, int]
"""What orders two writes of one key: (group generation of the writer's assignment, sequence)."""

STAMP_HEADER = "orderwatch-stamp"
#: The stamp of a record written before stamps existed: older than any stamped record.
UNSTAMPED: Stamp = (-1, 0)
_STAMP = struct.Struct(">qq")

Send = Callable[[str, bytes, bytes | None, int, list[tuple[str, bytes]]], Awaitable[None]]
"""Hands one record (topic, key, value, partition, headers) to the producer."""


def pack_stamp(stamp: Stamp) -> bytes:
    return _STAMP.pack(*stamp)


def stamp_of(headers: Sequence[tuple[str, bytes]] | Mapping[str, bytes] | None) -> Stamp:
    """The stamp a changelog record's headers carry (:data:`UNSTAMPED` if none)."""
    items = headers.items() if isinstance(headers, Mapping) else (headers or ())
    for name, value in items:
        if name == STAMP_HEADER and value is not None and len(value) == _STAMP.size:
            generation, sequence = _STAMP.unpack(value)
            return generation, sequence
    return UNSTAMPED


class Stamps:
    """The newest stamp known for each key of a table: the restore rule.

    A record is applied only if its stamp is at least the key's newest known one (a deletion
    is remembered with its stamp too), so a record a fenced writer sent late, whatever its place
    in the log, cannot replace what a newer owner wrote. Equal stamps (one writer's records, or
    records from before stamps) keep the log's order.
    """

    def __init__(self) -> None:
        self._newest: dict[bytes, Stamp] = {}
        #: Keys whose last record in the log is older than an earlier one (their newest state
        #: is rewritten on top of it when their partition is next restored by its owner).
        self.shadowed: dict[bytes, int] = {}

    def admit(self, key: bytes, stamp: Stamp, partition: int) -> bool:
        """Should a record of ``key`` with ``stamp``, read after those already admitted, be
        applied?"""
        newest = self._newest.get(key)
        if newest is not None and stamp < newest:
            self.shadowed[key] = partition
            return False
        self._newest[key] = stamp
        self.shadowed.pop(key, None)
        return True

    def wrote(self, key: bytes, stamp: Stamp, *, deleted: bool = False) -> None:
        """This worker wrote ``key`` with ``stamp`` (or deleted it).

        A deletion's stamp is not kept: the next restore of a partition this worker keeps
        reads its tombstones again, stamps included, and one that changes hands is read whole.
        """
        if deleted:
            self._newest.pop(key, None)
        else:
            self._newest[key] = stamp
        self.shadowed.pop(key, None)

    def settle(self, live: Iterable[bytes]) -> None:
        """A restore completed: forget the stamps of deleted keys (only ``live`` ones stay)."""
        newest = self._newest
        self._newest = {key: newest[key] for key in live if key in newest}

    def forget(self, keys: Iterable[bytes]) -> None:
        for key in keys:
            self._newest.pop(key, None)
            self.shadowed.pop(key, None)

    def known(self) -> list[bytes]:
        return list(self._newest)


def newest_by_stamp(
    records: Iterable[tuple[bytes, bytes | None, Stamp]],
) -> dict[bytes, bytes]:
    """What a restore of ``records`` (in log order; ``None`` deletes) yields under the rule."""
    stamps = Stamps()
    state: dict[bytes, bytes] = {}
    for key, value, stamp in records:
        if stamps.admit(key, stamp, 0):
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
    return state


class StampedTable(faust.Table[bytes, bytes]):
    """A Faust table restored by :class:`Stamps`' rule, whose local store keeps only the
    partitions it has owned without a break.

    Faust's memory store keeps what was written locally for a partition after the partition
    moves to another worker, and a partition that comes back is read from its changelog over
    that data; here it is dropped whenever the table's active partitions change, before Faust
    reads the changelog again (from its start: the memory store persists no offset).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stamps = Stamps()
        #: The changelog partition of a key (set by :class:`DurableTable`).
        self.partition_of: Callable[[bytes], int] | None = None
        self._owned: set[int] = set()

    def apply_changelog_batch(self, batch: Iterable[Any]) -> None:
        admit = self.stamps.admit
        admitted = [
            event
            for event in batch
            if event.message.key is None
            or admit(event.message.key, stamp_of(event.message.headers), event.message.partition)
        ]
        super().apply_changelog_batch(admitted)

    async def on_recovery_completed(self, active_tps: Any, standby_tps: Any) -> None:
        local = getattr(self.data, "data", None)
        if isinstance(local, dict):
            self.stamps.settle(list(local))
        await super().on_recovery_completed(active_tps, standby_tps)

    async def on_rebalance(
        self, assigned: Any, revoked: Any, newly_assigned: Any, generation_id: int = 0
    ) -> None:
        await super().on_rebalance(assigned, revoked, newly_assigned, generation_id)
        topic = self.changelog_topic_name
        owned = {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == topic}
        kept = owned & self._owned
        self._owned = owned
        self.drop_partitions(kept)

    def drop_partitions(self, kept: set[int]) -> None:
        """Drop the local data and stamps of every partition not in ``kept``."""
        partition_of = self.partition_of
        store = self.data
        local = getattr(store, "data", None)  # the memory store's dict (rocksdb persists)
        if partition_of is None or not isinstance(local, dict):
            return
        gone = [key for key in local if partition_of(key) not in kept]
        for key in gone:
            del local[key]
        key_partition = getattr(store, "_key_partition", None)
        if isinstance(key_partition, dict):
            for key in gone:
                key_partition.pop(key, None)
        self.stamps.forget(key for key in self.stamps.known() if partition_of(key) not in kept)


class DurableTable:
    """Raw ``bytes → bytes`` access to a Faust table whose changelog writes are awaited.

    ``partition_of`` names the changelog partition of a key: the partition that processes it;
    ``send`` hands a changelog record to the producer.
    """

    def __init__(self, table: Any, partition_of: Callable[[bytes], int], send: Send) -> None:
        self.table = table
        self._data = table.data  # the local store, written without Faust's changelog buffer
        self._changelog = table.changelog_topic.get_topic_name()
        self._partition_of = partition_of
        self._send = send
        self._pending: dict[bytes, bytes | None] = {}
        stamps = getattr(table, "stamps", None)
        self.stamps: Stamps = stamps if isinstance(stamps, Stamps) else Stamps()
        if isinstance(table, StampedTable):
            table.partition_of = partition_of

    def get(self, key: bytes, default: bytes | None = None) -> bytes | None:
        value: bytes | None = self._data.get(key)
        return default if value is None else value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._data[key] = value
        self._pending[key] = value

    def pop(self, key: bytes, default: bytes | None = None) -> bytes | None:
        value = self.get(key)
        if value is None:
            return default
        del self._data[key]
        self._pending[key] = None
        return value

    def keys(self) -> Iterator[bytes]:
        return iter(list(self._data.keys()))

    @property
    def pending(self) -> int:
        """Changelog records written locally and not yet handed to the producer."""
        return len(self._pending)

    def discard(self) -> None:
        """Drop the pending changelog records unsent (their writer was fenced)."""
        self._pending = {}

    async def flush(self, stamp: Stamp) -> None:
        """Hand every pending changelog record to the producer (one per key, the latest),
        stamped with ``stamp``."""
        pending, self._pending = self._pending, {}
        send, topic, partition_of = self._send, self._changelog, self._partition_of
        headers = [(STAMP_HEADER, pack_stamp(stamp))]
        wrote = self.stamps.wrote
        for key, value in pending.items():
            wrote(key, stamp, deleted=value is None)
            await send(topic, key, value, partition_of(key), headers)

    async def repair(self, stamp: Stamp, owned: set[int]) -> int:
        """Write again, with ``stamp``, the keys of ``owned`` partitions whose last record in
        the changelog is older than their newest (a fenced writer's, landed late), so that
        compaction, which keeps the last record of a key, keeps the newest. Returns how many."""
        shadowed = [k for k, p in list(self.stamps.shadowed.items()) if p in owned]
        for key in shadowed:
            self._pending[key] = self._data.get(key)
        await self.flush(stamp)
        return len(shadowed)


class StateStore(Generic[S]):
    """Decoded states of one type over a :class:`DurableTable`, keyed by text.

    States are kept decoded next to the table, so a key's bytes are decoded once per assignment
    rather than on every event; :meth:`forget` empties that cache when partitions move (another
    worker may have changed the keys meanwhile). A state is encoded once per :meth:`flush`,
    however often it changed since: an aggregate told many things while one batch is handled
    (a watermark releasing many inputs) is encoded once, not once per item.
    """

    def __init__(
        self, table: DurableTable, encode: Callable[[S], bytes], decode: Callable[[bytes], S]
    ) -> None:
        self.table = table
        self._encode = encode
        self._decode = decode
        self._cache: dict[str, S] = {}
        self._dirty: set[str] = set()

    def get(self, key: str) -> S | None:
        state = self._cache.get(key)
        if state is None:
            stored = self.table.get(key.encode("utf-8"))
            if stored is None:
                return None
            state = self._cache[key] = self._decode(stored)
        return state

    def put(self, key: str, state: S) -> None:
        self._cache[key] = state
        self._dirty.add(key)

    def drop(self, key: str) -> None:
        self._cache.pop(key, None)
        self._dirty.discard(key)
        self.table.pop(key.encode("utf-8"))

    def forget(self) -> None:
        """Drop every cached state and unwritten change (partitions moved, or a failure)."""
        self._cache.clear()
        self._dirty.clear()

    def forget_clean(self) -> None:
        """Drop the cached states that have no unwritten change (read again when needed)."""
        dirty = self._dirty
        self._cache = {key: state for key, state in self._cache.items() if key in dirty}

    def keys(self) -> list[str]:
        return [key.decode("utf-8") for key in self.table.keys()]  # noqa: SIM118

    @property
    def dirty(self) -> bool:
        return bool(self._dirty) or self.table.pending > 0

    async def flush(self, stamp: Stamp) -> None:
        """Encode the states changed since the last flush and send their changelog records."""
        dirty, self._dirty = self._dirty, set()
        for key in dirty:
            self.table[key.encode("utf-8")] = self._encode(self._cache[key])
        await self.table.flush(stamp)
