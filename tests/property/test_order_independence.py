"""Contract §2: within the allowed lateness, arrival order and duplicates do not change results.

Each test compares a run in time order without duplicates with a run of the same events in an
arrival order whose disorder stays below the allowed lateness (5 min), with duplicates mixed in.
Both runs end 120 days after the last event, so every deadline has fired and all state expired.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st
from orderwatch_lives import (
    Event,
    Output,
    describe,
    in_time_order,
    is_order_scope_independent,
    late_arrivals,
    output_id,
    run_engine,
    several_orders,
    single_order,
)

from streams.core.outputs import DeadlineBreached, DeadlineResolved, RecommendationIssued


def _repeated(ids: list[str]) -> list[str]:
    return sorted(value for value, count in Counter(ids).items() if count > 1)


def _assert_each_issued_once(outputs: list[Output]) -> None:
    breaches = [o.breach_id for o in outputs if isinstance(o, DeadlineBreached)]
    resolutions = [o for o in outputs if isinstance(o, DeadlineResolved)]
    order_scope = [
        o.recommendation_id
        for o in outputs
        if isinstance(o, RecommendationIssued) and o.scope == "order"
    ]
    assert _repeated(breaches) == [], "a breach_id was issued twice"
    assert _repeated([o.resolution_id for o in resolutions]) == [], "a breach resolved twice"
    assert {o.breach_id for o in resolutions} <= set(breaches), "a resolution without its breach"
    assert _repeated(order_scope) == [], "an order-scope recommendation_id was issued twice"


def _assert_same_ids(
    expected: list[Output], actual: list[Output], compared: Callable[[Output], bool]
) -> None:
    expected_ids = {output_id(o) for o in expected if compared(o)}
    actual_ids = {output_id(o) for o in actual if compared(o)}
    in_time_order_only = describe(o for o in expected if output_id(o) in expected_ids - actual_ids)
    this_arrival_only = describe(o for o in actual if output_id(o) in actual_ids - expected_ids)
    assert (in_time_order_only, this_arrival_only) == ([], [])


def _everything(output: Output) -> bool:
    return True


@given(data=st.data(), events=single_order())
def test_one_orders_outputs_do_not_depend_on_arrival_order_or_duplicates(
    data: st.DataObject, events: list[Event]
) -> None:
    arrival = data.draw(late_arrivals(events), label="arrival")

    expected = run_engine(in_time_order(events))
    actual = run_engine(arrival)

    _assert_each_issued_once(actual)
    _assert_same_ids(expected, actual, _everything)


@given(data=st.data(), events=several_orders())
def test_interleaved_orders_of_one_sku_get_the_same_order_outputs_in_any_arrival_order(
    data: st.DataObject, events: list[Event]
) -> None:
    arrival = data.draw(late_arrivals(events), label="arrival")

    expected = run_engine(in_time_order(events))
    actual = run_engine(arrival)

    _assert_each_issued_once(actual)
    _assert_same_ids(expected, actual, is_order_scope_independent)


@given(events=several_orders())
def test_a_run_in_time_order_issues_each_breach_and_order_recommendation_once(
    events: list[Event],
) -> None:
    _assert_each_issued_once(run_engine(in_time_order(events)))
