"""``orderwatch demo``'s stream: the simulator's stores, a share of bad messages, and event time
compressed so that the first breach comes within seconds."""

from __future__ import annotations

import json
import random
from datetime import datetime
from itertools import islice

from streams.core.outputs import DeadlineBreached, OutputEvent
from streams.policy_files import load_policy
from streams.replay import replay_lines
from streams.tools.demo import BAD_LINE_EVERY, MERCHANTS, SPEED, demo_lines
from streams.tools.simulator import DEFAULT_START, bad_lines


def test_the_stream_is_the_seeds_own() -> None:
    first = list(islice(demo_lines(seed=3, orders=50), 500))
    assert first == list(islice(demo_lines(seed=3, orders=50), 500))
    assert first != list(islice(demo_lines(seed=4, orders=50), 500))


def test_a_malformed_message_follows_every_fiftieth_event() -> None:
    lines = list(demo_lines(seed=1, orders=100))
    bad = [index for index, (_, at) in enumerate(lines) if at is None]
    events = len(lines) - len(bad)
    assert len(bad) == events // BAD_LINE_EVERY > 0
    # Each comes right after its fiftieth event: positions 50, 101, 152, ...
    assert bad == [n * (BAD_LINE_EVERY + 1) - 1 for n in range(1, len(bad) + 1)]
    assert {line for line, at in lines if at is None} <= set(bad_lines(random.Random(1)))


def test_every_event_carries_its_occurred_at_and_several_stores_sell() -> None:
    stores = set()
    for line, at in demo_lines(seed=1, orders=100, bad_every=0):
        event = json.loads(line)
        assert at == datetime.fromisoformat(event["occurred_at"])
        stores.add(event["merchant_id"])
    assert len(stores) == MERCHANTS > 1


def test_the_first_breach_comes_within_fifteen_seconds_of_sending() -> None:
    """The demo sends event time at SPEED hours a second from DEFAULT_START: the first breach
    replay finds in its stream must be due early enough to show within 30 s of the start
    (broker and worker start take most of the rest)."""
    first: list[datetime] = []

    def output(event: OutputEvent) -> None:
        if not first and isinstance(event, DeadlineBreached):
            first.append(event.detected_at)

    lines = [line for line, _ in islice(demo_lines(seed=1, orders=400), 6000)]
    replay_lines(lines, output, policy=load_policy())
    assert first, "no breach in the demo's first 6,000 messages"
    seconds = (first[0] - DEFAULT_START).total_seconds() / 3600 / SPEED
    assert 5 < seconds < 15
