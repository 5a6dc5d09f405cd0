"""A worker's aggregate inputs, per partition, kept in its changelogged inbox table.

What waits for which watermark is the core's :class:`~streams.core.inbox.AggregateInbox`; the
worker keeps its waiting items and the sources' watermarks in a changelogged table too, so
neither is lost when the worker stops or the partition moves.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from streams import wire
from streams.core import codec
from streams.core.events import InventoryUpdated, decode_event
from streams.core.inbox import (
    FACTS,
    SKU,
    AggregateInbox,
    group_of,
    inventory_source,
    order_source,
)
from streams.core.sequencer import Item, Sequencer, position

__all__ = [
    "FACTS",
    "SKU",
    "AppliedInputs",
    "PartitionInbox",
    "decode_item",
    "group_of",
    "inventory_source",
    "order_source",
]

_MICROS = struct.Struct(">q")


class Table(Protocol):
    """Where waiting items and watermarks are kept: a dict, or the worker's durable table."""

    def get(self, key: bytes, default: bytes | None = None, /) -> bytes | None: ...

    def __setitem__(self, key: bytes, value: bytes, /) -> None: ...


Entry = tuple[bytes | None, Item]
"""A waiting item and its key in the table (None: not kept, in wall-clock mode)."""


class PartitionInbox:
    """The waiting items, checks and source watermarks of one aggregate partition, with the
    table that keeps them."""

    def __init__(self, partition: int, partitions: int) -> None:
        self._prefix = f"{partition}/"
        self.waiting: AggregateInbox[Entry] = AggregateInbox(partitions)

    @property
    def sequencers(self) -> dict[str, Sequencer[Entry]]:
        return self.waiting.sequencers

    @property
    def watermarks(self) -> dict[str, datetime]:
        return self.waiting.watermarks

    def boundary(self, group: str) -> datetime | None:
        """The smallest watermark of the group's sources; None until every one has spoken."""
        return self.waiting.boundary(group)

    def add(self, item: Item, envelope: bytes, table: Table | None) -> str:
        """Queue an item (kept in ``table`` when given); the group it went to."""
        key = None
        if table is not None:
            digest = hashlib.blake2b(envelope, digest_size=8).hexdigest()
            at, rank, tiebreak = position(item)
            key = f"{self._prefix}i/{wire.to_micros(at):020d}/{rank}/{tiebreak}/{digest}".encode()
            table[key] = envelope
        return self.waiting.add(item, (key, item))

    def observe(self, source: str, watermark: datetime, table: Table | None) -> bool:
        """A source's announced watermark (kept in ``table`` when given); True when it moved."""
        moved = self.waiting.observe(source, watermark)
        if moved and table is not None:
            table[f"{self._prefix}w/{source}".encode()] = _MICROS.pack(wire.to_micros(watermark))
        return moved

    def restore(self, table: Table, keys: Iterable[bytes]) -> None:
        """Reload waiting items and watermarks from the table (after a rebalance or restart)."""
        for key in keys:
            text = key.decode("utf-8")
            if not text.startswith(self._prefix):
                continue
            value = table.get(key)
            if value is None:
                continue
            if text.startswith("w/", len(self._prefix)):
                source = text[len(self._prefix) + 2 :]
                self.watermarks[source] = wire.from_micros(_MICROS.unpack(value)[0])
            else:
                item = decode_item(value)
                self.sequencers[group_of(item)].add(position(item), (key, item))


def decode_item(envelope: bytes) -> Item:
    """The stock level or fact an aggregate-inputs envelope carries."""
    kind, _, payload = wire.unpack(envelope)
    if kind == wire.INVENTORY:
        event = decode_event(payload)
        if not isinstance(event, InventoryUpdated):
            raise ValueError("an inventory envelope without an inventory.updated event")
        return event
    return codec.decode_fact(payload)


class AppliedInputs:
    """Inbox keys applied while handling a message, kept until that message is committed.

    An input leaves the inbox table only once the message whose handling applied it is
    committed (Faust flushes the producer first, so the aggregate states it changed are in
    their changelogs by then). A worker that restarts from the last commit finds the input
    again and applies it again, which changes nothing: every aggregate input is idempotent.
    """

    def __init__(self) -> None:
        self._applied: dict[tuple[str, int], list[tuple[int, bytes]]] = {}
        self._committed: dict[tuple[str, int], int] = {}

    def note(self, topic: str, partition: int, offset: int, key: bytes) -> None:
        """``key`` was applied while handling ``topic[partition]@offset``."""
        self._applied.setdefault((topic, partition), []).append((offset, key))

    def committed(self, topic: str, partition: int, offset: int) -> None:
        """Faust committed ``offset`` (the next to read) of ``topic[partition]``."""
        self._committed[(topic, partition)] = offset

    def deletable(self, partition: int) -> list[bytes]:
        """Keys applied by committed messages of this partition (any topic); forgotten here."""
        keys: list[bytes] = []
        for source, applied in self._applied.items():
            committed = self._committed.get(source)
            if source[1] != partition or committed is None or not applied:
                continue
            keys += [key for offset, key in applied if offset < committed]
            self._applied[source] = [(o, key) for o, key in applied if o >= committed]
        return keys

    def clear(self) -> None:
        """Partitions moved: whoever owns them now finds the inputs in the table."""
        self._applied.clear()
