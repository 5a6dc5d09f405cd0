"""Every stop of the worker is one its supervisor understands: 75 (restart it) for anything
transient, Faust's own crashes included; 1 or 2 for a bad setting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from worker_harness import WorkerRun

from streams.failures import EXIT_KAFKA_UNAVAILABLE

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
