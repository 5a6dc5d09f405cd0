"""Workers refuse to join a group that runs another clock, policy or partition count, and the
worker refuses exactly_once (the group protocol itself is exercised on the real broker in
tests/integration/test_stops.py)."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import pytest
from aiokafka.coordinator.protocol import (  # type: ignore[import-untyped]
    ConsumerProtocolMemberAssignment,
)
from click.testing import CliRunner

from streams.cli import main
from streams.policy_files import load_policy
from streams.settings import load_settings
from streams.worker import OrderwatchWorker
from streams.worker.admission import Fingerprint, difference, fingerprint

GROUP = Fingerprint(clock="event", policy="wish 2021.1", policy_digest="abc", partitions=4)


def test_a_worker_that_runs_what_the_group_runs_is_admitted() -> None:
    assert difference(GROUP, GROUP, "g") is None


@pytest.mark.parametrize(
    ("member", "named"),
    [
        (Fingerprint("wall", "wish 2021.1", "abc", 4), "ORDERWATCH_CLOCK is wall here, event"),
        (Fingerprint("event", "wish 2021.1+1f2e", "d0e", 4), "ORDERWATCH_POLICY gives wish 2021"),
        (Fingerprint("event", "wish 2021.1", "d0e", 4), "(digest d0e) here"),  # same version
        (Fingerprint("event", "wish 2021.1", "abc", 8), "ORDERWATCH_PARTITIONS is 8 here, 4"),
        (Fingerprint("event", "wish 2021.1", "abc", 4, 2), "stored in format 2 here, 4 in"),
    ],
)
def test_each_difference_is_named_in_one_line(member: Fingerprint, named: str) -> None:
    line = difference(member, GROUP, "orderwatch")
    assert line is not None
    assert named in line
    assert "group 'orderwatch'" in line
    assert "\n" not in line


def test_the_fingerprint_is_the_clock_the_policy_and_the_partitions(tmp_path: Path) -> None:
    settings = load_settings(broker="x:1", clock="event", partitions=6)
    default = fingerprint(settings, load_policy())
    assert (default.clock, default.policy, default.partitions) == ("event", "wish 2021.1", 6)
    custom = tmp_path / "policy.toml"
    custom.write_text(
        '[profile]\nversion = "2021.1"\n\n[rules."wish.delivery".days_by_country]\nUS = 12\n'
    )
    other = fingerprint(settings, load_policy(custom))
    # A custom file that keeps the version still differs, by its digest.
    assert other.policy == default.policy
    assert other.policy_digest != default.policy_digest
    assert fingerprint(settings, load_policy(custom)) == other
    assert Fingerprint.from_json(json.loads(json.dumps(other.as_json()))) == other
    assert Fingerprint.from_json({"clock": "wall"}) is None
    assert Fingerprint.from_json(None) is None
    # A release that stored plain JSON states sent no state format: it cannot read format 2.
    older = {k: v for k, v in other.as_json().items() if k != "state_format"}
    assert Fingerprint.from_json(older) == Fingerprint(**older, state_format=1)
    assert difference(Fingerprint(**older, state_format=1), other, "g") is not None


# ---- the assignor ------------------------------------------------------------------------------


def _assignor(tmp_path: Path, **settings: Any) -> Any:
    worker = OrderwatchWorker(load_settings(broker="127.0.0.1:9", data_dir=tmp_path, **settings))
    return worker.app.assignor


def test_the_leader_refuses_members_that_differ_and_admits_the_rest(tmp_path: Path) -> None:
    leader = _assignor(tmp_path, clock="event")
    same = leader.metadata({"t"})
    wall = _assignor(tmp_path, clock="wall").metadata({"t"})
    older = json.loads(same.user_data)
    del older["orderwatch"]  # a member from before the check
    older_metadata = type(same)(same.version, same.subscription, json.dumps(older).encode())
    refused = leader.refusals({"a": same, "b": wall, "c": older_metadata})
    assert list(refused) == ["b"]
    assert "ORDERWATCH_CLOCK is wall here, event in the group" in refused["b"]


def test_a_refused_member_stops_with_exit_2_and_the_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    member = _assignor(tmp_path)
    exits: list[int] = []

    def exit_(code: int) -> None:
        exits.append(code)
        raise SystemExit(code)

    monkeypatch.setattr("streams.worker.admission.os._exit", exit_)
    refusal = ConsumerProtocolMemberAssignment(
        4, [], zlib.compress(json.dumps({"orderwatch_refused": "refused by the members"}).encode())
    )
    with pytest.raises(SystemExit):
        member.on_assignment(refusal)
    assert exits == [2]


# ---- exactly_once -------------------------------------------------------------------------------


def test_the_worker_refuses_exactly_once_with_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORDERWATCH_PROCESSING_GUARANTEE", "exactly_once")
    monkeypatch.setenv("ORDERWATCH_BROKER", "127.0.0.1:9")
    result = CliRunner().invoke(main, ["worker"])
    assert result.exit_code == 2
    [line] = result.output.strip().splitlines()
    assert "ORDERWATCH_PROCESSING_GUARANTEE=exactly_once is refused" in line
    assert "RELIABILITY.md" in line
