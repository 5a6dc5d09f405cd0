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

from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Generic, TypeVar

__all__ = ["DurableTable", "StateStore"]

S = TypeVar("S")


Send = Callable[[str, bytes, bytes | None, int], Awaitable[None]]
"""Hands one record (topic, key, value, partition) to the producer."""


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

    async def flush(self) -> None:
        """Hand every pending changelog record to the producer (one per key, the latest)."""
        pending, self._pending = self._pending, {}
        send, topic, partition_of = self._send, self._changelog, self._partition_of
        for key, value in pending.items():
            await send(topic, key, value, partition_of(key))


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

    async def flush(self) -> None:
        """Encode the states changed since the last flush and send their changelog records."""
        dirty, self._dirty = self._dirty, set()
        for key in dirty:
            self.table[key.encode("utf-8")] = self._encode(self._cache[key])
        await self.table.flush()
