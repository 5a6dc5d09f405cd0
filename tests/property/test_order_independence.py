"""Contract §2: within the allowed lateness, arrival order and duplicates do not change results."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st
from orderwatch_lives import (
    describe,
    in_time_order,
    is_order_scope_independent,
    late_arrivals,
    output_id,
    run_engine,
    several_orders,
    single_order,
)

from streams.core.outputs import DeadlineBreached
from streams.core.policy import Policy


def _repeated(ids: list[str]) -> list[str]:
    return [value for value, count in Counter(ids).items() if count > 1]


def _assert_no_repeats(outputs: list) -> None:
    breaches = [o.breach_id for o in outputs if isinstance(o, DeadlineBreached)]
    assert not _repeated(breaches), f"breach ids issued twice: {_repeated(breaches)}"
    order_scope = [
        o.recommendation_id
        for o in outputs
        if not isinstance(o, DeadlineBreached) and o.scope == "order"
    ]
    assert not _repeated(order_scope), f"recommendation ids issued twice: {_repeated(order_scope)}"


@given(data=st.data(), events=single_order())
def test_one_orders_outputs_do_not_depend_on_arrival_order_or_duplicates(
    policy: Policy, data: st.DataObject, events: list
) -> None:
    arrival = data.draw(late_arrivals(events), label="arrival")
    expected = run_engine(policy, in_time_order(events))
    actual = run_engine(policy, arrival)

    _assert_no_repeats(actual)
    missing = [o for o in expected if output_id(o) not in {output_id(a) for a in actual}]
    extra = [o for o in actual if output_id(o) not in {output_id(e) for e in expected}]
    assert not missing and not extra, (
        f"in time order only: {describe(missing)}; this arrival only: {describe(extra)}"
    )


@given(data=st.data(), events=several_orders())
def test_interleaved_orders_of_one_sku_get_the_same_order_outputs_in_any_arrival_order(
    policy: Policy, data: st.DataObject, events: list
) -> None:
    arrival = data.draw(late_arrivals(events), label="arrival")
    expected = [o for o in run_engine(policy, in_time_order(events)) if is_order_scope_independent(o)]
    actual_all = run_engine(policy, arrival)
    actual = [o for o in actual_all if is_order_scope_independent(o)]

    _assert_no_repeats(actual_all)
    missing = [o for o in expected if output_id(o) not in {output_id(a) for a in actual}]
    extra = [o for o in actual if output_id(o) not in {output_id(e) for e in expected}]
    assert not missing and not extra, (
        f"in time order only: {describe(missing)}; this arrival only: {describe(extra)}"
    )


@given(events=single_order())
def test_the_reference_run_issues_every_breach_and_order_recommendation_once(
    policy: Policy, events: list
) -> None:
    _assert_no_repeats(run_engine(policy, in_time_order(events)))
