"""The worker on a real broker: the same decisions as replay, dead letters, health, metrics."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from worker_harness import (
    WorkerRun,
    backfill,
    decisions,
    example_lines,
    produce_lines,
    replayed_outputs,
    run,
)

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def replayed() -> list[dict[str, Any]]:
    return replayed_outputs()


@pytest.fixture(scope="module")
def backfilled(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[WorkerRun, list[dict[str, Any]]]]:
    """One event-time worker fed the example stream, its clock advanced to the end."""
    worker = WorkerRun(kafka_bootstrap, tmp_path_factory.mktemp("worker"))
    try:
        worker.start()
        lines = example_lines()
        run(produce_lines(kafka_bootstrap, worker.prefix, lines))
        yield worker, backfill([worker], lines)
    finally:
        worker.stop()


def test_the_worker_decides_the_same_breaches_and_order_advice_as_replay(
    backfilled: tuple[WorkerRun, list[dict[str, Any]]], replayed: list[dict[str, Any]]
) -> None:
    _, outputs = backfilled
    expected, actual = decisions(replayed), decisions(outputs)
    assert expected, "the example stream must produce decisions"
    assert actual == expected


def test_no_breach_is_emitted_twice_for_one_fact(
    backfilled: tuple[WorkerRun, list[dict[str, Any]]],
) -> None:
    _, outputs = backfilled
    breaches = [o["breach_id"] for o in outputs if o["type"] == "deadline.breached"]
    assert breaches
    assert len(breaches) == len(set(breaches))


def test_outputs_are_keyed_as_the_contract_says(
    backfilled: tuple[WorkerRun, list[dict[str, Any]]],
) -> None:
    _, outputs = backfilled
    for output in outputs:
        if output["type"] == "deadline.breached":
            assert output["_kafka"]["key"] == output["order_id"]
        elif output["type"] == "recommendation.issued":
            assert output["_kafka"]["key"] == output["subject"]


def test_bad_messages_land_in_the_dead_letter_with_their_source_and_a_sentence(
    backfilled: tuple[WorkerRun, list[dict[str, Any]]],
) -> None:
    worker, outputs = backfilled
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
    backfilled: tuple[WorkerRun, list[dict[str, Any]]],
) -> None:
    worker, _ = backfilled
    assert worker.get("/health")[0] == 200
    assert worker.get("/ready")[0] == 200
    assert worker.metric("orderwatch_breaches_total", deadline="fulfillment") > 0
    assert worker.metric("orderwatch_assigned_partitions") == worker.partitions


def test_promtool_accepts_the_live_exposition(
    backfilled: tuple[WorkerRun, list[dict[str, Any]]], tmp_path: Path
) -> None:
    import os

    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing in CI (Debian package prometheus)")
        pytest.skip("promtool is not installed (Debian package prometheus)")
    worker, _ = backfilled
    status, body = worker.get("/metrics")
    assert status == 200
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
