"""The worker's internal envelopes and its event-time partition clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from streams.core.event_clock import PartitionClock
from streams.worker import partition_for, wire
from streams.worker.stores import pack_clock as _pack_clock
from streams.worker.stores import unpack_clock as _unpack_clock

T0 = datetime(2026, 1, 5, 10, 0, 0, 123456, tzinfo=UTC)
LATENESS = timedelta(minutes=5)
INPUTS = frozenset({"orders", "tracking", "complaints"})


def test_an_envelope_keeps_its_kind_clock_and_payload() -> None:
    kind, clock, payload = wire.unpack(wire.pack(wire.FACT, T0, b'{"k":"demand"}'))
    assert (kind, clock, payload) == (wire.FACT, T0, b'{"k":"demand"}')


@pytest.mark.parametrize("data", [b"", b"F123", b"Z" + bytes(8) + b"{}"])
def test_what_is_not_an_envelope_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError, match="not an orderwatch envelope"):
        wire.unpack(data)


def test_the_clock_stands_still_until_every_input_topic_was_read() -> None:
    clock = PartitionClock()
    assert not clock.observe("orders", T0 + timedelta(days=3), LATENESS, INPUTS)
    assert not clock.observe("tracking", T0 + timedelta(days=2), LATENESS, INPUTS)
    assert clock.value == datetime(1970, 1, 1, tzinfo=UTC)
    assert clock.observe("complaints", T0 + timedelta(days=1), LATENESS, INPUTS)
    assert clock.value == T0 + timedelta(days=1) - LATENESS


def test_the_clock_follows_the_slowest_topic_and_never_goes_back() -> None:
    clock = PartitionClock()
    for topic in ("orders", "tracking", "complaints"):
        clock.observe(topic, T0, LATENESS, INPUTS)
    assert not clock.observe("orders", T0 + timedelta(days=9), LATENESS, INPUTS)
    assert clock.value == T0 - LATENESS
    assert not clock.observe("tracking", T0 - timedelta(days=1), LATENESS, INPUTS)
    assert clock.value == T0 - LATENESS


def test_an_idle_input_lifted_lets_the_clock_follow_the_others() -> None:
    clock = PartitionClock()
    clock.observe("orders", T0 + timedelta(days=3), LATENESS, INPUTS)
    clock.observe("tracking", T0 + timedelta(days=2), LATENESS, INPUTS)
    assert clock.lift("complaints", T0 + timedelta(days=1), LATENESS, INPUTS)
    assert clock.value == T0 + timedelta(days=1) - LATENESS
    # The lift is a floor: an event of the idle input ahead of it counts; one behind it not.
    assert clock.observe("complaints", T0 + timedelta(days=5), LATENESS, INPUTS)
    assert clock.value == T0 + timedelta(days=2) - LATENESS
    assert not clock.lift("complaints", T0, LATENESS, INPUTS)
    assert clock.value == T0 + timedelta(days=2) - LATENESS


def test_an_idle_envelope_carries_its_floor_and_topic() -> None:
    assert wire.unpack(wire.pack(wire.IDLE, T0, b"complaints")) == (wire.IDLE, T0, b"complaints")


def test_a_stored_clock_comes_back_equal() -> None:
    clock = PartitionClock(T0, {"orders": T0 + timedelta(seconds=1)})
    restored = _unpack_clock(_pack_clock(clock))
    assert (restored.value, restored.seen) == (clock.value, clock.seen)


def test_partitions_follow_kafkas_default_partitioner() -> None:
    # murmur2 test vectors of the Java client (Utils.murmur2 of UTF-8 bytes, positive, mod n).
    assert partition_for("21", 4) == (-973932308 & 0x7FFFFFFF) % 4
    assert partition_for("foobar", 7) == (-790332482 & 0x7FFFFFFF) % 7
