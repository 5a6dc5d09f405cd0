"""One event cannot move time: an event far ahead of the rest is rejected, in replay too."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from streams.core.event_clock import from_the_future, idle_floor, partition_clock
from streams.policy_files import load_policy
from streams.replay import replay_lines
from streams.tools.simulator import generate_events

POLICY = load_policy()
LATEST = datetime(2026, 1, 5, tzinfo=UTC)


def test_an_event_within_the_limit_passes_and_one_beyond_is_from_the_future() -> None:
    assert POLICY.max_ahead == timedelta(days=30)
    assert from_the_future(LATEST + timedelta(days=30), LATEST, POLICY) is None
    assert from_the_future(LATEST - timedelta(days=400), LATEST, POLICY) is None
    assert from_the_future(LATEST, None, POLICY) is None  # nothing to be ahead of
    error = from_the_future(LATEST + timedelta(days=30, microseconds=1), LATEST, POLICY)
    assert error is not None
    assert error.reason == "from_the_future"
    assert error.error.startswith(
        "Field 'occurred_at' is 2026-02-04T00:00:00.000001Z, 30 days after"
    )


def _replay(lines: list[bytes]) -> list[dict[str, Any]]:
    outputs: list[dict[str, Any]] = []
    replay_lines(lines, lambda o: outputs.append(json.loads(o.model_dump_json())), policy=POLICY)
    return outputs


def test_one_event_dated_2199_in_a_stream_of_3000_orders_changes_no_other_decision() -> None:
    events = list(generate_events(seed=5, orders=3000, merchants=4))
    lines = [json.dumps(event).encode() for event in events]
    clean = _replay(lines)
    stray = dict(events[len(events) // 2])
    stray["event_id"] = "e-from-2199"
    stray["occurred_at"] = "2199-01-01T00:00:00Z"
    with_stray = _replay(
        [*lines[: len(lines) // 2], json.dumps(stray).encode(), *lines[len(lines) // 2 :]]
    )

    rejected = [o for o in with_stray if o["type"] == "event.rejected"]
    assert len(rejected) == 1
    assert '"e-from-2199"' in rejected[0]["raw"]
    assert "days after the latest event" in rejected[0]["error"]
    decided = [o for o in with_stray if o["type"] != "event.rejected"]
    assert len(decided) > 1000
    assert decided == clean


INPUTS = ("orders", "tracking", "complaints")
MINUTE = timedelta(minutes=1)


def test_a_partition_clock_waits_for_every_input_then_follows_the_slowest() -> None:
    seen = {"orders": LATEST + timedelta(days=2), "tracking": LATEST + timedelta(days=1)}
    assert partition_clock(seen, {}, INPUTS, MINUTE) is None
    seen["complaints"] = LATEST
    assert partition_clock(seen, {}, INPUTS, MINUTE) == LATEST - MINUTE
    seen["forwarded"] = LATEST - timedelta(hours=1)  # a topic beyond the inputs, once seen
    assert partition_clock(seen, {}, INPUTS, MINUTE) == LATEST - timedelta(hours=1) - MINUTE


def test_an_idle_input_holds_the_clock_at_most_the_slack_behind_the_leader() -> None:
    seen = {"orders": LATEST + timedelta(days=2), "tracking": LATEST + timedelta(days=1)}
    floor = idle_floor(seen, timedelta(hours=6))
    assert floor == LATEST + timedelta(days=2) - timedelta(hours=6)
    # Complaints never seen, lifted: tracking is now the slowest.
    assert partition_clock(seen, {"complaints": floor}, INPUTS, MINUTE) == (
        LATEST + timedelta(days=1) - MINUTE
    )
    # Seen long ago and lifted: the floor wins over the old mark, never the other way round.
    seen["complaints"] = LATEST - timedelta(days=30)
    assert partition_clock(seen, {"complaints": floor, "tracking": floor}, INPUTS, MINUTE) == (
        floor - MINUTE
    )
    assert idle_floor({}, timedelta(hours=6)) is None
