"""The worker's internal message formats: facts, forwarded events, clocks and watermarks.

Internal topics carry small binary envelopes around the core's codecs: a kind byte and a time
(microseconds since the epoch: the item's event time, an ``advance-clock`` target, a source's
watermark, or the floor an idle input is lifted to), then the payload. Only orderwatch reads them.
"""

from __future__ import annotations

import struct
from datetime import datetime, timedelta
from typing import Final

from streams.core.timeutil import EPOCH

__all__ = [
    "ADVANCE",
    "FACT",
    "IDLE",
    "INVENTORY",
    "WATERMARK",
    "from_micros",
    "pack",
    "to_micros",
    "unpack",
]

FACT: Final = b"F"
INVENTORY: Final = b"I"
ADVANCE: Final = b"A"
WATERMARK: Final = b"W"
IDLE: Final = b"D"
_HEADER: Final = struct.Struct(">cq")


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
    if kind not in (FACT, INVENTORY, ADVANCE, WATERMARK, IDLE):
        raise ValueError(f"not an orderwatch envelope: kind {kind!r}")
    return kind, from_micros(micros), data[_HEADER.size :]
