"""Contract §5: ``orderwatch replay INPUT [--output FILE] [--policy FILE] [--until TIMESTAMP]``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from streams.cli import main
from streams.policy_files import load_policy

PLACED_AT = "2026-01-05T10:00:00Z"
OUTPUT_TYPES = {"deadline.breached", "recommendation.issued", "event.rejected"}


def _event(event_type: str, event_id: str, occurred_at: str = PLACED_AT, **fields: Any) -> bytes:
    body = {
        "event_id": event_id,
        "type": event_type,
        "occurred_at": occurred_at,
        "merchant_id": "m-1",
        **fields,
    }
    return json.dumps(body).encode("utf-8")


def _placed(order_id: str, occurred_at: str = PLACED_AT, **changes: Any) -> bytes:
    fields: dict[str, Any] = {
        "order_id": order_id,
        "sku": "sku-1",
        "quantity": 1,
        "unit_price": "9.99",
        "currency": "USD",
        "destination_country": "US",
        **changes,
    }
    body = json.loads(_event("order.placed", f"{order_id}-placed", occurred_at, **fields))
    return json.dumps({key: value for key, value in body.items() if value is not None}).encode()


def _complaint(order_id: str, occurred_at: str) -> bytes:
    return _event(
        "complaint.filed",
        f"{order_id}-complaint",
        occurred_at,
        order_id=order_id,
        complaint_id="c-1",
        reason="damaged",
    )


# One order placed on 5 January, shipped the next day but never scanned, with a complaint nobody
# answers; a second order ten days later. The clock ends on 15 January: past the first order's
# confirmed-fulfillment (7 d) and complaint-response (48 h) deadlines, before its US delivery
# (15 d).
GOOD_LINES = [
    _placed("o-1"),
    _event(
        "tracking.submitted",
        "o-1-tracking",
        "2026-01-06T09:00:00Z",
        order_id="o-1",
        carrier="PostNL",
        tracking_number="LX1",
    ),
    _complaint("o-1", "2026-01-07T09:00:00Z"),
    _placed("o-2", "2026-01-15T10:00:00Z"),
]


def _write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def _outputs(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def _replay(runner: CliRunner, *arguments: str, stdin: bytes | None = None) -> Result:
    return runner.invoke(main, ["replay", *arguments], input=stdin, catch_exceptions=False)


def _deadlines(outputs: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(o["order_id"], o["deadline"]) for o in outputs if o["type"] == "deadline.breached"}


def _assert_short_error(result: Result, *named: str) -> None:
    assert result.exit_code != 0
    assert result.stdout == ""
    error = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(error) == 1, result.stderr
    for name in named:
        assert name in error[0]
    assert len(result.stderr.splitlines()) <= 4, result.stderr


# -- a good stream -------------------------------------------------------------------------


def test_a_good_stream_exits_0_with_only_output_events_on_stdout_and_a_summary_on_stderr(
    runner: CliRunner, tmp_path: Path
) -> None:
    events = _write(tmp_path / "events.jsonl", GOOD_LINES)

    result = _replay(runner, str(events))

    assert result.exit_code == 0, result.stderr
    outputs = _outputs(result.stdout)
    assert outputs, "the stream fires deadlines and a complaint recommendation"
    assert {output["type"] for output in outputs} <= OUTPUT_TYPES
    assert _deadlines(outputs) == {("o-1", "confirmed_fulfillment"), ("o-1", "complaint_response")}
    assert "COMPLAINT_DAMAGED" in {output.get("reason") for output in outputs}
    assert "replayed 4 lines" in result.stderr
    assert "0 rejected" in result.stderr


def test_quiet_writes_nothing_to_stderr(runner: CliRunner, tmp_path: Path) -> None:
    events = _write(tmp_path / "events.jsonl", GOOD_LINES)

    result = _replay(runner, "--quiet", str(events))

    assert result.exit_code == 0
    assert result.stderr == ""
    assert _outputs(result.stdout)


def test_output_writes_the_events_to_the_file_and_nothing_to_stdout(
    runner: CliRunner, tmp_path: Path
) -> None:
    events = _write(tmp_path / "events.jsonl", GOOD_LINES)
    written = tmp_path / "out" / "outputs.jsonl"
    written.parent.mkdir()

    result = _replay(runner, str(events), "--output", str(written))

    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert _outputs(written.read_text(encoding="utf-8")) == _outputs(
        _replay(runner, "-q", str(events)).stdout
    )
    assert "replayed 4 lines" in result.stderr


def test_dash_reads_the_events_from_stdin(runner: CliRunner, tmp_path: Path) -> None:
    stream = b"".join(line + b"\n" for line in [*GOOD_LINES, b"not json"])
    from_file = _replay(runner, "-q", str(_write(tmp_path / "events.jsonl", GOOD_LINES)))

    result = _replay(runner, "-q", "-", stdin=stream)

    assert result.exit_code == 0, result.stderr
    outputs = _outputs(result.stdout)
    rejected = [output for output in outputs if output["type"] == "event.rejected"]
    assert [output["source"] for output in rejected] == [{"file": "-", "line": 5}]
    assert [o for o in outputs if o["type"] != "event.rejected"] == _outputs(from_file.stdout)


# -- bad lines -----------------------------------------------------------------------------


BAD_LINES = {
    2: (b"this is not json", "JSON"),
    3: (_event("order.shipped", "x-1", order_id="o-1"), "order.shipped"),
    4: (_placed("o-8", sku=None), "'sku'"),
    5: (b'{"event_id": "\xff\xfe", "type": "order.cancelled"}', "UTF-8"),
    6: (_placed("o-9", quantity=0), "'quantity'"),
}


def test_each_bad_line_becomes_one_rejection_at_its_line_and_the_run_goes_on(
    runner: CliRunner, tmp_path: Path
) -> None:
    lines = [_placed("o-1"), *(line for line, _ in BAD_LINES.values())]
    lines += [b"", _complaint("o-1", "2026-01-06T09:00:00Z")]  # a blank line 7, then line 8
    events = _write(tmp_path / "events.jsonl", lines)

    result = _replay(runner, str(events))

    assert result.exit_code == 0, result.stderr
    outputs = _outputs(result.stdout)
    rejected = {o["source"]["line"]: o for o in outputs if o["type"] == "event.rejected"}
    assert sorted(rejected) == sorted(BAD_LINES)
    for number, (line, named) in BAD_LINES.items():
        assert rejected[number]["source"] == {"file": str(events), "line": number}
        assert named in rejected[number]["error"], rejected[number]["error"]
        assert rejected[number]["raw"] == line.decode("utf-8", errors="replace")
    assert "COMPLAINT_DAMAGED" in {o.get("reason") for o in outputs}, "line 8 was processed"
    assert f"{len(BAD_LINES)} rejected" in result.stderr


def test_a_file_of_only_bad_lines_still_exits_0(runner: CliRunner, tmp_path: Path) -> None:
    events = _write(tmp_path / "events.jsonl", [b"{", b"[]", b"null", b'{"type": 1}'])

    result = _replay(runner, "-q", str(events))

    assert result.exit_code == 0
    assert [o["source"]["line"] for o in _outputs(result.stdout)] == [1, 2, 3, 4]


def test_a_missing_input_file_is_a_short_error_naming_the_file(
    runner: CliRunner, tmp_path: Path
) -> None:
    result = _replay(runner, str(tmp_path / "no-such-events.jsonl"))

    _assert_short_error(result, "no-such-events.jsonl")


# -- --until -------------------------------------------------------------------------------


def test_until_later_than_the_data_fires_the_deadlines_due_by_then(
    runner: CliRunner, tmp_path: Path
) -> None:
    events = _write(tmp_path / "events.jsonl", GOOD_LINES)
    without = _outputs(_replay(runner, "-q", str(events)).stdout)

    result = _replay(runner, "-q", str(events), "--until", "2026-03-01T00:00:00+01:00")

    assert result.exit_code == 0, result.stderr
    assert (
        _deadlines(without)
        < _deadlines(_outputs(result.stdout))
        == {
            ("o-1", "confirmed_fulfillment"),
            ("o-1", "delivery"),
            ("o-1", "complaint_response"),
            ("o-2", "fulfillment"),
            ("o-2", "confirmed_fulfillment"),
            ("o-2", "delivery"),
        }
    )


@pytest.mark.parametrize("until", ["2026-03-01T00:00:00", "2026-03-01", "next week", ""])
def test_until_without_an_offset_or_not_a_timestamp_is_a_short_error_naming_until(
    runner: CliRunner, tmp_path: Path, until: str
) -> None:
    events = _write(tmp_path / "events.jsonl", GOOD_LINES)

    result = _replay(runner, str(events), "--until", until)

    assert result.exit_code == 2
    _assert_short_error(result, "--until")


# -- --policy ------------------------------------------------------------------------------


def test_a_partial_policy_file_changes_one_number_and_marks_the_policy_version(
    runner: CliRunner, tmp_path: Path
) -> None:
    events = _write(tmp_path / "events.jsonl", GOOD_LINES)
    policy = tmp_path / "faster-us.toml"
    policy.write_text('[rules."wish.delivery".days_by_country]\nUS = 3\n', encoding="utf-8")
    default_version = load_policy().ref.version

    result = _replay(runner, "-q", str(events), "--policy", str(policy))

    assert result.exit_code == 0, result.stderr
    outputs = _outputs(result.stdout)
    assert _deadlines(outputs) == {
        ("o-1", "confirmed_fulfillment"),
        ("o-1", "complaint_response"),
        ("o-1", "delivery"),
    }
    delivery = next(o for o in outputs if o.get("deadline") == "delivery")
    assert delivery["due_at"] == "2026-01-08T10:00:00Z"
    versions = {o["policy"]["version"] for o in outputs}
    assert len(versions) == 1
    version = versions.pop()
    assert version.startswith(f"{default_version}+")
    assert len(version) > len(default_version) + 1


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ('[rules."wish.delivery".days_by_country]\nUS = 0\n', "days_by_country.US"),
        ('[rules."wish.delivery".days_by_country]\nUS = "ten"\n', "days_by_country.US"),
        ('[rules."wish.delivery"]\ndefualt_days = 3\n', "defualt_days"),
        ('[rules."wish.fulfillment"]\ndays = -1\n', '"wish.fulfillment".days'),
    ],
    ids=["out-of-bounds", "wrong-type", "unknown-key", "negative-duration"],
)
def test_a_bad_policy_file_is_a_one_line_error_naming_the_key(
    runner: CliRunner, tmp_path: Path, toml: str, key: str
) -> None:
    events = _write(tmp_path / "events.jsonl", GOOD_LINES)
    policy = tmp_path / "bad-policy.toml"
    policy.write_text(toml, encoding="utf-8")

    result = _replay(runner, str(events), "--policy", str(policy))

    assert result.exit_code != 0
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert key in result.stderr
    assert "bad-policy.toml" in result.stderr


def test_a_policy_file_that_is_not_toml_is_a_one_line_error_naming_the_file(
    runner: CliRunner, tmp_path: Path
) -> None:
    events = _write(tmp_path / "events.jsonl", GOOD_LINES)
    policy = tmp_path / "broken.toml"
    policy.write_text("rules = [\n", encoding="utf-8")

    result = _replay(runner, str(events), "--policy", str(policy))

    _assert_short_error(result, "broken.toml", "TOML")


def test_a_missing_policy_file_is_a_short_error_naming_the_file(
    runner: CliRunner, tmp_path: Path
) -> None:
    events = _write(tmp_path / "events.jsonl", GOOD_LINES)

    result = _replay(runner, str(events), "--policy", str(tmp_path / "no-such-policy.toml"))

    _assert_short_error(result, "no-such-policy.toml")


# -- the installed entry point -------------------------------------------------------------


def _installed_script() -> str:
    for folder in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        found = shutil.which("orderwatch", path=folder)
        if found:
            return found
    found = shutil.which("orderwatch")
    if found is None:
        pytest.fail("the orderwatch console script is not installed (pip install -e .)")
    return found


def test_the_installed_orderwatch_script_replays_a_file(tmp_path: Path) -> None:
    events = _write(tmp_path / "events.jsonl", [*GOOD_LINES, b"not json"])

    completed = subprocess.run(
        [_installed_script(), "replay", str(events)],
        capture_output=True,
        check=False,
        timeout=120,
    )

    assert completed.returncode == 0, completed.stderr
    outputs = _outputs(completed.stdout.decode("utf-8"))
    assert {output["type"] for output in outputs} == OUTPUT_TYPES
    assert b"replayed 5 lines" in completed.stderr
    assert b"1 rejected" in completed.stderr


@pytest.mark.parametrize(
    ("output", "why"),
    [("missing-dir/out.jsonl", "No such file or directory"), ("/dev/full", "No space left")],
)
def test_an_output_that_cannot_be_written_is_a_short_error_naming_it(
    runner: CliRunner, tmp_path: Path, output: str, why: str
) -> None:
    if output == "/dev/full" and not Path(output).exists():
        pytest.skip("this system has no /dev/full")
    target = output if output.startswith("/") else str(tmp_path / output)
    events = _write(tmp_path / "events.jsonl", GOOD_LINES)

    result = _replay(runner, "-o", target, str(events))

    _assert_short_error(result, target, why)


def test_until_before_the_data_is_a_warning_naming_until(runner: CliRunner, tmp_path: Path) -> None:
    events = _write(tmp_path / "events.jsonl", GOOD_LINES)

    early = _replay(runner, "-q", "--until", "2001-01-01T00:00:00Z", str(events))
    later = _replay(runner, "-q", "--until", "2099-01-01T00:00:00Z", str(events))

    assert early.exit_code == 0
    [warning] = early.stderr.splitlines()
    assert warning.startswith("orderwatch: warning: --until 2001-01-01T00:00:00Z is before")
    assert later.stderr == ""
