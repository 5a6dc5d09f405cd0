"""The worker's internal message formats: facts, forwarded events, clocks and watermarks.

Internal topics carry small binary envelopes around the core's codecs: a kind byte and a time
(microseconds since the epoch: the item's event time, an ``advance-clock`` target, a source's
watermark, or the floor an idle input is lifted to), then the payload. A batch envelope
(:data:`BATCH`) carries several of those, each length-prefixed: a batch's facts for one aggregate
partition, sent as one message. Only orderwatch reads them.
"""

from __future__ import annotations

import struct
from datetime import datetime, timedelta
from typing import Final

from streams.core.dates import EPOCH

__all__ = [
    "ADVANCE",
    "BATCH",
    "FACT",
    "IDLE",
    "INVENTORY",
    "WATERMARK",
    "from_micros",
    "pack",
    "pack_batch",
    "split_batch",
    "to_micros",
    "unpack",
]

FACT: Final = b"F"
INVENTORY: Final = b"I"
ADVANCE: Final = b"A"
WATERMARK: Final = b"W"
IDLE: Final = b"D"
#: Several envelopes for one aggregate partition, sent as one message (a batch's facts).
BATCH: Final = b"B"
_HEADER: Final = struct.Struct(">cq")
_LENGTH: Final = struct.Struct(">I")


def to_micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch (UTC)."""
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    """The UTC datetime ``micros`` microseconds after the Unix epoch."""
    return EPOCH + timedelta(microseconds=micros)


def pack(kind: bytes, clock: datetime, payload: bytes = b"") -> bytes:
    """An envelope: kind, the sender's clock, the payload."""
    return _HEADER.pack(kind, to_micros(clock)) + payload


def unpack(data: bytes) -> tuple[bytes, datetime, bytes]:
    """(kind, sender's clock, payload) of an envelope; ValueError if it is not one."""
    if len(data) < _HEADER.size:
        raise ValueError("not an orderwatch envelope: too short")
    kind, micros = _HEADER.unpack_from(data)
    if kind not in (FACT, INVENTORY, ADVANCE, WATERMARK, IDLE, BATCH):
        raise ValueError(f"not an orderwatch envelope: kind {kind!r}")
    return kind, from_micros(micros), data[_HEADER.size :]


def pack_batch(clock: datetime, envelopes: list[bytes]) -> bytes:
    """One envelope carrying ``envelopes`` (each length-prefixed), at the sender's clock."""
    parts = [_HEADER.pack(BATCH, to_micros(clock))]
    for envelope in envelopes:
        parts.append(_LENGTH.pack(len(envelope)))
        parts.append(envelope)
    return b"".join(parts)


def split_batch(payload: bytes) -> list[bytes]:
    """The envelopes of a :data:`BATCH` envelope's payload; ValueError if it is cut short."""
    envelopes = []
    at, end = 0, len(payload)
    while at < end:
        if at + _LENGTH.size > end:
            raise ValueError("not an orderwatch batch: a length is cut short")
        (size,) = _LENGTH.unpack_from(payload, at)
        at += _LENGTH.size
        if at + size > end:
            raise ValueError("not an orderwatch batch: an envelope is cut short")
        envelopes.append(payload[at : at + size])
        at += size
    return envelopes
