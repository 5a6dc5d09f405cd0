"""The fault suite's real envelope, CI-sized: every output compared with replay by id and content.

Frozen workers (SIGSTOP past the session timeout) on both clocks, a frozen broker, a three-node
KRaft cluster with a node killed and one frozen, producers that compress, and the wall clock
with a backlog at start, a restart after deadlines fall due and a burst of history (see
``envelope.py``; the soak runs them from ``faults.py --envelope``).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from envelope import (
    FREEZES,
    LEADERS,
    fulfillment_breaches,
    history,
    run_wall,
    shifted,
    stable_until,
)
from faults import (
    REPO,
    Report,
    Scenario,
    compare,
    kafka_sh,
    managed_broker,
    run_scenario,
)
from worker_harness import replayed_outputs

pytestmark = [pytest.mark.broker, pytest.mark.faults]

#: Exits a worker may make and be restarted for: 75, it saw Kafka fail or skip offsets.
SELF_STOPS = {"stopped 75"}
COMPRESSION = {"orders": "gzip", "inventory": "snappy", "tracking": "lz4", "complaints": "zstd"}


def check(report: Report, planned: dict[str, int]) -> None:
    print(report.line(), report.log_lines)
    assert {kind: report.faults[kind] for kind in planned} == planned
    assert set(report.faults) - set(planned) <= SELF_STOPS, report.faults
    assert report.comparison.clean, "\n".join(
        [report.line(), *report.comparison.examples, *report.comparison.lost[:5]]
    )


def freezes(clock: str) -> Scenario:
    """Two workers; three times one is frozen for 10 to 16 s (the session timeout is 6 s),
    while the stream flows (3,450 lines at 60 a second)."""
    return Scenario(
        orders=600,
        rate=60.0,
        workers=2,
        plan=("sigstop", "sigstop", "sigstop"),
        clock=clock,
        bad_lines=20 if clock == "event" else 0,
        freeze_seconds=(10.0, 16.0),
    )


@pytest.mark.durable_broker("SIGSTOPs workers of a group on Apache Kafka")
def test_frozen_workers_on_the_event_clock_lose_invent_and_change_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    report = run_scenario(kafka_bootstrap, tmp_path, freezes("event"), say=print)
    check(report, {"sigstop": 3})
    assert report.comparison.expected > 300


@pytest.mark.durable_broker("SIGSTOPs workers of a group on Apache Kafka")
def test_frozen_workers_on_the_wall_clock_lose_invent_and_change_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Live: 120 orders come due over 100 s, tracking for half produced as it happens, the two
    workers frozen in turn past the session timeout three times (a week of history compressed
    into a minute is no live stream: on the wall clock it is late, see docs/time.md)."""
    report = run_wall(
        kafka_bootstrap, tmp_path, Scenario(clock="wall"), "live-freezes", orders=120, say=print
    )
    check(report, {"sigstop": FREEZES})
    assert report.replayed is not None
    assert fulfillment_breaches(report.replayed) == 60


@pytest.mark.durable_broker("SIGSTOPs the broker scripts/kafka.sh runs")
def test_a_frozen_broker_loses_invents_and_changes_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    if managed_broker() != kafka_bootstrap:
        pytest.skip("the broker must be the one scripts/kafka.sh runs, so that it can freeze it")
    scenario = Scenario(
        orders=600,
        rate=60.0,
        workers=2,
        plan=("broker-sigstop", "kill", "broker-sigstop"),
        freeze_seconds=(10.0, 14.0),
    )
    report = run_scenario(kafka_bootstrap, tmp_path, scenario, say=print)
    check(report, {"broker-sigstop": 2, "kill": 1})
    assert report.comparison.expected > 300


@pytest.mark.durable_broker("compresses with codecs on Apache Kafka")
def test_compressed_input_is_read_like_any_other(kafka_bootstrap: str, tmp_path: Path) -> None:
    """Each input topic produced with another codec: gzip, snappy, lz4, zstd (no other fault:
    the soak adds kills and a broker restart)."""
    scenario = Scenario(orders=600, rate=200.0, plan=(), compression=COMPRESSION)
    report = run_scenario(kafka_bootstrap, tmp_path, scenario, say=print)
    check(report, {})
    assert report.comparison.expected > 300


# ---- a three-node cluster -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """Three KRaft nodes of ``scripts/kafka.sh start --nodes 3`` in a home of their own:
    (bootstrap list, ORDERWATCH_KAFKA_HOME)."""
    java = f"{os.environ['JAVA_HOME']}/bin/java" if os.environ.get("JAVA_HOME") else "java"
    if shutil.which(java) is None:
        pytest.skip("no Java for a cluster of Apache Kafka")
    home = tmp_path_factory.mktemp("kafka-cluster")
    for cache in (os.environ.get("ORDERWATCH_KAFKA_HOME"), str(REPO / ".ci" / "cache" / "kafka")):
        if cache and (Path(cache) / "libs").is_dir():
            (home / "libs").symlink_to((Path(cache) / "libs").resolve())
            shutil.copy(Path(cache) / "libs.pom.sha256", home / "libs.pom.sha256")
            break
    bootstrap = kafka_sh("start", "--nodes", "3", home=str(home))
    try:
        yield bootstrap, str(home)
    finally:
        kafka_sh("stop", home=str(home))


@pytest.mark.durable_broker("runs a three-node Apache Kafka cluster of its own")
def test_a_cluster_losing_and_freezing_nodes_loses_invents_and_changes_nothing(
    cluster: tuple[str, str], tmp_path: Path
) -> None:
    """Replication 3, min ISR 2, leaders on every node; one node killed and started again,
    another frozen for longer than the session timeout, a worker SIGKILLed meanwhile."""
    bootstrap, home = cluster
    scenario = Scenario(
        orders=600,
        rate=60.0,
        workers=2,
        plan=("node-kill", "kill", "node-start", "node-sigstop+kill"),
        worker_env={"ORDERWATCH_REPLICATION_FACTOR": "3"},
        kafka_home=home,
        freeze_seconds=(12.0, 15.0),
    )
    report = run_scenario(bootstrap, tmp_path, scenario, say=print)
    name = next(iter(LEADERS))
    print("leaders before the first node-kill:", dict(LEADERS[name]))
    assert sorted(LEADERS[name]) == [1, 2, 3], "the leaders must be spread over the nodes"
    assert LEADERS[name][next(iter(LEADERS[name + "/killed"]))] > 0
    check(report, {"node-kill": 1, "kill": 1, "node-start": 1, "node-sigstop+kill": 1})
    assert report.comparison.expected > 300


# ---- the wall clock -----------------------------------------------------------------------------


@pytest.mark.durable_broker("runs the wall clock on Apache Kafka")
def test_a_backlog_at_start_is_decided_as_replay_decides_it(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A week of history for 300 orders is on the topics when the worker starts."""
    report = run_wall(
        kafka_bootstrap, tmp_path, Scenario(clock="wall"), "backlog", orders=300, say=print
    )
    check(report, {})
    assert report.comparison.expected > 100


@pytest.mark.durable_broker("runs the wall clock on Apache Kafka")
def test_a_restart_after_deadlines_fall_due_breaches_only_the_orders_not_shipped(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """20 orders due in 45 s; tracking for 10 produced on time while the worker is down."""
    report = run_wall(
        kafka_bootstrap, tmp_path, Scenario(clock="wall"), "restart", orders=20, say=print
    )
    check(report, {"kill": 1})
    assert report.replayed is not None
    assert fulfillment_breaches(report.replayed) == 10


@pytest.mark.durable_broker("runs the wall clock on Apache Kafka")
def test_a_burst_of_history_while_running_is_decided_as_replay_decides_it(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A week of history for 40 orders arrives at once while the worker runs."""
    report = run_wall(
        kafka_bootstrap, tmp_path, Scenario(clock="wall"), "burst", orders=40, say=print
    )
    check(report, {})
    assert report.replayed is not None
    assert fulfillment_breaches(report.replayed) > 0


# ---- the harness itself -------------------------------------------------------------------------


def test_the_comparison_frees_respond_by_passed_and_its_actions_only_where_it_appears() -> None:
    advice = {"type": "recommendation.issued", "recommendation_id": "r1", "actions": ["SHIP"]}
    late = advice | {"respond_by_passed": True, "actions": ["CONTACT"], "issued_at": "2"}
    assert compare([advice], [late]).clean
    assert not compare([advice], [advice | {"actions": ["CONTACT"]}]).clean
    assert not compare([advice], [late | {"severity": "critical"}]).clean


def test_the_wall_clock_data_decides_nothing_near_now_and_both_ways_before() -> None:
    now = datetime.now(UTC)
    lines = history(now, 300, 11, "b", timedelta(minutes=20))
    replayed = stable_until(lines, now - timedelta(minutes=15), now + timedelta(minutes=15))
    assert fulfillment_breaches(replayed) > 20
    shipped = {json.loads(line)["order_id"] for line in lines if b"tracking.submitted" in line}
    breached = {o["order_id"] for o in replayed if o["type"] == "deadline.breached"}
    assert shipped - breached, "some orders shipped on time"
    moved = shifted(lines, timedelta(hours=-1))
    assert moved != lines
    assert len(replayed_outputs(moved, now)) >= len(replayed)
