"""Faults on the real broker: what the workers decide equals replay, by id and by content.

The CI-sized variant of the fault suite (``faults.py``; the soak runs from its command line).
A stream of 1,000 orders is produced at a steady pace while worker processes are killed with
SIGKILL and restarted, the broker is stopped and started again on the same log directory, and
the group grows from one worker to two and shrinks back; and, in another run, two workers are
frozen in turn past their session timeout. Redelivered outputs are allowed (at
least once); a lost, invented or different one fails the test.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from faults import Scenario, compare, managed_broker, run_scenario
from worker_harness import Output

CI_PLAN = ("grow", "kill", "broker", "kill", "kill", "shrink")


@pytest.mark.broker
@pytest.mark.faults
@pytest.mark.durable_broker("restarts the broker on its log directory; Tansu keeps no log")
def test_kills_a_broker_restart_and_rebalances_lose_invent_and_change_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    if managed_broker() != kafka_bootstrap:
        pytest.skip("the broker must be the one scripts/kafka.sh runs, so that it can restart it")
    scenario = Scenario(orders=1000, rate=120.0, plan=CI_PLAN)
    report = run_scenario(kafka_bootstrap, tmp_path, scenario, say=print)
    print(report.line())
    planned = {kind: report.faults[kind] for kind in ("grow", "kill", "broker", "shrink")}
    assert planned == {"grow": 1, "kill": 3, "broker": 1, "shrink": 1}
    # A worker may stop itself (exit 75: it saw Kafka fail or skip offsets) and be restarted;
    # any other exit is a crash, and so is a stop of Faust's own (also 75, with its line).
    assert set(report.faults) - set(planned) <= {"stopped 75"}, report.faults
    assert report.log_lines["faust stopped"] == 0, report.log_lines
    assert report.comparison.expected > 500
    assert report.comparison.clean, "\n".join(
        [report.line(), *report.comparison.examples, *report.comparison.lost[:5]]
    )


FREEZE_PLAN = ("freeze", "freeze", "freeze")


@pytest.mark.broker
@pytest.mark.faults
@pytest.mark.durable_broker("the paced producer is idempotent: Tansu has no InitProducerId")
def test_workers_frozen_past_their_session_timeout_lose_invent_and_change_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Two workers; each in turn is stopped (SIGSTOP) longer than the session timeout while
    the stream flows, and resumed with the messages and writes it held. Its partitions moved
    meanwhile; what it sends late must not overwrite the new owner's state."""
    scenario = Scenario(
        orders=1000, rate=120.0, workers=2, plan=FREEZE_PLAN, freeze_seconds=(12.0, 12.0)
    )
    report = run_scenario(kafka_bootstrap, tmp_path, scenario, say=print)
    print(report.line())
    assert report.faults["freeze"] == 3
    # A resumed worker that finds itself removed from the group stops itself (exit 75) and is
    # restarted; any other exit is a crash.
    assert set(report.faults) - {"freeze"} <= {"stopped 75"}, report.faults
    assert report.comparison.expected > 300
    assert report.comparison.clean, "\n".join(
        [report.line(), *report.comparison.examples, *report.comparison.lost[:5]]
    )


@pytest.mark.faults
def test_the_comparison_counts_lost_extra_different_and_redelivered_outputs() -> None:
    """The oracle itself: each kind of divergence is seen, and only the clock fields are free."""
    breach = {"type": "deadline.breached", "breach_id": "b1", "due_at": "x", "detected_at": "1"}
    advice = {"type": "recommendation.issued", "recommendation_id": "r1", "severity": "warning"}
    rejected = {"type": "event.rejected", "rejection_id": "j1", "raw": "{", "error": "not JSON"}
    lost = {"type": "deadline.breached", "breach_id": "b2", "due_at": "y"}
    replayed: list[Output] = [breach, advice, rejected, lost]
    got: list[Output] = [
        breach | {"detected_at": "2"},  # only the processor's clock differs: the same output
        breach,  # redelivered
        advice | {"severity": "critical"},  # different content
        rejected | {"rejection_id": "j9", "rejected_at": "3"},  # rejected on Kafka: other id
        {"type": "recommendation.issued", "recommendation_id": "r2"},  # extra
    ]
    warned: Output = {"type": "recommendation.issued", "recommendation_id": "r3"}
    warned |= {"reason": "FULFILLMENT_AT_RISK", "actions": ["SHIP_NOW"], "respond_by": "z"}
    replayed.append(warned)
    # Issued past its respond_by: says so, with the missed window's actions (from issued_at).
    got.append(warned | {"respond_by_passed": True, "actions": ["CONTACT_CUSTOMER"]})
    result = compare(replayed, got)
    assert result.lost == ["b2"]
    assert result.extra == ["r2"]
    assert result.different == ["r1"]
    assert result.redelivered == 1
    assert not result.clean
    assert compare(replayed, replayed).clean
