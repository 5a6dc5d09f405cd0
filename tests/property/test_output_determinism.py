"""Contract §3: output ids (and whole outputs) are deterministic: two runs, the same bytes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from orderwatch_lives import (
    POLICY,
    Event,
    RandomPicker,
    in_time_order,
    late_arrivals,
    order_life,
    several_orders,
    stock_updates,
)

from streams.core.output_json import serialize
from streams.replay import replay_lines


def _replay(lines: list[bytes]) -> list[str]:
    written: list[str] = []
    replay_lines(lines, lambda output: written.append(serialize(output)), policy=POLICY)
    return written


@given(data=st.data(), events=several_orders(), bad=st.lists(st.binary(max_size=40), max_size=3))
def test_replaying_the_same_lines_twice_writes_identical_output_lines(
    data: st.DataObject, events: list[Event], bad: list[bytes]
) -> None:
    lines = [event.line for event in data.draw(late_arrivals(events), label="arrival")]
    for line in bad:
        lines.insert(data.draw(st.integers(0, len(lines)), label="position"), line)

    first = _replay(lines)
    second = _replay(lines)

    assert first == second


def _seeded_stream(seed: int) -> bytes:
    pick = RandomPicker(seed)
    events = stock_updates(pick, 3)
    for number in range(1, 81):
        events += order_life(pick, f"o-{number}", inventory=False, start_within=20 * 86400)
    lines = [event.line for event in in_time_order(events)]
    lines.insert(7, b"not json")
    return b"\n".join(lines) + b"\n"


def _replay_in_new_process(stream: Path, hash_seed: str) -> str:
    environment = {**os.environ, "PYTHONHASHSEED": hash_seed}
    result = subprocess.run(
        [sys.executable, "-c", "from streams.cli import main; main()", "replay", "-q", str(stream)],
        capture_output=True,
        check=True,
        env=environment,
        timeout=120,
    )
    return result.stdout.decode("utf-8")


def test_outputs_do_not_depend_on_the_interpreters_hash_seed(tmp_path: Path) -> None:
    stream = tmp_path / "events.jsonl"
    stream.write_bytes(_seeded_stream(seed=20260105))

    first = _replay_in_new_process(stream, hash_seed="1")
    second = _replay_in_new_process(stream, hash_seed="2")

    assert len(first.splitlines()) > 100
    assert {json.loads(line)["type"] for line in first.splitlines()} >= {
        "deadline.breached",
        "recommendation.issued",
        "event.rejected",
    }
    assert first == second
