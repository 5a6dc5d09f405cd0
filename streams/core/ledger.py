"""Timelines counted as of a clock, with a head of bounded size: a ledger of scheduled changes.

:class:`~streams.core.window.Timelines` keeps every timeline of an aggregate in one value, so a
busy store's value grows with its orders. A :class:`Ledger` keeps only the totals as of its
clock and a short table of contents in its head; each timeline, and the changes the totals are
due to undergo, live outside it in a :class:`Pages` store, one key each:

- a timeline, under its own key, until its view forgets it;
- the scheduled changes, in pages of at most :data:`PAGE_SIZE` moments. Each moment carries the
  sum of the count changes due then, and the keys whose timelines are forgotten then. Pages
  split when they fill, so a page's size is bounded whatever the volume, and the head holds one
  (number, first moment it routes, earliest moment it holds) triple per page.

Learning a timeline computes its schedule from the clock on (every moment its view changes,
until the view forgets it), and applies to the pages the difference from the schedule it
replaces; moving the clock applies the due changes of the first pages. The totals are always
those of every timeline read as of the clock, exactly as :class:`Timelines` counts them, with
the same :data:`~streams.core.window.View`.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from operator import add, sub
from typing import Generic, Protocol, TypeVar

from streams.core.dates import EPOCH
from streams.core.window import View

__all__ = ["PAGE_SIZE", "Change", "DictPages", "Ledger", "Page", "Pages", "Schedule", "schedule"]

T = TypeVar("T")

#: The most moments a page holds; a page that would hold more is split in two.
PAGE_SIZE = 512


@dataclass(slots=True)
class Change:
    """What happens at one moment: a change of the totals, and timelines forgotten."""

    delta: list[int]
    forgets: list[str] = field(default_factory=list)

    def empty(self) -> bool:
        return not self.forgets and not any(self.delta)


Page = dict[datetime, Change]
"""Scheduled changes by moment (one page of a ledger)."""


class Pages(Protocol[T]):
    """Where a ledger's timelines and pages live, outside its head (one aggregate's keys)."""

    def timeline(self, key: str) -> T | None: ...

    def put_timeline(self, key: str, timeline: T) -> None: ...

    def drop_timeline(self, key: str) -> None: ...

    def page(self, number: int) -> Page | None: ...

    def put_page(self, number: int, page: Page) -> None: ...

    def drop_page(self, number: int) -> None: ...


@dataclass(slots=True)
class Schedule:
    """One timeline read from a clock on: its counts then (None: not counted), its changes
    after, and when it is forgotten (None: never, or at once when ``now`` is None too)."""

    counts: tuple[int, ...] | None
    changes: list[tuple[datetime, tuple[int, ...]]]
    forget: datetime | None
    kept: bool


def schedule(view: View[T], timeline: T, now: datetime, width: int) -> Schedule:
    """Read ``timeline`` as of ``now`` and at every later moment its view changes."""
    zero = (0,) * width
    counts, upcoming = view(timeline, now)
    if counts is None and upcoming is None:
        return Schedule(None, [], None, kept=False)
    changes: list[tuple[datetime, tuple[int, ...]]] = []
    before = counts or zero
    forget: datetime | None = None
    while upcoming is not None:
        moment = upcoming
        later, upcoming = view(timeline, moment)
        if upcoming is not None and upcoming <= moment:
            raise ValueError(f"a view's next change must be later than {moment}: {upcoming}")
        after = later or zero
        if after != before:
            changes.append((moment, tuple(map(sub, after, before))))
        if later is None and upcoming is None:
            forget = moment
            break
        before = after
    return Schedule(counts, changes, forget, kept=True)


@dataclass(slots=True)
class Ledger(Generic[T]):
    """An aggregate's timelines, summed as of its clock ``now``; see the module docstring.

    ``pages`` lists the head's pages in moment order as ``[number, routes_from, earliest]``:
    a change at moment m goes to the last page whose ``routes_from`` is at most m (the first
    page when none is); ``earliest`` is the page's earliest moment.
    """

    width: int
    now: datetime = EPOCH
    totals: list[int] = field(default_factory=list)
    pages: list[tuple[int, datetime, datetime]] = field(default_factory=list)
    next_number: int = 0
    #: Timelines read from a state stored before ledgers (all in one value), not yet moved to
    #: the pages: :meth:`spill` moves them, counting each as of ``now``.
    unspilled: dict[str, T] = field(default_factory=dict)
    #: The first page's moments in order, by its number: kept in memory (never stored) so that
    #: moving the clock does not sort that page again at every moment it passes.
    _first: tuple[int, list[datetime]] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.totals:
            self.totals = [0] * self.width

    # ---- queries -------------------------------------------------------------------------

    def next_change(self) -> datetime | None:
        """The next moment a count changes or a timeline is forgotten by time alone."""
        return self.pages[0][2] if self.pages else None

    def first_change(self, index: int, store: Pages[T]) -> datetime | None:
        """The first moment count ``index`` changes by time alone (None: it never does)."""
        for number, _, _ in self.pages:
            page = store.page(number) or {}
            for moment in self._first_order(number, page):
                if page[moment].delta[index]:
                    return moment
        return None

    # ---- updates -------------------------------------------------------------------------

    def spill(self, view: View[T], store: Pages[T]) -> None:
        """Move the timelines of a state stored before ledgers to the pages."""
        unspilled, self.unspilled = self.unspilled, {}
        for key, timeline in unspilled.items():
            self.put(key, timeline, view, store)

    def put(self, key: str, timeline: T, view: View[T], store: Pages[T]) -> None:
        """Learn (or replace) one timeline and count it as of ``now``."""
        old = store.timeline(key)
        new = schedule(view, timeline, self.now, self.width)
        was = None if old is None else schedule(view, old, self.now, self.width)
        if new.kept:
            store.put_timeline(key, timeline)
        elif old is not None:
            store.drop_timeline(key)
        if was == new:
            return  # counted alike, now and later: nothing to edit
        totals = self.totals
        edits: dict[datetime, list[int]] = {}
        forgets: dict[datetime, int] = {}
        if was is not None:
            for index, value in enumerate(was.counts or ()):
                totals[index] -= value
            for moment, delta in was.changes:
                edits[moment] = [-value for value in delta]
            if was.forget is not None:
                forgets[was.forget] = -1
        for index, value in enumerate(new.counts or ()):
            totals[index] += value
        for moment, delta in new.changes:
            edit = edits.get(moment)
            if edit is None:
                edits[moment] = list(delta)
            else:
                for index, value in enumerate(delta):
                    edit[index] += value
        if new.forget is not None:
            forgets[new.forget] = forgets.get(new.forget, 0) + 1
        self._edit(key, edits, forgets, store)

    def advance(self, now: datetime, store: Pages[T]) -> None:
        """Move ``now`` forward (never back), applying the changes due by then."""
        if now <= self.now:
            return
        self.now = now
        totals = self.totals
        while self.pages and self.pages[0][2] <= now:
            number, routes_from, _ = self.pages[0]
            page = store.page(number) or {}
            order = self._first_order(number, page)
            cut = bisect_right(order, now)
            for moment in order[:cut]:
                change = page.pop(moment)
                for index, value in enumerate(change.delta):
                    totals[index] += value
                for key in change.forgets:
                    store.drop_timeline(key)
            rest = order[cut:]
            self._store_page(0, number, routes_from, page, store, rest[0] if rest else None)
            self._keep_first(rest)

    # ---- pages ---------------------------------------------------------------------------

    def _edit(
        self,
        key: str,
        edits: dict[datetime, list[int]],
        forgets: dict[datetime, int],
        store: Pages[T],
    ) -> None:
        """Apply count edits and forget edits (+1: add ``key``, -1: remove it), page by page."""
        moments = {m for m, edit in edits.items() if any(edit)}
        moments.update(m for m, n in forgets.items() if n)
        by_page: dict[int, list[datetime]] = defaultdict(list)
        for moment in moments:
            by_page[self._route(moment)].append(moment)
        # From the last page back, so that a split (which inserts after its page) leaves the
        # indexes of the pages still to edit unchanged.
        for index, routed in sorted(by_page.items(), reverse=True):
            old: int | None
            earliest: datetime | None
            if index < 0:
                old, routes_from, page, earliest = None, min(routed), {}, None
                self.pages.insert(0, (-1, routes_from, routes_from))  # placeholder, replaced
                index = 0
            else:
                old, routes_from, earliest = self.pages[index]
                page = store.page(old) or {}  # the store's copy: edited, then written anew
            for moment in routed:
                change = page.get(moment) or Change([0] * self.width)
                delta, forgotten = change.delta, change.forgets
                edit = edits.get(moment)
                if edit is not None:
                    delta = list(map(add, delta, edit))
                step = forgets.get(moment, 0)
                if step > 0:
                    forgotten = [*forgotten, key]
                elif step < 0:
                    forgotten = [k for k in forgotten if k != key]
                change = Change(delta, forgotten)
                if change.empty():
                    page.pop(moment, None)
                    if moment == earliest:
                        earliest = None  # to be found again
                else:
                    page[moment] = change
                    if earliest is not None and moment < earliest:
                        earliest = moment
            if earliest is None and page:
                earliest = min(page)
            first = self._first_order(old, page) if index == 0 and old is not None else None
            if first is not None:
                for moment in routed:
                    at = bisect_left(first, moment)
                    present = at < len(first) and first[at] == moment
                    if moment in page and not present:
                        first.insert(at, moment)
                    elif present and moment not in page:
                        del first[at]
            self._store_page(index, old, routes_from, page, store, earliest)
            if index == 0:
                self._keep_first(first)

    def _first_order(self, number: int, page: Page) -> list[datetime]:
        """The moments of the first page (numbered ``number``), in order."""
        first = self._first
        if first is not None and first[0] == number:
            return first[1]
        return sorted(page)

    def _keep_first(self, order: list[datetime] | None) -> None:
        """Remember ``order`` as the first page's moments, if the page was written whole."""
        whole = order and self.pages and len(order) <= PAGE_SIZE and self.pages[0][2] == order[0]
        self._first = (self.pages[0][0], order) if whole and order is not None else None

    def _route(self, moment: datetime) -> int:
        """The index of the page a moment belongs to (-1: there is no page yet)."""
        pages = self.pages
        if len(pages) < 2:
            return len(pages) - 1
        return max(0, bisect_right(pages, moment, key=_routes_from) - 1)

    def _store_page(
        self,
        index: int,
        old: int | None,
        routes_from: datetime,
        page: Page,
        store: Pages[T],
        earliest: datetime | None,
    ) -> None:
        """Write page ``index`` anew: under new numbers (a page once written never changes,
        so a head that was not stored still finds the pages it lists), split in pages of at
        most :data:`PAGE_SIZE` moments, or none when empty; drop the ``old`` one; update the
        head. ``earliest`` is the page's earliest moment (None when it is empty)."""
        if old is not None:
            store.drop_page(old)
        if not page:
            del self.pages[index]
            return
        if len(page) <= PAGE_SIZE:
            number = self._new_number()
            store.put_page(number, page)
            assert earliest is not None
            self.pages[index] = (number, routes_from, earliest)
            return
        moments = sorted(page)
        parts = -(-len(moments) // PAGE_SIZE)  # as few as hold them, evenly filled
        size = -(-len(moments) // parts)
        for part, start in enumerate(range(0, len(moments), size)):
            chunk = moments[start : start + size]
            number = self._new_number()
            store.put_page(number, {m: page[m] for m in chunk})
            entry = (number, routes_from if part == 0 else chunk[0], chunk[0])
            if part == 0:
                self.pages[index] = entry
            else:
                self.pages.insert(index + part, entry)

    def _new_number(self) -> int:
        number = self.next_number
        self.next_number += 1
        return number


def _routes_from(entry: tuple[int, datetime, datetime]) -> datetime:
    return entry[1]


class DictPages(Generic[T]):
    """:class:`Pages` in two dictionaries (replay, tests)."""

    def __init__(self) -> None:
        self.timelines: dict[str, T] = {}
        self.pages: dict[int, Page] = {}

    def timeline(self, key: str) -> T | None:
        return self.timelines.get(key)

    def put_timeline(self, key: str, timeline: T) -> None:
        self.timelines[key] = timeline

    def drop_timeline(self, key: str) -> None:
        self.timelines.pop(key, None)

    def page(self, number: int) -> Page | None:
        return self.pages.get(number)

    def put_page(self, number: int, page: Page) -> None:
        self.pages[number] = page

    def drop_page(self, number: int) -> None:
        self.pages.pop(number, None)
