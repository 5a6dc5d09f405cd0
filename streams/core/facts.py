"""Internal facts: what the order processor tells the SKU, carrier and merchant processors.

Each fact concerns one order as one aggregate sees it, keyed by that aggregate's subject, and
carries ``at``, the event time of what it tells: aggregates apply facts in that order (see
:mod:`streams.core.sequencer`). A stock claim and a complaint never change once made; shipping
and store health are timelines (when each thing happened) that merge in any order, so applying
a fact twice, or an order's facts in another order, changes nothing. Facts are treated as
immutable once made (plain slotted dataclasses: frozen ones cost twice as much to build, on the
hottest path of the core). The Faust worker routes them through the ``aggregate-inputs`` topic;
replay hands them over in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

__all__ = [
    "Demand",
    "Fact",
    "OrderHealth",
    "Shipment",
    "SkuComplaint",
    "carrier_key",
    "carrier_subject",
    "merge_health",
    "merge_shipment",
    "sku_subject",
]


def sku_subject(merchant_id: str, sku: str) -> str:
    """The SKU key space: ``merchant_id/sku``."""
    return f"{merchant_id}/{sku}"


def carrier_key(carrier: str) -> str:
    """Carrier names compare lowercased and trimmed."""
    return carrier.strip().lower()


def carrier_subject(merchant_id: str, carrier: str) -> str:
    """The carrier key space: ``merchant_id/carrier`` (normalised)."""
    return f"{merchant_id}/{carrier_key(carrier)}"


@dataclass(slots=True)
class Demand:
    """An order's claim on its SKU's stock: open until tracked, cancelled, refunded or expired.

    ``at`` is the event time of the change (placement, or the end of the claim): the SKU applies
    demand and stock changes in event-time order.
    """

    subject: str
    order_id: str
    merchant_id: str
    sku: str
    placed_at: datetime
    quantity: int
    fulfillment_due: datetime
    trigger_id: str
    open: bool
    at: datetime


@dataclass(slots=True)
class SkuComplaint:
    """A complaint counted by the SKU's listing and packaging reviews (``at`` is its filing)."""

    subject: str
    order_id: str
    complaint_id: str
    merchant_id: str
    sku: str
    reason: str
    filed_at: datetime

    @property
    def at(self) -> datetime:
        return self.filed_at

    def complaint_key(self) -> str:
        """Unique per complaint across the store's orders."""
        return f"{self.order_id}/{self.complaint_id}"


@dataclass(slots=True)
class Shipment:
    """What a carrier needs to know of one order's shipping, as known at event time ``at``.

    A timeline, not a snapshot: every tracking submitted (time and normalised carrier) and the
    first carrier problem (a damaged or not-received complaint, or a delivery breach). The carrier
    merges what it is told (:func:`merge_shipment`) and reads it *as of* its clock, so the order
    in which an order's events were processed does not change what a carrier counts. Every
    carrier the order ever named is told, so one it left learns that it did.
    """

    subject: str
    order_id: str
    merchant_id: str
    carrier: str
    at: datetime
    trackings: tuple[tuple[datetime, str], ...]
    problem_at: datetime | None


@dataclass(slots=True)
class OrderHealth:
    """What the store-health rule needs to know about one order, as known at event time ``at``.

    A timeline like :class:`Shipment`: the first time each thing happened (None: not known to
    have happened). The merchant merges these and counts each order as of its clock.
    """

    subject: str
    order_id: str
    merchant_id: str
    at: datetime
    placed_at: datetime
    tracked_at: datetime | None = None
    scanned_at: datetime | None = None
    refunded_at: datetime | None = None
    merchant_cancelled_at: datetime | None = None
    late_confirmed_at: datetime | None = None


def _first(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if a <= b else b


def merge_health(known: OrderHealth | None, told: OrderHealth) -> OrderHealth:
    """Everything both timelines say: the earliest time of each thing (order-independent)."""
    if known is None:
        return told
    # Positional arguments, in field order (subject, order_id, merchant_id, at, placed_at,
    # tracked_at, scanned_at, refunded_at, merchant_cancelled_at, late_confirmed_at): this
    # runs for every store-health fact, and keywords cost more.
    return OrderHealth(
        told.subject,
        told.order_id,
        told.merchant_id,
        known.at if known.at >= told.at else told.at,
        known.placed_at if known.placed_at <= told.placed_at else told.placed_at,
        _first(known.tracked_at, told.tracked_at),
        _first(known.scanned_at, told.scanned_at),
        _first(known.refunded_at, told.refunded_at),
        _first(known.merchant_cancelled_at, told.merchant_cancelled_at),
        _first(known.late_confirmed_at, told.late_confirmed_at),
    )


def merge_shipment(known: Shipment | None, told: Shipment) -> Shipment:
    """Every tracking either knows of, and the earliest problem (order-independent)."""
    if known is None:
        return told
    return Shipment(
        subject=told.subject,
        order_id=told.order_id,
        merchant_id=told.merchant_id,
        carrier=told.carrier,
        at=max(known.at, told.at),
        trackings=tuple(sorted(set(known.trackings) | set(told.trackings))),
        problem_at=_first(known.problem_at, told.problem_at),
    )


Fact: TypeAlias = Demand | SkuComplaint | Shipment | OrderHealth
