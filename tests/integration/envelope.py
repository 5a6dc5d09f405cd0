"""The fault suite's real envelope: frozen workers and brokers, a cluster, the wall clock.

Faults :func:`faults.apply_fault` hands over here (kept apart from the kill/restart/rebalance
faults):

- ``sigstop``: SIGSTOP one worker for longer than the session timeout while the stream flows,
  then SIGCONT (a long GC, a stalled VM, CPU throttling);
- ``broker-sigstop``: the same to the broker (node 1 of a cluster);
- ``node-kill`` / ``node-start``: SIGKILL the next node of a cluster, start it again later;
- ``node-sigstop+kill``: freeze the next node of a cluster and, while it is frozen, SIGKILL a
  worker (its replacement starts at once).

The wall-clock scenarios date their events from the real now and compare the workers' outputs
with ``replay --until T``, T a moment the workers' clock has reached when their outputs are
read; their data keeps every decision away from T (:func:`stable_until` checks it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]
from faults import (
    Comparison,
    Group,
    Report,
    Scenario,
    compare,
    kafka_sh,
    read_all_outputs,
    wait_until_quiet,
)
from worker_harness import (
    INPUT_TOPICS,
    Output,
    group_lag,
    produce_lines,
    replayed_outputs,
    wait_for,
)

from streams.settings import Settings

#: The worker's default ORDERWATCH_QUIET_AFTER (seconds), which the wall-clock runs keep.
QUIET_AFTER: float = Settings.model_fields["quiet_after"].default

#: The faults this module applies (see the module doc).

ENVELOPE_FAULTS = ("sigstop", "broker-sigstop", "node-kill", "node-start", "node-sigstop+kill")
#: Nodes of a cluster that ``node-kill`` took down and ``node-start`` has not started, per group.
_DOWN: dict[int, list[int]] = {}
_TURN: Counter[str] = Counter()
#: Partitions of the input topics each node led just before the first ``node-kill``, per group
#: name (and ``NAME/killed``: the node it killed).
LEADERS: dict[str, Counter[int]] = {}


def apply_envelope_fault(fault: str, group: Group, scenario: Scenario, nodes: int = 3) -> None:
    low, high = scenario.freeze_seconds
    seconds = random.Random(f"{group.name}{fault}{_TURN[fault]}").uniform(low, high)
    home = scenario.kafka_home
    if fault == "sigstop":
        freeze_worker(group, seconds)
    elif fault == "broker-sigstop":
        frozen(group, seconds, freeze=lambda: kafka_sh("freeze", home=home),
               thaw=lambda: kafka_sh("thaw", home=home))  # fmt: skip
        group.wait_ready()
    elif fault == "node-kill":
        node = _next_node(fault, nodes)
        LEADERS[group.name] = asyncio.run(leaders(group.bootstrap, group.name + "-"))
        LEADERS[group.name + "/killed"] = Counter({node: 1})
        kafka_sh("kill", str(node), home=home)
        _DOWN.setdefault(id(group), []).append(node)
    elif fault == "node-start":
        for node in _DOWN.pop(id(group), []):
            kafka_sh("start-node", str(node), home=home)
        group.wait_ready()
    elif fault == "node-sigstop+kill":
        node = _next_node(fault, nodes)
        killed: list[str] = []
        frozen(
            group,
            seconds,
            freeze=lambda: kafka_sh("freeze", str(node), home=home),
            thaw=lambda: kafka_sh("thaw", str(node), home=home),
            meanwhile=lambda: _sigkill_one(group, killed),
        )
        # The replacement starts once the node is thawed: waiting for it to get ready would
        # keep the node frozen for longer than planned.
        group.start_one(killed[0] if killed else None)
        group.wait_ready()
    else:
        raise ValueError(f"unknown fault {fault!r}")
    _TURN[fault] += 1


def _sigkill_one(group: Group, killed: list[str]) -> None:
    """SIGKILL the workers in turn (no replacement yet); its data dir goes to ``killed``."""
    victim = group.running.pop(group.turn % len(group.running))
    group.turn += 1
    victim.stop(kill=True)
    killed.append(victim.env()["ORDERWATCH_DATA_DIR"])


def _next_node(fault: str, nodes: int) -> int:
    """Nodes in turn: 2, 3, 1, ... (node 1 is also the bootstrap address listed first)."""
    return (_TURN[fault] + 1) % nodes + 1


def frozen(
    group: Group,
    seconds: float,
    *,
    freeze: Callable[[], object],
    thaw: Callable[[], object],
    meanwhile: Callable[[], object] | None = None,
) -> None:
    """Freeze something for ``seconds`` while the other workers go on (supervised); thaw it."""
    freeze()
    try:
        ends = time.monotonic() + seconds
        if meanwhile is not None:
            time.sleep(min(3.0, seconds / 3))
            meanwhile()
        while time.monotonic() < ends:
            # A replacement is launched, not awaited: waiting for it to get ready would keep
            # the freeze on for longer than planned (and a node frozen for minutes).
            group.supervise(wait=False)
            time.sleep(min(0.5, max(0.0, ends - time.monotonic())))
    finally:
        thaw()


def freeze_worker(group: Group, seconds: float) -> None:
    """SIGSTOP the workers in turn for ``seconds``, then SIGCONT; the others are supervised
    meanwhile, and the frozen one is kept (if it stops itself once resumed, supervision
    replaces it)."""
    victim = group.running[group.turn % len(group.running)]
    group.turn += 1
    assert victim.process is not None
    pid = victim.process.pid
    frozen(
        group,
        seconds,
        freeze=lambda: _signal(pid, signal.SIGSTOP),
        thaw=lambda: _signal(pid, signal.SIGCONT),
    )


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


async def leaders(bootstrap: str, prefix: str) -> Counter[int]:
    """Partitions led by each broker, over the input topics."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([prefix + topic for topic in INPUT_TOPICS])
        return Counter(p["leader"] for topic in described for p in topic["partitions"])
    finally:
        await admin.close()


# ---- events dated from the real now -------------------------------------------------------------


def ts(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def shifted(lines: Iterable[bytes], delta: timedelta) -> list[bytes]:
    """``lines`` with every ``occurred_at`` and ``released_at`` moved by ``delta`` (each in
    its own offset); lines that are no event object are kept as they are."""
    out = []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            out.append(line)
            continue
        if isinstance(event, dict):
            for key in ("occurred_at", "released_at"):
                if isinstance(event.get(key), str):
                    at = datetime.fromisoformat(event[key]) + delta
                    text = at.isoformat(timespec="milliseconds" if at.microsecond else "seconds")
                    event[key] = text.replace("+00:00", "Z")
        out.append(json.dumps(event, separators=(",", ":")).encode())
    return out


class Orders:
    """Order events of one seller, written by hand: placed, tracking, a first scan."""

    def __init__(self, tag: str, merchants: int = 2) -> None:
        self.tag, self.merchants, self.events = tag, merchants, 0

    def _event(self, kind: str, at: datetime, order: int, **fields: Any) -> dict[str, Any]:
        self.events += 1
        return {
            "event_id": f"e-{self.tag}-{self.events:06d}",
            "type": kind,
            "occurred_at": ts(at),
            "merchant_id": f"m-{order % self.merchants + 1:03d}",
            "order_id": f"o-{self.tag}-{order:05d}",
            **fields,
        }

    def placed(self, order: int, released: datetime) -> dict[str, Any]:
        return self._event(
            "order.placed", released - timedelta(hours=1), order,
            sku=f"sku-{order % 5 + 1:03d}", quantity=1, unit_price="12.50",
            shipping_price="2.00", currency="USD", destination_country="US",
            released_at=ts(released),
        )  # fmt: skip

    def tracking(self, order: int, at: datetime) -> dict[str, Any]:
        return self._event(
            "tracking.submitted", at, order, carrier="USPS",
            tracking_number=f"9400{order:018d}",
        )  # fmt: skip

    def scan(self, order: int, at: datetime) -> dict[str, Any]:
        return self._event(
            "carrier.scanned", at, order, tracking_number=f"9400{order:018d}", status="accepted"
        )


FULFILLMENT = timedelta(days=5)  # wish.fulfillment: tracking within 5 days of release
WARNING = timedelta(hours=24)  # wish.fulfillment_warning
CONFIRMED = timedelta(hours=168)  # wish.confirmed_fulfillment: first scan


def history(now: datetime, orders: int, seed: int, tag: str, quiet: timedelta) -> list[bytes]:
    """A week of one seller's history up to ``now``, in the order it happened.

    Orders released over the last 7 days (but for a confirmation window that does not end near
    ``now``): two in five ship on time, one in five late, the rest not yet; half the shipped
    ones are scanned. An order whose fulfillment deadline or warning falls within ``quiet`` of
    ``now`` is left out, so nothing is decided near ``now``.
    """
    rng = random.Random(seed)
    book = Orders(tag)
    events: list[dict[str, Any]] = []
    for order in range(orders):
        released = now - timedelta(days=rng.uniform(1.0, 6.9))
        due = released + FULFILLMENT
        if abs(due - now) < quiet or abs(due - WARNING - now) < quiet:
            continue
        events.append(book.placed(order, released))
        draw = rng.random()
        if draw < 0.4:
            shipped = released + timedelta(hours=rng.uniform(1, 110))
        elif draw < 0.6:
            shipped = due + timedelta(hours=rng.uniform(1, 24))
        else:
            continue
        if shipped < now - timedelta(minutes=1):
            events.append(book.tracking(order, shipped))
            scanned = shipped + timedelta(hours=rng.uniform(2, 48))
            if rng.random() < 0.5 and scanned < now - timedelta(minutes=1):
                events.append(book.scan(order, scanned))
    events.sort(key=lambda e: e["occurred_at"])
    return [json.dumps(e, separators=(",", ":")).encode() for e in events]


def stable_until(lines: list[bytes], low: datetime, high: datetime) -> list[Output]:
    """Replay's outputs up to ``high``, after checking they are replay's up to ``low`` too:
    the data decides nothing between the two, so any moment in between is a fair oracle."""
    early = compare(replayed_outputs(lines, low), replayed_outputs(lines, high))
    if not early.clean:
        raise AssertionError(
            f"the data decides something between {low} and {high} (replay at both differs: "
            f"{early.line()}); choose other data"
        )
    return replayed_outputs(lines, high)


def read_at_now(
    group: Group, lines: list[bytes], scenario: Scenario, *, margin: timedelta
) -> tuple[Comparison, list[Output]]:
    """Once the group has committed every input and gone quiet, read every output and compare
    it with replay up to now (checked stable within ``margin`` either side)."""
    bootstrap, prefix = group.bootstrap, group.name + "-"
    wait_for(
        lambda: group.supervise() and asyncio.run(group_lag(bootstrap, group.name, prefix)) == 0,
        300,
        "the group to commit every input",
    )
    if scenario.clock == "wall":
        # Past the quiet spell after which partitions tell the aggregates the time rather than
        # their events' time (their watermarks then flow on as the time passes: the internal
        # topics are never quiet).
        time.sleep(QUIET_AFTER + 3)
    else:
        wait_until_quiet(bootstrap, group.name, group)
        time.sleep(2)
    until = datetime.now(UTC)
    outputs = asyncio.run(read_all_outputs(bootstrap, prefix, scenario.isolation_level))
    replayed = stable_until(lines, until - margin, until + margin)
    return compare(replayed, outputs), replayed


def run_wall(
    bootstrap: str,
    workdir: Path,
    scenario: Scenario,
    kind: str,
    *,
    orders: int,
    say: Callable[[str], None] = lambda _: None,
) -> Report:
    """One of the wall-clock scenarios (``backlog``, ``restart``, ``burst``) with one worker."""
    started = time.monotonic()
    group = Group(bootstrap, workdir, scenario)
    prefix = group.name + "-"
    faults: Counter[str] = Counter()
    now = datetime.now(UTC)
    try:
        if kind == "backlog":
            # A week of history already on the topics when the worker starts.
            lines = history(now, orders, scenario.seed, "b", timedelta(minutes=20))
            create_topics(group)
            asyncio.run(produce_lines(bootstrap, prefix, lines))
            say(f"{len(lines)} lines of history produced; starting the worker")
            group.start_one()
            margin = timedelta(minutes=10)
        elif kind == "burst":
            # The worker runs, then a week of history arrives at once.
            group.start_one()
            time.sleep(3)
            lines = history(now, orders, scenario.seed, "u", timedelta(minutes=20))
            asyncio.run(produce_lines(bootstrap, prefix, lines))
            say(f"a burst of {len(lines)} lines of history produced")
            margin = timedelta(minutes=10)
        elif kind == "restart":
            lines = restart_while_due(group, now, orders, say)
            faults["kill"] += 1
            margin = timedelta(seconds=20)
        elif kind == "live-freezes":
            lines = due_while_frozen(group, now, orders, say)
            faults["sigstop"] += FREEZES
            margin = timedelta(seconds=10)
        else:
            raise ValueError(f"unknown wall-clock scenario {kind!r}")
        comparison, replayed = read_at_now(group, lines, scenario, margin=margin)
        log_lines = group.log_lines()
        faults.update(group.stopped)
    finally:
        group.stop_all()
    seconds = time.monotonic() - started
    return Report(scenario, comparison, len(lines), faults, seconds, log_lines, replayed)


def create_topics(group: Group) -> None:
    """The group's topics, as ``orderwatch send`` or a worker would create them."""
    from streams.kafka.topics import ensure_topics
    from streams.settings import Settings

    settings = Settings(
        broker=group.bootstrap,
        app_id=group.name,
        topic_prefix=group.name + "-",
        partitions=group.scenario.partitions,
    )
    asyncio.run(ensure_topics(settings))


#: Freezes of ``due_while_frozen``, each of 10 to 16 s (the session timeout is 6 s).
FREEZES = 3


def due_while_frozen(
    group: Group, now: datetime, orders: int, say: Callable[[str], None]
) -> list[bytes]:
    """Live, on two workers: orders come due over the next 100 s; tracking for half of them is
    produced (and dated) 5 to 25 s before each one's deadline, as it happens; meanwhile the
    workers are frozen in turn, past the session timeout, three times."""
    bootstrap, prefix = group.bootstrap, group.name + "-"
    rng = random.Random(orders)
    book = Orders("f")
    start = now + timedelta(seconds=20)
    dues = {order: start + timedelta(seconds=100 * order / orders) for order in range(orders)}
    lines = [
        json.dumps(book.placed(order, due - FULFILLMENT), separators=(",", ":")).encode()
        for order, due in dues.items()
    ]
    group.start_one()
    group.start_one()
    asyncio.run(produce_lines(bootstrap, prefix, lines))
    schedule = sorted(
        (due - timedelta(seconds=rng.uniform(5, 25)), order)
        for order, due in dues.items()
        if order % 2 == 0
    )
    produced: list[bytes] = []

    def ship() -> None:
        async def run() -> None:
            for at, order in schedule:
                delay = (at - datetime.now(UTC)).total_seconds()
                if delay > 0:
                    await asyncio.sleep(delay)
                event = book.tracking(order, datetime.now(UTC))
                line = json.dumps(event, separators=(",", ":")).encode()
                await produce_lines(bootstrap, prefix, [line])
                produced.append(line)

        asyncio.run(run())

    shipper = threading.Thread(target=ship, name="tracking-as-it-happens")
    shipper.start()
    say(f"{orders} orders due from {start:%H:%M:%S} over 100 s; freezing the workers in turn")
    time.sleep(10)
    for n in range(FREEZES):
        freeze_worker(group, 10.0 + 3.0 * n)
        time.sleep(8)
    shipper.join()
    wait = (max(dues.values()) - datetime.now(UTC)).total_seconds() + 15
    time.sleep(max(0.0, wait))
    return lines + produced


def restart_while_due(
    group: Group, now: datetime, orders: int, say: Callable[[str], None]
) -> list[bytes]:
    """Orders due in about 45 s; the worker SIGKILLed; tracking for half of them produced on
    time while it is down; the worker restarted after the deadlines."""
    bootstrap, prefix = group.bootstrap, group.name + "-"
    book = Orders("r")
    due = now + timedelta(seconds=45)
    placed = [book.placed(order, due - FULFILLMENT) for order in range(orders)]
    lines = [json.dumps(e, separators=(",", ":")).encode() for e in placed]
    group.start_one()
    asyncio.run(produce_lines(bootstrap, prefix, lines))
    wait_for(
        lambda: asyncio.run(group_lag(bootstrap, group.name, prefix)) == 0,
        60,
        "the worker to commit the orders",
    )
    say(f"{orders} orders due at {due:%H:%M:%S}; SIGKILL the worker")
    victim = group.running.pop()
    victim.stop(kill=True)
    shipped = [
        book.tracking(order, datetime.now(UTC)) for order in range(0, orders, 2)
    ]  # on time: produced (and dated) well before the deadline
    if datetime.now(UTC) > due - timedelta(seconds=15):
        raise AssertionError("too slow: the tracking would not be on time")
    more = [json.dumps(e, separators=(",", ":")).encode() for e in shipped]
    asyncio.run(produce_lines(bootstrap, prefix, more))
    lines += more
    wait = (due - datetime.now(UTC)).total_seconds() + 10
    say(f"tracking for {len(more)} produced while it is down; restarting in {wait:.0f} s")
    time.sleep(max(0.0, wait))
    group.start_one(victim.env()["ORDERWATCH_DATA_DIR"])
    return lines


def fulfillment_breaches(outputs: Iterable[Output]) -> int:
    return sum(
        1
        for o in outputs
        if o["type"] == "deadline.breached" and o.get("deadline") == "fulfillment"
    )


# ---- the soak -----------------------------------------------------------------------------------

COMPRESSION = {"orders": "gzip", "inventory": "snappy", "tracking": "lz4", "complaints": "zstd"}


def cluster_home(workdir: Path) -> str:
    """A ``scripts/kafka.sh`` home for a cluster under ``workdir``, with the jars of the
    caller's home (or the repository's cache) linked in."""
    from faults import REPO

    home = workdir / "kafka-cluster"
    home.mkdir()
    for cache in (os.environ.get("ORDERWATCH_KAFKA_HOME"), str(REPO / ".ci" / "cache" / "kafka")):
        if cache and (Path(cache) / "libs").is_dir():
            (home / "libs").symlink_to((Path(cache) / "libs").resolve())
            (home / "libs.pom.sha256").write_bytes((Path(cache) / "libs.pom.sha256").read_bytes())
            break
    return str(home)


def soak_scenarios(
    orders: int, rate: float, freezes: int
) -> list[tuple[str, Scenario, Callable[[Scenario], list[bytes] | None]]]:
    """The soak's scenarios on one broker: (name, scenario, its lines or None for the
    simulated stream)."""

    def simulated(_: Scenario) -> None:
        return None

    sigstops = ("sigstop",) * freezes
    return [
        ("frozen workers, event clock", Scenario(orders=orders, rate=rate, workers=2,
         plan=sigstops, freeze_seconds=(12.0, 25.0)), simulated),
        ("frozen broker", Scenario(orders=orders, rate=rate, workers=2,
         plan=("broker-sigstop", "kill") * max(1, freezes // 4), freeze_seconds=(10.0, 20.0)),
         simulated),
        ("compressed producers", Scenario(orders=orders, rate=rate, workers=2,
         plan=("kill", "kill", "broker"), compression=COMPRESSION), simulated),
    ]  # fmt: skip


def soak(
    bootstrap: str, workdir: Path, args: argparse.Namespace, say: Callable[[str], None]
) -> list[Report]:
    """One run of every envelope scenario, at the soak's size; a report each."""
    reports: list[Report] = []
    from faults import run_scenario

    for name, scenario, lines in soak_scenarios(args.orders, args.rate, args.freezes):
        say(f"-- {name}")
        directory = workdir / name.replace(" ", "-").replace(",", "")
        directory.mkdir()
        report = run_scenario(bootstrap, directory, scenario, say=say, lines=lines(scenario))
        report.name = name
        reports.append(report)
    # Frozen workers on the wall clock run live (live-freezes): weeks of history produced in a
    # minute are late input on the wall clock, not a stream it reads as it happens.
    wall = (("backlog", 400), ("restart", 20), ("burst", 40), ("live-freezes", 120))
    for kind, orders in wall:
        say(f"-- wall clock: {kind}")
        directory = workdir / f"wall-{kind}"
        directory.mkdir()
        report = run_wall(bootstrap, directory, Scenario(clock="wall"), kind, orders=orders,
                          say=say)  # fmt: skip
        report.name = f"wall clock: {kind}"
        reports.append(report)
    say("-- three-node cluster")
    home = cluster_home(workdir)
    cluster = kafka_sh("start", "--nodes", "3", home=home)
    try:
        rounds = max(1, args.freezes // 2)
        scenario = Scenario(
            orders=args.orders,
            rate=args.rate,
            workers=2,
            plan=("node-kill", "kill", "node-start", "node-sigstop+kill") * rounds,
            worker_env={"ORDERWATCH_REPLICATION_FACTOR": "3"},
            kafka_home=home,
            freeze_seconds=(12.0, 20.0),
        )
        directory = workdir / "cluster"
        directory.mkdir()
        report = run_scenario(cluster, directory, scenario, say=say)
        report.name = "three-node cluster"
        reports.append(report)
    finally:
        kafka_sh("stop", home=home)
    return reports
