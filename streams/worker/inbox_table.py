"""A worker's aggregate inputs, kept in its changelogged inbox table between runs.

What waits for which watermark is the core's (:class:`~streams.core.inbox.AggregateInbox`, in
the :class:`~streams.core.processor.PartitionProcessor`); :class:`TableInbox` is the processor's
:class:`~streams.core.processor.InboxKeeper` in the worker: it writes each input that starts to
wait, and each watermark that moves, to the inbox table, so neither is lost when the worker
stops or the partition moves, and reads them back (:meth:`TableInbox.restore`).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from streams.core import state_codec
from streams.core.events import InventoryUpdated, decode_event
from streams.core.sequencer import Item, position
from streams.worker import wire

__all__ = ["Ref", "TableInbox", "decode_item"]

_MICROS = struct.Struct(">q")


class Table(Protocol):
    """Where waiting items and watermarks are kept: a dict, or the worker's durable table."""

    def get(self, key: bytes, /) -> bytes | None: ...

    def __setitem__(self, key: bytes, value: bytes, /) -> None: ...


class Ref(NamedTuple):
    """Where a read came from: its Kafka message, and the envelope of an aggregate input
    (one of a batch's, or None: the message's own value is the input)."""

    message: Any
    envelope: bytes | None = None


class TableInbox:
    """One aggregate partition's waiting inputs and watermarks, in the inbox table (keys start
    with the partition: ``<p>/i/...`` for inputs, ``<p>/w/<source>`` for watermarks)."""

    def __init__(self, partition: int, table: Table) -> None:
        self._prefix = f"{partition}/"
        self._table = table

    def keep(self, item: Item, ref: Ref) -> bytes:
        """Write an input that starts to wait; its key, released with it."""
        envelope = ref.envelope
        if envelope is None:  # a stock level read on the inventory topic
            assert isinstance(item, InventoryUpdated)
            envelope = wire.pack(wire.INVENTORY, item.occurred_at, ref.message.value or b"")
        digest = hashlib.blake2b(envelope, digest_size=8).hexdigest()
        at, rank, tiebreak = position(item)
        key = f"{self._prefix}i/{wire.to_micros(at):020d}/{rank}/{tiebreak}/{digest}".encode()
        self._table[key] = envelope
        return key

    def keep_watermark(self, source: str, watermark: datetime) -> None:
        self._table[f"{self._prefix}w/{source}".encode()] = _MICROS.pack(wire.to_micros(watermark))

    def restore(
        self, keys: Iterable[bytes]
    ) -> tuple[list[tuple[bytes, Item]], dict[str, datetime]]:
        """What the table keeps for this partition: its waiting inputs (with their keys) and
        its sources' watermarks."""
        table, prefix = self._table, self._prefix
        waiting: list[tuple[bytes, Item]] = []
        watermarks: dict[str, datetime] = {}
        for key in keys:
            text = key.decode("utf-8")
            if not text.startswith(prefix):
                continue
            value = table.get(key)
            if value is None:
                continue
            if text.startswith("w/", len(prefix)):
                watermarks[text[len(prefix) + 2 :]] = wire.from_micros(_MICROS.unpack(value)[0])
            else:
                waiting.append((key, decode_item(value)))
        return waiting, watermarks


def decode_item(envelope: bytes) -> Item:
    """The stock level or fact an aggregate-inputs envelope carries."""
    kind, _, payload = wire.unpack(envelope)
    if kind == wire.INVENTORY:
        event = decode_event(payload)
        if not isinstance(event, InventoryUpdated):
            raise ValueError("an inventory envelope without an inventory.updated event")
        return event
    return state_codec.decode_fact(payload)
