"""``orderwatch demo``'s command line: its few flags, and usage errors before anything starts."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from streams.cli import main


def test_demo_has_its_few_flags() -> None:
    result = CliRunner().invoke(main, ["demo", "--help"])
    assert result.exit_code == 0
    for flag in ("--broker", "--orders", "--seed", "--duration", "--no-live"):
        assert flag in result.output
    assert "Ctrl-C" in result.output


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--orders", "0"], "--orders"),
        (["--duration", "0"], "--duration"),
        (["--seed", "one"], "--seed"),
        (["--clock", "wall"], "--clock"),
    ],
)
def test_a_bad_flag_is_a_usage_error_before_anything_starts(
    runner: CliRunner, args: list[str], problem: str
) -> None:
    result = runner.invoke(main, ["demo", *args])
    assert result.exit_code == 2
    assert problem in result.stderr
