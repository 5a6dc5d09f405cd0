"""One event cannot move time: an event far ahead of the rest is rejected, in replay too."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from streams.core.clock import from_the_future
from streams.core.policy import load_policy
from streams.replay import replay_lines
from streams.simulator import generate_events

POLICY = load_policy()
LATEST = datetime(2026, 1, 5, tzinfo=UTC)


def test_an_event_within_the_limit_passes_and_one_beyond_is_from_the_future() -> None:
    assert POLICY.max_ahead == timedelta(days=30)
    assert from_the_future(LATEST + timedelta(days=30), LATEST, POLICY) is None
    assert from_the_future(LATEST - timedelta(days=400), LATEST, POLICY) is None
    assert from_the_future(LATEST, None, POLICY) is None  # nothing to be ahead of
    error = from_the_future(LATEST + timedelta(days=30, microseconds=1), LATEST, POLICY)
    assert error is not None
    assert error.startswith("Field 'occurred_at' is 2026-02-04T00:00:00.000001Z, 30 days after")


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
