"""The event simulator: deterministic, contract-shaped, late and duplicated only as documented."""

from __future__ import annotations

import io
import json
import random
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pytest

from streams.tools.simulator import CARRIERS, bad_lines, generate_events, write_jsonl

# Contract section 2, written out here independently of the implementation.
REQUIRED: dict[str, set[str]] = {
    "order.placed": {
        "order_id",
        "sku",
        "quantity",
        "unit_price",
        "currency",
        "destination_country",
    },
    "order.cancelled": {"order_id", "cancelled_by"},
    "order.refunded": {"order_id", "amount", "reason"},
    "inventory.updated": {"sku", "available"},
    "tracking.submitted": {"order_id", "carrier", "tracking_number"},
    "carrier.scanned": {"order_id", "tracking_number", "status"},
    "complaint.filed": {"order_id", "complaint_id", "reason"},
    "complaint.responded": {"order_id", "complaint_id"},
    "complaint.resolved": {"order_id", "complaint_id", "outcome"},
}
COMMON = ("event_id", "type", "occurred_at", "merchant_id")
REASONS = {
    "not_as_described",
    "wrong_item",
    "size_fit",
    "damaged",
    "defective",
    "missing_parts",
    "counterfeit",
    "not_received",
    "delivered_not_received",
    "other",
}
ENUMS: dict[str, dict[str, set[str]]] = {
    "order.placed": {"program": {"standard", "express"}},
    "order.cancelled": {"cancelled_by": {"merchant", "customer", "platform"}},
    "order.refunded": {"reason": REASONS | {"auto_refund", "other"}},
    "carrier.scanned": {"status": {"accepted", "in_transit", "delivered", "returned", "exception"}},
    "complaint.filed": {
        "reason": REASONS,
        "requested": {"refund", "return", "replacement", "none"},
    },
    "complaint.resolved": {
        "outcome": {"reshipped", "partial_refund", "refund", "return", "rejected", "withdrawn"}
    },
}
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
ID_FORMATS = {
    "event_id": re.compile(r"e-\d{6,}"),
    "merchant_id": re.compile(r"m-\d{3}"),
    "order_id": re.compile(r"o-\d{6}"),
    "sku": re.compile(r"sku-\d{3}"),
    "complaint_id": re.compile(r"c-\d{6}"),
}


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or not RFC3339.fullmatch(value):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() and number >= 0 else None


def _count(value: Any, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def contract_problems(event: Any) -> list[str]:
    """What makes ``event`` unusable under contract section 2 (empty when it is valid)."""
    if not isinstance(event, dict):
        return ["not an object"]
    kind = event.get("type")
    if kind not in REQUIRED:
        return [f"unknown type {kind!r}"]
    problems = [f"missing {name}" for name in (*COMMON, *REQUIRED[kind]) if event.get(name) is None]
    for name in ("event_id", "merchant_id"):
        value = event.get(name)
        if not isinstance(value, str) or not 1 <= len(value) <= 128:
            problems.append(f"bad {name}")
    for name in ("order_id", "sku", "complaint_id", "carrier", "tracking_number"):
        if name in event and not (isinstance(event[name], str) and event[name]):
            problems.append(f"bad {name}")
    for name in ("occurred_at", "released_at"):
        if name in event and _timestamp(event[name]) is None:
            problems.append(f"bad {name}")
    for name in ("unit_price", "shipping_price", "amount"):
        if name in event and _decimal(event[name]) is None:
            problems.append(f"bad {name}")
    if "quantity" in event and not _count(event["quantity"], 1):
        problems.append("bad quantity")
    for name in ("available", "photos"):
        if name in event and not _count(event[name], 0):
            problems.append(f"bad {name}")
    if "currency" in event and not re.fullmatch(r"[A-Z]{3}", str(event["currency"])):
        problems.append("bad currency")
    if "destination_country" in event and not re.fullmatch(
        r"[A-Z]{2}", str(event["destination_country"])
    ):
        problems.append("bad destination_country")
    if "message" in event and not (
        isinstance(event["message"], str) and len(event["message"]) <= 4000
    ):
        problems.append("bad message")
    for name, allowed in ENUMS.get(kind, {}).items():
        if name in event and event[name] not in allowed:
            problems.append(f"bad {name}")
    return problems


def line_problems(line: bytes) -> list[str]:
    """Like :func:`contract_problems`, for one raw line."""
    try:
        value = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return ["not UTF-8 JSON"]
    return contract_problems(value)


def _is_utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _time(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["occurred_at"])


@pytest.fixture(scope="module")
def stream() -> list[dict[str, Any]]:
    return list(generate_events(seed=11, orders=2500))


def test_the_same_seed_gives_the_same_stream() -> None:
    first = list(generate_events(seed=5, orders=300))
    second = list(generate_events(seed=5, orders=300))
    assert first == second
    assert json.dumps(first) == json.dumps(second)


def test_different_seeds_give_different_streams() -> None:
    assert list(generate_events(seed=5, orders=300)) != list(generate_events(seed=6, orders=300))


def test_every_event_has_the_contracts_fields_for_its_type(stream: list[dict[str, Any]]) -> None:
    problems = {e["event_id"]: p for e in stream if (p := contract_problems(e))}
    assert problems == {}
    assert {e["type"] for e in stream} == set(REQUIRED)


def test_ids_and_carriers_follow_the_documented_formats(stream: list[dict[str, Any]]) -> None:
    for event in stream:
        for name, pattern in ID_FORMATS.items():
            if name in event:
                assert pattern.fullmatch(event[name]), (name, event[name])
        if "carrier" in event:
            assert event["carrier"].strip().lower() in {c.lower() for c in CARRIERS}


def test_every_order_starts_with_its_placement(stream: list[dict[str, Any]]) -> None:
    placed: dict[str, datetime] = {}
    first_seen: dict[str, datetime] = {}
    for event in stream:
        if "order_id" not in event:
            continue
        moment = _time(event)
        order_id = event["order_id"]
        first_seen[order_id] = min(first_seen.get(order_id, moment), moment)
        if event["type"] == "order.placed":
            assert placed.setdefault(order_id, moment) == moment
    assert len(placed) == 2500
    assert first_seen == placed


def test_out_of_order_arrival_stays_below_the_lateness() -> None:
    for lateness in (timedelta(minutes=2), timedelta(seconds=10)):
        latest: datetime | None = None
        behind = timedelta(0)
        late_events = 0
        for event in generate_events(seed=2, orders=800, lateness=lateness):
            moment = _time(event)
            if latest is not None and moment < latest:
                late_events += 1
                behind = max(behind, latest - moment)
            latest = moment if latest is None else max(latest, moment)
        assert late_events > 0
        assert behind < lateness


def test_zero_lateness_gives_occurred_at_order() -> None:
    times = [_time(e) for e in generate_events(seed=2, orders=300, lateness=timedelta(0))]
    assert times == sorted(times)


def test_some_events_are_repeated_verbatim(stream: list[dict[str, Any]]) -> None:
    seen: dict[str, dict[str, Any]] = {}
    repeats = 0
    for event in stream:
        first = seen.setdefault(event["event_id"], event)
        if first is not event:
            repeats += 1
            assert event == first
    assert 0.002 < repeats / len(stream) < 0.01


def test_a_large_stream_has_aggregate_hot_spots() -> None:
    placed: dict[str, tuple[str, str]] = {}
    listing: Counter[tuple[str, str]] = Counter()
    packaging: Counter[tuple[str, str]] = Counter()
    for event in generate_events(seed=1, orders=4000):
        if event["type"] == "order.placed":
            placed[event["order_id"]] = (event["merchant_id"], event["sku"])
        elif event["type"] == "complaint.filed":
            subject = placed[event["order_id"]]
            if event["reason"] in ("not_as_described", "wrong_item", "size_fit"):
                listing[subject] += 1
            elif event["reason"] in ("damaged", "missing_parts"):
                packaging[subject] += 1
    assert listing.most_common(1)[0][1] >= 10
    assert packaging.most_common(1)[0][1] >= 5


def test_stock_runs_out_for_some_skus(stream: list[dict[str, Any]]) -> None:
    stock = [e["available"] for e in stream if e["type"] == "inventory.updated"]
    assert stock
    assert 0 in stock


def test_bad_lines_are_distinct_and_none_is_a_usable_event() -> None:
    lines = bad_lines(random.Random(3))
    assert len(lines) >= 20
    assert len(set(lines)) == len(lines)
    for line in lines:
        assert b"\n" not in line
        assert b"\r" not in line
        assert line_problems(line), line


def test_bad_lines_cover_the_documented_kinds() -> None:
    lines = bad_lines(random.Random(4))
    problems = Counter(p for line in lines for p in line_problems(line))
    for expected in (
        "not UTF-8 JSON",
        "not an object",
        "missing sku",
        "bad quantity",
        "bad occurred_at",
        "bad currency",
        "bad unit_price",
        "bad message",
    ):
        assert problems[expected] > 0, expected
    assert any(p.startswith("unknown type") for p in problems)
    assert any(not _is_utf8(line) for line in lines)


def test_bad_lines_vary_with_the_generator() -> None:
    assert bad_lines(random.Random(1)) != bad_lines(random.Random(2))
    assert bad_lines(random.Random(1)) == bad_lines(random.Random(1))


def test_write_jsonl_writes_compact_lines_with_bad_lines_interleaved() -> None:
    events = list(generate_events(seed=4, orders=100))
    buffer = io.BytesIO()
    written = write_jsonl(events, buffer, bad_line_every=50, seed=9)
    lines = buffer.getvalue().split(b"\n")
    assert lines[-1] == b""
    lines = lines[:-1]
    assert written == len(lines) == len(events) + len(events) // 50
    good = [line for i, line in enumerate(lines) if (i + 1) % 51 != 0]
    bad = [line for i, line in enumerate(lines) if (i + 1) % 51 == 0]
    assert [json.loads(line) for line in good] == events
    assert all(line_problems(line) for line in bad)
    assert all(b'", "' not in line and b'": ' not in line for line in good)


def test_write_jsonl_accepts_a_path_and_a_text_file(tmp_path: Path) -> None:
    events = list(generate_events(seed=4, orders=20))
    path = tmp_path / "events.jsonl"
    assert write_jsonl(events, path) == len(events)
    with (tmp_path / "text.jsonl").open("w", encoding="utf-8") as text:
        assert write_jsonl(events, text) == len(events)
    assert (tmp_path / "text.jsonl").read_bytes() == path.read_bytes()
    assert [json.loads(line) for line in path.read_text("utf-8").splitlines()] == events


def test_the_default_stream_starts_on_2026_01_05() -> None:
    first = _time(next(iter(generate_events(orders=5, lateness=timedelta(0)))))
    assert first.astimezone(UTC).date().isoformat() == "2026-01-05"


def test_a_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        generate_events(start=datetime(2026, 1, 5))


def test_per_order_lifecycles_are_plausible(stream: list[dict[str, Any]]) -> None:
    by_order: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in stream:
        if "order_id" in event:
            by_order[event["order_id"]].append(event)
    types = Counter(e["type"] for e in stream)
    orders = types["order.placed"]
    assert 0.005 < types["order.cancelled"] / orders < 0.05
    assert 0.01 < types["order.refunded"] / orders < 0.06
    assert 0.04 < types["complaint.filed"] / orders < 0.14
    for events in by_order.values():
        kinds = Counter(e["type"] for e in events)
        if kinds["order.cancelled"]:
            assert set(kinds) == {"order.placed", "order.cancelled"}
        tracked = {e["tracking_number"] for e in events if e["type"] == "tracking.submitted"}
        scanned = {e["tracking_number"] for e in events if e["type"] == "carrier.scanned"}
        assert scanned <= tracked
