"""Fixtures for the command-line tests."""

from __future__ import annotations

import inspect

import pytest
from click.testing import CliRunner


@pytest.fixture
def runner() -> CliRunner:
    """A runner that keeps stdout and stderr apart.

    Click 8.2 removed ``mix_stderr`` and always captures stderr separately; click 8.1 needs
    ``mix_stderr=False`` for that.
    """
    if "mix_stderr" in inspect.signature(CliRunner).parameters:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    return CliRunner()
