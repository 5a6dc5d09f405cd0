"""Replay benchmark: events per second of the whole orderwatch replay, against plain ``json.loads``.

Run from the repository root::

    python -m bench.replay [--events N] [--seed S] [--repeat R] [--out FILE] [--keep PATH]

(``python bench/replay.py ...`` works too.) Steps:

1. Generate the first ``N`` events of a simulated stream (``streams.tools.simulator``, orders
without
   end, so the input is a snapshot of a live stream) as JSON Lines, with a malformed line after
   every ``--bad-every`` events, into a temporary file (or ``--keep PATH``).
2. Baseline: read the file and ``json.loads`` every line.
3. Replay: ``streams.replay.replay_file(input, output)``, which parses, validates, processes and
   writes every output, as ``orderwatch replay`` does.

Each step is timed with ``time.perf_counter``, best of ``--repeat`` runs. The results are printed
and appended as a dated entry to ``--out`` (default ``bench/results/replay.md``): input lines per
second for both steps, their ratio, the replay's counts of outputs, the Python version, the CPU
model and the exact command line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "replay.md"

if __package__ in (None, ""):  # run as a script: make ``streams`` importable from the checkout
    sys.path.insert(0, str(REPO))


@dataclass
class Result:
    """One benchmark run, as recorded."""

    command: str
    lines: int
    bad_lines: int
    input_bytes: int
    generate_seconds: float
    baseline_seconds: float
    replay_seconds: float
    repeat: int
    seed: int
    not_json: int = 0
    replay_lines: int = 0
    rejected: int = 0
    outputs: int = 0
    outputs_by_type: dict[str, int] = field(default_factory=dict)

    @property
    def baseline_rate(self) -> float:
        return self.lines / self.baseline_seconds

    @property
    def replay_rate(self) -> float:
        return self.lines / self.replay_seconds

    @property
    def ratio(self) -> float:
        return self.replay_rate / self.baseline_rate


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.replay",
        description="Benchmark orderwatch replay against a json.loads baseline.",
    )
    parser.add_argument(
        "--events", type=int, default=1_000_000, help="generated events (default 1,000,000)"
    )
    parser.add_argument("--seed", type=int, default=1, help="simulator seed (default 1)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per step; best kept")
    parser.add_argument(
        "--bad-every",
        type=int,
        default=10_000,
        help="a malformed line after every N events (default 10,000; 0 for none)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="results file to append to (default bench/results/replay.md)",
    )
    parser.add_argument("--keep", type=Path, help="write the generated input here and keep it")
    args = parser.parse_args(argv)
    if args.events < 1 or args.repeat < 1 or args.bad_every < 0:
        parser.error("--events and --repeat must be >= 1, --bad-every >= 0")
    return args


def _portable(arg: str) -> str:
    """An argument with absolute paths made relative to the checkout (or cut to their name)."""
    prefix, sep, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
    if os.path.isabs(value):
        path = Path(value).resolve()
        value = str(path.relative_to(REPO)) if path.is_relative_to(REPO) else f".../{path.name}"
    return f"{prefix}{sep}{value}"


def command_line(argv: Sequence[str] | None) -> str:
    """The command as typed, without machine-specific paths."""
    if argv is not None:
        words = ["python", "-m", "bench.replay", *argv]
    else:
        words = ["python", *sys.orig_argv[1:]]
    return shlex.join(_portable(word) for word in words)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def git_revision() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()

    try:
        revision = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{revision} (with uncommitted changes)" if dirty else revision


def generate(path: Path, events: int, seed: int, bad_every: int) -> int:
    from streams.tools.simulator import generate_events, write_jsonl

    stream = islice(generate_events(seed=seed, orders=events), events)
    return write_jsonl(stream, path, bad_line_every=bad_every, seed=seed)


def baseline(path: Path) -> tuple[float, int]:
    """Seconds to read ``path`` and ``json.loads`` every line; lines that are not JSON."""
    loads = json.loads
    failed = 0
    start = time.perf_counter()
    with open(path, "rb") as lines:
        for line in lines:
            try:
                loads(line)
            except ValueError:  # JSONDecodeError and UnicodeDecodeError
                failed += 1
    return time.perf_counter() - start, failed


def count_outputs(path: Path) -> dict[str, int]:
    counts: Counter[str] = Counter()
    with open(path, "rb") as lines:
        for line in lines:
            counts[json.loads(line).get("type", "?")] += 1
    return dict(counts)


def run(args: argparse.Namespace, command: str) -> Result:
    from streams.replay import replay_file

    with tempfile.TemporaryDirectory(prefix="orderwatch-bench-") as scratch:
        input_path = args.keep or Path(scratch) / "input.jsonl"
        output_path = Path(scratch) / "output.jsonl"
        print(f"generating {args.events:,} events (seed {args.seed}) ...", file=sys.stderr)
        start = time.perf_counter()
        lines = generate(input_path, args.events, args.seed, args.bad_every)
        generate_seconds = time.perf_counter() - start
        result = Result(
            command=command,
            lines=lines,
            bad_lines=lines - args.events,
            input_bytes=input_path.stat().st_size,
            generate_seconds=generate_seconds,
            baseline_seconds=float("inf"),
            replay_seconds=float("inf"),
            repeat=args.repeat,
            seed=args.seed,
        )
        for attempt in range(1, args.repeat + 1):
            print(f"baseline, run {attempt} ...", file=sys.stderr)
            seconds, result.not_json = baseline(input_path)
            result.baseline_seconds = min(result.baseline_seconds, seconds)
            print(f"replay, run {attempt} ...", file=sys.stderr)
            start = time.perf_counter()
            summary: Any = replay_file(input_path, output_path)
            result.replay_seconds = min(result.replay_seconds, time.perf_counter() - start)
        result.replay_lines = int(summary.lines)
        result.rejected = int(summary.rejected)
        result.outputs = int(summary.outputs)
        by_type = getattr(summary, "by_type", None)
        result.outputs_by_type = dict(by_type) if by_type else count_outputs(output_path)
    return result


def report(result: Result) -> str:
    """The dated Markdown entry for ``result``."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    kinds = ", ".join(f"{kind} {n:,}" for kind, n in sorted(result.outputs_by_type.items()))
    best = f"best of {result.repeat}" if result.repeat > 1 else "one run"
    return "\n".join(
        [
            f"## {now}: {result.lines:,} lines",
            "",
            f"- command: `{result.command}`",
            f"- commit: {git_revision()}",
            f"- Python: {platform.python_implementation()} {platform.python_version()}"
            f" on {platform.system()} {platform.machine()}",
            f"- CPU: {cpu_model()} ({os.cpu_count()} logical CPUs)",
            f"- input: {result.lines:,} lines ({result.bad_lines:,} malformed,"
            f" {result.not_json:,} of them not JSON),"
            f" {result.input_bytes / 1e6:,.1f} MB, simulator seed {result.seed},"
            f" generated in {result.generate_seconds:.1f} s",
            "",
            f"| step ({best}) | seconds | events/s |",
            "|---|---:|---:|",
            f"| baseline: read + `json.loads` per line | {result.baseline_seconds:.2f}"
            f" | {result.baseline_rate:,.0f} |",
            f"| `replay_file`: parse, validate, process, write | {result.replay_seconds:.2f}"
            f" | {result.replay_rate:,.0f} |",
            "",
            f"- replay / baseline: {result.ratio:.3f}"
            f" (the baseline is {1 / result.ratio:.1f}x faster)",
            f"- replay summary: {result.replay_lines:,} lines read, {result.rejected:,} rejected,"
            f" {result.outputs:,} outputs ({kinds or 'none'})",
            "",
        ]
    )


def record(path: Path, entry: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", encoding="utf-8") as results:
        if new:
            results.write(
                "# Replay benchmark\n\n"
                "Entries appended by `python -m bench.replay` (see `bench/replay.py`), newest"
                " last. Events/s counts input lines, malformed ones included.\n\n"
            )
        results.write(entry + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args, command_line(argv))
    entry = report(result)
    print(entry)
    record(args.out, entry)
    shown = args.out.resolve()
    where = shown.relative_to(REPO) if shown.is_relative_to(REPO) else shown
    print(f"appended to {where}", file=sys.stderr)
    if args.keep:
        print(f"input kept at {args.keep}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
