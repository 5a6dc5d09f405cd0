"""The ledger counts exactly as the in-value timelines do, with pages of bounded size."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TypeVar

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core import ledger
from streams.core.carrier import view_shipment
from streams.core.facts import OrderHealth, Shipment, merge_health, merge_shipment
from streams.core.ledger import DictPages, Ledger, schedule
from streams.core.merchant import view_order
from streams.core.timeline_aggregate import Timeline
from streams.core.window import Timelines, View

T0 = datetime(2026, 3, 1, tzinfo=UTC)
WINDOW = timedelta(days=3)
SCAN = timedelta(hours=10)
HOUR = timedelta(hours=1)
F = TypeVar("F", bound=Timeline)

merchant_view = partial(view_order, WINDOW, SCAN)
carrier_view = partial(view_shipment, WINDOW, "ups")

hours = st.integers(min_value=0, max_value=24 * 8)
maybe_hours = st.none() | hours


def at(hour: int | None) -> datetime | None:
    return None if hour is None else T0 + hour * HOUR


@st.composite
def health_facts(draw: st.DrawFn) -> OrderHealth:
    order = draw(st.integers(min_value=0, max_value=12))
    placed = draw(hours)
    return OrderHealth(
        "m1",
        f"o{order}",
        "m1",
        T0,
        T0 + placed * HOUR,
        tracked_at=at(draw(maybe_hours)),
        scanned_at=at(draw(maybe_hours)),
        refunded_at=at(draw(maybe_hours)),
        merchant_cancelled_at=at(draw(maybe_hours)),
        late_confirmed_at=at(draw(maybe_hours)),
    )


@st.composite
def shipment_facts(draw: st.DrawFn) -> Shipment:
    order = draw(st.integers(min_value=0, max_value=12))
    trackings = draw(
        st.lists(st.tuples(hours, st.sampled_from(["ups", "dhl"])), min_size=1, max_size=3)
    )
    return Shipment(
        "m1/ups",
        f"o{order}",
        "m1",
        "ups",
        T0,
        tuple(sorted((T0 + h * HOUR, c) for h, c in trackings)),
        at(draw(maybe_hours)),
    )


class WriteOncePages(DictPages[F]):
    """Pages that refuse to be overwritten: a head not stored must still find its pages."""

    def put_page(self, number: int, page: ledger.Page) -> None:
        assert number not in self.pages, f"page {number} written twice"
        super().put_page(number, page)


# Each step: move the clock forward by some hours (0: not at all), then learn a fact.
def steps(facts: st.SearchStrategy[F]) -> st.SearchStrategy[list[tuple[int, F]]]:
    return st.lists(st.tuples(st.integers(min_value=0, max_value=30), facts), max_size=60)


def check_same_counts(
    view: View[F],
    merge: Callable[[F | None, F], F],
    plan: list[tuple[int, F]],
    width: int,
    page_size: int,
) -> None:
    """Drive a Timelines and a Ledger alike; after every step their totals and kept
    timelines agree, and every page holds at most ``page_size`` moments."""
    old_size = ledger.PAGE_SIZE
    ledger.PAGE_SIZE = page_size
    try:
        timelines: Timelines[F] = Timelines(width)
        paged: Ledger[F] = Ledger(width)
        store: DictPages[F] = WriteOncePages()
        now = T0 - HOUR
        ending: list[tuple[int, F | None]] = [*plan, (24 * 12, None)]
        for hours_later, fact in ending:
            now += hours_later * HOUR
            timelines.advance(now, view)
            paged.advance(now, store)
            if fact is not None:
                key = fact.order_id
                timelines.put(key, merge(timelines.entries.get(key), fact), view)
                paged.put(key, merge(store.timeline(key), fact), view, store)
            assert paged.totals == timelines.totals
            assert store.timelines == timelines.entries
            assert all(len(page) <= page_size for page in store.pages.values())
            assert set(store.pages) == {number for number, _, _ in paged.pages}
            upcoming = paged.next_change()
            known = timelines.next_change()
            if upcoming is not None:  # never later than a change of the totals
                assert known is not None
                assert known <= upcoming
        assert paged.totals == [0] * width
        assert store.timelines == {}
        assert store.pages == {}
        assert paged.pages == []
    finally:
        ledger.PAGE_SIZE = old_size


@settings(max_examples=300, deadline=None)
@given(steps(health_facts()), st.sampled_from([1, 2, 4, 256]))
def test_store_health_counts_match_timelines(
    plan: list[tuple[int, OrderHealth]], size: int
) -> None:
    check_same_counts(merchant_view, merge_health, plan, 7, size)


@settings(max_examples=300, deadline=None)
@given(steps(shipment_facts()), st.sampled_from([1, 2, 256]))
def test_carrier_counts_match_timelines(plan: list[tuple[int, Shipment]], size: int) -> None:
    check_same_counts(carrier_view, merge_shipment, plan, 2, size)


def test_a_schedule_lists_every_change_and_when_the_timeline_is_forgotten() -> None:
    placed = OrderHealth("m1", "o1", "m1", T0, T0, refunded_at=T0 + 5 * HOUR)
    read = schedule(merchant_view, placed, T0, 7)
    assert read.counts == (1, 0, 0, 0, 0, 0, 0)
    assert read.changes == [
        (T0 + 5 * HOUR, (0, 1, 0, 0, 0, 0, 0)),
        (T0 + WINDOW, (-1, -1, 0, 0, 0, 0, 0)),
    ]
    assert read.forget == T0 + WINDOW
    assert read.kept


def test_pages_split_when_full_and_the_head_stays_small() -> None:
    old_size = ledger.PAGE_SIZE
    ledger.PAGE_SIZE = 8
    try:
        paged: Ledger[OrderHealth] = Ledger(7)
        store: DictPages[OrderHealth] = DictPages()
        paged.advance(T0 + 99 * timedelta(minutes=1), store)
        for n in range(100):
            fact = OrderHealth("m1", f"o{n}", "m1", T0, T0 + n * timedelta(minutes=1))
            paged.put(fact.order_id, fact, merchant_view, store)
        assert paged.totals[0] == 100
        assert max(len(page) for page in store.pages.values()) <= 8
        assert len(paged.pages) == len(store.pages) >= 100 // 8
        assert paged.next_change() == T0 + WINDOW
        paged.advance(T0 + WINDOW + 49 * timedelta(minutes=1), store)
        assert paged.totals[0] == 50
        assert len(store.timelines) == 50
    finally:
        ledger.PAGE_SIZE = old_size
