"""Where a table's state lives on this worker: Faust's memory store or its RocksDB store.

Faust's stores are written through the table, with the current event's partition standing for
the key's (RocksDB asserts that an event is being handled). The worker writes its tables after
a batch, outside any event, and knows each key's partition
(:class:`~streams.worker.tables.DurableTable`), so it writes the store's partitions itself, in
batches:

- :class:`MemoryBackend`: the memory store's dict. Nothing survives the process: a restart
  reads the changelogs from their start.
- :class:`RocksBackend`: one RocksDB database per partition, in ``ORDERWATCH_DATA_DIR``, with
  the changelog offset it holds (Faust's persisted offset). A restart reads only the
  changelog records written after that offset.

A failure of the disk under RocksDB (full, read-only, corrupt) raises :class:`StoreFailure`, a
transient stop of the worker (exit 75), never a reason to dead-letter the message being
handled.
"""

from __future__ import annotations

import gc
import shutil
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple, Protocol, TypeVar

__all__ = ["Backend", "Held", "MemoryBackend", "RocksBackend", "StoreFailure", "backend_of"]

T = TypeVar("T")

#: Where a RocksDB database keeps the :attr:`Held.generation` beside Faust's offset key.
GENERATION_KEY = b"__orderwatch_generation__"


class Held(NamedTuple):
    """How far a store holds a partition's changelog: the offset of the last record it read
    or wrote in turn, and the highest writer generation among the records up to it."""

    offset: int
    generation: int


class StoreFailure(Exception):
    """The local store could not be read or written (its disk): a transient stop."""


class Backend(Protocol):
    """A table's local store, by key; values as stored (the caller's layout)."""

    def get(self, key: bytes) -> bytes | None: ...

    def write(
        self, writes: Mapping[bytes, bytes | None], held: Mapping[int, Held] | None = None
    ) -> None:
        """Apply ``writes`` (None deletes) and, per partition, how far the store then holds
        its changelog (``held``), grouped by partition, each group at once."""

    def held(self, partition: int) -> Held | None:
        """How far the store holds the changelog of ``partition`` (None: not at all)."""

    def keys(self, partitions: set[int]) -> Iterator[bytes]:
        """The keys this store holds for ``partitions`` (a memory store: all it holds)."""

    def items(self, partitions: set[int]) -> Iterator[tuple[bytes, bytes]]:
        """The keys and values this store holds for ``partitions`` (as :meth:`keys`)."""

    def discard(self, partition: int) -> None:
        """Delete everything this store holds of ``partition``, its offset included."""

    def drop(self, kept: set[int]) -> list[bytes]:
        """Forget every partition not in ``kept`` if nothing of it survives the process anyway
        (a partition that comes back is then read from its changelog's start); the keys
        dropped."""


class MemoryBackend:
    """The memory store's dict; nothing is persisted."""

    def __init__(self, store: Any, partition_of: Callable[[bytes], int]) -> None:
        self._data: dict[bytes, bytes] = store.data
        self._partition_of = partition_of
        self._held: dict[int, Held] = {}

    def get(self, key: bytes) -> bytes | None:
        return self._data.get(key)

    def write(
        self, writes: Mapping[bytes, bytes | None], held: Mapping[int, Held] | None = None
    ) -> None:
        data = self._data
        for key, value in writes.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        if held:
            self._held.update(held)

    def held(self, partition: int) -> Held | None:
        return self._held.get(partition)

    def keys(self, partitions: set[int]) -> Iterator[bytes]:
        return iter(list(self._data))  # owned and standby partitions only

    def items(self, partitions: set[int]) -> Iterator[tuple[bytes, bytes]]:
        return iter(list(self._data.items()))

    def discard(self, partition: int) -> None:
        partition_of, data = self._partition_of, self._data
        for key in [key for key in data if partition_of(key) == partition]:
            del data[key]
        self._held.pop(partition, None)

    def drop(self, kept: set[int]) -> list[bytes]:
        partition_of, data = self._partition_of, self._data
        gone = [key for key in data if partition_of(key) not in kept]
        for key in gone:
            del data[key]
        for partition in [p for p in self._held if p not in kept]:
            del self._held[partition]
        return gone


class RocksBackend:
    """Faust's RocksDB store, one database per partition, written a batch at a time."""

    def __init__(self, store: Any, partition_of: Callable[[bytes], int]) -> None:
        self._store = store
        self._partition_of = partition_of
        self._offset_key: bytes = store.offset_key
        #: How far each partition's database holds its changelog, as last read or written.
        self._held: dict[int, Held | None] = {}
        import rocksdict

        self._write_batch: Callable[[], Any] = lambda: rocksdict.WriteBatch(raw_mode=True)

    def _db(self, partition: int) -> Any:
        return self._store._db_for_partition(partition)

    def get(self, key: bytes) -> bytes | None:
        partition = self._partition_of(key)
        value: bytes | None = _guarded(lambda: self._db(partition).get(key), "read")
        return value

    def write(
        self, writes: Mapping[bytes, bytes | None], held: Mapping[int, Held] | None = None
    ) -> None:
        batches: dict[int, Any] = {}
        partition_of = self._partition_of
        for key, value in writes.items():
            partition = partition_of(key)
            batch = batches.get(partition)
            if batch is None:
                batch = batches[partition] = self._write_batch()
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        for partition, (offset, generation) in (held or {}).items():
            batch = batches.get(partition)
            if batch is None:
                batch = batches[partition] = self._write_batch()
            # Faust's own layout of its persisted offset (``set_persisted_offset``), written in
            # the same batch as the values it covers.
            batch.put(self._offset_key, str(offset).encode())
            batch.put(GENERATION_KEY, str(generation).encode())

        def apply() -> None:
            for partition, batch in batches.items():
                self._db(partition).write(batch)

        _guarded(apply, "write")
        if held:
            self._held.update(held)

    def held(self, partition: int) -> Held | None:
        if partition not in self._held:

            def read() -> tuple[bytes | None, bytes | None]:
                db = self._db(partition)
                return db.get(self._offset_key), db.get(GENERATION_KEY)

            offset, generation = _guarded(read, "read")
            self._held[partition] = (
                None
                if offset is None
                else Held(int(offset), -1 if generation is None else int(generation))
            )
        return self._held[partition]

    def keys(self, partitions: set[int]) -> Iterator[bytes]:
        offset_key = self._offset_key

        def read() -> list[bytes]:
            return [
                key
                for partition in sorted(partitions)
                for key in self._db(partition).keys()  # noqa: SIM118 - a database
                if key != offset_key and key != GENERATION_KEY
            ]

        return iter(_guarded(read, "read"))

    def items(self, partitions: set[int]) -> Iterator[tuple[bytes, bytes]]:
        offset_key = self._offset_key

        def read() -> list[tuple[bytes, bytes]]:
            return [
                (key, value)
                for partition in sorted(partitions)
                for key, value in self._db(partition).items()
                if key != offset_key and key != GENERATION_KEY
            ]

        return iter(_guarded(read, "read"))

    def discard(self, partition: int) -> None:
        store = self._store

        self._held.pop(partition, None)

        def delete() -> None:
            store._dbs.pop(partition, None)
            store._key_index.clear()
            gc.collect()  # Faust closes a database by dropping it: its lock goes with it
            shutil.rmtree(store.partition_path(partition), ignore_errors=True)

        _guarded(delete, "delete a partition")

    def drop(self, kept: set[int]) -> list[bytes]:
        return []  # on disk, with the offset it holds: a partition that comes back reads on


def backend_of(table: Any, partition_of: Callable[[bytes], int]) -> Backend:
    """The backend of a Faust table's store."""
    store = table.data
    if hasattr(store, "_db_for_partition"):
        return RocksBackend(store, partition_of)
    return MemoryBackend(store, partition_of)


def _guarded(action: Callable[[], T], what: str) -> T:
    try:
        return action()
    except StoreFailure:
        raise
    except Exception as error:  # rocksdict raises plain exceptions for I/O and corruption
        raise StoreFailure(f"the local state store failed to {what}: {error}") from error
