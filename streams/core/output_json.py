"""Output events as bytes on the wire: the one serialization both drivers use.

``orderwatch replay`` writes :func:`serialize`'s line to its output file, the worker the same
text (UTF-8) as a message value, so an output is byte-identical whichever driver produced it;
:func:`parse` reads such a line back. :func:`raw_text` is how an unusable input appears in
``event.rejected``'s ``raw``. Pure.
"""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import Field, TypeAdapter

from streams.core.outputs import EventRejected, OutputEvent

__all__ = ["MAX_RAW_BYTES", "parse", "raw_text", "serialize"]

#: The most of an unusable input an ``event.rejected`` carries, in UTF-8 bytes.
MAX_RAW_BYTES: Final = 64 * 1024

_OUTPUT_EVENT: Final = TypeAdapter[OutputEvent](Annotated[OutputEvent, Field(discriminator="type")])


def serialize(output: OutputEvent) -> str:
    """One output event as its JSON line (without the newline)."""
    if isinstance(output, EventRejected):
        return output.model_dump_json()
    return output.model_dump_json(exclude_none=True)


def parse(line: str | bytes) -> OutputEvent:
    """The output event of one JSON line :func:`serialize` wrote (by its ``type``)."""
    return _OUTPUT_EVENT.validate_json(line)


def raw_text(raw: bytes) -> str:
    """The original bytes as UTF-8 text (invalid bytes replaced), at most 64 KiB encoded."""
    text = raw[: MAX_RAW_BYTES * 2].decode("utf-8", errors="replace")
    encoded = text.encode("utf-8")
    if len(encoded) <= MAX_RAW_BYTES:
        return text
    return encoded[:MAX_RAW_BYTES].decode("utf-8", errors="ignore")
