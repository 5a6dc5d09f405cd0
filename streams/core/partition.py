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
from streams.core.deadlines import DeadlineIndex
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

    __slots__ = ("deadlines", "policy", "states")

    def __init__(self, policy: Policy, states: OrderStates) -> None:
        self.policy = policy
        self.states = states
        self.deadlines = DeadlineIndex()

    def __len__(self) -> int:
        """Orders with a deadline (or an expiry) ahead."""
        return len(self.deadlines)

    def restore(self, order_ids: Iterable[str]) -> None:
        """Schedule the next check of each stored order (after a restart or a rebalance)."""
        for order_id in order_ids:
            state = self.states.get(order_id)
            if state is not None:
                self.deadlines.schedule(order_id, order.next_due(state, self.policy))

    def apply(self, event: OrderEvent, now: datetime) -> order.Step:
        """Fold ``event`` into its order at the clock ``now`` (a repeated event changes
        nothing: its step says ``duplicate``)."""
        order_id = event.order_id
        step = order.apply(self.states.get(order_id), event, now, self.policy)
        if not step.duplicate:
            self._keep(order_id, step)
        return step

    def fire(self, now: datetime) -> Iterator[order.Step]:
        """The steps of every order due at or before ``now``, in due order, each kept before
        it is yielded."""
        while (order_id := self.deadlines.pop_due(now)) is not None:
            state = self.states.get(order_id)
            if state is not None:
                step = order.fire_due(state, now, self.policy)
                self._keep(order_id, step)
                yield step

    def _keep(self, order_id: str, step: order.Step) -> None:
        if step.state is None:
            self.states.drop(order_id)
            self.deadlines.discard(order_id)
        else:
            self.states.put(order_id, step.state)
            self.deadlines.schedule(order_id, step.next_due)
