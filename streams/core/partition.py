"""One partition's orders: what both drivers do with an order event or a moving clock.

An :class:`OrderPartition` owns the index of its orders' next deadlines and decides through
:mod:`streams.core.order`; the states live where the driver keeps them (a dictionary in replay,
a changelogged table in the worker), behind :class:`OrderStates`. Its owner, the
:class:`~streams.core.processor.PartitionProcessor`, keeps the clock and hands it over: the
partition reads no time and does no I/O. Each decision comes back as the order's
:class:`~streams.core.order.Step`, already kept (stored, or dropped once closed) and scheduled,
for the processor to pass on its outputs and facts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Protocol

from streams.core import order
from streams.core.due_index import DeadlineIndex
from streams.core.events import OrderEvent
from streams.core.policy import Policy

__all__ = ["OrderPartition", "OrderStates"]


class OrderStates(Protocol):
    """Where a partition's order states live, by order id."""

    def get(self, key: str) -> order.OrderState | None: ...

    def put(self, key: str, state: order.OrderState) -> None: ...

    def drop(self, key: str) -> None: ...


class OrderPartition:
    """The orders of one partition: their deadlines, and the steps that change them."""

    __slots__ = ("deadlines", "held", "held_deadlines", "policy", "states")

    def __init__(self, policy: Policy, states: OrderStates) -> None:
        self.policy = policy
        self.states = states
        self.deadlines = DeadlineIndex()
        #: Wall clock: orders just read, by the time (in read order) every input must have had
        #: nothing unread at before they follow the wall clock again (see :meth:`apply`)...
        self.held: dict[str, datetime] = {}
        #: ... and their deadlines meanwhile (fired by :meth:`fire_held`).
        self.held_deadlines = DeadlineIndex()

    def __len__(self) -> int:
        """Orders with a deadline (or an expiry) ahead."""
        return len(self.deadlines) + len(self.held_deadlines)

    def restore(self, order_ids: Iterable[str]) -> None:
        """Schedule the next check of each stored order (after a restart or a rebalance)."""
        for order_id in order_ids:
            state = self.states.get(order_id)
            if state is not None:
                self.deadlines.schedule(order_id, order.next_due(state, self.policy))

    def restore_due(self, order_id: str, due: datetime) -> None:
        """Schedule a stored order's next check at ``due``, its :func:`order.next_due` as its
        writer stored it beside the state (under the same policy): no state is read."""
        self.deadlines.schedule(order_id, due)

    def apply(
        self, event: OrderEvent, now: datetime, *, hold: datetime | None = None
    ) -> order.Step:
        """Fold ``event`` into its order at the clock ``now`` (a repeated event changes
        nothing: its step says ``duplicate``).

        With ``hold`` (the wall clock) the order is held until every input had nothing unread
        at that time: meanwhile it fires only in event time (:meth:`fire_held`), not even a
        deadline already behind the wall clock, so events written with it (a burst of
        history, a backlog) are read first and meet what they meet.
        """
        order_id = event.order_id
        step = order.apply(self.states.get(order_id), event, now, self.policy, fire=hold is None)
        if step.duplicate:
            return step
        moved = False
        if hold is not None and step.state is not None:
            moved = self.held.pop(order_id, None) is None
            self.held[order_id] = hold  # kept in read order
            if moved:
                self.deadlines.discard(order_id)
        self._keep(order_id, step)
        if moved and step.next_due is None and step.state is not None:
            # The event brought no deadline: the one scheduled before moves along.
            self.held_deadlines.schedule(order_id, order.next_due(step.state, self.policy))
        return step

    def release(self, caught_up: datetime) -> None:
        """Every input had nothing unread at ``caught_up``: the orders held until then follow
        the wall clock again."""
        held = self.held
        while held:
            order_id, until = next(iter(held.items()))
            if until > caught_up:
                return
            del held[order_id]
            self.held_deadlines.discard(order_id)
            state = self.states.get(order_id)
            if state is not None:
                self.deadlines.schedule(order_id, order.next_due(state, self.policy))

    def fire_held(self, now: datetime) -> Iterator[order.Step]:
        """The steps of every held order due at or before ``now`` (their event-time clock)."""
        return self._fire(self.held_deadlines, now)

    def fire(self, now: datetime) -> Iterator[order.Step]:
        """The steps of every order due at or before ``now``, in due order, each kept before
        it is yielded."""
        return self._fire(self.deadlines, now)

    def _fire(self, deadlines: DeadlineIndex, now: datetime) -> Iterator[order.Step]:
        while (order_id := deadlines.pop_due(now)) is not None:
            state = self.states.get(order_id)
            if state is not None:
                step = order.fire_due(state, now, self.policy)
                self._keep(order_id, step)
                yield step

    def _keep(self, order_id: str, step: order.Step) -> None:
        if step.state is None:
            self.states.drop(order_id)
            self.deadlines.discard(order_id)
            if self.held.pop(order_id, None) is not None:
                self.held_deadlines.discard(order_id)
        else:
            self.states.put(order_id, step.state)
            index = self.held_deadlines if order_id in self.held else self.deadlines
            index.schedule(order_id, step.next_due)
