"""Group a py-spy profile of the worker (``--format raw``: collapsed stacks) by where time goes.

    python -m bench.profile_summary DIR/worker.pyspy.txt [--seconds S] [--events N]

Each sample goes to one group. A stack of aiokafka's producer sender task (the produce requests
of every send, all topics) is a group of its own. Else a stack with a frame of table/state
writes (``streams/worker/tables.py``, the codec, Faust's tables: their changelog sends included),
else of metrics, else of logging, else of the web server, else of producing (the worker's publisher
``streams/worker/publish.py``, Faust's topic send and producer, aiokafka's producer, our
serialize and headers) goes to that group wherever the frame is; any other stack goes to the
group of its frame nearest the leaf: our decode, the core, the worker's own code (the rest of
``streams/worker/`` and ``streams/``), or Faust/mode/aiokafka. Frames of asyncio, the standard
library and other libraries (pydantic, json, ...) count for whoever called them. py-spy records
busy samples only (no ``--idle``), so the shares are of CPU time in the worker's threads.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

TABLES = "table/state writes (streams/worker/tables.py, codec, Faust tables, changelog sends)"
LOGGING = "logging"
METRICS = "metrics (streams/ops/metrics.py, prometheus_client)"
DECODE = "our decode (streams/core/events.py, pydantic)"
CORE = "the core (streams/core/, streams/worker/inbox_table.py)"
SENDER = "aiokafka's producer sender task: the produce requests of every send (all topics)"
PRODUCING = (
    "producing outputs/facts (streams/worker/publish.py, Faust producer, aiokafka producer, "
    "serialize, headers)"
)
GLUE = "worker glue (streams/worker/ itself, offsets guard, clocks)"
FAUST = "Faust/mode/aiokafka internals (consumer, fetcher, stream, acks, commits, event loop)"
WEB = "web server (aiohttp: /metrics and /ready polls)"
GROUPS = (FAUST, GLUE, DECODE, CORE, TABLES, PRODUCING, SENDER, METRICS, LOGGING, WEB)


def _file(frame: str) -> str:
    return frame.rsplit("(", 1)[-1]


def frame_group(frame: str) -> str | None:
    """The group of one frame ``function (path:line)``, or None (a library we look through)."""
    path = _file(frame)
    if (
        "streams/worker/tables.py" in path
        or "faust/tables/" in path
        or "streams/core/state_codec.py" in path
    ):
        return TABLES
    if "streams/ops/metrics.py" in path or "prometheus_client/" in path:
        return METRICS
    if "logging/" in path or "streams/ops/logs.py" in path:
        return LOGGING
    if "aiohttp/" in path or "faust/web/" in path or "streams/worker/faust_fixes/web.py" in path:
        return WEB
    if any(part in path for part in PRODUCER_PATHS):
        return PRODUCING
    if "streams/core/events.py" in path:
        return DECODE
    if (
        "streams/core/" in path
        or "streams/worker/inbox_table.py" in path
        or "streams/worker/wire.py" in path
    ):
        return CORE
    if path.startswith(WORKER_PATHS):
        return GLUE
    if any(part in path for part in ("faust/", "mode/", "aiokafka/")):
        return FAUST
    return None  # asyncio, the standard library, pydantic, ...: whoever called them


PRODUCER_PATHS = (
    "faust/topics.py",
    "faust/channels.py",
    "faust/transport/producer.py",
    "aiokafka/producer/",
    "streams/worker/publish.py",
    "streams/core/output_json.py",
    "streams/kafka/headers.py",
)
#: The worker's own code where no group above claims it: the streams/worker/ package (in
#: profiles of earlier versions, streams/worker.py) and the rest of the shell.
WORKER_PATHS = ("streams/worker/", "streams/worker.py", "streams/")
#: Groups that take a sample wherever their frame is in its stack, in this order.
ANYWHERE = (TABLES, METRICS, LOGGING, WEB, PRODUCING)


def stack_group(frames: list[str]) -> str:
    groups = [frame_group(frame) for frame in frames]
    if any("aiokafka/producer/sender.py" in _file(frame) for frame in frames):
        return SENDER
    for anywhere in ANYWHERE:
        if anywhere in groups:
            return anywhere
    return next((group for group in reversed(groups) if group is not None), FAUST)


def _library_file(frames: list[str]) -> str:
    """The Faust/mode/aiokafka file nearest the leaf (a Faust sensor anywhere: the sensors)."""
    if any("faust/sensors/" in _file(frame) for frame in frames):
        return "faust/sensors/ (the Monitor)"
    for frame in reversed(frames):
        path = _file(frame).split(":")[0]
        # mode/worker.py only runs the loop: below it is the loop's own scheduling and select.
        if path.startswith(("faust/", "mode/", "aiokafka/")) and path != "mode/worker.py":
            return path
    return "the asyncio event loop itself (scheduling, callbacks, select)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--seconds", type=float, help="the profiled span, for µs per event")
    parser.add_argument("--events", type=int, help="events handled in that span")
    parser.add_argument("--rate", type=int, default=100, help="py-spy's samples per second")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    groups: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    internals: Counter[str] = Counter()
    total = 0
    for line in args.profile.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        group = stack_group(frames)
        groups[group] += n
        if group == FAUST:
            internals[_library_file(frames)] += n
        leaves[frames[-1]] += n
        for frame in set(frames):
            if _file(frame).startswith("streams/"):
                ours[frame.rsplit(" (", 1)[0] + " (" + _file(frame).split(":")[0] + ")"] += n
    per_event = ""
    if args.seconds and args.events:
        busy = total / args.rate
        per_event = (
            f"; {busy:.1f} s busy of {args.seconds:.1f} s ({busy / args.seconds:.0%}), "
            f"{busy / args.events * 1e6:.0f} µs CPU per event"
        )
    print(f"{total} samples at {args.rate} Hz{per_event}\n")
    print("| group | samples | share | µs/event |")
    print("|---|---:|---:|---:|")
    for group in GROUPS:
        share = groups[group] / total
        us = f"{groups[group] / args.rate / args.events * 1e6:.0f}" if args.events else ""
        print(f"| {group} | {groups[group]} | {share:.1%} | {us} |")
    print(f"\ntop {args.top} leaf frames (self time):\n")
    for frame, n in leaves.most_common(args.top):
        print(f"- {n / total:5.1%} `{frame}`")
    print(f"\n{FAUST} by the library file nearest the leaf:\n")
    for path, n in internals.most_common(args.top):
        print(f"- {n / total:5.1%} `{path}`")
    print(f"\ntop {args.top} of our functions (inclusive):\n")
    for frame, n in ours.most_common(args.top):
        print(f"- {n / total:5.1%} `{frame}`")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
