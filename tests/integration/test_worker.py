"""The worker on a real broker: the same decisions as replay, dead letters, health, metrics."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from worker_harness import WorkerRun, consume_outputs, produce_lines, run

from streams.core.policy import load_policy
from streams.replay import replay_lines

pytestmark = pytest.mark.broker

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "orders.jsonl"
AGGREGATE_SCOPES = {"sku", "carrier", "merchant"}


def _id(output: dict[str, Any]) -> str:
    return str(output.get("breach_id") or output.get("recommendation_id"))


def _decisions(outputs: list[dict[str, Any]]) -> set[str]:
    """Breach ids and order-scope recommendation ids (see the README on aggregates)."""
    return {
        _id(o)
        for o in outputs
        if o["type"] == "deadline.breached"
        or (o["type"] == "recommendation.issued" and o["scope"] not in AGGREGATE_SCOPES)
    }


@pytest.fixture(scope="module")
def replayed() -> list[dict[str, Any]]:
    outputs: list[dict[str, Any]] = []
    with EXAMPLES.open("rb") as lines:
        replay_lines(
            lines,
            lambda o: outputs.append(json.loads(o.model_dump_json(exclude_none=True))),
            policy=load_policy(),
        )
    return outputs


@pytest.fixture(scope="module")
def backfill(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory, replayed: Any
) -> Iterator[tuple[WorkerRun, list[dict[str, Any]]]]:
    """One event-time worker fed the example stream, its clock advanced to the end."""
    worker = WorkerRun(kafka_bootstrap, tmp_path_factory.mktemp("worker"))
    try:
        worker.start()
        lines = [line for line in EXAMPLES.read_bytes().splitlines() if line.strip()]
        run(produce_lines(kafka_bootstrap, worker.prefix, lines))
        last = max(json.loads(line)["occurred_at"] for line in lines if _is_event(line))
        expected = _decisions(replayed)
        _wait_consumed(worker, events=sum(1 for line in lines if _is_event(line)))
        worker.advance_clock(last)
        outputs = run(
            consume_outputs(
                kafka_bootstrap,
                worker.prefix,
                until=lambda got: (
                    expected <= _decisions(got)
                    and sum(o["type"] == "event.rejected" for o in got) >= 3
                ),
                timeout=90,
            )
        )
        yield worker, outputs
    finally:
        worker.stop()


def _is_event(line: bytes) -> bool:
    try:
        event = json.loads(line)
    except ValueError:
        return False
    return isinstance(event, dict) and "occurred_at" in event and "type" in event


def _wait_consumed(worker: WorkerRun, *, events: int, timeout: float = 90) -> None:
    import time

    deadline = time.monotonic() + timeout
    seen = 0.0
    while time.monotonic() < deadline:
        seen = worker.metric("orderwatch_events_consumed_total") + worker.metric(
            "orderwatch_events_rejected_total"
        )
        if seen >= events:
            return
        time.sleep(0.5)
    raise AssertionError(
        f"the worker consumed {seen} of {events} messages:\n{worker.log_text()[-3000:]}"
    )


def test_the_worker_decides_the_same_breaches_and_order_advice_as_replay(
    backfill: tuple[WorkerRun, list[dict[str, Any]]], replayed: list[dict[str, Any]]
) -> None:
    _, outputs = backfill
    expected, actual = _decisions(replayed), _decisions(outputs)
    assert expected, "the example stream must produce decisions"
    assert actual == expected


def test_no_breach_is_emitted_twice_for_one_fact(
    backfill: tuple[WorkerRun, list[dict[str, Any]]],
) -> None:
    _, outputs = backfill
    breaches = [o["breach_id"] for o in outputs if o["type"] == "deadline.breached"]
    assert breaches
    assert len(breaches) == len(set(breaches))


def test_outputs_are_keyed_as_the_contract_says(
    backfill: tuple[WorkerRun, list[dict[str, Any]]],
) -> None:
    _, outputs = backfill
    for output in outputs:
        if output["type"] == "deadline.breached":
            assert output["_kafka"]["key"] == output["order_id"]
        elif output["type"] == "recommendation.issued":
            assert output["_kafka"]["key"] == output["subject"]


def test_bad_messages_land_in_the_dead_letter_with_their_source_and_a_sentence(
    backfill: tuple[WorkerRun, list[dict[str, Any]]],
) -> None:
    worker, outputs = backfill
    rejected = [o for o in outputs if o["type"] == "event.rejected"]
    assert len(rejected) == 3
    for output in rejected:
        source = output["source"]
        assert source["topic"].startswith(worker.prefix)
        assert source["partition"] >= 0
        assert source["offset"] >= 0
        assert output["error"].endswith(".")
        assert output["raw"]
    # ...and the messages after them were processed: every valid event was counted.
    assert worker.metric("orderwatch_events_rejected_total") == 3


def test_health_ready_and_metrics_are_served(
    backfill: tuple[WorkerRun, list[dict[str, Any]]],
) -> None:
    worker, _ = backfill
    assert worker.get("/health")[0] == 200
    assert worker.get("/ready")[0] == 200
    assert worker.metric("orderwatch_breaches_total", deadline="fulfillment") > 0
    assert worker.metric("orderwatch_assigned_partitions") == worker.partitions


def test_promtool_accepts_the_live_exposition(
    backfill: tuple[WorkerRun, list[dict[str, Any]]], tmp_path: Path
) -> None:
    import os

    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing in CI (Debian package prometheus)")
        pytest.skip("promtool is not installed (Debian package prometheus)")
    worker, _ = backfill
    status, body = worker.get("/metrics")
    assert status == 200
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
