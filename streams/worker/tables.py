"""The worker's changelogged state: Faust tables whose writes the worker awaits.

Works around: faust-streaming 0.15.3 sending a table's changelog records through a buffer of
its own (``send_soon``) and writing its local store before the changelog has the record. Fails
without it: ``tests/unit/worker/test_tables.py::test_writes_are_stored_and_sent_only_when_flushed``
and ``::test_a_write_is_stored_locally_only_once_the_changelog_has_it``; on a broker, the fault
suite (``tests/integration/test_faults.py``). It is the tables' own write path, so it stays
here rather than in :mod:`streams.worker.faust_fixes`.

Before it commits the consumer's offsets, Faust waits for its buffer only as long as a record
leaves it every 0.1 s, and not for the record it is sending at that moment. So a commit could
overtake state written while handling the messages it covers, and a worker killed just after
that commit would come back with state that lacks input the group will never read again.

:class:`DurableTable` keeps a batch's writes and, when flushed, hands their changelog records
to the producer, and stores each in the local store (:mod:`streams.worker.backends`) once Kafka
has it. When it is flushed, and why then, is the batch's acknowledgement
(:mod:`streams.worker.acknowledge`). Faust still drives the tables' recovery from their
changelogs; :class:`StampedTable` applies what it reads.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any, Generic, TypeVar

import faust

from streams.worker.backends import Backend, Held, StoreFailure, backend_of

__all__ = [
    "INDEX_HEADER",
    "STAMP_HEADER",
    "UNSTAMPED",
    "DurableTable",
    "Stamp",
    "StampedTable",
    "Stamps",
    "StateStore",
    "index_of",
    "newest_by_stamp",
    "pack_stamp",
    "stamp_of",
    "stored",
    "stored_index",
    "stored_stamp",
    "stored_value",
]

S = TypeVar("S")

Stamp = tuple[int, int]
"""What orders two writes of one key: (group generation of the writer's assignment, sequence)."""

STAMP_HEADER = "orderwatch-stamp"
#: The header of a changelog record that carries its value's index (see :func:`stored`).
INDEX_HEADER = "orderwatch-index"
#: The stamp of a record written before stamps existed: older than any stamped record.
UNSTAMPED: Stamp = (-1, 0)
#: How far a store holds a changelog it has read nothing of.
NOT_HELD = Held(-1, -1)
_STAMP = struct.Struct(">qq")

Send = Callable[[str, bytes, bytes | None, int, list[tuple[str, bytes]]], Awaitable[Any]]
"""Hands one record (topic, key, value, partition, headers) to the producer; returns its
delivery (a future of its record metadata), or None."""


def pack_stamp(stamp: Stamp) -> bytes:
    return _STAMP.pack(*stamp)


def index_of(headers: Sequence[tuple[str, bytes]] | Mapping[str, bytes] | None) -> bytes:
    """The index a changelog record's headers carry (empty if none)."""
    items = headers.items() if isinstance(headers, Mapping) else (headers or ())
    for name, value in items:
        if name == INDEX_HEADER and value is not None and len(value) < 256:
            return bytes(value)
    return b""


def stamp_of(headers: Sequence[tuple[str, bytes]] | Mapping[str, bytes] | None) -> Stamp:
    """The stamp a changelog record's headers carry (:data:`UNSTAMPED` if none)."""
    items = headers.items() if isinstance(headers, Mapping) else (headers or ())
    for name, value in items:
        if name == STAMP_HEADER and value is not None and len(value) == _STAMP.size:
            generation, sequence = _STAMP.unpack(value)
            return generation, sequence
    return UNSTAMPED


class Stamps:
    """The restore rule, and the stamps it needs besides those stored with the values.

    A record is applied only if its stamp is at least its key's newest known one, so a record
    a fenced writer sent late, whatever its place in the log, cannot replace what a newer owner
    wrote. (Before that, :meth:`StampedTable.apply_changelog_batch` sets aside every record of
    a generation older than one already read on its partition: a fenced writer's, landed late,
    whatever its key, so that neither a key deleted since nor a restore that resumes after the
    tombstone lets it back.) Equal stamps (one writer's records, or records from before stamps)
    keep the log's order. A live key's newest stamp is stored with its value (:func:`stored`);
    a deleted key's is kept here until the restore that read its tombstone completes.
    """

    def __init__(self) -> None:
        #: Stamps of keys a restore read a tombstone of, until the restore completes.
        self.deleted: dict[bytes, Stamp] = {}
        #: Keys whose last record in the log is older than an earlier one (their newest state
        #: is rewritten on top of it when their partition is next restored by its owner).
        self.shadowed: dict[bytes, int] = {}

    def admit(
        self, key: bytes, stamp: Stamp, partition: int, current: Stamp | None, *, deletes: bool
    ) -> bool:
        """Should a record of ``key`` with ``stamp`` (a tombstone if ``deletes``), read after
        those already admitted, be applied over the key's ``current`` stamp (None if it has
        no value)?"""
        newest = current if current is not None else self.deleted.get(key)
        if newest is not None and stamp < newest:
            self.shadowed[key] = partition
            return False
        if deletes:
            self.deleted[key] = stamp
        else:
            self.deleted.pop(key, None)
        self.shadowed.pop(key, None)
        return True

    def wrote(self, key: bytes) -> None:
        """This worker wrote ``key`` (or deleted it).

        A deletion's stamp is not kept: a partition restored again from its changelog's start
        reads its tombstones again, stamps included.
        """
        self.deleted.pop(key, None)
        self.shadowed.pop(key, None)

    def settle(self) -> None:
        """A restore completed: forget the stamps of deleted keys."""
        self.deleted.clear()

    def forget(self, keys: Iterable[bytes]) -> None:
        for key in keys:
            self.deleted.pop(key, None)
            self.shadowed.pop(key, None)


def stored(stamp: Stamp, value: bytes, index: bytes = b"") -> bytes:
    """A value as the local store keeps it: its stamp, its index (a few bytes its writer
    derived from the value, readable without decoding it; length-prefixed), then the value."""
    return _STAMP.pack(*stamp) + bytes((len(index),)) + index + value


def stored_stamp(raw: bytes) -> Stamp:
    generation, sequence = _STAMP.unpack_from(raw)
    return generation, sequence


def stored_index(raw: bytes) -> bytes:
    return raw[_STAMP.size + 1 : _STAMP.size + 1 + raw[_STAMP.size]]


def stored_value(raw: bytes) -> bytes:
    return raw[_STAMP.size + 1 + raw[_STAMP.size] :]


def newest_by_stamp(
    records: Iterable[tuple[bytes, bytes | None, Stamp]],
) -> dict[bytes, bytes]:
    """What a restore of one partition's ``records`` (in log order; ``None`` deletes) yields
    under the rule."""
    stamps = Stamps()
    state: dict[bytes, tuple[Stamp, bytes]] = {}
    generation = NOT_HELD.generation
    for key, value, stamp in records:
        if stamp[0] < generation:
            continue
        generation = stamp[0]
        current = state[key][0] if key in state else None
        if stamps.admit(key, stamp, 0, current, deletes=value is None):
            if value is None:
                state.pop(key, None)
            else:
                state[key] = (stamp, value)
    return {key: value for key, (_, value) in state.items()}


class StampedTable(faust.Table[bytes, bytes]):
    """A Faust table restored by :class:`Stamps`' rule into its :class:`Backend`.

    Its changelog records are applied by the rule, stamps stored with the values, and the
    offset each partition's store holds is where recovery resumes it (RocksDB keeps it across
    restarts). A memory store keeps only the partitions it has held without a break, as their
    owner or as a standby: a standby that takes a partition over resumes it where it stood.
    Faust's memory store would keep a partition that moved to another worker and read it again
    from its changelog's start over that data when it came back.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stamps = Stamps()
        #: The changelog partition of a key and the local store (set by :class:`DurableTable`).
        self.partition_of: Callable[[bytes], int] | None = None
        self.backend: Backend | None = None
        #: The changelog partitions this worker owns, and those it stands by for.
        self.owned: set[int] = set()
        self.standing: set[int] = set()

    def apply_changelog_batch(self, batch: Iterable[Any]) -> None:
        backend = self.backend
        if backend is None:
            raise RuntimeError(f"table {self.name} has no DurableTable over it")
        admit = self.stamps.admit
        writes: dict[bytes, bytes | None] = {}
        held: dict[int, Held] = {}
        for event in batch:
            message = event.message
            partition = message.partition
            before = held.get(partition) or backend.held(partition) or NOT_HELD
            stamp = stamp_of(message.headers)
            held[partition] = Held(
                max(message.offset, before.offset), max(stamp[0], before.generation)
            )
            key = message.key
            if key is None:
                continue
            if stamp[0] < before.generation:
                # A writer of an older generation, after a newer one: a fenced worker's record,
                # landed late. Its batch was never acknowledged, whatever the key.
                self.stamps.shadowed[key] = partition
                continue
            raw = writes[key] if key in writes else backend.get(key)
            current = None if raw is None else stored_stamp(raw)
            value = message.value
            if admit(key, stamp, partition, current, deletes=value is None):
                writes[key] = (
                    None if value is None else stored(stamp, value, index_of(message.headers))
                )
        backend.write(writes, held)

    async def on_recovery_completed(self, active_tps: Any, standby_tps: Any) -> None:
        self.stamps.settle()
        await super().on_recovery_completed(active_tps, standby_tps)

    def persisted_offset(self, tp: Any) -> int | None:
        """Where recovery resumes ``tp``: after the offset its local store holds."""
        if self.backend is None:
            return super().persisted_offset(tp)
        held = self.backend.held(tp.partition)
        return None if held is None else held.offset

    async def on_rebalance(
        self, assigned: Any, revoked: Any, newly_assigned: Any, generation_id: int = 0
    ) -> None:
        await super().on_rebalance(assigned, revoked, newly_assigned, generation_id)
        topic, assignor = self.changelog_topic_name, self.app.assignor
        owned = {tp.partition for tp in assignor.assigned_actives() if tp.topic == topic}
        standing = {tp.partition for tp in assignor.assigned_standbys() if tp.topic == topic}
        kept = (owned | standing) & (self.owned | self.standing)
        self.owned, self.standing = owned, standing
        self.drop_partitions(kept)

    def discard_partition(self, partition: int) -> None:
        """Delete what the local store holds of ``partition`` (it is not this changelog's)."""
        partition_of, backend = self.partition_of, self.backend
        if partition_of is None or backend is None:
            return
        backend.discard(partition)
        stamps = self.stamps
        stamps.forget(
            key for key in [*stamps.deleted, *stamps.shadowed] if partition_of(key) == partition
        )

    def drop_partitions(self, kept: set[int]) -> None:
        """Drop the local data (if it would not survive a restart anyway) and the stamps of
        every partition not in ``kept``."""
        partition_of, backend = self.partition_of, self.backend
        if partition_of is None or backend is None:
            return
        backend.drop(kept)
        stamps = self.stamps
        stamps.forget(
            key for key in [*stamps.deleted, *stamps.shadowed] if partition_of(key) not in kept
        )


class DurableTable:
    """Raw ``bytes → bytes`` access to a Faust table whose changelog writes are awaited.

    Writes are kept pending until :meth:`flush`, which stamps them and hands their changelog
    records to the producer. A record is stored locally only once the changelog has it (its
    delivery), so the local store is never ahead of the log: a worker killed in between finds
    its store behind, and its restart reads those records again, rather than a store holding
    state the log lacks (which re-handling the batch would then take as already done, and the
    next owner would never see). Until then the write is *in flight* and reads see it.

    The store holds a partition's offset only while every record up to it is one it read or
    wrote in turn: a delivery that is not the next offset (a fenced writer's records landed
    between, or another worker's) leaves the held offset where it was, so a restart reads that
    stretch of the log again, and the restore rule sorts the writers out.

    ``partition_of`` names the changelog partition of a key: the partition that processes it;
    ``send`` hands a changelog record to the producer and returns its delivery.
    """

    def __init__(self, table: Any, partition_of: Callable[[bytes], int], send: Send) -> None:
        self.table = table
        self.backend = backend_of(table, partition_of)
        self._changelog = table.changelog_topic.get_topic_name()
        self._partition_of = partition_of
        self._send = send
        #: Writes not yet flushed: (value, index), or None for a deletion.
        self._pending: dict[bytes, tuple[bytes, bytes] | None] = {}
        #: Writes flushed and not yet stored: (as stored, or None for a deletion; stamp).
        self._in_flight: dict[bytes, tuple[bytes | None, Stamp]] = {}
        #: Delivered records waiting to be stored: (key, as stored, stamp, partition, offset).
        self._delivered: list[tuple[bytes, bytes | None, Stamp, int, int]] = []
        self._store_scheduled = False
        self._failure: BaseException | None = None
        stamps = getattr(table, "stamps", None)
        self.stamps: Stamps = stamps if isinstance(stamps, Stamps) else Stamps()
        if isinstance(table, StampedTable):
            table.partition_of = partition_of
            table.backend = self.backend

    def _raw(self, key: bytes) -> bytes | None:
        """The key's newest flushed value as stored (stamped), or None: in flight, unless a
        restore stored a newer one meanwhile."""
        local = self.backend.get(key)
        flying = self._in_flight.get(key)
        if flying is None or (local is not None and stored_stamp(local) > flying[1]):
            return local
        return flying[0]

    def stamp(self, key: bytes) -> Stamp | None:
        """The stamp of the key's newest flushed value (None: it has none)."""
        raw = self._raw(key)
        return None if raw is None else stored_stamp(raw)

    def get(self, key: bytes, default: bytes | None = None) -> bytes | None:
        pending = self._pending
        if key in pending:
            write = pending[key]
            return default if write is None else write[0]
        raw = self._raw(key)
        return default if raw is None else stored_value(raw)

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._pending[key] = (value, b"")

    def put(self, key: bytes, value: bytes, index: bytes) -> None:
        """Write ``value`` with its ``index`` (at most 255 bytes: see :func:`stored`)."""
        if len(index) > 255:
            raise ValueError(f"an index of {len(index)} bytes: at most 255")
        self._pending[key] = (value, index)

    def _unflushed(self) -> dict[bytes, bytes | None]:
        """What is newer than the local store, as stored: in-flight, then pending writes."""
        newer = {key: raw for key, (raw, _) in self._in_flight.items()}
        for key, write in self._pending.items():
            newer[key] = None if write is None else stored(UNSTAMPED, *write)
        return newer

    def indexed(self) -> list[tuple[bytes, bytes]]:
        """(key, index) of every key of the partitions this worker owns (and maybe others:
        callers route), without reading the values."""
        owned: set[int] = getattr(self.table, "owned", set())
        newer = self._unflushed()
        found = [
            (key, stored_index(raw)) for key, raw in self.backend.items(owned) if key not in newer
        ]
        found += [(key, stored_index(raw)) for key, raw in newer.items() if raw is not None]
        return found

    def pop(self, key: bytes, default: bytes | None = None) -> bytes | None:
        value = self.get(key)
        if value is None:
            return default
        self._pending[key] = None
        return value

    def keys(self) -> Iterator[bytes]:
        """The keys of the partitions this worker owns (and maybe others: callers route)."""
        owned: set[int] = getattr(self.table, "owned", set())
        newer = self._unflushed()
        keys = [key for key in self.backend.keys(owned) if key not in newer]
        keys += [key for key, raw in newer.items() if raw is not None]
        return iter(keys)

    @property
    def pending(self) -> int:
        """Writes not yet flushed."""
        return len(self._pending)

    @property
    def in_flight(self) -> int:
        """Writes flushed and not yet stored locally."""
        return len(self._in_flight)

    def discard(self) -> None:
        """Drop the pending writes, unsent (their writer was fenced)."""
        self._pending = {}

    async def flush(self, stamp: Stamp) -> None:
        """Hand every pending write (the latest per key), stamped, to the producer; each is
        stored locally once delivered."""
        self.store_delivered()
        pending, self._pending = self._pending, {}
        if not pending:
            return
        send, topic, partition_of = self._send, self._changelog, self._partition_of
        stamped = [(STAMP_HEADER, pack_stamp(stamp))]
        wrote, in_flight = self.stamps.wrote, self._in_flight
        for key, write in pending.items():
            wrote(key)
            value, headers, raw = None, stamped, None
            if write is not None:
                value = write[0]
                raw = stored(stamp, *write)
                if write[1]:
                    headers = [*stamped, (INDEX_HEADER, write[1])]
            in_flight[key] = (raw, stamp)
            delivery = await send(topic, key, value, partition_of(key), headers)
            if delivery is None:  # no delivery to wait for (tests): stored below
                self._delivered.append((key, raw, stamp, partition_of(key), -1))
            else:
                delivery.add_done_callback(partial(self._on_delivery, key, raw, stamp))
        if self._delivered and not self._store_scheduled:
            self.store_delivered()

    def _on_delivery(self, key: bytes, raw: bytes | None, stamp: Stamp, delivery: Any) -> None:
        """A changelog record was acknowledged (or failed: then it is never stored, and the
        worker stops on the failed send): store it with the next delivered ones."""
        if delivery.cancelled() or delivery.exception() is not None:
            return
        metadata = delivery.result()
        self._delivered.append((key, raw, stamp, metadata.partition, metadata.offset))
        if not self._store_scheduled:
            self._store_scheduled = True
            asyncio.get_running_loop().call_soon(self._store_soon)

    def _store_soon(self) -> None:
        self._store_scheduled = False
        try:
            self.store_delivered()
        except StoreFailure as failure:  # raised to the worker by its next flush
            self._failure = failure

    def store_delivered(self) -> None:
        """Store the delivered records (in their order), each only over an older stamp, and
        the offsets that continue a partition's held one."""
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure
        delivered, self._delivered = self._delivered, []
        if not delivered:
            return
        backend, in_flight = self.backend, self._in_flight
        writes: dict[bytes, bytes | None] = {}
        held: dict[int, Held] = {}
        for key, raw, stamp, partition, offset in delivered:
            current = writes[key] if key in writes else backend.get(key)
            if current is None or stored_stamp(current) <= stamp:
                writes[key] = raw
            flying = in_flight.get(key)
            if flying is not None and flying[0] is raw:
                del in_flight[key]
            if offset >= 0:
                before = held.get(partition) or backend.held(partition) or NOT_HELD
                if offset == before.offset + 1:
                    held[partition] = Held(offset, max(stamp[0], before.generation))
        backend.write(writes, held)

    async def repair(self, stamp: Stamp, owned: set[int]) -> int:
        """Write again, with ``stamp``, the keys of ``owned`` partitions whose last record in
        the changelog is older than their newest (a fenced writer's, landed late), so that
        compaction, which keeps the last record of a key, keeps the newest. Returns how many."""
        shadowed = [k for k, p in list(self.stamps.shadowed.items()) if p in owned]
        for key in shadowed:
            raw = self._raw(key)
            self._pending[key] = None if raw is None else (stored_value(raw), stored_index(raw))
        await self.flush(stamp)
        return len(shadowed)


#: The most decoded states a :class:`StateStore` keeps after a flush.
CACHED_STATES = 20_000


class StateStore(Generic[S]):
    """Decoded states of one type over a :class:`DurableTable`, keyed by text.

    States are kept decoded next to the table, so a busy key's bytes are decoded once rather
    than on every event; :meth:`forget` empties that cache when partitions move (another worker
    may have changed the keys meanwhile). It holds at most :data:`CACHED_STATES` states after a
    flush (then the unchanged ones are dropped, to be read again), so a worker's memory does not
    grow with every key it ever read. A state is encoded once per :meth:`flush`, however often
    it changed since: an aggregate told many things while one batch is handled (a watermark
    releasing many inputs) is encoded once, not once per item.
    """

    def __init__(
        self,
        table: DurableTable,
        encode: Callable[[S], bytes],
        decode: Callable[[bytes], S],
        index: Callable[[S], bytes] | None = None,
    ) -> None:
        self.table = table
        self._encode = encode
        self._decode = decode
        #: What to store with each state besides it, readable without decoding it.
        self._index = index
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

    def peek(self, key: str) -> S | None:
        """The state of ``key``, as :meth:`get` would give it, without keeping it in the cache
        (a read-only query: the caller must not change it)."""
        state = self._cache.get(key)
        if state is None:
            stored = self.table.get(key.encode("utf-8"))
            return None if stored is None else self._decode(stored)
        return state

    def peek_keys(self) -> set[str]:
        """Every key with a state: the table's and those changed since the last flush."""
        return {key.decode("utf-8") for key in self.table.keys()} | self._dirty  # noqa: SIM118

    def put(self, key: str, state: S) -> None:
        self._cache[key] = state
        self._dirty.add(key)

    def drop(self, key: str) -> None:
        self._cache.pop(key, None)
        self._dirty.discard(key)
        self.table.pop(key.encode("utf-8"))

    def is_dirty(self, key: str) -> bool:
        """Was ``key`` changed since the last :meth:`flush`?"""
        return key in self._dirty

    def discard_unwritten(self, key: str) -> bool:
        """Forget ``key``'s change since the last flush if the table holds nothing for it: a
        value written and dropped before a flush never reaches the changelog. False, and
        nothing done, when the key was not changed or the table holds a value for it."""
        if key not in self._dirty or self.table.get(key.encode("utf-8")) is not None:
            return False
        self._dirty.discard(key)
        self._cache.pop(key, None)
        return True

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

    def indexed(self) -> list[tuple[str, bytes]]:
        """(key, index) of every state, its unwritten changes included, none decoded."""
        found = dict(self.table.indexed())
        if self._index is not None:
            for key in self._dirty:
                found[key.encode("utf-8")] = self._index(self._cache[key])
        return [(key.decode("utf-8"), index) for key, index in found.items()]

    @property
    def dirty(self) -> bool:
        return bool(self._dirty) or self.table.pending > 0

    async def flush(self, stamp: Stamp) -> None:
        """Encode the states changed since the last flush and send their changelog records."""
        dirty, self._dirty = self._dirty, set()
        encode, index, table = self._encode, self._index, self.table
        for key in dirty:
            state = self._cache[key]
            if index is None:
                table[key.encode("utf-8")] = encode(state)
            else:
                table.put(key.encode("utf-8"), encode(state), index(state))
        await table.flush(stamp)
        if len(self._cache) > CACHED_STATES:
            self.forget_clean()
