"""A paged stock queue allocates as one list of every open order does.

The reference is the allocation the SKU made before its queue had pages: every open order in
placement order, the stock given to each in turn, and a set of the orders found short. Random
openings, closings and stock levels go to both, with pages of a few claims so that they split,
empty and are swept; each allocation must find the same orders newly short, with the same
shortage counts and units needed, and the queue's pages must stay within their size.
"""

from __future__ import annotations

from bisect import insort
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core import stockqueue
from streams.core.stockqueue import Claim, DictQueuePages, Position, StockQueue

T0 = datetime(2026, 1, 1)
DUE = T0 + timedelta(days=5)


class Reference:
    """The allocation over one list (the SKU's before pages)."""

    def __init__(self) -> None:
        self.open: dict[str, list[int]] = {}  # order id -> [quantity, shortages]
        self.queue: list[Position] = []
        self.at_risk: set[str] = set()
        self.closed: set[str] = set()

    def open_order(self, position: Position, quantity: int) -> bool:
        order_id = position[1]
        if order_id in self.closed or order_id in self.open:
            return False
        self.open[order_id] = [quantity, 0]
        insort(self.queue, position)
        return True

    def close(self, position: Position) -> None:
        order_id = position[1]
        self.closed.add(order_id)
        if self.open.pop(order_id, None) is not None:
            self.queue.remove(position)
        self.at_risk.discard(order_id)

    def allocate(self, available: int) -> list[tuple[str, int, int]]:
        shorts, needed = [], 0
        for _, order_id in self.queue:
            entry = self.open[order_id]
            needed += entry[0]
            if needed <= available:
                self.at_risk.discard(order_id)
                continue
            if order_id in self.at_risk:
                continue
            self.at_risk.add(order_id)
            entry[1] += 1
            shorts.append((order_id, entry[1], needed))
        return shorts


operation = st.one_of(
    st.tuples(st.just("open"), st.integers(0, 30), st.integers(1, 4)),
    st.tuples(st.just("close"), st.integers(0, 30), st.just(0)),
    st.tuples(st.just("stock"), st.integers(-2, 40), st.just(0)),
)


@pytest.fixture(autouse=True)
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stockqueue, "PAGE_SIZE", 3)


@settings(max_examples=400, deadline=None)
@given(st.lists(operation, max_size=80))
def test_a_paged_queue_finds_the_orders_one_list_finds(
    operations: list[tuple[str, int, int]],
) -> None:
    reference, queue, pages = Reference(), StockQueue(), DictQueuePages()
    available = 0
    for kind, value, quantity in operations:
        # Placement times collide now and then: the order id breaks the tie, as in the queue.
        position = (T0 + timedelta(hours=value // 2), f"o{value:02d}")
        new: Position | None = None
        if kind == "open":
            if not reference.open_order(position, quantity):
                continue
            queue.put(position, Claim(quantity, DUE), pages)
            new = position
        elif kind == "close":
            reference.close(position)
            claim = queue.claim(position, pages) or Claim(quantity, DUE)
            queue.put(position, claim._replace(closed_at=T0 + timedelta(minutes=value)), pages)
            continue
        else:
            available = value
        expected = reference.allocate(available)
        shorts = queue.allocate(available, pages, new)
        assert [(s.position[1], s.claim.shortages, s.needed) for s in shorts] == expected
        assert queue.open_orders == len(reference.queue)
        assert all(len(page) <= 3 for page in pages.pages.values())
        assert {slot.number for slot in queue.slots} == set(pages.pages)
        for slot in queue.slots:
            page = pages.pages[slot.number]
            opened = [claim for _, claim in page if claim.closed_at is None]
            closes = [claim.closed_at for _, claim in page if claim.closed_at is not None]
            assert slot == (
                slot.number,
                page[0][0],
                len(page),
                len(opened),
                sum(claim.quantity for claim in opened),
                min(closes, default=None),
            )


def test_closed_claims_are_swept_after_the_horizon_and_empty_pages_go() -> None:
    queue, pages = StockQueue(), DictQueuePages()
    for hour in range(10):
        position = (T0 + timedelta(hours=hour), f"o{hour}")
        queue.put(position, Claim(1, DUE, closed_at=T0 + timedelta(hours=hour)), pages)
    kept = (T0 + timedelta(hours=20), "open")
    queue.put(kept, Claim(2, DUE), pages)
    queue.sweep(T0 + timedelta(hours=4), pages)
    assert queue.claim((T0 + timedelta(hours=4), "o4"), pages) is None
    assert queue.claim((T0 + timedelta(hours=5), "o5"), pages) is not None
    queue.sweep(T0 + timedelta(hours=30), pages)
    assert [position for slot in queue.slots for position, _ in pages.pages[slot.number]] == [kept]
    assert len(pages.pages) == 1
    assert queue.open_orders == 1
