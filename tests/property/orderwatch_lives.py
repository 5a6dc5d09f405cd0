"""Generators of realistic order lives, arrival orders and mutated lines for the property tests.

An order's life is built by :func:`order_life` from a :class:`Picker`, so the same code serves
hypothesis (:class:`DrawPicker`, which shrinks) and plain seeded streams (:class:`RandomPicker`,
for the tests that run the command line in another process).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Protocol, TypeVar

from hypothesis import strategies as st

from streams.core.engine import Engine
from streams.core.events import (
    COMPLAINT_REASONS,
    MAX_COUNT,
    MAX_MONEY,
    MAX_QUANTITY,
    decode_event,
)
from streams.core.outputs import (
    AGGREGATE_REASONS,
    DeadlineBreached,
    DeadlineResolved,
    RecommendationIssued,
    Rejection,
)
from streams.core.policy import Policy
from streams.policy_files import load_policy

T = TypeVar("T")

# One policy for every example (a module constant, so hypothesis does not print it with each one).
POLICY: Policy = load_policy()

BASE = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)  # a Monday
LATENESS = POLICY.allowed_lateness  # 5 minutes
LATENESS_US = int(LATENESS.total_seconds() * 1_000_000)
HOUR = 3600
DAY = 24 * HOUR
MERCHANT = "m-1"
SKU = "sku-1"

# Offsets the timestamps are written with: the same instant must mean the same thing.
ZONES = (UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8)))
CARRIERS = ("PostNL", " postnl ", "UPS", "China Post")
NUMBERS = ("LX1", "lx1 ", "LX2", "LX3")
SCAN_NUMBERS = ("LX1", "LX2", "LX3", "LX9")
SCAN_STATUSES = ("accepted", "in_transit", "delivered", "returned", "exception")
OUTCOMES = ("reshipped", "partial_refund", "refund", "return", "rejected", "withdrawn")
# STOCKOUT_RISK names the fact that left the order uncovered; with several orders on one SKU
# that fact may be another order's event, so which one it is depends on their interleaving.
INTERLEAVING_DEPENDENT_REASONS = AGGREGATE_REASONS | {"STOCKOUT_RISK"}


class Picker(Protocol):
    """The choices a life is built from."""

    def integer(self, low: int, high: int) -> int: ...

    def boolean(self) -> bool: ...

    def choice(self, options: Sequence[T]) -> T: ...


class DrawPicker:
    """Choices drawn by hypothesis (so failing examples shrink)."""

    def __init__(self, draw: st.DrawFn) -> None:
        self._draw = draw

    def integer(self, low: int, high: int) -> int:
        return int(self._draw(st.integers(low, high)))

    def boolean(self) -> bool:
        return bool(self._draw(st.booleans()))

    def choice(self, options: Sequence[T]) -> T:
        return self._draw(st.sampled_from(options))


class RandomPicker:
    """Choices from a seeded :class:`random.Random`."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def integer(self, low: int, high: int) -> int:
        return self._rng.randint(low, high)

    def boolean(self) -> bool:
        return self._rng.random() < 0.5

    def choice(self, options: Sequence[T]) -> T:
        return self._rng.choice(options)


class Event:
    """One input event: its instant and the JSON object it is sent as (printed as that JSON)."""

    __slots__ = ("at", "body")

    def __init__(self, at: datetime, body: dict[str, Any]) -> None:
        self.at = at
        self.body = body

    def __repr__(self) -> str:
        return f"Event({self.line.decode('utf-8')})"

    @property
    def event_id(self) -> str:
        return str(self.body["event_id"])

    @property
    def line(self) -> bytes:
        return json.dumps(self.body, ensure_ascii=False).encode("utf-8")


class _LifeWriter:
    """Numbers a life's events and writes their timestamps with a chosen offset."""

    def __init__(self, pick: Picker, prefix: str) -> None:
        self.pick = pick
        self.prefix = prefix
        self.events: list[Event] = []

    def stamp(self, moment: datetime) -> str:
        return moment.astimezone(self.pick.choice(ZONES)).isoformat()

    def add(self, moment: datetime, event_type: str, **fields: Any) -> None:
        body = {
            "event_id": f"{self.prefix}-{len(self.events):02d}",
            "type": event_type,
            "occurred_at": self.stamp(moment),
            "merchant_id": MERCHANT,
            **fields,
        }
        self.events.append(Event(moment, body))


def order_life(
    pick: Picker, order_id: str, *, inventory: bool = True, start_within: int = 2 * DAY
) -> list[Event]:
    """One order's events, spread over hours to weeks (up to 45 days after placement).

    Optionally a stock level for its SKU shortly before placement; then the placement, tracking
    submissions, carrier scans, complaints with responses and resolutions, and perhaps a
    cancellation or refund. Each comes half the time within 10 minutes of what it follows.
    Times are whole seconds; several events may share an instant.
    """
    life = _LifeWriter(pick, f"{order_id}-e")
    placed_at = BASE + timedelta(seconds=pick.integer(0, start_within))

    def after(low: int, high: int, since: datetime = placed_at) -> datetime:
        # Often within minutes, where arrival order can differ from time order.
        if pick.boolean():
            return since + timedelta(seconds=pick.integer(0, 10 * 60))
        return since + timedelta(seconds=pick.integer(low, high))

    if inventory and pick.boolean():
        life.add(
            placed_at - timedelta(seconds=pick.integer(0, 2 * DAY)),
            "inventory.updated",
            sku=SKU,
            available=pick.integer(0, 4),
            warehouse_id=pick.choice(("w-1", None)),
        )
    placed: dict[str, Any] = {
        "order_id": order_id,
        "sku": SKU,
        # The contract's extremes too: the core must compute with every number it accepts.
        "quantity": pick.choice((1, 2, 3, MAX_QUANTITY)),
        "unit_price": pick.choice(("0", "9.99", 4.5, "120.00", str(MAX_MONEY), "0.0000000001")),
        "currency": pick.choice(("USD", "EUR", "THB")),
        "destination_country": pick.choice(("US", "GB", "FR", "BR", "AQ")),
        "program": pick.choice(("standard", "express")),
    }
    if pick.boolean():
        placed["shipping_price"] = pick.choice(("0", "4.50", 2, str(MAX_MONEY)))
    if pick.boolean():
        placed["released_at"] = life.stamp(after(0, 12 * HOUR))
    life.add(placed_at, "order.placed", **placed)
    for _ in range(pick.integer(0, 3)):
        life.add(
            after(0, 10 * DAY),
            "tracking.submitted",
            order_id=order_id,
            carrier=pick.choice(CARRIERS),
            tracking_number=pick.choice(NUMBERS),
        )
    for _ in range(pick.integer(0, 3)):
        life.add(
            after(0, 40 * DAY),
            "carrier.scanned",
            order_id=order_id,
            tracking_number=pick.choice(SCAN_NUMBERS),
            status=pick.choice(SCAN_STATUSES),
        )
    for number in range(pick.integer(0, 3)):
        complaint_id = f"c-{number}"
        filed_at = after(0, 45 * DAY)
        life.add(
            filed_at,
            "complaint.filed",
            order_id=order_id,
            complaint_id=complaint_id,
            reason=pick.choice(COMPLAINT_REASONS),
            photos=pick.integer(0, 2),
            requested=pick.choice(("refund", "return", "replacement", "none")),
        )
        if pick.boolean():
            life.add(
                after(0, 4 * DAY, filed_at),
                "complaint.responded",
                order_id=order_id,
                complaint_id=complaint_id,
            )
        if pick.boolean():
            life.add(
                after(0, 6 * DAY, filed_at),
                "complaint.resolved",
                order_id=order_id,
                complaint_id=complaint_id,
                outcome=pick.choice(OUTCOMES),
            )
    closing = pick.choice((None, "order.cancelled", "order.refunded"))
    if closing == "order.cancelled":
        life.add(
            after(0, 45 * DAY),
            closing,
            order_id=order_id,
            cancelled_by=pick.choice(("merchant", "customer", "platform")),
        )
    elif closing == "order.refunded":
        life.add(
            after(0, 45 * DAY),
            closing,
            order_id=order_id,
            amount=pick.choice(("0", "9.99", 12, str(MAX_MONEY))),
            reason=pick.choice((*COMPLAINT_REASONS, "auto_refund")),
        )
    return life.events


def stock_updates(pick: Picker, count: int) -> list[Event]:
    """Stock levels of the shared SKU at random times over the orders' first days."""
    life = _LifeWriter(pick, "inv")
    for _ in range(count):
        life.add(
            BASE + timedelta(seconds=pick.integer(-DAY, 5 * DAY)),
            "inventory.updated",
            sku=SKU,
            available=pick.choice((*range(7), MAX_COUNT)),
        )
    return life.events


def in_time_order(events: Iterable[Event]) -> list[Event]:
    """The reference arrival: by occurred_at (ties by event_id), no duplicates."""
    return sorted(events, key=lambda event: (event.at, event.event_id))


@st.composite
def single_order(draw: st.DrawFn) -> list[Event]:
    """One order's life."""
    return order_life(DrawPicker(draw), "o-1")


@st.composite
def several_orders(draw: st.DrawFn) -> list[Event]:
    """2-4 orders of one merchant and SKU, and 0-3 stock levels of that SKU."""
    pick = DrawPicker(draw)
    events: list[Event] = []
    for number in range(1, pick.integer(2, 4) + 1):
        events += order_life(pick, f"o-{number}", inventory=False)
    events += stock_updates(pick, pick.integer(0, 3))
    return events


@st.composite
def late_arrivals(draw: st.DrawFn, events: list[Event]) -> list[Event]:
    """An arrival order with disorder strictly below the allowed lateness, plus duplicates.

    Each event arrives at ``occurred_at`` + a jitter in [0, 5 min): an event therefore arrives
    before every event whose ``occurred_at`` is at least its own + 5 min. Then copies of random
    events (same event_id, same bytes) are inserted anywhere after their original.
    """
    reference = in_time_order(events)
    jitters = draw(
        st.lists(st.integers(0, LATENESS_US - 1), min_size=len(reference), max_size=len(reference))
    )
    arrival = [
        event
        for _, _, event in sorted(
            (event.at + timedelta(microseconds=jitter), number, event)
            for number, (event, jitter) in enumerate(zip(reference, jitters, strict=True))
        )
    ]
    for _ in range(draw(st.integers(0, 4))):
        original = draw(st.sampled_from(reference))
        first = arrival.index(original)
        arrival.insert(draw(st.integers(first + 1, len(arrival))), original)
    return arrival


Output = DeadlineBreached | DeadlineResolved | RecommendationIssued


def run_engine(arrival: Iterable[Event], policy: Policy = POLICY) -> list[Output]:
    """Feed decoded events to a fresh engine, then let 120 days pass after the last one."""
    engine = Engine(policy)
    outputs: list[Output] = []
    latest: datetime | None = None
    for event in arrival:
        decoded = decode_event(event.line)
        assert not isinstance(decoded, Rejection), f"generated an invalid event: {decoded}"
        outputs += engine.process(decoded)
        latest = event.at if latest is None else max(latest, event.at)
    if latest is not None:
        outputs += engine.advance_to(latest + timedelta(days=120))
    return outputs


def output_id(output: Output) -> tuple[str, str]:
    """(type, breach_id, resolution_id or recommendation_id)."""
    if isinstance(output, DeadlineBreached):
        return (output.type, output.breach_id)
    if isinstance(output, DeadlineResolved):
        return (output.type, output.resolution_id)
    return (output.type, output.recommendation_id)


def is_order_scope_independent(output: Output) -> bool:
    """Whether the output belongs to one order alone (its id cannot depend on other orders)."""
    return isinstance(output, DeadlineBreached | DeadlineResolved) or (
        output.scope == "order" and output.reason not in INTERLEAVING_DEPENDENT_REASONS
    )


def describe(outputs: Iterable[Output]) -> list[str]:
    """Short readable lines for an assertion message."""
    lines = []
    for output in outputs:
        if isinstance(output, DeadlineBreached):
            lines.append(f"breach {output.order_id} {output.deadline} {output.complaint_id or ''}")
        elif isinstance(output, DeadlineResolved):
            lines.append(
                f"resolved {output.order_id} {output.deadline} {output.complaint_id or ''} "
                f"{output.resolution}"
            )
        else:
            lines.append(
                f"recommendation {output.scope} {output.subject} {output.reason} "
                f"{output.recommendation_id[:8]}"
            )
    return lines


# -- arbitrary and mutated lines -------------------------------------------------------------

# Any instant from year 1 to 9999 (often within 90 days of either end, where adding a deadline or
# subtracting the allowed lateness leaves the datetime range), with an offset, as RFC 3339 text.
_EDGE_MINUTES = st.integers(0, 90 * 24 * 60).map(lambda minutes: timedelta(minutes=minutes))
timestamps = st.builds(
    lambda moment, zone: moment.replace(tzinfo=zone).isoformat(),
    st.datetimes()
    | _EDGE_MINUTES.map(lambda offset: datetime.min + offset)
    | _EDGE_MINUTES.map(lambda offset: datetime.max - offset),
    st.sampled_from(ZONES),
)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(("", " ", "USD", "US", "order.placed", "1e999999", "-1", "0"))
    | timestamps
    | st.datetimes().map(datetime.isoformat)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


_PLACEHOLDER = "\x00number\x00"
# Number literals json.dumps cannot write: beyond float range, beyond 4300 digits, many digits.
number_literals = st.sampled_from(
    (b"1e400", b"-1e400", b"1" + b"0" * 5000, b"-1" + b"0" * 5000, b"123456789" * 5, b"1.5e-400")
) | st.integers(1, 6000).map(lambda digits: b"9" * digits)


@st.composite
def mutated_line(draw: st.DrawFn, event: Event) -> bytes:
    """A valid event with one field deleted, replaced or added, or its bytes cut or corrupted.

    Replacements are any JSON value, a number literal json.dumps cannot write, or (for the
    timestamps) any instant of years 1 to 9999.
    """
    body = dict(event.body)
    field = draw(st.sampled_from(sorted(body)))
    how = draw(
        st.sampled_from(("delete", "replace", "add", "number", "moment", "truncate", "corrupt"))
    )
    if how == "delete":
        del body[field]
    elif how == "replace":
        body[field] = draw(json_values)
    elif how == "add":
        body[draw(st.text(max_size=10))] = draw(json_values)
    elif how == "number":
        body[field] = _PLACEHOLDER
    elif how == "moment":
        body[draw(st.sampled_from(("occurred_at", "released_at")))] = draw(timestamps)
    if how in ("delete", "replace", "add", "number", "moment"):
        line = json.dumps(body, ensure_ascii=draw(st.booleans())).encode("utf-8")
        return line.replace(json.dumps(_PLACEHOLDER).encode(), draw(number_literals))
    line = event.line
    if how == "truncate":
        return line[: draw(st.integers(0, len(line) - 1))]
    position = draw(st.integers(0, len(line) - 1))
    return line[:position] + draw(st.binary(min_size=1, max_size=3)) + line[position + 1 :]
