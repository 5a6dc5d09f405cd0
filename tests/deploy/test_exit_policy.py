"""The worker's exit policy for docker compose (deploy/docker/exit-policy.sh), run natively with
the system's sh: compose's `restart: on-failure` restarts every non-zero exit, so the script
passes on what must be restarted (75, a kill by a signal) and turns a bad setting (1, 2) into 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from deploy_files import COMPOSE, DOCKERFILE, ROOT, load_yaml

SCRIPT = ROOT / "deploy" / "docker" / "exit-policy.sh"
ORDERWATCH = Path(sys.executable).with_name("orderwatch")


def _run(*command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(SCRIPT), *command],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


@pytest.mark.parametrize(
    ("status", "passed_on", "restarted"),
    [(75, 75, True), (0, 0, False), (1, 0, False), (2, 0, False), (3, 3, True)],
)
def test_exit_statuses_reach_compose_as_restart_or_not(
    status: int, passed_on: int, restarted: bool
) -> None:
    done = _run(sys.executable, "-c", f"raise SystemExit({status})")
    assert done.returncode == passed_on
    assert (done.returncode != 0) is restarted  # restart: on-failure
    assert ("is a bad setting" in done.stderr) is (status in (1, 2))


def test_a_worker_killed_by_a_signal_is_restarted() -> None:
    done = _run("sh", "-c", "kill -KILL $$")  # as the OOM killer does
    assert done.returncode == 128 + signal.SIGKILL


def test_a_bad_setting_of_the_real_worker_is_one_line_and_not_restarted() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERWATCH_")}
    env["ORDERWATCH_PARTITIONS"] = "-3"
    done = _run(str(ORDERWATCH), "worker", env=env)
    assert done.returncode == 0
    first, second = done.stderr.strip().splitlines()
    assert "ORDERWATCH_PARTITIONS" in first
    assert second.startswith("orderwatch: exit 1 is a bad setting")


def test_docker_stop_is_passed_to_the_worker(tmp_path: Path) -> None:
    """SIGTERM to the script (PID 1 in the container) reaches the worker, whose status it
    returns: a worker that stops cleanly on it exits 0."""
    ready = tmp_path / "ready"
    child = (
        "import pathlib, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\n"
        f"pathlib.Path({str(ready)!r}).touch()\n"
        "time.sleep(60)\n"
    )
    script = subprocess.Popen(["sh", str(SCRIPT), sys.executable, "-c", child])
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert time.monotonic() < deadline, "the worker never started"
            time.sleep(0.05)
        script.send_signal(signal.SIGTERM)
        assert script.wait(30) == 0
    finally:
        if script.poll() is None:
            script.kill()


def test_compose_runs_the_worker_under_the_policy_the_image_installs() -> None:
    worker = load_yaml(COMPOSE)["services"]["worker"]
    assert worker["restart"] == "on-failure"
    assert worker["entrypoint"] == ["orderwatch-exit-policy"]
    assert worker["command"] == ["orderwatch", "worker"]
    assert (
        "COPY deploy/docker/exit-policy.sh /usr/local/bin/orderwatch-exit-policy"
        in DOCKERFILE.read_text()
    )
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert "!deploy/docker/exit-policy.sh" in ignore
