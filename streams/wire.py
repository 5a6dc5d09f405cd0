"""The worker's internal message formats: facts with their sender's clock, clocks, advances.

Internal topics carry small binary envelopes around the core's codecs: a kind byte and the
sender's clock (microseconds since the epoch), then the payload. Only orderwatch reads them.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta
from typing import Final

from streams.core.timeutil import EPOCH

__all__ = [
    "ADVANCE",
    "FACT",
    "INVENTORY",
    "from_micros",
    "pack",
    "pack_clock",
    "to_micros",
    "unpack",
    "unpack_clock",
]

FACT: Final = b"F"
INVENTORY: Final = b"I"
ADVANCE: Final = b"A"
_HEADER: Final = struct.Struct(">cq")
_CLOCK: Final = struct.Struct(">qq")


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
    if kind not in (FACT, INVENTORY, ADVANCE):
        raise ValueError(f"not an orderwatch envelope: kind {kind!r}")
    return kind, from_micros(micros), data[_HEADER.size :]


def pack_clock(value: datetime, max_seen: datetime) -> bytes:
    """A partition's event-time clock as stored in the clocks table."""
    return _CLOCK.pack(to_micros(value), to_micros(max_seen))


def unpack_clock(data: bytes) -> tuple[datetime, datetime]:
    """(clock, largest occurred_at seen) from :func:`pack_clock`."""
    value, max_seen = _CLOCK.unpack(data)
    return from_micros(value).astimezone(UTC), from_micros(max_seen).astimezone(UTC)
