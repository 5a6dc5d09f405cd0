"""What the carrier and merchant processors share: an aggregate that counts orders' timelines.

Each knows its orders as timelines (:class:`~streams.core.facts.Shipment`,
:class:`~streams.core.facts.OrderHealth`) merged from the facts the orders send, counted as of
the aggregate's clock in a :class:`~streams.core.ledger.Ledger` (its head in the state, the
timelines and scheduled changes in the aggregate's :class:`~streams.core.ledger.Pages`). A fact
moves the clock to its time and is merged with what is known; a check moves the clock and
compares the counts with the policy. What differs (the state, how a timeline counts, what the
counts mean) is given to a :class:`TimelineAggregate`.

Its methods update the state (and its pages) they are given in place and return it in the
step; :meth:`TimelineAggregate.next_check` only reads it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, NamedTuple, Protocol, TypeVar

from streams.core.ledger import Ledger, Pages
from streams.core.outputs import RecommendationIssued
from streams.core.policy import Policy
from streams.core.window import View

__all__ = ["AggregateStep", "Timeline", "TimelineAggregate"]


class Timeline(Protocol):
    """One order's timeline, as an aggregate knows it."""

    @property
    def order_id(self) -> str: ...


S = TypeVar("S")
T = TypeVar("T", bound=Timeline)


class AggregateStep(NamedTuple, Generic[S]):
    """An aggregate's state after a call, and what it issued."""

    state: S
    outputs: list[RecommendationIssued]


@dataclass(frozen=True, slots=True)
class TimelineAggregate(Generic[S, T]):
    """One kind of aggregate (state ``S``) counting its orders' timelines (``T``)."""

    #: The state's ledger.
    ledger: Callable[[S], Ledger[T]]
    #: How a timeline counts for this state under the policy.
    view: Callable[[S, Policy], View[T]]
    #: One timeline from what was known (None: nothing) and what a fact tells.
    merge: Callable[[T | None, T], T]
    #: The recommendations the counts call for, as of the ledger's clock (the pages to read
    #: the timelines behind a count from).
    evaluate: Callable[[S, Policy, Pages[T]], list[RecommendationIssued]]

    def apply(
        self, state: S, fact: T, now: datetime, policy: Policy, pages: Pages[T]
    ) -> AggregateStep[S]:
        """Learn more of one order's timeline and move the clock to ``now``.

        The counts are checked by :meth:`tick` once every input of this moment was applied
        (the drivers schedule it): checked after each one, the result would depend on their
        order.
        """
        ledger = self.ledger(state)
        view = self.view(state, policy)
        if ledger.unspilled:
            ledger.spill(view, pages)
        ledger.advance(now, pages)
        order_id = fact.order_id
        ledger.put(order_id, self.merge(pages.timeline(order_id), fact), view, pages)
        return AggregateStep(state, [])

    def next_check(self, state: S) -> datetime | None:
        """When time alone changes a count (a timeline leaves the window, something it was
        told of comes due)."""
        ledger = self.ledger(state)
        if ledger.unspilled:
            return ledger.now  # stored before ledgers: a check at once spills it
        return ledger.next_change()

    def tick(self, state: S, now: datetime, policy: Policy, pages: Pages[T]) -> AggregateStep[S]:
        """Move the clock to ``now`` and check the counts."""
        ledger = self.ledger(state)
        if ledger.unspilled:
            ledger.spill(self.view(state, policy), pages)
        if now > ledger.now:  # usually the facts of this moment already moved it
            ledger.advance(now, pages)
        return AggregateStep(state, self.evaluate(state, policy, pages))
