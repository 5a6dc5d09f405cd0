"""Internal facts: what the order processor tells the SKU, carrier and merchant processors.

Each fact is a snapshot of one order as one aggregate sees it, keyed by that aggregate's
subject, so applying the same fact twice changes nothing and the latest snapshot of an order
wins. Facts are treated as immutable once made (plain slotted dataclasses: frozen ones cost
twice as much to build, on the hottest path of the core). The Faust worker routes them through
repartition topics; replay hands them over in memory.
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
    """A complaint counted by the SKU's listing and packaging reviews."""

    subject: str
    order_id: str
    complaint_id: str
    merchant_id: str
    sku: str
    reason: str
    filed_at: datetime

    def complaint_key(self) -> str:
        """Unique per complaint across the store's orders."""
        return f"{self.order_id}/{self.complaint_id}"


@dataclass(slots=True)
class Shipment:
    """An order shipped with a carrier, and whether it had a carrier problem.

    ``withdrawn`` removes the order from a carrier it no longer ships with (a later tracking
    submission named another carrier).
    """

    subject: str
    order_id: str
    merchant_id: str
    carrier: str
    shipped_at: datetime
    problem: bool
    withdrawn: bool = False


@dataclass(slots=True)
class OrderHealth:
    """What the store-health rule needs to know about one order."""

    subject: str
    order_id: str
    merchant_id: str
    placed_at: datetime
    tracked_at: datetime | None
    scanned: bool
    refunded: bool
    late_confirmed: bool
    cancelled_before_tracking: bool


Fact: TypeAlias = Demand | SkuComplaint | Shipment | OrderHealth
