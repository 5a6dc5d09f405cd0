"""The worker's state tables: changelog records reach the producer before a message is done."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

import pytest

from streams.tables import (
    STAMP_HEADER,
    UNSTAMPED,
    DurableTable,
    Stamp,
    StampedTable,
    Stamps,
    StateStore,
    newest_by_stamp,
    pack_stamp,
    stamp_of,
)

STAMP = (3, 1)


class _Changelog:
    """Stands in for the Faust changelog topic and the producer: records what was sent,
    awaited, in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes | None, int]] = []
        self.stamps: list[Stamp] = []

    def get_topic_name(self) -> str:
        return "orders-changelog"

    async def send(
        self,
        topic: str,
        key: bytes,
        value: bytes | None,
        partition: int,
        headers: list[tuple[str, bytes]],
    ) -> None:
        assert topic.endswith("orders-changelog")
        await asyncio.sleep(0)
        self.sent.append((key, value, partition))
        self.stamps.append(stamp_of(headers))


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
    asyncio.run(table.flush(STAMP))
    # One record per key, its latest value, on the key's partition.
    assert sorted(faust_table.changelog_topic.sent) == [(b"a", b"2", 1), (b"bb", b"3", 2)]
    assert table.pending == 0


def test_a_pop_sends_a_tombstone_and_a_missing_key_sends_nothing() -> None:
    table, faust_table = _durable()
    table[b"a"] = b"1"
    assert table.pop(b"a") == b"1"
    assert table.pop(b"zz", b"default") == b"default"
    assert b"a" not in faust_table.data
    asyncio.run(table.flush(STAMP))
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
    asyncio.run(store.flush(STAMP))
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
    asyncio.run(store.flush(STAMP))
    assert store.get("k") == 7
    assert decoded == []
    store.forget()
    assert store.get("k") == 7
    assert decoded == [b"7"]
    store.drop("k")
    assert store.get("k") is None
    assert store.keys() == []


def test_every_record_carries_its_stamp() -> None:
    table, faust_table = _durable()
    table[b"a"] = b"1"
    asyncio.run(table.flush((7, 42)))
    table.pop(b"a")
    asyncio.run(table.flush((7, 43)))
    assert faust_table.changelog_topic.stamps == [(7, 42), (7, 43)]
    assert stamp_of([(STAMP_HEADER, pack_stamp((7, 42)))]) == (7, 42)
    assert stamp_of({STAMP_HEADER: pack_stamp((1, 2))}) == (1, 2)
    assert stamp_of(None) == UNSTAMPED
    assert stamp_of([("other", b"x")]) == UNSTAMPED


# -- the restore rule -------------------------------------------------------------------------

# One key's history: the worker that owned it in generation 1 wrote it twice, then froze; the
# owner of generation 2 wrote it (then deleted, then wrote it again); the frozen worker's last
# write (still generation 1) was sent when it resumed. "b" was only ever written by the old
# owner, "c" deleted by the new one after the old owner wrote it.
OLD = [(b"a", b"old-1", (1, 1)), (b"a", b"old-2", (1, 2)), (b"b", b"b-old", (1, 3))]
NEW = [
    (b"a", b"new-1", (2, 1)),
    (b"a", None, (2, 2)),
    (b"a", b"new-3", (2, 3)),
    (b"c", None, (2, 4)),
]
LATE = [(b"a", b"stale", (1, 4)), (b"c", b"c-stale", (1, 5))]


def _interleavings(
    *streams: list[tuple[bytes, bytes | None, Stamp]],
) -> list[list[tuple[bytes, bytes | None, Stamp]]]:
    """Every merge of ``streams`` that keeps each stream's own order (one producer's records
    to one partition stay in order)."""
    if not any(streams):
        return [[]]
    merged = []
    for index, stream in enumerate(streams):
        if stream:
            rest = [*streams[:index], stream[1:], *streams[index + 1 :]]
            merged += [[stream[0], *tail] for tail in _interleavings(*rest)]
    return merged


def test_a_restore_keeps_the_newest_stamp_however_the_records_were_interleaved() -> None:
    """The old owner's records (its late ones included) and the new owner's, merged in every
    order a log can hold them: the restore always yields the new owner's state."""
    orders = _interleavings(OLD + LATE, NEW)
    assert len(orders) > 100
    for records in orders:
        assert newest_by_stamp(records) == {b"a": b"new-3", b"b": b"b-old"}, records


def test_the_rule_is_not_the_log_position() -> None:
    """With the late write last in the log, keeping the last record would resurrect it."""
    records = OLD + NEW + LATE
    assert newest_by_stamp(records) == {b"a": b"new-3", b"b": b"b-old"}
    last_by_position = {key: value for key, value, _ in records}
    assert last_by_position[b"a"] == b"stale"  # what Faust's own restore would keep


def test_equal_stamps_and_unstamped_records_keep_the_log_order() -> None:
    assert newest_by_stamp([(b"k", b"1", UNSTAMPED), (b"k", b"2", UNSTAMPED)]) == {b"k": b"2"}
    assert newest_by_stamp([(b"k", b"1", (4, 4)), (b"k", b"2", (4, 4))]) == {b"k": b"2"}
    # A record from before stamps never replaces a stamped one.
    assert newest_by_stamp([(b"k", b"1", (0, 1)), (b"k", b"0", UNSTAMPED)]) == {b"k": b"1"}


# -- the Faust table: its restore and its local store across rebalances ------------------------


@dataclass
class _Message:
    key: bytes
    value: bytes | None
    partition: int
    headers: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass
class _Event:
    message: _Message

    @property
    def key(self) -> bytes:
        return self.message.key

    @property
    def value(self) -> bytes | None:
        return self.message.value


def _event(key: bytes, value: bytes | None, stamp: Stamp, partition: int = 0) -> _Event:
    return _Event(_Message(key, value, partition, [(STAMP_HEADER, pack_stamp(stamp))]))


@pytest.fixture
def faust_app() -> object:
    import faust

    app = faust.App("orderwatch-test-stamped", store="memory://", autodiscover=False)
    return app


def _stamped(app: object) -> StampedTable:
    table = StampedTable(app, name="orders", key_type=bytes, value_type=bytes, partitions=4)
    table.partition_of = lambda key: int(key[:1])
    return table


def test_the_faust_table_restores_by_stamp(faust_app: object) -> None:
    table = _stamped(faust_app)
    for records in itertools.islice(_interleavings(OLD + LATE, NEW), 0, None, 7):
        fresh = _stamped(faust_app)
        fresh.apply_changelog_batch([_event(b"0" + k, v, s) for k, v, s in records])
        assert dict(fresh.data.data) == {b"0a": b"new-3", b"0b": b"b-old"}
    # Records split over several batches, as recovery reads them.
    events = [_event(b"0" + k, v, s) for k, v, s in OLD + NEW + LATE]
    for index in range(0, len(events), 2):
        table.apply_changelog_batch(events[index : index + 2])
    assert dict(table.data.data) == {b"0a": b"new-3", b"0b": b"b-old"}
    assert set(table.stamps.shadowed) == {b"0a", b"0c"}  # their last record is a stale one


def test_a_partition_that_moves_is_dropped_from_the_local_store(faust_app: object) -> None:
    table = _stamped(faust_app)
    durable = DurableTable(table, lambda key: int(key[:1]), _Changelog().send)
    durable[b"0-kept"] = b"x"
    durable[b"1-moved"] = b"y"
    asyncio.run(durable.flush((5, 1)))
    table.drop_partitions({0})
    assert dict(table.data.data) == {b"0-kept": b"x"}
    # The moved partition's stamps went with it: a record of generation 2 applies again.
    table.apply_changelog_batch([_event(b"1-moved", b"older", (2, 1), 1)])
    assert dict(table.data.data) == {b"0-kept": b"x", b"1-moved": b"older"}
    # The kept one's did not: an older record is refused.
    table.apply_changelog_batch([_event(b"0-kept", b"older", (2, 1))])
    assert table.data.data[b"0-kept"] == b"x"


def test_a_repair_rewrites_the_keys_a_late_record_shadowed(faust_app: object) -> None:
    table = _stamped(faust_app)
    changelog = _Changelog()
    durable = DurableTable(table, lambda key: int(key[:1]), changelog.send)
    events = [_event(b"0" + k, v, s) for k, v, s in OLD + NEW + LATE]
    table.apply_changelog_batch(events)
    assert asyncio.run(durable.repair((9, 1), {1})) == 0  # not an owned partition
    assert asyncio.run(durable.repair((9, 2), {0})) == 2
    assert sorted(changelog.sent) == [(b"0a", b"new-3", 0), (b"0c", None, 0)]
    assert changelog.stamps == [(9, 2), (9, 2)]
    assert not table.stamps.shadowed


def test_deletions_stamps_are_kept_only_until_the_restore_completes() -> None:
    """Deleted keys' stamps do not pile up: the next restore reads the tombstones again."""
    stamps = Stamps()
    assert stamps.admit(b"gone", (2, 1), 0)  # a tombstone read in a restore
    assert stamps.admit(b"live", (2, 2), 0)
    assert not stamps.admit(b"gone", (1, 9), 0)  # a late stale record, in the same restore
    stamps.settle([b"live"])
    assert stamps.known() == [b"live"]
    stamps.wrote(b"live", (3, 1), deleted=True)
    assert stamps.known() == []
