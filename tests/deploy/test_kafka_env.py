"""``scripts/kafka.sh env``: what it prints configures orderwatch (``ORDERWATCH_BROKER``) and the
tests (``ORDERWATCH_TEST_BROKER``) alike.

No Kafka is started: the script's state directory is made by hand, with a stand-in process whose
command line is the one ``kafka.sh`` checks for its broker (``kafka.Kafka`` and its properties).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
KAFKA_SH = REPO / "scripts" / "kafka.sh"


def kafka_env(home: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ORDERWATCH_KAFKA_HOME": str(home)}
    return subprocess.run(
        [str(KAFKA_SH), "env"], env=env, capture_output=True, text=True, timeout=30, check=False
    )


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Path]:
    """A kafka.sh home whose broker is "running" at 127.0.0.1:39092 (a stand-in process)."""
    run = tmp_path / "run"
    run.mkdir()
    props = run / "server.properties"
    props.write_text("")
    with subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "kafka.Kafka", str(props)]
    ) as stand_in:
        try:
            (run / "kafka.pid").write_text(f"{stand_in.pid}\n")
            (run / "address").write_text("127.0.0.1:39092\n")
            yield tmp_path
        finally:
            stand_in.kill()


def test_env_of_a_running_broker_gives_the_broker_to_orderwatch_and_the_tests(
    running: Path,
) -> None:
    result = kafka_env(running)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "ORDERWATCH_BROKER=127.0.0.1:39092",
        "ORDERWATCH_TEST_BROKER=127.0.0.1:39092",
    ]


def test_eval_of_env_configures_orderwatch_s_broker(running: Path) -> None:
    script = (
        'set -a; eval "$(scripts/kafka.sh env)"; set +a; '
        f'exec {sys.executable} -c "from streams.settings import load_settings; '
        'print(load_settings().broker)"'
    )
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ORDERWATCH_KAFKA_HOME": str(running)}
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]

    result = subprocess.run(
        ["bash", "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "127.0.0.1:39092"


def test_env_of_a_cluster_names_every_node_for_both(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "nodes").write_text("3\n")
    for node in (1, 2, 3):
        (run / f"node{node}").mkdir()
        (run / f"node{node}" / "address").write_text(f"127.0.0.1:3909{node}\n")

    result = kafka_env(tmp_path)

    assert result.returncode == 0, result.stderr
    nodes = "127.0.0.1:39091,127.0.0.1:39092,127.0.0.1:39093"
    assert result.stdout.splitlines() == [
        f"ORDERWATCH_BROKER={nodes}",
        f"ORDERWATCH_TEST_BROKER={nodes}",
    ]


def test_env_without_a_broker_prints_nothing_to_eval_and_exits_1(tmp_path: Path) -> None:
    result = kafka_env(tmp_path)

    assert result.returncode == 1
    assert result.stdout == ""
    assert "not running" in result.stderr
