"""Contract §3 (dead letter), §5: any line is processed or rejected exactly once, never a crash."""

from __future__ import annotations

from hypothesis import assume, given
from hypothesis import strategies as st
from orderwatch_lives import (
    POLICY,
    Event,
    in_time_order,
    mutated_line,
    several_orders,
    single_order,
)

from streams.core.event_clock import from_the_future
from streams.core.events import decode_event
from streams.core.output_json import MAX_RAW_BYTES, serialize
from streams.core.outputs import EventRejected, FileSource, OutputEvent, Rejection
from streams.replay import replay_lines

SOURCE = "events.jsonl"


def _replay(lines: list[bytes]) -> list[OutputEvent]:
    outputs: list[OutputEvent] = []
    replay_lines(lines, outputs.append, policy=POLICY, source_name=SOURCE)
    for output in outputs:
        serialize(output)  # every output must also be writable
    return outputs


def _assert_well_formed(rejected: EventRejected, line_number: int) -> None:
    assert rejected.source == FileSource(file=SOURCE, line=line_number)
    assert rejected.error.strip(), "the error must say what is wrong"
    assert rejected.error[0].isupper(), rejected.error
    assert rejected.error.endswith("."), rejected.error
    assert len(rejected.raw.encode("utf-8")) <= MAX_RAW_BYTES == 64 * 1024


def _assert_processed_or_rejected_once(outputs: list[OutputEvent]) -> None:
    """A single line gives normal outputs (no rejection), or exactly one rejection and nothing."""
    rejected = [output for output in outputs if isinstance(output, EventRejected)]
    if rejected:
        assert outputs == rejected, "a rejected line must not also be processed"
        assert len(rejected) == 1, "a line is rejected at most once"
        _assert_well_formed(rejected[0], line_number=1)


@given(line=st.binary())
def test_any_bytes_as_a_line_are_processed_or_rejected_exactly_once(line: bytes) -> None:
    _assert_processed_or_rejected_once(_replay([line]))


@given(data=st.data(), events=single_order())
def test_a_valid_event_with_one_field_broken_is_processed_or_rejected_exactly_once(
    data: st.DataObject, events: list[Event]
) -> None:
    line = data.draw(mutated_line(data.draw(st.sampled_from(events), label="event")), label="line")
    _assert_processed_or_rejected_once(_replay([line]))


@given(data=st.data(), events=several_orders())
def test_broken_lines_in_a_stream_are_rejected_where_they_are_and_the_rest_is_processed(
    data: st.DataObject, events: list[Event]
) -> None:
    lines = [event.line for event in in_time_order(events)]
    broken = data.draw(st.sets(st.integers(0, len(lines) - 1), max_size=4), label="broken")
    for index in broken:
        lines[index] = data.draw(mutated_line(in_time_order(events)[index]), label="line")
    unusable = set()
    latest = None  # a valid event far ahead of the ones before it is unusable too
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue  # blank lines are skipped
        decoded = decode_event(line)
        if isinstance(decoded, Rejection) or from_the_future(decoded.occurred_at, latest, POLICY):
            unusable.add(number)
        else:
            latest = max(latest or decoded.occurred_at, decoded.occurred_at)

    outputs = _replay(lines)

    rejected = [output for output in outputs if isinstance(output, EventRejected)]
    lines_rejected = [r.source.line for r in rejected if isinstance(r.source, FileSource)]
    assert sorted(lines_rejected) == sorted(unusable)
    for output, number in zip(rejected, lines_rejected, strict=True):
        _assert_well_formed(output, number)


@given(
    chunk=st.binary(min_size=1, max_size=4),
    extra=st.integers(0, 2048),
    prefix=st.sampled_from((b"", b'{"event_id": "', b"\xef\xbb\xbf")),
)
def test_a_rejected_line_longer_than_64_kib_keeps_at_most_64_kib_of_raw(
    chunk: bytes, extra: int, prefix: bytes
) -> None:
    line = prefix + chunk * ((MAX_RAW_BYTES + extra) // len(chunk) + 1)
    assume(line.strip())  # a blank line is skipped, not rejected

    outputs = _replay([line])

    assert len(outputs) == 1, outputs
    assert isinstance(outputs[0], EventRejected), outputs
    _assert_well_formed(outputs[0], line_number=1)
