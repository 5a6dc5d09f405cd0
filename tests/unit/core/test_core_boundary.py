"""The core's boundary: ``streams/core`` imports nothing of the shell and does no I/O.

Every module of ``streams/core`` is parsed with :mod:`ast` (not imported) and must not import a
``streams`` module outside ``streams.core``, import a module that reaches the outside world
(files, environment, clock, processes, network), or call what reads it (``open``,
``Path.read_text``, ``tomllib.load``, ``importlib.resources``, ``os.environ``, ``time.time``,
``datetime.now``, ...). Policy files are read by the shell (:mod:`streams.policy_files`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[3] / "streams" / "core"
CORE_MODULES = sorted(CORE.glob("*.py"))

#: Modules whose import alone means the outside world (or its clock) is within reach.
FORBIDDEN_MODULES = frozenset(
    {
        "asyncio",
        "importlib",
        "io",
        "logging",
        "os",
        "pathlib",
        "random",
        "shutil",
        "socket",
        "subprocess",
        "sys",
        "tempfile",
        "time",
        "tomllib",
        "urllib",
    }
)
#: Calls of these names (builtins) do I/O.
FORBIDDEN_CALLS = frozenset({"open", "print", "input", "getenv"})
#: Calls of a method of these names read files, the environment or the clock.
FORBIDDEN_METHODS = frozenset(
    {
        "read_text",
        "read_bytes",
        "write_text",
        "write_bytes",
        "open",
        "load",  # tomllib.load, json.load: from a file
        "dump",  # json.dump: to a file
        "files",  # importlib.resources.files
        "getenv",
        "now",
        "utcnow",
        "today",
        "time",
        "monotonic",
        "perf_counter",
    }
)
#: Attributes whose mere reading is I/O-ish.
FORBIDDEN_ATTRIBUTES = frozenset({"environ"})


def _is_core(module: str) -> bool:
    return module == "streams.core" or module.startswith("streams.core.")


def problems(source: str) -> list[str]:
    """What in ``source`` (a module of the core) crosses the boundary, one line each."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        where = f"line {getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.extend(_import_problems(alias.name, [], where))
        elif isinstance(node, ast.ImportFrom):
            if node.level > 1:
                found.append(f"{where}: relative import from outside the core")
            elif node.module is not None and node.level == 0:
                names = [alias.name for alias in node.names]
                found.extend(_import_problems(node.module, names, where))
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
                found.append(f"{where}: calls {func.id}()")
            elif isinstance(func, ast.Attribute) and func.attr in FORBIDDEN_METHODS:
                found.append(f"{where}: calls .{func.attr}()")
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRIBUTES:
            found.append(f"{where}: reads .{node.attr}")
    return found


def _import_problems(module: str, names: list[str], where: str) -> list[str]:
    top = module.partition(".")[0]
    if top == "streams":
        if module == "streams":
            return [f"{where}: imports streams.{name}" for name in names if name != "core"]
        if not _is_core(module):
            return [f"{where}: imports {module}, outside the core"]
        return []
    if top in FORBIDDEN_MODULES:
        return [f"{where}: imports {module}"]
    return []


def test_the_core_has_modules_to_check():
    assert len(CORE_MODULES) > 10


@pytest.mark.parametrize("path", CORE_MODULES, ids=lambda path: path.name)
def test_a_core_module_stays_inside_the_boundary(path):
    assert problems(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "source",
    [
        "from streams.errors import PolicyError",
        "from streams import errors",
        "import streams.settings",
        "from ... import errors",
        "from importlib import resources",
        "import tomllib",
        "import os",
        "from time import time",
        "data = open('wish.toml').read()",
        "text = path.read_text()",
        "data = path.read_bytes()",
        "doc = tomllib.load(handle)",
        "home = os.environ['HOME']",
        "stamp = time.time()",
        "moment = datetime.now(UTC)",
        "day = date.today()",
        "blob = resources.files('streams.marketplaces').joinpath('wish.toml')",
    ],
)
def test_the_check_catches_a_crossing(source):
    assert problems(source)


@pytest.mark.parametrize(
    "source",
    [
        "from streams.core.policy import Policy",
        "from streams.core import carrier, merchant",
        "from . import window",
        "import heapq, json, hashlib",
        "state.shipments.now",
        "document = json.loads(text)",
        "moment = self.now",
    ],
)
def test_the_check_lets_the_core_be(source):
    assert problems(source) == []
