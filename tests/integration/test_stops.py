"""Every stop of the worker is one its supervisor understands: 75 (restart it) for anything
transient, Faust's own crashes included; 1 or 2 for a bad setting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from worker_harness import WorkerRun, wait_for

from streams.worker.failures import EXIT_KAFKA_UNAVAILABLE

pytestmark = pytest.mark.broker

HERE = Path(__file__).parent


def test_a_crashed_faust_service_exits_75_with_its_error_in_the_log(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    worker = WorkerRun(kafka_bootstrap, tmp_path)
    done = subprocess.run(
        [sys.executable, str(HERE / "crashing_worker.py")],
        env=worker.env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    log = done.stdout + done.stderr
    assert done.returncode == EXIT_KAFKA_UNAVAILABLE, log[-4000:]
    assert "Crashed reason=RuntimeError('a service crashed')" in log
    assert "stopping: Faust stopped on RuntimeError: a service crashed; exit 75" in log


def _refused(worker: WorkerRun, timeout: float = 120.0) -> str:
    """Start ``worker``, wait for it to exit 2, and return its log."""
    worker.supervised = False
    worker.launch()
    assert worker.process is not None
    try:
        code = worker.process.wait(timeout)
    finally:
        worker.stop()
    log = worker.log_text()
    assert code == 2, f"exit {code}:\n{log[-4000:]}"
    return log


def test_a_worker_refuses_to_join_a_group_that_runs_another_clock_or_policy(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    first = WorkerRun(kafka_bootstrap, tmp_path, clock="event")
    policy = tmp_path / "policy.toml"
    policy.write_text('[rules."wish.delivery".days_by_country]\nUS = 12\n')
    try:
        first.start()
        other_clock = WorkerRun(kafka_bootstrap, tmp_path, name=first.name, clock="wall")
        log = _refused(other_clock)
        [line] = [line for line in log.splitlines() if "refused by the members of group" in line]
        assert "ORDERWATCH_CLOCK is wall here, event in the group" in line
        assert line.endswith("exit 2")

        other_policy = WorkerRun(
            kafka_bootstrap, tmp_path, name=first.name, extra_env={"ORDERWATCH_POLICY": str(policy)}
        )
        log = _refused(other_policy)
        [line] = [line for line in log.splitlines() if "refused by the members of group" in line]
        assert "ORDERWATCH_POLICY gives wish 2021.1+" in line
        assert "ORDERWATCH_CLOCK" not in line

        # The first worker ran on throughout, and a worker that matches joins it.
        assert first.process is not None
        assert first.process.poll() is None
        wait_for(lambda: first.get("/ready")[0] == 200, 60, "the first worker to be ready")
        assert first.metric("orderwatch_assigned_partitions") == first.partitions
        matching = WorkerRun(kafka_bootstrap, tmp_path, name=first.name, clock="event")
        try:
            matching.start()
            wait_for(
                lambda: (
                    first.metric("orderwatch_assigned_partitions")
                    + matching.metric("orderwatch_assigned_partitions")
                    == first.partitions
                    and matching.metric("orderwatch_assigned_partitions") > 0
                ),
                90,
                "the matching worker to share the partitions",
            )
            assert "refused" not in matching.log_text()
        finally:
            matching.stop()
    finally:
        first.stop()
