"""The HTTP queries' views (streams.core.views), on states from a real replay of the example.

The views derive an order's decisions from its state: each one must be a decision replay
really emitted, with the same severity and respond-by, and every order-scope decision replay
emitted for an order still held must be in its view (except what the state cannot know: the
SKU aggregate's ``STOCKOUT_RISK``).
"""

from __future__ import annotations

import json
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from streams.core import views
from streams.core.dates import format_utc
from streams.core.engine import Engine
from streams.core.events import decode_event
from streams.core.output_json import serialize
from streams.core.outputs import Rejection
from streams.policy_files import load_policy

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "orders.jsonl"
POLICY = load_policy()


@cache
def replayed(fraction: float) -> tuple[Engine, tuple[dict[str, Any], ...]]:
    """The example replayed up to ``fraction`` of its events (the clock then advanced to the
    last event's time), and every output as JSON."""
    decoded = (decode_event(line) for line in EXAMPLE.read_bytes().splitlines() if line.strip())
    events = [event for event in decoded if not isinstance(event, Rejection)]
    events = events[: int(len(events) * fraction)]
    engine = Engine(POLICY)
    outputs = []
    for event in events:
        outputs += engine.process(event)
    outputs += engine.advance_to(max(event.occurred_at for event in events))
    return engine, tuple(json.loads(serialize(output)) for output in outputs)


def _id(output: dict[str, Any]) -> str:
    """An output's own id (a resolution also names its breach's)."""
    for name in ("resolution_id", "breach_id", "recommendation_id"):
        if name in output:
            return str(output[name])
    raise AssertionError(f"an output without an id: {output}")


@pytest.mark.parametrize("fraction", [0.7, 1.0])
def test_every_decision_a_view_shows_is_one_replay_emitted_alike(fraction: float) -> None:
    engine, outputs = replayed(fraction)
    emitted = {_id(o): o for o in outputs}
    shown = 0
    for state in engine.orders.values():
        for decision in views.order_view(state, POLICY)["decisions"]:
            output = emitted[decision["id"]]
            assert output["type"] == decision["type"]
            assert output["order_id"] == state.order_id
            if decision["type"] == "deadline.resolved":
                assert output["deadline"] == decision["deadline"]
                assert output["resolution"] == decision["resolution"]
                assert output["resolved_at"] == decision["at"]
            elif decision["type"] == "recommendation.issued":
                assert output["reason"] == decision["reason"]
                assert output["severity"] == decision["severity"]
                assert output.get("respond_by") == decision.get("respond_by")
            else:
                assert output["deadline"] == decision["deadline"]
                assert output["due_at"] == decision["at"]
            shown += 1
    assert shown > 20


@pytest.mark.parametrize("fraction", [0.7, 1.0])
def test_every_order_decision_replay_emitted_is_in_its_orders_view(fraction: float) -> None:
    engine, outputs = replayed(fraction)
    shown = {
        decision["id"]
        for state in engine.orders.values()
        for decision in views.order_view(state, POLICY)["decisions"]
    }
    missing = [
        output
        for output in outputs
        if output.get("order_id") in engine.orders
        and output.get("reason") != "STOCKOUT_RISK"
        and _id(output) not in shown
    ]
    assert missing == []


def test_part_way_the_example_has_orders_of_every_status_and_pending_deadlines() -> None:
    engine, _ = replayed(0.7)
    found = [views.order_view(state, POLICY) for state in engine.orders.values()]
    assert set(Counter(view["status"] for view in found)) == {
        "open",
        "at_risk",
        "breached",
        "closed",
    }
    for view in found:
        states = {d["state"] for d in view["deadlines"]}
        assert ("breached" in states) == (view["status"] == "breached")
        if view["status"] in ("open", "at_risk"):
            pending = [d["due_at"] for d in view["deadlines"] if d["state"] == "pending"]
            assert view["next_due"] == min(pending)
            assert all(due > format_utc(engine.clock) for due in pending)
            # at risk: a recommendation whose respond-by is a deadline still pending
            assert (view["status"] == "at_risk") == (view.get("respond_by") in pending)


def test_a_breached_deadline_met_later_or_ended_is_resolved() -> None:
    engine, _ = replayed(1.0)
    resolved = 0
    for state in engine.orders.values():
        for row in views.order_view(state, POLICY)["deadlines"]:
            if row["state"] == "resolved":
                resolved += 1
                ended = state.closed_at is not None or state.delivered_at is not None
                assert ended or row["met_at"] > row["due_at"]
    assert resolved > 0


def test_the_timeline_is_in_time_order_and_starts_with_the_placement() -> None:
    engine, _ = replayed(1.0)
    for state in engine.orders.values():
        timeline = views.order_view(state, POLICY)["timeline"]
        assert [row["at"] for row in timeline] == sorted(row["at"] for row in timeline)
        if state.placement is not None:
            assert timeline[0]["event"] == "order.placed"


def test_pages_follow_each_other_without_gap_or_repeat() -> None:
    engine, _ = replayed(0.7)
    rows = [views.order_summary(state, POLICY) for state in engine.orders.values()]
    for status in (None, "open", "at_risk", "breached"):
        expected = sorted(
            (r for r in rows if (r["status"] == status if status else r["status"] != "closed")),
            key=views.sort_key,
        )
        got: list[dict[str, Any]] = []
        after = None
        while True:
            page, more = views.order_page(rows, status=status, limit=3, after=after)
            got += page
            if not more:
                break
            after = views.decode_cursor(views.encode_cursor(page[-1]))
        assert got == expected
        assert expected or status is not None


def test_rows_sort_by_respond_by_then_next_due() -> None:
    rows = [
        {"order_id": "c", "status": "open", "next_due": "2026-01-01T00:00:00Z"},
        {"order_id": "b", "status": "at_risk", "respond_by": "2026-01-02T00:00:00Z"},
        {"order_id": "a", "status": "open"},
        {"order_id": "d", "status": "breached", "respond_by": "2026-01-01T00:00:00Z"},
    ]
    page, more = views.order_page(rows, status=None, limit=10, after=None)
    assert [r["order_id"] for r in page] == ["d", "b", "c", "a"]
    assert not more


@pytest.mark.parametrize("cursor", ["", "not base64!", "bnVsbA", "WzEsMiwzXQ"])
def test_a_cursor_not_given_out_is_refused(cursor: str) -> None:
    with pytest.raises(ValueError, match="cursor"):
        views.decode_cursor(cursor)


def test_merchant_health_gives_whole_counts_beside_rates_against_the_thresholds() -> None:
    engine, outputs = replayed(1.0)
    open_ids = set()
    for state in engine.merchants.values():
        view = views.merchant_view(state, POLICY)
        assert [h["measure"] for h in view["health"]] == [c.name for c in POLICY.store_checks]
        for row in view["health"]:
            if row["of"]:
                assert row["rate"] == round(row["count"] / row["of"], 4)
            else:
                assert row["rate"] is None
        open_ids |= {r["recommendation_id"] for r in view["open_recommendations"]}
    emitted = {o["recommendation_id"] for o in outputs if o.get("scope") == "merchant"}
    assert open_ids <= emitted
