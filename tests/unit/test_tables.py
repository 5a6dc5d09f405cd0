"""The worker's state tables: changelog records reach the producer before a message is done."""

from __future__ import annotations

import asyncio
from typing import Any

from streams.tables import DurableTable, StateStore


class _Changelog:
    """Stands in for the Faust changelog topic and the producer: records what was sent,
    awaited, in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes | None, int]] = []

    def get_topic_name(self) -> str:
        return "orders-changelog"

    async def send(self, topic: str, key: bytes, value: bytes | None, partition: int) -> None:
        assert topic == "orders-changelog"
        await asyncio.sleep(0)
        self.sent.append((key, value, partition))


class _FaustTable:
    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.changelog_topic = _Changelog()


def _durable() -> tuple[DurableTable, _FaustTable]:
    faust_table = _FaustTable()
    changelog = faust_table.changelog_topic
    return DurableTable(faust_table, lambda key: len(key) % 4, changelog.send), faust_table


def test_writes_are_local_at_once_and_sent_only_when_flushed() -> None:
    table, faust_table = _durable()
    table[b"a"] = b"1"
    table[b"a"] = b"2"
    table[b"bb"] = b"3"
    assert faust_table.data == {b"a": b"2", b"bb": b"3"}
    assert table.get(b"a") == b"2"
    assert faust_table.changelog_topic.sent == []
    assert table.pending == 2
    asyncio.run(table.flush())
    # One record per key, its latest value, on the key's partition.
    assert sorted(faust_table.changelog_topic.sent) == [(b"a", b"2", 1), (b"bb", b"3", 2)]
    assert table.pending == 0


def test_a_pop_sends_a_tombstone_and_a_missing_key_sends_nothing() -> None:
    table, faust_table = _durable()
    table[b"a"] = b"1"
    assert table.pop(b"a") == b"1"
    assert table.pop(b"zz", b"default") == b"default"
    assert b"a" not in faust_table.data
    asyncio.run(table.flush())
    assert faust_table.changelog_topic.sent == [(b"a", None, 1)]


def test_a_state_changed_many_times_is_encoded_and_sent_once_per_flush() -> None:
    table, faust_table = _durable()
    encoded: list[int] = []

    def encode(state: int) -> bytes:
        encoded.append(state)
        return str(state).encode()

    store: StateStore[int] = StateStore(table, encode, lambda raw: int(raw))
    for value in range(5):
        store.put("k", value)
    assert store.get("k") == 4
    assert faust_table.data == {}  # encoded at the flush, not before
    asyncio.run(store.flush())
    assert encoded == [4]
    assert faust_table.changelog_topic.sent == [(b"k", b"4", 1)]


def test_a_forgotten_store_reads_the_table_again() -> None:
    table, _ = _durable()
    decoded: list[bytes] = []

    def decode(raw: bytes) -> Any:
        decoded.append(raw)
        return int(raw)

    store: StateStore[int] = StateStore(table, lambda state: str(state).encode(), decode)
    store.put("k", 7)
    asyncio.run(store.flush())
    assert store.get("k") == 7
    assert decoded == []
    store.forget()
    assert store.get("k") == 7
    assert decoded == [b"7"]
    store.drop("k")
    assert store.get("k") is None
    assert store.keys() == []
