"""``streams.core`` names its public face, and importing it stays cheap and cycle-free."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import streams.core
from streams.core import engine, policy, processor, rule_ids, timekeeping

ROOT = Path(__file__).resolve().parents[3]
HOMES = (engine, policy, processor, rule_ids, timekeeping)


@pytest.mark.parametrize("name", streams.core.__all__)
def test_a_public_name_is_the_object_its_module_defines(name: str) -> None:
    homes = [module for module in HOMES if name in module.__all__]
    assert homes
    for home in homes:  # Output is the engine's too
        assert getattr(streams.core, name) is getattr(home, name)


def test_the_face_is_the_processor_its_reads_and_actions_the_engine_and_the_policy() -> None:
    face = set(streams.core.__all__)
    assert {"PartitionProcessor", "Actions", "Engine", "Policy", "EventTime", "WallTime"} <= face
    assert set(processor.__all__) <= face  # every read, the keeper, the actions


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nowhere'"):
        _ = streams.core.Nowhere  # type: ignore[attr-defined]


def _fresh(code: str) -> str:
    """What ``code`` prints in a fresh interpreter that imports this source tree."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_importing_the_package_imports_no_core_module_and_no_pydantic() -> None:
    loaded = _fresh(
        "import sys, streams.core; "
        "print(sorted(m for m in sys.modules if m.startswith(('streams.', 'pydantic'))))"
    )
    assert loaded == "['streams.core']"


def test_every_public_name_imports_first_in_a_fresh_interpreter() -> None:
    """Each module reached first through the package, in turn: no import cycle."""
    names = sorted({next(n for n in streams.core.__all__ if n in m.__all__) for m in HOMES})
    for name in names:
        assert _fresh(f"from streams.core import {name}; print('imported')") == "imported"
