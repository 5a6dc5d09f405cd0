"""The worker's state tables: changelog records reach the producer before a message is done."""

from __future__ import annotations

import asyncio
import gc
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from streams.worker import tables
from streams.worker.backends import StoreFailure
from streams.worker.tables import (
    STAMP_HEADER,
    UNSTAMPED,
    DurableTable,
    Stamp,
    StampedTable,
    Stamps,
    StateStore,
    index_of,
    newest_by_stamp,
    pack_stamp,
    stamp_of,
    stored_stamp,
    stored_value,
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


class _MemoryStore:
    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}


class _FaustTable:
    def __init__(self) -> None:
        self.data = _MemoryStore()
        self.changelog_topic = _Changelog()

    def local(self) -> dict[bytes, bytes]:
        """What the local store holds, without the stamps."""
        return {key: stored_value(raw) for key, raw in self.data.data.items()}


def _durable() -> tuple[DurableTable, _FaustTable]:
    faust_table = _FaustTable()
    changelog = faust_table.changelog_topic
    return DurableTable(faust_table, lambda key: len(key) % 4, changelog.send), faust_table


def test_writes_are_stored_and_sent_only_when_flushed() -> None:
    table, faust_table = _durable()
    table[b"a"] = b"1"
    table[b"a"] = b"2"
    table[b"bb"] = b"3"
    assert table.get(b"a") == b"2"
    assert sorted(table.keys()) == [b"a", b"bb"]
    assert faust_table.local() == {}
    assert faust_table.changelog_topic.sent == []
    assert table.pending == 2
    asyncio.run(table.flush(STAMP))
    assert faust_table.local() == {b"a": b"2", b"bb": b"3"}
    assert {stored_stamp(raw) for raw in faust_table.data.data.values()} == {STAMP}
    # One record per key, its latest value, on the key's partition.
    assert sorted(faust_table.changelog_topic.sent) == [(b"a", b"2", 1), (b"bb", b"3", 2)]
    assert table.pending == 0
    assert table.get(b"a") == b"2"


def test_a_pop_sends_a_tombstone_and_a_missing_key_sends_nothing() -> None:
    table, faust_table = _durable()
    table[b"a"] = b"1"
    asyncio.run(table.flush(STAMP))
    assert table.pop(b"a") == b"1"
    assert table.get(b"a") is None
    assert list(table.keys()) == []
    assert table.pop(b"zz", b"default") == b"default"
    assert faust_table.local() == {b"a": b"1"}  # until the flush
    asyncio.run(table.flush(STAMP))
    assert faust_table.local() == {}
    assert faust_table.changelog_topic.sent == [(b"a", b"1", 1), (b"a", None, 1)]


def test_a_fenced_writer_stores_nothing_of_what_it_discards() -> None:
    table, faust_table = _durable()
    table[b"a"] = b"1"
    table.discard()
    asyncio.run(table.flush(STAMP))
    assert faust_table.local() == {}
    assert faust_table.changelog_topic.sent == []


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
    assert faust_table.local() == {}  # encoded at the flush, not before
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


def test_a_peek_reads_a_state_without_keeping_it_and_sees_unflushed_changes() -> None:
    """The state queries read with peek: the worker's cache and dirty set stay as they were."""
    table, _ = _durable()
    decoded: list[bytes] = []

    def decode(raw: bytes) -> Any:
        decoded.append(raw)
        return int(raw)

    store: StateStore[int] = StateStore(table, lambda state: str(state).encode(), decode)
    store.put("k", 7)
    asyncio.run(store.flush(STAMP))
    store.forget()
    assert (store.peek("k"), store.peek("k"), decoded) == (7, 7, [b"7", b"7"])  # not cached
    assert store.peek("none") is None
    store.put("new", 1)  # changed, not flushed: seen, and still to be written
    assert (store.peek("new"), store.peek_keys()) == (1, {"k", "new"})
    assert store.is_dirty("new")
    assert not store.is_dirty("k")


def test_a_store_keeps_at_most_so_many_decoded_states(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tables, "CACHED_STATES", 2)
    table, _ = _durable()
    decoded: list[bytes] = []

    def decode(raw: bytes) -> Any:
        decoded.append(raw)
        return int(raw)

    store: StateStore[int] = StateStore(table, lambda state: str(state).encode(), decode)
    store.put("a", 1)
    store.put("b", 2)
    asyncio.run(store.flush(STAMP))
    assert (store.get("a"), store.get("b"), decoded) == (1, 2, [])  # within the bound: kept
    store.put("c", 3)
    asyncio.run(store.flush(STAMP))
    assert (store.get("a"), store.get("c"), decoded) == (1, 3, [b"1", b"3"])  # read again


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

#: A changelog record: key, value (None deletes), stamp.
Record = tuple[bytes, bytes | None, Stamp]

# One key's history: the worker that owned it in generation 1 wrote it twice, then froze; the
# owner of generation 2 wrote it (then deleted, then wrote it again); the frozen worker's last
# write (still generation 1) was sent when it resumed. "b" was only ever written by the old
# owner, "c" deleted by the new one after the old owner wrote it.
OLD: list[Record] = [(b"a", b"old-1", (1, 1)), (b"a", b"old-2", (1, 2)), (b"b", b"b-old", (1, 3))]
NEW: list[Record] = [
    (b"a", b"new-1", (2, 1)),
    (b"a", None, (2, 2)),
    (b"a", b"new-3", (2, 3)),
    (b"c", None, (2, 4)),
]
LATE: list[Record] = [(b"a", b"stale", (1, 4)), (b"c", b"c-stale", (1, 5))]


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


def _expected(records: list[tuple[bytes, bytes | None, Stamp]]) -> dict[bytes, bytes]:
    """The new owner's state, and "b" if the old owner's write of it landed before the new
    owner's first record (after it, it is a fenced writer's: its batch was never acknowledged,
    and the new owner handles that input again)."""
    first_new = next(n for n, (_, _, stamp) in enumerate(records) if stamp[0] == 2)
    b_old = next(n for n, (key, _, _) in enumerate(records) if key == b"b")
    return {b"a": b"new-3", **({b"b": b"b-old"} if b_old < first_new else {})}


def test_a_restore_keeps_the_newest_stamp_however_the_records_were_interleaved() -> None:
    """The old owner's records (its late ones included) and the new owner's, merged in every
    order a log can hold them: the restore always yields the new owner's state."""
    orders = _interleavings(OLD + LATE, NEW)
    assert len(orders) > 100
    assert {len(_expected(records)) for records in orders} == {1, 2}
    for records in orders:
        assert newest_by_stamp(records) == _expected(records), records


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
    offset: int = 0


@dataclass
class _Event:
    message: _Message

    @property
    def key(self) -> bytes:
        return self.message.key

    @property
    def value(self) -> bytes | None:
        return self.message.value


def _event(
    key: bytes, value: bytes | None, stamp: Stamp, partition: int = 0, offset: int = 0
) -> _Event:
    return _Event(_Message(key, value, partition, [(STAMP_HEADER, pack_stamp(stamp))], offset))


def _events(records: list[tuple[bytes, bytes | None, Stamp]]) -> list[_Event]:
    """Records of partition 0 (their keys prefixed "0"), at consecutive offsets."""
    return [_event(b"0" + k, v, s, 0, n) for n, (k, v, s) in enumerate(records)]


@pytest.fixture(params=["memory", "rocksdb"])
def store_url(request: pytest.FixtureRequest) -> str:
    return f"{request.param}://"


def _app(url: str, directory: Path) -> Any:
    import faust

    return faust.App(
        "orderwatch-test-stamped", store=url, datadir=str(directory), autodiscover=False
    )


def _stamped(app: Any) -> tuple[StampedTable, DurableTable, _Changelog]:
    """A stamped table over ``app``'s store; keys' partitions are their first digit."""
    table = StampedTable(app, name="orders", key_type=bytes, value_type=bytes, partitions=4)
    changelog = _Changelog()
    durable = DurableTable(table, lambda key: int(key[:1]), changelog.send)
    table.owned = {0, 1, 2, 3}
    return table, durable, changelog


def _local(durable: DurableTable) -> dict[bytes, bytes | None]:
    return {key: durable.get(key) for key in durable.keys()}  # noqa: SIM118


def test_the_faust_table_restores_by_stamp(store_url: str, tmp_path: Path) -> None:
    app = _app(store_url, tmp_path)
    for number, records in enumerate(
        itertools.islice(_interleavings(OLD + LATE, NEW), 0, None, 37)
    ):
        fresh, durable, _ = _stamped(_app(store_url, tmp_path / str(number)))
        fresh.apply_changelog_batch(_events(records))
        assert _local(durable) == {b"0" + k: v for k, v in _expected(records).items()}
    # Records split over several batches, as recovery reads them.
    table, durable, _ = _stamped(app)
    events = _events(OLD + NEW + LATE)
    for index in range(0, len(events), 2):
        table.apply_changelog_batch(events[index : index + 2])
    assert _local(durable) == {b"0a": b"new-3", b"0b": b"b-old"}
    assert set(table.stamps.shadowed) == {b"0a", b"0c"}  # their last record is a stale one


def test_a_partition_that_moves_is_dropped_from_a_memory_store(tmp_path: Path) -> None:
    table, durable, _ = _stamped(_app("memory://", tmp_path))
    durable[b"0-kept"] = b"x"
    durable[b"1-moved"] = b"y"
    asyncio.run(durable.flush((5, 1)))
    table.drop_partitions({0})
    assert _local(durable) == {b"0-kept": b"x"}
    # The moved partition is read again from its changelog's start.
    table.apply_changelog_batch([_event(b"1-moved", b"older", (2, 1), 1)])
    assert _local(durable) == {b"0-kept": b"x", b"1-moved": b"older"}
    # The kept one's stamp stayed with its value: an older record is refused.
    table.apply_changelog_batch([_event(b"0-kept", b"older", (2, 1))])
    assert durable.get(b"0-kept") == b"x"


def test_a_memory_store_keeps_its_standby_partitions_and_resumes_them_where_they_stood(
    tmp_path: Path,
) -> None:
    """A standby that takes a partition over reads only what its copy lacks; a partition
    neither owned nor stood by is dropped, and read again from the log's start."""
    app = _app("memory://", tmp_path)
    table, durable, _ = _stamped(app)
    changelog = table.changelog_topic_name
    assignment = {"actives": {0}, "standbys": {1}}
    assignor: Any = app.assignor
    assignor.assigned_actives = lambda: {TP(changelog, p) for p in assignment["actives"]}
    assignor.assigned_standbys = lambda: {TP(changelog, p) for p in assignment["standbys"]}
    asyncio.run(table.on_rebalance(set(), set(), set()))
    table.apply_changelog_batch(
        [_event(b"0-own", b"a", (2, 1), 0, 4), _event(b"1-standby", b"b", (2, 1), 1, 7)]
    )
    table.apply_changelog_batch([_event(b"2-gone", b"c", (2, 1), 2, 3)])  # held before

    assignment.update(actives={0, 1}, standbys=set())  # the standby takes partition 1 over
    asyncio.run(table.on_rebalance(set(), set(), set()))
    assert _local(durable) == {b"0-own": b"a", b"1-standby": b"b"}
    assert table.persisted_offset(TP(changelog, 1)) == 7  # resumed after what it holds
    assert table.persisted_offset(TP(changelog, 0)) == 4
    assert table.persisted_offset(TP(changelog, 2)) is None  # read from the start

    assignment.update(actives={1}, standbys=set())  # partition 0 moves away
    asyncio.run(table.on_rebalance(set(), set(), set()))
    assert _local(durable) == {b"1-standby": b"b"}
    assert table.persisted_offset(TP(changelog, 0)) is None


def test_a_repair_rewrites_the_keys_a_late_record_shadowed(store_url: str, tmp_path: Path) -> None:
    table, durable, changelog = _stamped(_app(store_url, tmp_path))
    table.apply_changelog_batch(_events(OLD + NEW + LATE))
    assert asyncio.run(durable.repair((9, 1), {1})) == 0  # not an owned partition
    assert asyncio.run(durable.repair((9, 2), {0})) == 2
    assert sorted(changelog.sent) == [(b"0a", b"new-3", 0), (b"0c", None, 0)]
    assert changelog.stamps == [(9, 2), (9, 2)]
    assert not table.stamps.shadowed


def test_deletions_stamps_are_kept_only_until_the_restore_completes() -> None:
    """Deleted keys' stamps do not pile up: a restore from the start reads the tombstones again."""
    stamps = Stamps()
    assert stamps.admit(b"gone", (2, 1), 0, None, deletes=True)  # a tombstone, in a restore
    assert not stamps.admit(b"gone", (1, 9), 0, None, deletes=False)  # a late stale record
    assert stamps.admit(b"live", (2, 2), 0, None, deletes=False)
    assert not stamps.admit(b"live", (2, 1), 0, (2, 2), deletes=False)  # its value's stamp
    stamps.settle()
    assert stamps.deleted == {}
    assert stamps.admit(b"gone", (1, 9), 0, None, deletes=False)


# -- RocksDB: written outside any event, kept across restarts --------------------------------


def test_rocksdb_is_written_by_key_partition_outside_any_event(tmp_path: Path) -> None:
    """Faust's RocksDB store asserts a current event on every write: the worker writes after
    the batch, by the key's own partition."""
    table, durable, _ = _stamped(_app("rocksdb://", tmp_path))
    durable[b"0-a"] = b"x"
    durable[b"3-b"] = b"y"
    asyncio.run(durable.flush((5, 1)))
    backend = durable.backend  # one database per partition
    assert [(key, stored_value(raw)) for key, raw in backend.items({0})] == [(b"0-a", b"x")]
    assert [(key, stored_value(raw)) for key, raw in backend.items({3})] == [(b"3-b", b"y")]
    assert sorted(durable.keys()) == [b"0-a", b"3-b"]
    table.owned = {3}
    assert list(durable.keys()) == [b"3-b"]


def test_rocksdb_keeps_state_stamps_and_offsets_across_a_restart(tmp_path: Path) -> None:
    """A restart reads only the changelog records written after the offset the disk holds,
    and a late stale record among them still loses to the newer state on disk."""
    table, durable, _ = _stamped(_app("rocksdb://", tmp_path))
    table.apply_changelog_batch(_events(OLD + NEW))
    assert table.persisted_offset(TP(table.changelog_topic_name, 0)) == len(OLD + NEW) - 1
    del table, durable
    gc.collect()  # Faust leaves closing a partition's database to the collector

    table, durable, _ = _stamped(_app("rocksdb://", tmp_path))
    assert table.persisted_offset(TP(table.changelog_topic_name, 0)) == len(OLD + NEW) - 1
    assert _local(durable) == {b"0a": b"new-3", b"0b": b"b-old"}
    table.apply_changelog_batch([_event(b"0a", b"stale", (1, 4), 0, 7)])
    assert durable.get(b"0a") == b"new-3"
    assert table.stamps.shadowed == {b"0a": 0}


def test_a_restore_resuming_after_a_tombstone_still_refuses_a_fenced_writers_record(
    tmp_path: Path,
) -> None:
    """The new owner deleted "c"; the restart resumes after the tombstone (its stamp is gone
    with the key), and the old owner's late write of "c" must not bring it back."""
    table, durable, _ = _stamped(_app("rocksdb://", tmp_path))
    table.apply_changelog_batch(_events(OLD + NEW))
    assert b"0c" not in _local(durable)
    del table, durable
    gc.collect()

    table, durable, _ = _stamped(_app("rocksdb://", tmp_path))
    assert durable.backend.held(0) == (len(OLD + NEW) - 1, 2)
    table.apply_changelog_batch([_event(b"0c", b"c-stale", (1, 5), 0, len(OLD + NEW))])
    assert _local(durable) == {b"0a": b"new-3", b"0b": b"b-old"}
    assert table.stamps.shadowed == {b"0c": 0}  # its owner writes its tombstone again


def _deferred(durable: DurableTable) -> list[asyncio.Future[Any]]:
    """Make ``durable`` send into futures the test resolves as the broker would."""
    deliveries: list[asyncio.Future[Any]] = []

    async def send(*_: Any) -> asyncio.Future[Any]:
        delivery: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        deliveries.append(delivery)
        return delivery

    durable._send = send
    return deliveries


async def _turns(n: int = 3) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def test_a_write_is_stored_locally_only_once_the_changelog_has_it(tmp_path: Path) -> None:
    """Killed between the send and its delivery, a worker finds its store behind the log,
    never ahead of it; reads see the write meanwhile."""
    table, durable, _ = _stamped(_app("rocksdb://", tmp_path))
    deliveries = _deferred(durable)
    tp = TP(table.changelog_topic_name, 2)

    async def write() -> None:
        durable[b"2-a"] = b"x"
        await durable.flush((5, 1))
        await _turns()
        assert durable.backend.get(b"2-a") is None  # handed over, not yet acknowledged
        assert durable.get(b"2-a") == b"x"
        assert durable.in_flight == 1
        deliveries[0].set_result(SimpleNamespace(partition=2, offset=0))
        await _turns()

    asyncio.run(write())
    assert durable.in_flight == 0
    assert _local(durable) == {b"2-a": b"x"}
    assert table.persisted_offset(tp) == 0


def test_a_failed_delivery_is_never_stored(tmp_path: Path) -> None:
    table, durable, _ = _stamped(_app("rocksdb://", tmp_path))
    deliveries = _deferred(durable)

    async def write() -> None:
        durable[b"2-a"] = b"x"
        await durable.flush((5, 1))
        deliveries[0].set_exception(RuntimeError("broker gone"))
        await _turns()

    asyncio.run(write())
    assert durable.backend.get(b"2-a") is None
    assert table.persisted_offset(TP(table.changelog_topic_name, 2)) is None


def test_the_held_offset_moves_only_over_records_read_or_written_in_turn(tmp_path: Path) -> None:
    """After offset 7, this worker's records at 8 and 9 move it; one at 12 (another writer's
    landed at 10 and 11) does not, nor any after it: a restart reads from 10 again."""
    table, durable, _ = _stamped(_app("rocksdb://", tmp_path))
    table.apply_changelog_batch([_event(b"2-z", b"old", (1, 1), 2, 7)])
    deliveries = _deferred(durable)
    tp = TP(table.changelog_topic_name, 2)

    async def write() -> None:
        for n, offset in enumerate((8, 9, 12, 13)):
            durable[b"2-a"] = f"v{n}".encode()
            await durable.flush((5, n))
            deliveries[n].set_result(SimpleNamespace(partition=2, offset=offset))
            await _turns()
            if offset == 9:
                assert table.persisted_offset(tp) == 9

    asyncio.run(write())
    assert table.persisted_offset(tp) == 9
    assert durable.backend.held(2) == (9, 5)  # its generation, besides the offset
    assert durable.get(b"2-a") == b"v3"  # stored all the same


def test_a_late_delivery_does_not_store_over_a_newer_state(tmp_path: Path) -> None:
    """Its partition restored meanwhile with another owner's newer write, a record of this
    worker acknowledged late is not stored over it."""
    table, durable, _ = _stamped(_app("rocksdb://", tmp_path))
    deliveries = _deferred(durable)

    async def write() -> None:
        durable[b"2-a"] = b"mine"
        await durable.flush((5, 1))
        table.apply_changelog_batch([_event(b"2-a", b"theirs", (6, 1), 2, 3)])
        assert durable.get(b"2-a") == b"theirs"  # newer than what is still in flight
        deliveries[0].set_result(SimpleNamespace(partition=2, offset=4))
        await _turns()

    asyncio.run(write())
    assert _local(durable) == {b"2-a": b"theirs"}


def test_a_failing_disk_is_a_store_failure_not_a_bad_message(tmp_path: Path) -> None:
    table, durable, _ = _stamped(_app("rocksdb://", tmp_path))
    store: Any = table.data
    # Where partition 1's database would be created, a file: RocksDB cannot open it.
    path = store.partition_path(1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a database")
    with pytest.raises(StoreFailure, match="the local state store failed to read"):
        durable.get(b"1-a")
    durable[b"1-a"] = b"x"
    with pytest.raises(StoreFailure, match="the local state store failed"):
        asyncio.run(durable.flush((5, 1)))  # stored once delivered: at once here


# -- an index stored beside each value ---------------------------------------------------------


def test_an_index_is_stored_and_sent_beside_its_value_and_restored_with_it(
    store_url: str, tmp_path: Path
) -> None:
    _, durable, changelog = _stamped(_app(store_url, tmp_path))
    sent_headers: list[list[tuple[str, bytes]]] = []

    async def send(
        topic: str, key: bytes, value: bytes | None, partition: int, headers: Any
    ) -> None:
        sent_headers.append(headers)
        await changelog.send(topic, key, value, partition, headers)

    durable._send = send
    durable.put(b"0-a", b"value", b"idx")
    durable[b"0-b"] = b"plain"
    assert sorted(durable.indexed()) == [(b"0-a", b"idx"), (b"0-b", b"")]  # pending
    asyncio.run(durable.flush((5, 1)))
    assert sorted(durable.indexed()) == [(b"0-a", b"idx"), (b"0-b", b"")]  # stored
    assert durable.get(b"0-a") == b"value"
    assert index_of(sent_headers[0]) == b"idx"
    assert index_of(sent_headers[1]) == b""

    # Another worker restores the records, headers included.
    other, restored, _ = _stamped(_app(store_url, tmp_path / "other"))
    records = [
        _Event(_Message(key, value, 0, headers, offset))
        for offset, ((key, value, _), headers) in enumerate(
            zip(changelog.sent, sent_headers, strict=True)
        )
    ]
    other.apply_changelog_batch(records)
    assert sorted(restored.indexed()) == [(b"0-a", b"idx"), (b"0-b", b"")]
    assert restored.get(b"0-a") == b"value"
    with pytest.raises(ValueError, match="at most 255"):
        durable.put(b"0-c", b"v", b"x" * 256)


def test_a_store_rebuilds_its_index_from_the_states_it_has_not_written_yet() -> None:
    table, _ = _durable()
    store: StateStore[int] = StateStore(
        table, lambda state: str(state).encode(), int, lambda state: bytes([state])
    )
    store.put("k", 7)
    assert store.indexed() == [("k", b"\x07")]
    asyncio.run(store.flush(STAMP))
    store.put("k", 9)
    assert store.indexed() == [("k", b"\x09")]
    asyncio.run(store.flush(STAMP))
    assert store.indexed() == [("k", b"\x09")]
