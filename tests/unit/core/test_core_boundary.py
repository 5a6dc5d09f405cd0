"""The core's boundary: ``streams/core`` imports nothing of the shell, does no I/O and keeps
no state of its own.

Every module of ``streams/core`` is parsed with :mod:`ast` (not imported) and must not import a
``streams`` module outside ``streams.core``, import a module that reaches the outside world
(files, environment, clock, processes, network, Kafka and Faust), or call what reads it
(``open``, ``Path.read_text``, ``tomllib.load``, ``importlib.resources``, ``os.environ``,
``time.time``, ``datetime.now``, ...). Policy files are read by the shell
(:mod:`streams.policy_files`).

Nor may a module hold mutable state: no module-level dict, list or set (a literal, a
comprehension, or a call that makes one), no ``global`` statement, no memoising decorator.
Constants are frozensets, tuples, ``MappingProxyType``, compiled patterns and the like; state
lives in the instances the drivers make.
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
        "aiokafka",
        "asyncio",
        "faust",
        "importlib",
        "io",
        "logging",
        "mode",
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
#: Calls that make a mutable container.
MUTABLE_CALLS = frozenset(
    {
        "dict",
        "list",
        "set",
        "bytearray",
        "defaultdict",
        "OrderedDict",
        "Counter",
        "deque",
        "ChainMap",
    }
)
#: Expressions that make a mutable container.
MUTABLE_DISPLAYS = (ast.Dict, ast.List, ast.Set, ast.DictComp, ast.ListComp, ast.SetComp)
#: Decorators that keep a cache in the module.
MEMOISING = frozenset({"cache", "lru_cache", "cached"})
#: Module-level names that may be lists by convention.
CONVENTIONAL = frozenset({"__all__"})


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
        elif isinstance(node, ast.Global):
            found.append(f"{where}: global {', '.join(node.names)}")
    return found + _state_problems(ast.parse(source).body)


def _state_problems(body: list[ast.stmt]) -> list[str]:
    """Mutable state held by the module: what its top-level statements (also those inside a
    top-level ``if``, ``try`` or ``with``) bind, and the decorators of its functions."""
    found: list[str] = []
    for node in body:
        where = f"line {node.lineno}"
        if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = {target.id for target in targets if isinstance(target, ast.Name)}
            if node.value is not None and _mutable(node.value) and not names <= CONVENTIONAL:
                found.append(f"{where}: module-level mutable {ast.unparse(targets[0])}")
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for decorator in node.decorator_list:
                if _name(decorator) in MEMOISING:
                    found.append(f"{where}: {node.name} keeps a module-level cache")
        elif isinstance(node, ast.If | ast.With | ast.Try):
            blocks = [node.body, getattr(node, "orelse", []), getattr(node, "finalbody", [])]
            blocks += [handler.body for handler in getattr(node, "handlers", [])]
            for block in blocks:
                found.extend(_state_problems(block))
    return found


def _mutable(value: ast.expr) -> bool:
    return isinstance(value, MUTABLE_DISPLAYS) or (
        isinstance(value, ast.Call) and _name(value.func) in MUTABLE_CALLS
    )


def _name(node: ast.expr) -> str | None:
    """The name a call or decorator goes by (``functools.cache``: ``cache``)."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


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


def test_the_core_has_modules_to_check() -> None:
    assert len(CORE_MODULES) > 10


@pytest.mark.parametrize("path", CORE_MODULES, ids=lambda path: path.name)
def test_a_core_module_stays_inside_the_boundary(path: Path) -> None:
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
        "import faust",
        "from faust.tables import Table",
        "import aiokafka",
        "from aiokafka.errors import KafkaError",
        "import mode",
        "from mode.utils.objects import cached_property",
        "_VIEWS = {}",
        "_VIEWS: dict[int, str] = {}",
        "_SEEN: Final = []",
        "_KEYS = set()",
        "_BY_KEY = defaultdict(list)",
        "_QUEUE = collections.deque()",
        "_SQUARES = {n: n * n for n in range(4)}",
        "_NAMES = [name for name in ('a', 'b')]",
        "_TOTAL = dict(a=1)",
        "if TYPE_CHECKING:\n    _LATER = {}",
        "try:\n    pass\nexcept ImportError:\n    _FALLBACK = []",
        "def count():\n    global _COUNT\n    _COUNT += 1",
        "@lru_cache(maxsize=8)\ndef square(n):\n    return n * n",
        "@functools.cache\ndef square(n):\n    return n * n",
    ],
)
def test_the_check_catches_a_crossing(source: str) -> None:
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
        "_NAMES: Final = frozenset({'a', 'b'})",
        "_BY_NAME: Final = MappingProxyType({'a': 1})",
        "_PAIR = (1, 2)",
        "T = TypeVar('T')",
        "_WORD = re.compile(r'\\w+')",
        "__all__ = ['Engine', 'Policy']",
        "Page = dict[str, int]",
        "def found():\n    seen = {}\n    return seen",
        "class Keeper:\n    def __init__(self):\n        self.kept = []",
        "@dataclass(frozen=True)\nclass Point:\n    x: int",
    ],
)
def test_the_check_lets_the_core_be(source: str) -> None:
    assert problems(source) == []
