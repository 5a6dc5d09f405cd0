"""The core's queries leave what they are given as it was.

A query (``next_due``, ``next_check``, the ``view_*`` functions, the HTTP views of
``streams.core.views``, ``rule_evidence``, the clock's checks, the recommendation builders)
reads a state or a mapping the caller owns: afterwards the argument must equal a deep copy
taken before, every field of it (including the ones a dataclass leaves out of ``==``, such as
a heap kept for speed). States come from a real run: ``Engine(load_policy())`` over
``examples/orders.jsonl``, stopped part way so that some of them hold deadlines met since the
last time they were fired.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache, partial
from pathlib import Path
from typing import Any

import pytest

from streams.core import carrier, merchant, order, views
from streams.core.aggregates import CARRIER, MERCHANT
from streams.core.engine import Engine
from streams.core.event_clock import from_the_future, idle_floor, partition_clock
from streams.core.events import decode_event
from streams.core.ledger import DictPages
from streams.core.outputs import Rejection
from streams.core.recommend import make_aggregate_recommendation, make_order_recommendation
from streams.core.window import Timelines
from streams.policy_files import load_policy

ORDERS_EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "orders.jsonl"
POLICY = load_policy()
T = datetime(2026, 1, 5, 8, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)


def everything(value: Any) -> Any:
    """``value`` as plain data, every dataclass field included (``compare=False`` ones too)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (
            type(value).__name__,
            tuple((f.name, everything(getattr(value, f.name))) for f in dataclasses.fields(value)),
        )
    if isinstance(value, dict):
        return {key: everything(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [everything(item) for item in value]
    if isinstance(value, set | frozenset):
        return {everything(item) for item in value}
    return value


def assert_unchanged(query: Any, *arguments: Any) -> Any:
    """Call ``query(*arguments)`` and check every argument equals a deep copy taken before."""
    before = copy.deepcopy(arguments)
    result = query(*arguments)
    for given, kept in zip(arguments, before, strict=True):
        assert given == kept
        assert everything(given) == everything(kept)
    return result


@cache
def engine_part_way() -> Engine:
    """The example run, stopped after two thirds of its events (no final advance)."""
    decoded = (decode_event(line) for line in ORDERS_EXAMPLE.read_bytes().splitlines())
    events = [event for event in decoded if not isinstance(event, Rejection)]
    engine = Engine(POLICY)
    for event in events[: len(events) * 2 // 3]:
        engine.process(event)
    return engine


def order_states() -> Iterator[order.OrderState]:
    yield from engine_part_way().orders.values()


def test_the_run_holds_orders_with_deadlines_met_but_not_yet_marked_settled() -> None:
    """Guards the next test: on these, a query that marks what it finds settled changes them."""
    clock = engine_part_way().clock
    unsettled = 0
    for state in order_states():
        fired = order.fire_due(copy.deepcopy(state), clock, POLICY)
        if fired.state is not None and fired.state.settled != state.settled:
            unsettled += 1
    assert unsettled > 0


def test_next_due_leaves_the_order_state_as_it_was() -> None:
    dues = [assert_unchanged(partial(order.next_due, policy=POLICY), s) for s in order_states()]

    assert len(dues) > 10


def test_next_due_is_what_fire_due_would_schedule() -> None:
    clock = engine_part_way().clock
    for state in order_states():
        due = order.next_due(state, POLICY)
        if due > clock:
            assert order.fire_due(copy.deepcopy(state), clock, POLICY).next_due == due


def test_next_check_leaves_carriers_and_merchants_as_they_were() -> None:
    engine = engine_part_way()
    assert engine.carriers
    assert engine.merchants
    for state in engine.carriers.values():
        assert_unchanged(partial(carrier.next_check, policy=POLICY), state)
    for health in engine.merchants.values():
        assert_unchanged(partial(merchant.next_check, policy=POLICY), health)


def test_the_http_views_leave_orders_and_merchants_as_they_were() -> None:
    engine = engine_part_way()
    for state in order_states():
        assert_unchanged(partial(views.order_view, policy=POLICY), state)
        assert_unchanged(partial(views.order_summary, policy=POLICY), state)
    for health in engine.merchants.values():
        assert_unchanged(partial(views.merchant_view, policy=POLICY), health)
    rows = [views.order_summary(state, POLICY) for state in order_states()]
    assert_unchanged(partial(views.order_page, status=None, limit=5, after=None), rows)


def stale_timelines() -> Timelines[str]:
    """Timelines whose key ``a`` was rescheduled later: its first change is superseded."""

    def view(timeline: str, now: datetime) -> tuple[tuple[int, ...] | None, datetime | None]:
        return (1,), T + (2 * HOUR if timeline == "late" else HOUR)

    timelines: Timelines[str] = Timelines(1, now=T)
    timelines.put("a", "early", view)
    timelines.put("b", "late", view)
    timelines.put("a", "late", view)  # a's change moves from T+1h to T+2h
    return timelines


def test_next_change_leaves_the_timelines_as_they_were_and_skips_superseded_changes() -> None:
    timelines = stale_timelines()

    assert assert_unchanged(Timelines.next_change, timelines) == T + 2 * HOUR


def test_next_change_of_a_heap_built_with_a_superseded_top_skips_it_and_changes_nothing() -> None:
    timelines: Timelines[str] = Timelines(
        1,
        now=T,
        changes=[(T + HOUR, "a"), (T + 3 * HOUR, "a"), (T + 2 * HOUR, "b")],
        change_at={"a": T + 3 * HOUR, "b": T + 2 * HOUR},
    )

    assert assert_unchanged(Timelines.next_change, timelines) == T + 2 * HOUR


def test_next_change_with_nothing_to_change_is_none() -> None:
    assert Timelines(1).next_change() is None


def test_the_views_leave_their_timelines_as_they_were() -> None:
    engine = engine_part_way()
    view_shipment = partial(carrier.view_shipment, POLICY.carrier_window)
    seen = 0
    for subject, state in engine.carriers.items():
        for shipment in _timelines(engine, CARRIER, subject):
            assert_unchanged(partial(view_shipment, state.carrier), shipment, engine.clock)
            seen += 1
    view_order = partial(merchant.view_order, POLICY.store_window, POLICY.tracking_scan)
    for subject in engine.merchants:
        for health in _timelines(engine, MERCHANT, subject):
            assert_unchanged(view_order, health, engine.clock)
            seen += 1
    assert seen


def _timelines(engine: Engine, kind: str, subject: str) -> list[Any]:
    pages = engine.pages(kind, subject)
    assert isinstance(pages, DictPages)
    return list(pages.timelines.values())


@pytest.mark.parametrize("rule_id", sorted(POLICY.rules))
def test_rule_evidence_is_a_new_dict_each_time(rule_id: str) -> None:
    first = POLICY.rule_evidence(rule_id)
    first["source"] = "changed by the caller"

    assert POLICY.rule_evidence(rule_id)["source"] != "changed by the caller"


def test_the_clock_checks_leave_their_marks_as_they_were() -> None:
    seen = {"orders": T, "inventory": T - HOUR}
    floors = {"complaints": T - 2 * HOUR, "orders": T + HOUR}

    assert_unchanged(
        partial(partition_clock, lateness=HOUR), seen, floors, ["orders", "complaints"]
    )
    assert_unchanged(partial(idle_floor, slack=HOUR), seen)
    assert_unchanged(partial(from_the_future, policy=POLICY), T + 365 * 24 * HOUR, T)


def test_the_recommendation_builders_leave_evidence_and_due_times_as_they_were() -> None:
    evidence = {"sku": "SKU-1", "nested": {"count": 1}}
    due_times = {"fulfillment_due": T, "confirmed_fulfillment_due": None}

    def order_advice(evidence: dict[str, Any], due_times: dict[str, Any]) -> Any:
        return make_order_recommendation(
            POLICY,
            reason="FULFILLMENT_AT_RISK",
            order_id="o1",
            merchant_id="m1",
            fact_id="f1",
            now=T,
            evidence=evidence,
            due_times=due_times,
        )

    def store_advice(evidence: dict[str, Any]) -> Any:
        return make_aggregate_recommendation(
            POLICY,
            reason="CARRIER_REVIEW",
            scope="carrier",
            subject="m1/ups",
            merchant_id="m1",
            crossing=1,
            now=T,
            evidence=evidence,
        )

    assert "rule" in assert_unchanged(order_advice, evidence, due_times).evidence
    assert "crossing" in assert_unchanged(store_advice, evidence).evidence
