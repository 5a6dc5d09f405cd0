"""Builders and a runner for the rule tests: one test module per rule group of policy.md.

Every event is built as the JSON a producer would send and validated through
:func:`~streams.core.events.decode_event`, then run through ``Engine(load_policy())``. Tests
reach the builders through the ``ev`` fixture and the engine through ``run`` (or ``make_run``
for a custom policy or a second engine), so no test module imports this file at run time (they
import ``Events``, ``Run`` and ``Event`` for the type checker only).

Expected numbers are hard-coded in each test from policy.md, never read from the policy, so a
test fails when someone edits ``wish.toml``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from itertools import count
from typing import Any

import pytest

from streams.core.engine import Engine, Output
from streams.core.events import InventoryUpdated, OrderEvent, decode_event
from streams.core.outputs import (
    DeadlineBreached,
    DeadlineResolved,
    RecommendationIssued,
    Rejection,
)
from streams.core.policy import Policy
from streams.policy_files import load_policy

Event = OrderEvent | InventoryUpdated
MERCHANT = "m1"
SKU = "SKU-1"


def stamp(moment: datetime | str) -> str:
    """RFC 3339 with an offset, microseconds kept (what a producer sends)."""
    return moment if isinstance(moment, str) else moment.isoformat()


class Events:
    """Builders of validated input events; every event gets a fresh ``event_id`` unless given."""

    def __init__(self) -> None:
        self._ids = count(1)

    def build(self, payload: dict[str, Any]) -> Event:
        """Validate one event as its JSON bytes; a rejection fails the test with its reason."""
        decoded = decode_event(json.dumps(payload).encode("utf-8"))
        if isinstance(decoded, Rejection):
            raise AssertionError(f"the test built an invalid event: {decoded.error}")
        return decoded

    def _event(
        self, kind: str, at: datetime | str, fields: dict[str, Any], overrides: dict[str, Any]
    ) -> Event:
        payload: dict[str, Any] = {
            "event_id": f"{kind}-{next(self._ids)}",
            "type": kind,
            "occurred_at": stamp(at),
            "merchant_id": MERCHANT,
            **fields,
        }
        for key, value in overrides.items():
            if value is None:
                payload.pop(key, None)
            elif isinstance(value, datetime):
                payload[key] = stamp(value)
            elif isinstance(value, Decimal):
                payload[key] = str(value)
            else:
                payload[key] = value
        return self.build(payload)

    def placed(self, order_id: str, at: datetime | str, **overrides: Any) -> Event:
        """``order.placed``: 1 × (USD 10.00 + 2.00 shipping) of SKU-1 to the US, standard."""
        fields = {
            "order_id": order_id,
            "sku": SKU,
            "quantity": 1,
            "unit_price": "10.00",
            "shipping_price": "2.00",
            "currency": "USD",
            "destination_country": "US",
        }
        return self._event("order.placed", at, fields, overrides)

    def cancelled(
        self, order_id: str, at: datetime | str, by: str = "merchant", **overrides: Any
    ) -> Event:
        fields = {"order_id": order_id, "cancelled_by": by}
        return self._event("order.cancelled", at, fields, overrides)

    def refunded(self, order_id: str, at: datetime | str, **overrides: Any) -> Event:
        fields = {"order_id": order_id, "amount": "12.00", "reason": "other"}
        return self._event("order.refunded", at, fields, overrides)

    def inventory(
        self, at: datetime | str, available: int, sku: str = SKU, **overrides: Any
    ) -> Event:
        fields = {"sku": sku, "available": available}
        return self._event("inventory.updated", at, fields, overrides)

    def tracked(
        self,
        order_id: str,
        at: datetime | str,
        number: str | None = None,
        carrier: str = "YunExpress",
        **overrides: Any,
    ) -> Event:
        fields = {
            "order_id": order_id,
            "carrier": carrier,
            "tracking_number": number or f"TN-{order_id}",
        }
        return self._event("tracking.submitted", at, fields, overrides)

    def scanned(
        self,
        order_id: str,
        at: datetime | str,
        status: str = "accepted",
        number: str | None = None,
        **overrides: Any,
    ) -> Event:
        fields = {
            "order_id": order_id,
            "tracking_number": number or f"TN-{order_id}",
            "status": status,
        }
        return self._event("carrier.scanned", at, fields, overrides)

    def filed(
        self,
        order_id: str,
        at: datetime | str,
        reason: str = "other",
        complaint_id: str = "c1",
        photos: int = 0,
        **overrides: Any,
    ) -> Event:
        fields = {
            "order_id": order_id,
            "complaint_id": complaint_id,
            "reason": reason,
            "photos": photos,
        }
        return self._event("complaint.filed", at, fields, overrides)

    def responded(
        self, order_id: str, at: datetime | str, complaint_id: str = "c1", **overrides: Any
    ) -> Event:
        fields = {"order_id": order_id, "complaint_id": complaint_id}
        return self._event("complaint.responded", at, fields, overrides)

    def resolved(
        self,
        order_id: str,
        at: datetime | str,
        complaint_id: str = "c1",
        outcome: str = "reshipped",
        **overrides: Any,
    ) -> Event:
        fields = {"order_id": order_id, "complaint_id": complaint_id, "outcome": outcome}
        return self._event("complaint.resolved", at, fields, overrides)


class Run:
    """One engine in event time, with every output it produced kept in order."""

    def __init__(self, policy: Policy) -> None:
        self.engine = Engine(policy)
        self.outputs: list[Output] = []

    def feed(self, *events: Event) -> list[Output]:
        """Process the events in this order; the outputs they produced."""
        produced: list[Output] = []
        for event in events:
            produced.extend(self.engine.process(event))
        self.outputs.extend(produced)
        return produced

    def step(self, *events: Event) -> list[Output]:
        """Process the events, then close their latest moment (as ``advance-clock`` does).

        Aggregates (SKU, carrier, merchant) decide a moment once the clock has passed it; this
        is how a test sees what they decide of the events it just fed.
        """
        produced = self.feed(*events)
        return produced + self.advance(max(event.occurred_at for event in events))

    def advance(self, moment: datetime) -> list[Output]:
        """Move the clock to ``moment``; the outputs that fired."""
        produced = self.engine.advance_to(moment)
        self.outputs.extend(produced)
        return produced

    @staticmethod
    def codes(recommendation: RecommendationIssued) -> list[str]:
        """The action codes of a recommendation, in order."""
        return [action.code for action in recommendation.actions]

    @property
    def clock(self) -> datetime:
        return self.engine.clock

    def breaches(
        self,
        deadline: str | None = None,
        order_id: str | None = None,
        outputs: Iterable[Output] | None = None,
    ) -> list[DeadlineBreached]:
        """Breaches (of one deadline, of one order) among ``outputs`` (default: all so far)."""
        return [
            out
            for out in (self.outputs if outputs is None else outputs)
            if isinstance(out, DeadlineBreached)
            and (deadline is None or out.deadline == deadline)
            and (order_id is None or out.order_id == order_id)
        ]

    def resolutions(
        self,
        deadline: str | None = None,
        order_id: str | None = None,
        outputs: Iterable[Output] | None = None,
    ) -> list[DeadlineResolved]:
        """Resolutions (of one deadline, of one order) among ``outputs`` (default: all)."""
        return [
            out
            for out in (self.outputs if outputs is None else outputs)
            if isinstance(out, DeadlineResolved)
            and (deadline is None or out.deadline == deadline)
            and (order_id is None or out.order_id == order_id)
        ]

    def recs(
        self,
        reason: str | None = None,
        order_id: str | None = None,
        outputs: Iterable[Output] | None = None,
    ) -> list[RecommendationIssued]:
        """Recommendations (of one reason, of one order) among ``outputs`` (default: all)."""
        return [
            out
            for out in (self.outputs if outputs is None else outputs)
            if isinstance(out, RecommendationIssued)
            and (reason is None or out.reason == reason)
            and (order_id is None or out.order_id == order_id)
        ]


@pytest.fixture(scope="session")
def policy() -> Policy:
    """The default (Wish) profile."""
    return load_policy()


@pytest.fixture
def ev() -> Events:
    return Events()


@pytest.fixture
def make_run(policy: Policy) -> Callable[..., Run]:
    """A factory of fresh runs, on the default profile unless given another policy."""

    def make(custom: Policy | None = None) -> Run:
        return Run(custom or policy)

    return make


@pytest.fixture
def run(make_run: Callable[..., Run]) -> Run:
    return make_run()
