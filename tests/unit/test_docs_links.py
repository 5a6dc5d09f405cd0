"""Every path the Markdown documentation names is a file of the repository.

Checked in README.md, RELIABILITY.md, docs/*.md, bench/results/*.md and examples/README.md:

- links ``[text](target)``: the target (relative to the page) is a tracked file or a folder of
  tracked files, and its ``#anchor``, if any, is a heading of the Markdown page it points to;
- backticked paths (``streams/worker/tables.py``, ``core/processor.py``, ``tables.py``): some
  tracked file's path ends with them; backticked modules (``streams.tools.send``) are modules;
- file trees in fenced blocks (a block whose first line is a folder such as ``streams/``): every
  entry, at its place in the tree, is tracked.

The truth is ``git ls-files``: a file that exists only in a working copy does not count.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

DOC_GLOBS = ("README.md", "RELIABILITY.md", "docs/*.md", "bench/results/*.md", "examples/README.md")

# Modules the documentation describes ahead of the change that adds them. Remove an entry once
# the module exists; the test then checks it like any other path.
ANNOUNCED: frozenset[str] = frozenset()

# Backticked paths that are not the repository's to hold: Kafka's scripts, Faust's and mode's
# sources, the scratch files of a recorded measurement, and files of earlier versions that dated
# records and upgrade notes name as such.
NOT_OURS = frozenset(
    {
        "kafka-configs.sh",
        "kafka-broker-api-versions.sh",
        "faust/streams.py",
        "mode/services.py",
        "mode/threads.py",
        "rt.py",
        "bare-per-message.pyspy.txt",
        "bare-batched.pyspy.txt",
        "streams/worker.py",
    }
)

_FENCE = re.compile(r"^\s*(```|~~~)")
_LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
_FILE = re.compile(r"^[\w.-]+(?:/[\w.-]+)*\.(?:py|md|toml|ya?ml|json|jsonl|sh|xml|service|txt)$")
_FOLDER = re.compile(r"^[\w.-]+(?:/[\w.-]+)*/$")
_MODULE = re.compile(r"^(?:streams|bench)(?:\.\w+)+$")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_TREE_ROOT = re.compile(r"^([\w.-]+/)\s*$")
# a tree line's names: files with an extension or folders ending in "/"; other lines are prose
_TREE_NAME = r"[\w.-]+(?:/|\.\w+)"
_TREE_ENTRY = re.compile(rf"^( *)({_TREE_NAME}(?:, {_TREE_NAME})*)(?:\s|$)")
# placeholders and paths outside the checkout: `DIR/worker.pyspy.txt`, `.../out.md`, `/etc/x.pem`
_NOT_A_REPO_PATH = re.compile(r"^(?:\.\.\.|/|~|[A-Z][A-Z_]*/)")


@dataclass(frozen=True)
class Problem:
    """One path a page names that the repository does not hold."""

    page: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: {self.what}"


class Repository:
    """The tracked files of a checkout, and the headings of its Markdown pages."""

    def __init__(self, root: Path, files: Iterable[str]) -> None:
        self.root = root
        self.files = frozenset(files)
        self.folders = frozenset(
            "/".join(parts[:i])
            for parts in (f.split("/") for f in self.files)
            for i in range(1, len(parts))
        )
        self._anchors: dict[str, frozenset[str]] = {}

    def has(self, path: str) -> bool:
        """Whether ``path`` (repository-relative, no leading ``./``) is a tracked file or folder."""
        path = path.rstrip("/")
        return path in self.files or path in self.folders or path in ANNOUNCED

    def ends_with(self, tail: str) -> bool:
        """Whether some tracked file or folder is ``tail`` or ends with ``/tail``."""
        tail = tail.rstrip("/")
        names = self.files | self.folders | ANNOUNCED
        return tail in names or any(name.endswith("/" + tail) for name in names)

    def is_module(self, dotted: str) -> bool:
        """Whether ``dotted`` is a module or package, or a name in a (non-package) module."""
        path = dotted.replace(".", "/")
        if f"{path}.py" in self.files or f"{path}/__init__.py" in self.files:
            return True
        parent = path.rpartition("/")[0]
        return f"{parent}.py" in self.files

    def anchors(self, page: str) -> frozenset[str]:
        """The GitHub anchors of a Markdown page's headings."""
        if page not in self._anchors:
            text = (self.root / page).read_text(encoding="utf-8")
            self._anchors[page] = frozenset(heading_anchors(text))
        return self._anchors[page]


def tracked_files(root: Path) -> list[str]:
    """``git ls-files`` of the checkout at ``root``."""
    git = shutil.which("git")
    if git is None or not (root / ".git").exists():
        pytest.skip("the documentation's paths are checked against a git checkout")
    listing = subprocess.run(
        [git, "ls-files", "-z"], cwd=root, check=True, capture_output=True, text=True
    )
    return [name for name in listing.stdout.split("\0") if name]


def heading_anchors(text: str) -> Iterator[str]:
    """The anchors GitHub gives the headings of ``text``: lower case, punctuation dropped,
    spaces as hyphens, a repeated one numbered."""
    seen: dict[str, int] = {}
    for _, line in _outside_fences(text):
        match = _HEADING.match(line)
        if match is None:
            continue
        title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", match.group(2))
        slug = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        yield slug if count == 0 else f"{slug}-{count}"


def _outside_fences(text: str) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of the lines outside fenced code blocks."""
    fenced = False
    for number, line in enumerate(text.splitlines(), start=1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def _fenced_blocks(text: str) -> Iterator[tuple[int, list[str]]]:
    """``(line number of the first line, lines)`` of every fenced code block."""
    block: list[str] | None = None
    start = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if _FENCE.match(line):
            if block is None:
                block, start = [], number + 1
            else:
                yield start, block
                block = None
        elif block is not None:
            block.append(line)


def check_page(repo: Repository, page: str, text: str) -> list[Problem]:
    """Every link, backticked path and file tree of one page that does not resolve."""
    problems: list[Problem] = []
    problems += _check_links(repo, page, text)
    problems += _check_code_spans(repo, page, text)
    problems += _check_trees(repo, page, text)
    return problems


def _check_links(repo: Repository, page: str, text: str) -> Iterator[Problem]:
    folder = Path(page).parent
    for number, line in _outside_fences(text):
        for match in _LINK.finditer(_CODE_SPAN.sub("", line)):
            target = match.group(1)
            if _SCHEME.match(target):
                continue
            path, _, anchor = target.partition("#")
            resolved = _normalise(folder / path) if path else page
            if resolved is None or not repo.has(resolved):
                yield Problem(page, number, f"link to {target!r}: no such file in the repository")
            elif anchor and resolved.endswith(".md") and anchor not in repo.anchors(resolved):
                yield Problem(page, number, f"link to {target!r}: {resolved} has no such heading")


def _normalise(path: Path) -> str | None:
    """A repository-relative path without ``.`` and ``..``, or None if it leaves the root."""
    parts: list[str] = []
    for part in path.parts:
        if part == "..":
            if not parts:
                return None
            parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)


def _check_code_spans(repo: Repository, page: str, text: str) -> Iterator[Problem]:
    for number, line in _outside_fences(text):
        for span in _CODE_SPAN.finditer(line):
            for token in span.group(2).split():
                token = token.strip(",;:()")
                if token in NOT_OURS or _NOT_A_REPO_PATH.match(token):
                    continue
                if (_FILE.match(token) or _FOLDER.match(token)) and not repo.ends_with(token):
                    yield Problem(page, number, f"`{token}`: no tracked file has this path")
                elif _MODULE.match(token) and not repo.is_module(token):
                    yield Problem(page, number, f"`{token}`: no such module")


def _check_trees(repo: Repository, page: str, text: str) -> Iterator[Problem]:
    for start, lines in _fenced_blocks(text):
        if not lines or (root := _TREE_ROOT.match(lines[0])) is None:
            continue
        # (indent, folder) of the folders enclosing the current line, innermost last
        stack: list[tuple[int, str]] = [(-1, root.group(1))]
        for offset, line in enumerate(lines[1:], start=1):
            entry = _TREE_ENTRY.match(line)
            if entry is None or not line.strip():
                continue
            indent = len(entry.group(1))
            while stack[-1][0] >= indent:
                stack.pop()
            for name in entry.group(2).split(", "):
                path = stack[-1][1] + name
                if not repo.has(path):
                    yield Problem(page, start + offset, f"tree entry {path!r}: not tracked")
                if name.endswith("/"):
                    stack.append((indent, path))


def _pages(repo: Repository) -> list[str]:
    return sorted({str(p.relative_to(repo.root)) for g in DOC_GLOBS for p in repo.root.glob(g)})


@pytest.fixture(scope="module")
def repository() -> Repository:
    return Repository(REPO, tracked_files(REPO))


def test_every_path_the_documentation_names_is_in_the_repository(repository: Repository) -> None:
    pages = _pages(repository)
    assert "README.md" in pages
    assert "docs/architecture.md" in pages
    problems = [
        problem
        for page in pages
        for problem in check_page(repository, page, (REPO / page).read_text(encoding="utf-8"))
    ]
    assert not problems, "\n".join(map(str, problems))


SAMPLE_REPO = Repository(
    Path("/nonexistent"),
    ["README.md", "docs/a.md", "streams/__init__.py", "streams/core/order.py", "streams/cli.py"],
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("see [a](a.md)", []),
        ("see [gone](gone.md)", ["link to 'gone.md'"]),
        ("see [up](../README.md) and [web](https://example.org/x.md)", []),
        ("see [outside](../../x.md)", ["link to '../../x.md'"]),
        ("`streams/core/order.py`, `core/order.py`, `order.py`, `streams/core/`", []),
        ("`streams/core/orders.py`", ["`streams/core/orders.py`"]),
        ("`python -m streams.cli`, `streams.core.order.apply`", []),
        ("`python -m streams.core.clock`", ["`streams.core.clock`"]),
        ("```\n`streams/gone.py`\n```", []),
        ("`DIR/gone.py`, `.../gone.md`, `kafka-configs.sh`", []),
        ("```\nstreams/\n  cli.py   the command\n  core/\n    order.py  orders\n```", []),
        (
            "```\nstreams/\n  core/\n    cli.py   misplaced\n  order.py\n```",
            ["'streams/core/cli.py'", "'streams/order.py'"],
        ),
    ],
)
def test_the_checker_finds_what_does_not_resolve(text: str, expected: list[str]) -> None:
    problems = [str(p) for p in check_page(SAMPLE_REPO, "docs/b.md", text)]
    assert len(problems) == len(expected), problems
    for problem, fragment in zip(problems, expected, strict=True):
        assert fragment in problem


def test_a_link_to_a_missing_heading_is_found(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# Title\n## Known limits\n", encoding="utf-8")
    repo = Repository(tmp_path, ["docs/a.md"])
    text = "[ok](a.md#known-limits) [here](#title) [gone](a.md#limits)"
    problems = [str(p) for p in check_page(repo, "docs/a.md", text)]
    assert problems == ["docs/a.md:1: link to 'a.md#limits': docs/a.md has no such heading"]


def test_anchors_are_github_s() -> None:
    text = "# Time in `orderwatch`\n## Worker and replay: known differences\n## A\n## A\n"
    assert list(heading_anchors(text)) == [
        "time-in-orderwatch",
        "worker-and-replay-known-differences",
        "a",
        "a-1",
    ]
