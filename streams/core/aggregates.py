"""Dispatch of aggregate inputs (stock levels, facts, time-driven checks) to their processors.

One place decides which processor an item goes to and which check it leaves behind, for both
drivers: replay keeps the states in dictionaries, the worker in changelogged tables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, Protocol, TypeVar

from streams.core import carrier, merchant, sku
from streams.core.events import InventoryUpdated
from streams.core.facts import Demand, OrderHealth, Shipment, SkuComplaint, sku_subject
from streams.core.ledger import DictPages, Pages
from streams.core.outputs import RecommendationIssued
from streams.core.policy import Policy
from streams.core.sequencer import Check, Item, Sequencer
from streams.core.stockqueue import DictQueuePages, QueuePages

__all__ = [
    "AggregateStores",
    "DictLedgers",
    "DictStore",
    "Store",
    "apply_check",
    "apply_item",
    "release",
]

S = TypeVar("S")
P = TypeVar("P")

CARRIER = "carrier"
MERCHANT = "merchant"
SKU = "sku"
#: The ids of a SKU's inventory events, a ledger of its own.
SKU_STOCK = "sku-stock"


class Store(Protocol[S]):
    """Where one kind of aggregate state lives."""

    def get(self, key: str) -> S | None: ...

    def put(self, key: str, state: S) -> None: ...


class DictStore(dict[str, S]):
    """A :class:`Store` that is a dictionary."""

    def put(self, key: str, state: S) -> None:
        self[key] = state

    def drop(self, key: str) -> None:
        self.pop(key, None)


class DictLedgers:
    """The carriers' and merchants' :class:`~streams.core.ledger.Pages` and the SKUs'
    :class:`~streams.core.stockqueue.QueuePages`, in dictionaries."""

    def __init__(self) -> None:
        self._pages: dict[tuple[str, str], DictPages[Any]] = {}
        self._queues: dict[str, DictQueuePages] = {}

    def queue_pages(self, subject: str) -> QueuePages:
        pages = self._queues.get(subject)
        if pages is None:
            pages = self._queues[subject] = DictQueuePages()
        return pages

    def pages(self, kind: str, subject: str) -> DictPages[Any]:
        pages = self._pages.get((kind, subject))
        if pages is None:
            pages = self._pages[kind, subject] = DictPages()
        return pages


class AggregateStores(Protocol):
    """The three aggregate key spaces, the pages of the carriers' and merchants' ledgers, and
    those of the SKUs' queues."""

    def pages(self, kind: str, subject: str) -> Pages[Any]:
        """The ledger pages of one carrier (``kind`` "carrier") or merchant ("merchant")."""

    def queue_pages(self, subject: str) -> QueuePages:
        """The queue pages of one SKU."""

    @property
    def skus(self) -> Store[sku.SkuState]: ...

    @property
    def carriers(self) -> Store[carrier.CarrierState]: ...

    @property
    def merchants(self) -> Store[merchant.MerchantState]: ...


Scheduled = tuple[str, str, datetime | None]
"""(kind, subject, next check) of an aggregate that changes with time alone."""


def apply_item(
    stores: AggregateStores, item: Item, now: datetime, policy: Policy
) -> tuple[list[RecommendationIssued], Scheduled | None]:
    """Apply one item at ``now``; its outputs, and the check its aggregate needs next.

    Updates the aggregate's state and puts it back in ``stores``.
    """
    if isinstance(item, InventoryUpdated):
        key = sku_subject(item.merchant_id, item.sku)
        result = sku.apply_inventory(
            stores.skus.get(key),
            item,
            now,
            policy,
            stores.queue_pages(key),
            stores.pages(SKU_STOCK, key),
        )
        stores.skus.put(key, result.state)
        return result.outputs, None
    if isinstance(item, Demand):
        result = sku.apply_demand(
            stores.skus.get(item.subject), item, now, policy, stores.queue_pages(item.subject)
        )
        stores.skus.put(item.subject, result.state)
        return result.outputs, None
    if isinstance(item, SkuComplaint):
        result = sku.apply_complaint(
            stores.skus.get(item.subject), item, now, policy, stores.pages(SKU, item.subject)
        )
        stores.skus.put(item.subject, result.state)
        return result.outputs, None
    if isinstance(item, Shipment):
        # Carriers and merchants are checked once every input of this moment was applied.
        step = carrier.apply_shipment(
            stores.carriers.get(item.subject),
            item,
            now,
            policy,
            stores.pages(CARRIER, item.subject),
        )
        stores.carriers.put(item.subject, step.state)
        return step.outputs, (CARRIER, item.subject, now)
    if isinstance(item, OrderHealth):
        health = merchant.apply_health(
            stores.merchants.get(item.subject),
            item,
            now,
            policy,
            stores.pages(MERCHANT, item.subject),
        )
        stores.merchants.put(item.subject, health.state)
        return health.outputs, (MERCHANT, item.subject, now)
    raise TypeError(f"not an aggregate input: {item!r}")


def apply_check(
    stores: AggregateStores, check: Check, policy: Policy
) -> tuple[list[RecommendationIssued], Scheduled | None]:
    """Move one aggregate's clock to the check's time; its outputs and its next check.

    Updates the aggregate's state and puts it back in ``stores``.
    """
    pages = stores.pages(check.kind, check.subject)
    if check.kind == CARRIER:
        return _tick(
            stores.carriers, CARRIER, check, carrier.tick, carrier.next_check, policy, pages
        )
    return _tick(
        stores.merchants, MERCHANT, check, merchant.tick, merchant.next_check, policy, pages
    )


def _tick(
    store: Store[S],
    kind: str,
    check: Check,
    tick: Callable[[S, datetime, Policy, Any], tuple[S, list[RecommendationIssued]]],
    next_check: Callable[[S, Policy], datetime | None],
    policy: Policy,
    pages: Pages[Any],
) -> tuple[list[RecommendationIssued], Scheduled | None]:
    state = store.get(check.subject)
    if state is None:
        return [], None
    state, outputs = tick(state, check.at, policy, pages)
    store.put(check.subject, state)
    return outputs, (kind, check.subject, next_check(state, policy))


def release(
    inputs: Sequencer[P],
    boundary: datetime,
    stores: AggregateStores,
    policy: Policy,
    item_of: Callable[[P], Item],
) -> Iterator[tuple[P | None, list[RecommendationIssued]]]:
    """Apply, in event-time order, the inputs and checks ``boundary`` has passed.

    Yields each payload applied (None for a check) with its outputs, once its state is stored
    and the check it leaves behind is scheduled; ``item_of`` finds the item in a payload (the
    worker's payloads carry their inbox key too).
    """
    while (due := inputs.pop(boundary)) is not None:
        payload: P | None
        if isinstance(due, Check):
            payload = None
            outputs, scheduled = apply_check(stores, due, policy)
        else:
            at, payload = due
            outputs, scheduled = apply_item(stores, item_of(payload), at, policy)
        if scheduled is not None:
            inputs.schedule(*scheduled)
        yield payload, outputs
