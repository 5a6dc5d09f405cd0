"""A deterministic generator of realistic orderwatch input events (contract section 2).

:func:`generate_events` simulates a marketplace of cross-border sellers and yields input events as
plain ``dict`` objects, exactly as they would be JSON-encoded on the input topics:

* orders arrive as a Poisson process (with a daily rhythm) spread over ``merchants`` stores with
  ``skus_per_merchant`` SKUs each, popularity skewed toward a few stores and SKUs;
* every order follows a lifecycle: ``order.placed``; sometimes ``order.cancelled``; tracking
  (``tracking.submitted``, occasionally replaced by a second submission); carrier scans
  (``accepted``, ``in_transit``, ``delivered``, and a few ``exception`` / ``returned``, a few
  tracking numbers never scanned); complaints with responses and resolutions; refunds;
* every SKU periodically reports its stock (``inventory.updated``); a few SKUs run low, so some
  orders are not covered by stock;
* hot spots make aggregate rules fire on a large stream: SKU ``sku-005`` of ``m-001`` draws many
  ``damaged`` complaints, ``sku-001`` of ``m-002`` many ``not_as_described`` ones, and ``China
  Post`` shipments of ``m-003`` are lost, late and damaged more often than any other carrier's;
  ``sku-003`` of ``m-001`` (and a few random SKUs) often runs out of stock.

Timestamps mimic their sources: platform events (orders, complaints, refunds) are UTC with
milliseconds and a ``Z``; seller events (inventory, tracking, complaint responses) carry the
store's UTC offset; carrier scans carry the carrier's offset. The lifecycles are merged in
``occurred_at`` order with a heap, then arrival is shuffled locally: every event is delayed by a
random amount strictly below ``lateness``, so no event arrives ``lateness`` or more behind the
largest ``occurred_at`` already emitted. About 0.5 % of events are emitted twice, verbatim (same
``event_id``). Event ids ``e-000001``, ``e-000002``, ... follow ``occurred_at`` order before the
shuffle.

Memory stays bounded by the number of orders in flight (about ``orders_per_hour`` times the
length of a lifecycle), not by the length of the stream. The module does no I/O of its own except
in :func:`write_jsonl`, which writes where the caller says.

:func:`bad_lines` gives a varied set of malformed input lines, for dead-letter tests.
"""

from __future__ import annotations

import heapq
import io
import json
import math
import os
import random
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate
from typing import IO, Any, Final

__all__ = ["CARRIERS", "DEFAULT_START", "bad_lines", "generate_events", "write_jsonl"]

DEFAULT_START: Final = datetime(2026, 1, 5, tzinfo=UTC)
"""Default start of the simulated stream (a Monday, 00:00 UTC)."""

CARRIERS: Final = ("YunExpress", "China Post", "4PX", "USPS", "DHL eCommerce")
"""The carriers the simulated stores ship with."""

_SEC: Final = 1_000
_MIN: Final = 60_000
_HOUR: Final = 3_600_000
_DAY: Final = 86_400_000
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DATE: Final = date(1970, 1, 1)

# Pre-formatted pieces of timestamps: "HH:MM" for each minute of a day, ":SS", ".mmm".
_HM: Final = tuple(f"{m // 60:02d}:{m % 60:02d}" for m in range(1440))
_SS: Final = tuple(f":{s:02d}" for s in range(60))
_MS: Final = tuple(f".{ms:03d}" for ms in range(1000))

# UTC offsets: (suffix, milliseconds).
_Z: Final = ("Z", 0)
_OFFSETS: Final = {
    "Z": _Z,
    "+00:00": ("+00:00", 0),
    "+08:00": ("+08:00", 8 * _HOUR),
    "-05:00": ("-05:00", -5 * _HOUR),
    "-03:00": ("-03:00", -3 * _HOUR),
    "+01:00": ("+01:00", _HOUR),
    "+05:30": ("+05:30", 5 * _HOUR + 30 * _MIN),
}
_CARRIER_OFFSET: Final = {
    "YunExpress": "+08:00",
    "China Post": "+08:00",
    "4PX": "+08:00",
    "USPS": "-05:00",
    "DHL eCommerce": "Z",
}

# Destination countries (weight) and Wish standard delivery days (policy wish.delivery).
_COUNTRIES: Final = (
    ("US", 30, 15),
    ("GB", 10, 12),
    ("FR", 9, 16),
    ("DE", 9, 16),
    ("CA", 6, 18),
    ("BR", 5, 29),
    ("AU", 4, 14),
    ("ES", 4, 21),
    ("IT", 4, 21),
    ("MX", 3, 22),
    ("NL", 2, 15),
    ("SE", 2, 20),
    ("PL", 2, 18),
    ("JP", 1, 13),
    ("KR", 1, 12),
    ("CH", 1, 17),
    ("BE", 1, 16),
    ("AT", 1, 15),
    ("NO", 1, 18),
    ("IE", 1, 23),
    ("PT", 1, 19),
    ("TR", 1, 22),
    ("IL", 1, 23),
    ("ZA", 1, 37),
    ("IN", 1, 26),
    ("CL", 1, 30),
)
# Currency of the order: weight and units of the currency per USD (policy rate table).
_CURRENCIES: Final = (("USD", 80, 1.0), ("EUR", 12, 1 / 1.07), ("GBP", 8, 1 / 1.26))

# Product complaint reasons on delivered orders (weight).
_PRODUCT_REASONS: Final = (
    ("not_as_described", 30),
    ("damaged", 18),
    ("size_fit", 18),
    ("defective", 10),
    ("wrong_item", 9),
    ("missing_parts", 5),
    ("delivered_not_received", 5),
    ("other", 4),
    ("counterfeit", 1),
)
_OUTCOMES: Final = (
    ("reshipped", 20),
    ("partial_refund", 25),
    ("refund", 25),
    ("return", 8),
    ("rejected", 10),
    ("withdrawn", 12),
)
_REQUESTED: Final = (("refund", 60), ("replacement", 25), ("return", 10), ("none", 5))
_MESSAGES: Final = {
    "not_as_described": (
        "The colour is nothing like the photos.",
        "Much smaller than described.",
        "La couleur ne correspond pas du tout à la photo.",
    ),
    "damaged": (
        "Arrived broken, the box was crushed.",
        "Cracked on arrival.",
        "Paket beschädigt, Glas gebrochen.",
    ),
    "size_fit": ("Runs two sizes small.", "Too big, the size chart is wrong."),
    "defective": ("Stopped working after one day.", "Does not turn on."),
    "wrong_item": ("I received a different model.", "Wrong colour sent."),
    "missing_parts": ("The charger is missing.", "Only one of the two pieces arrived."),
    "not_received": (
        "Still not here after three weeks.",
        "Tracking has not moved for 10 days.",
        "Ainda não recebi o meu pedido.",
    ),
    "delivered_not_received": ("Tracking says delivered but nothing arrived.",),
    "counterfeit": ("This is obviously a fake.",),
    "other": ("Please contact me about this order.",),
}
# Stores' time zones, cycled over merchants (sellers are mostly in China).
_MERCHANT_ZONES: Final = (
    "+08:00",
    "+08:00",
    "+08:00",
    "Z",
    "+08:00",
    "-05:00",
    "+08:00",
    "+00:00",
    "+08:00",
    "+05:30",
    "+08:00",
    "+01:00",
    "+08:00",
    "-03:00",
)
_CARRIERS_BY_ZONE: Final = {
    "+08:00": (("YunExpress", 40), ("China Post", 30), ("4PX", 20), ("DHL eCommerce", 10)),
    "-05:00": (("USPS", 70), ("DHL eCommerce", 30)),
}
_CARRIERS_ELSEWHERE: Final = (("DHL eCommerce", 40), ("YunExpress", 30), ("China Post", 30))
# Relative order rate per UTC hour (mean 1).
_HOURLY: Final = (
    0.9, 0.8, 0.7, 0.6, 0.6, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.1,
    1.2, 1.2, 1.2, 1.3, 1.3, 1.3, 1.3, 1.2, 1.2, 1.1, 1.0, 1.0,
)  # fmt: skip

# Heap entry kinds.
_PLAIN: Final = 0
_SHIP: Final = 1
_TICK: Final = 2


def _cumulative(weights: Iterable[float]) -> tuple[list[float], float]:
    cum = list(accumulate(weights))
    return cum, cum[-1]


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


class _Sku:
    """One SKU of one store: prices per currency and stock."""

    __slots__ = (
        "available",
        "demand",
        "hot",
        "id",
        "merchant",
        "pending",
        "prices",
        "reorder",
        "reports",
        "restock",
        "restock_after",
        "restock_chance",
        "warehouse",
    )

    def __init__(self, merchant: _Merchant, sku_id: str) -> None:
        self.merchant = merchant
        self.id = sku_id
        # currency -> (unit cents, unit as string, unit as number, shipping cents, ... ).
        self.prices: dict[str, tuple[int, str, float | int, int, str, float | int]] = {}
        self.available = 0
        self.pending = 0
        self.demand = 0.0
        self.reorder = 0
        self.restock = 0
        self.restock_chance = 0.6  # chance per stock check to restock when under ``reorder``
        self.restock_after = 0  # no restock before this time (ms)
        self.reports = True
        self.hot = ""  # a complaint reason this SKU draws far more often than others
        self.warehouse = ""


class _Merchant:
    """One store: time zone, carriers and warehouses."""

    __slots__ = ("carrier_cum", "carrier_total", "carriers", "id", "index", "zone")

    def __init__(
        self, index: int, zone: tuple[str, int], carriers: Sequence[tuple[str, float]]
    ) -> None:
        self.index = index
        self.id = f"m-{index + 1:03d}"
        self.zone = zone
        self.carriers = tuple(name for name, _ in carriers)
        self.carrier_cum, self.carrier_total = _cumulative(w for _, w in carriers)


class _Simulation:
    """The state of one generated stream; :meth:`run` yields its events."""

    def __init__(
        self,
        *,
        seed: int,
        orders: int,
        start: datetime,
        merchants: int,
        skus_per_merchant: int,
        orders_per_hour: float,
        lateness: timedelta,
    ) -> None:
        if start.tzinfo is None or start.utcoffset() is None:
            raise ValueError("start must be a timezone-aware datetime")
        if orders < 0:
            raise ValueError("orders must be >= 0")
        if merchants < 1 or skus_per_merchant < 1:
            raise ValueError("merchants and skus_per_merchant must be >= 1")
        if not orders_per_hour > 0 or math.isinf(orders_per_hour):
            raise ValueError("orders_per_hour must be a positive number")
        if lateness < timedelta(0):
            raise ValueError("lateness must not be negative")
        self.rng = random.Random(seed)
        self.orders = orders
        self.start = (start - _EPOCH) // timedelta(milliseconds=1)
        self.rate = orders_per_hour / _HOUR  # orders per millisecond
        self.lateness = lateness // timedelta(milliseconds=1)
        self.heap: list[tuple[int, int, int, Any]] = []
        self.pushed = 0
        self.order_count = 0
        self.complaint_count = 0
        self.uncovered = 0  # orders placed without stock to cover them (for calibration)
        self.dates: dict[int, str] = {}
        self._setup(merchants, skus_per_merchant)

    # -- set-up ------------------------------------------------------------------------------

    def _setup(self, merchants: int, skus_per_merchant: int) -> None:
        rng = self.rng
        self.bad_carrier = (min(2, merchants - 1), "China Post")
        self.merchants: list[_Merchant] = []
        for index in range(merchants):
            zone_name = _MERCHANT_ZONES[index % len(_MERCHANT_ZONES)]
            options = _CARRIERS_BY_ZONE.get(zone_name, _CARRIERS_ELSEWHERE)
            chosen = [
                (name, w * rng.uniform(0.3, 1.7)) for name, w in options if rng.random() < 0.8
            ]
            if not chosen:
                chosen = [options[0]]
            if index == self.bad_carrier[0]:
                chosen = [(n, w) for n, w in chosen if n != "China Post"]
                chosen.insert(0, ("China Post", sum(w for _, w in chosen) or 1.0))
            self.merchants.append(_Merchant(index, _OFFSETS[zone_name], chosen))

        hot_skus = {(0, min(4, skus_per_merchant - 1)): "damaged"}
        if merchants > 1:
            hot_skus[(1, 0)] = "not_as_described"

        merchant_weight = [1 / (i + 1) ** 0.8 for i in range(merchants)]
        sku_weight = [1 / (i + 1) for i in range(skus_per_merchant)]
        total = sum(merchant_weight) * sum(sku_weight)
        daily_orders = self.rate * _DAY
        self.skus: list[_Sku] = []
        weights: list[float] = []
        for merchant in self.merchants:
            for s in range(skus_per_merchant):
                sku = _Sku(merchant, f"sku-{s + 1:03d}")
                sku.hot = hot_skus.get((merchant.index, s), "")
                sku.reports = rng.random() < 0.9
                weight = merchant_weight[merchant.index] * sku_weight[s]
                weights.append(weight)
                self._price(sku)
                # Expected units sold per day (1.4 units per order on average).
                sku.demand = daily_orders * weight / total * 1.4
                # A few SKUs run low; sku-003 of m-001 always does, from an empty shelf.
                if (merchant.index, s) == (0, min(2, skus_per_merchant - 1)):
                    sku.available = 0
                    sku.reorder = max(2, round(sku.demand * 2.5))
                    sku.restock = max(2, round(sku.demand * rng.uniform(2, 5)))
                    sku.restock_chance = 0.6
                    sku.restock_after = self.start + 2 * _DAY
                elif rng.random() < 0.04:
                    sku.available = round(sku.demand * rng.uniform(0, 1.5))
                    sku.reorder = max(2, round(sku.demand * 3.5))
                    sku.restock = max(2, round(sku.demand * rng.uniform(2, 5)))
                    sku.restock_chance = 0.5
                else:
                    sku.available = max(5, round(sku.demand * rng.uniform(10, 40)))
                    sku.reorder = max(3, round(sku.demand * 6))
                    sku.restock = max(10, round(sku.demand * rng.uniform(20, 40)))
                region = "cn" if merchant.zone[0] == "+08:00" else "us"
                sku.warehouse = f"wh-{region}-{rng.randint(1, 3)}"
                self.skus.append(sku)
        self.sku_cum, self.sku_total = _cumulative(weights)
        self.country_cum, self.country_total = _cumulative(w for _, w, _ in _COUNTRIES)
        self.currency_cum, self.currency_total = _cumulative(w for _, w, _ in _CURRENCIES)
        self.reason_cum, self.reason_total = _cumulative(w for _, w in _PRODUCT_REASONS)
        self.outcome_cum, self.outcome_total = _cumulative(w for _, w in _OUTCOMES)
        self.requested_cum, self.requested_total = _cumulative(w for _, w in _REQUESTED)

    def _price(self, sku: _Sku) -> None:
        rng = self.rng
        dollars = int(math.exp(rng.uniform(math.log(3), math.log(150))))
        unit_usd = dollars * 100 - (1 if rng.random() < 0.7 else 50)
        roll = rng.random()
        if roll < 0.35:
            ship_usd = 0
        elif roll < 0.9:
            ship_usd = rng.randint(1, 5) * 100 - 1
        else:
            ship_usd = rng.randint(6, 25) * 100 - 1
        for code, _, per_usd in _CURRENCIES:
            unit = max(1, round(unit_usd * per_usd))
            ship = round(ship_usd * per_usd)
            sku.prices[code] = (
                unit,
                _money(unit),
                unit // 100 if unit % 100 == 0 else unit / 100,
                ship,
                _money(ship),
                ship // 100 if ship % 100 == 0 else ship / 100,
            )

    # -- helpers -----------------------------------------------------------------------------

    def _date(self, day: int) -> str:
        text = (_EPOCH_DATE + timedelta(days=day)).isoformat()
        self.dates[day] = text
        return text

    def ts(self, t: int, zone: tuple[str, int] = _Z) -> str:
        """RFC 3339 text of ``t`` (ms since the epoch) in ``zone``; milliseconds if any."""
        suffix, offset = zone
        day, rest = divmod(t + offset, _DAY)
        day_text = self.dates.get(day) or self._date(day)
        seconds, millis = divmod(rest, _SEC)
        minute, second = divmod(seconds, 60)
        if millis:
            return f"{day_text}T{_HM[minute]}{_SS[second]}{_MS[millis]}{suffix}"
        return f"{day_text}T{_HM[minute]}{_SS[second]}{suffix}"

    def push(self, t: int, kind: int, payload: Any) -> None:
        heapq.heappush(self.heap, (t, self.pushed, kind, payload))
        self.pushed += 1

    def hours(self, low: float, high: float, mode: float) -> int:
        """A random duration in whole seconds (as ms) from a triangular law in hours."""
        return int(self.rng.triangular(low, high, mode) * 3600) * _SEC

    def tracking_number(self, carrier: str) -> str:
        rand = self.rng.randrange
        if carrier == "YunExpress":
            return f"YT{rand(10**16):016d}"
        if carrier == "China Post":
            return f"L{'XYZ'[rand(3)]}{rand(10**9):09d}CN"
        if carrier == "4PX":
            return f"4PX{rand(10**13):013d}CN"
        if carrier == "USPS":
            return f"9400{rand(10**18):018d}"
        return f"GM{rand(10**18):018d}"

    # -- one order's lifecycle ---------------------------------------------------------------

    def order(self, t0: int) -> None:
        """Push every event of one order placed at ``t0`` (ms) onto the heap."""
        rng = self.rng
        r = rng.random
        push = self.push
        ts = self.ts
        self.order_count += 1
        t_cancel = t_filed = 0
        order_id = f"o-{self.order_count:06d}"
        sku = self.skus[bisect_right(self.sku_cum, r() * self.sku_total)]
        merchant = sku.merchant
        mid = merchant.id
        mzone = merchant.zone
        roll = r()
        quantity = 1 if roll < 0.7 else 2 if roll < 0.9 else 3
        country, _, deadline_days = _COUNTRIES[
            bisect_right(self.country_cum, r() * self.country_total)
        ]
        currency = _CURRENCIES[bisect_right(self.currency_cum, r() * self.currency_total)][0]
        unit, unit_text, unit_number, ship, ship_text, ship_number = sku.prices[currency]
        express = r() < 0.1
        as_number = r() < 0.2

        placed: dict[str, Any] = {
            "event_id": "",
            "type": "order.placed",
            "occurred_at": ts(t0),
            "merchant_id": mid,
            "order_id": order_id,
            "sku": sku.id,
            "quantity": quantity,
            "unit_price": unit_number if as_number else unit_text,
        }
        if ship or r() < 0.5:
            placed["shipping_price"] = ship_number if as_number else ship_text
        placed["currency"] = currency
        placed["destination_country"] = country
        if express:
            placed["program"] = "express"
        elif r() < 0.3:
            placed["program"] = "standard"
        release = t0 + 8 * _HOUR
        if r() < 0.25:
            if r() < 0.3:
                release = t0 + self.hours(2, 8, 6)
            placed["released_at"] = ts(release)
        push(t0, _PLAIN, placed)
        value = _money(quantity * (unit + ship))

        # Stock: is this order covered by what the SKU has, after the orders not yet shipped?
        uncovered = sku.available - sku.pending < quantity
        self.uncovered += uncovered

        # Cancellations (about 2 %): no more events for the order.
        roll = r()
        cancelled_by = ""
        if roll < 0.012:
            cancelled_by, t_cancel = "customer", t0 + self.hours(0.2, 20, 1)
        elif roll < 0.013:
            cancelled_by, t_cancel = "platform", t0 + self.hours(0.2, 7, 2)
        elif r() < (0.2 if uncovered else 0.003):
            cancelled_by, t_cancel = "merchant", release + self.hours(12, 96, 30)
        if cancelled_by:
            event = self._order_event(t_cancel, "order.cancelled", mid, order_id)
            event["cancelled_by"] = cancelled_by
            push(t_cancel, _PLAIN, event)
            return

        # Never shipped (about 1 %): the platform refunds after the fulfillment deadline.
        if r() < (0.06 if uncovered else 0.008):
            t_refund = release + 5 * _DAY + self.hours(1, 24, 4)
            event = self._order_event(t_refund, "order.refunded", mid, order_id)
            event["amount"] = value
            event["reason"] = "auto_refund"
            push(t_refund, _PLAIN, event)
            return

        # Tracking: mostly 1-4 days after placement, some after 5+ days.
        if express:
            t_ship = t0 + self.hours(12, 48, 24)
        elif r() < 0.04:
            t_ship = t0 + self.hours(5 * 24, 9 * 24, 6 * 24)
        else:
            t_ship = t0 + self.hours(24, 96, 40)
        if uncovered:
            t_ship += self.hours(48, 144, 72)
        t_ship = max(t_ship, release + self.hours(0.2, 3, 1))
        t_ship -= t_ship % _SEC
        carrier = merchant.carriers[
            bisect_right(merchant.carrier_cum, r() * merchant.carrier_total)
        ]
        bad = (merchant.index, carrier) == self.bad_carrier
        number = self.tracking_number(carrier)
        tracking: dict[str, Any] = {
            "event_id": "",
            "type": "tracking.submitted",
            "occurred_at": ts(t_ship, mzone),
            "merchant_id": mid,
            "order_id": order_id,
            "carrier": self._carrier_name(carrier),
            "tracking_number": number,
        }
        push(t_ship, _SHIP, (tracking, sku, quantity))
        sku.pending += quantity
        scan_from = t_ship
        if r() < 0.02:  # a second submission replaces the number
            scan_from = t_ship + self.hours(2, 48, 6)
            if r() < 0.3:
                carrier = merchant.carriers[
                    bisect_right(merchant.carrier_cum, r() * merchant.carrier_total)
                ]
                bad = (merchant.index, carrier) == self.bad_carrier
            number = self.tracking_number(carrier)
            second = {
                **tracking,
                "occurred_at": ts(scan_from, mzone),
                "carrier": self._carrier_name(carrier),
                "tracking_number": number,
            }
            push(scan_from, _PLAIN, second)

        # Carrier scans and delivery.
        czone = _OFFSETS[_CARRIER_OFFSET[carrier]]
        deadline = t0 + deadline_days * _DAY
        delivered = 0
        lost = False
        if r() < (0.04 if bad else 0.006):  # a tracking number no carrier ever scans
            lost = True
        else:
            if r() < 0.015:
                t_accept = scan_from + self.hours(80, 150, 100)
            else:
                t_accept = scan_from + self.hours(2, 48, 10)
            t_accept -= t_accept % _SEC
            push(t_accept, _PLAIN, self._scan(t_accept, czone, mid, order_id, number, "accepted"))
            if express:
                deadline = release + 7 * _DAY  # 5 business days cover at least 7 calendar days
                if r() < 0.06:
                    target = release + self.hours(8 * 24, 14 * 24, 9 * 24)
                else:
                    target = release + self.hours(2 * 24, 6.5 * 24, 4 * 24)
                floor = t_accept + _DAY
            else:
                if r() < (0.15 if bad else 0.01):
                    target = deadline + self.hours(24, 12 * 24, 3 * 24)
                else:
                    days = deadline_days
                    target = t0 + self.hours(days * 10.8, days * 22.8, days * 16.8)
                floor = t_accept + 3 * _DAY
            target = max(target, floor + self.hours(0, 24, 4))
            target -= target % _SEC
            lost = r() < (0.04 if bad else 0.003)
            final_status = "delivered"
            roll = r()
            if roll < (0.03 if bad else 0.012):
                t_exc = t_accept + (target - t_accept) // 2
                t_exc -= t_exc % _SEC
                scan = self._scan(t_exc, czone, mid, order_id, number, "exception")
                push(t_exc, _PLAIN, scan)
                target += self.hours(48, 144, 72)
                if r() < 0.4:
                    final_status = "returned"
            end = target if not lost else t_accept + self.hours(48, 240, 96)
            roll = r()
            transit_scans = 1 if roll < 0.5 else 2 if roll < 0.8 else 0 if roll < 0.9 else 3
            span = end - t_accept
            for i in range(transit_scans):
                t_scan = t_accept + span * (i + 1) // (transit_scans + 1)
                t_scan += self.hours(-3, 3, 0)
                t_scan -= t_scan % _SEC
                scan = self._scan(t_scan, czone, mid, order_id, number, "in_transit")
                push(t_scan, _PLAIN, scan)
            if not lost:
                push(target, _PLAIN, self._scan(target, czone, mid, order_id, number, final_status))
                if final_status == "delivered":
                    delivered = target
                else:
                    lost = True

        # Complaints.
        reason = ""
        late = delivered == 0 or delivered > deadline
        if late:
            if r() < (0.7 if lost else 0.5):
                reason = "not_received"
                t_filed = t0 + self.hours(
                    deadline_days * 19, deadline_days * 31, deadline_days * 24
                )
                if delivered:
                    t_filed = min(t_filed, delivered - self.hours(1, 72, 12))
                t_filed = max(t_filed, t_ship + self.hours(24, 72, 36))
        else:
            hot = sku.hot
            if (hot or bad) and r() < (0.2 if hot else 0.06):
                reason = hot or "damaged"
            if not reason and r() < 0.05:
                reason = _PRODUCT_REASONS[bisect_right(self.reason_cum, r() * self.reason_total)][0]
            if reason:
                t_filed = delivered + self.hours(1, 240, 36)
        if reason:
            self._complaint(t_filed, mid, mzone, order_id, reason, value)

    def _order_event(self, t: int, kind: str, merchant_id: str, order_id: str) -> dict[str, Any]:
        return {
            "event_id": "",
            "type": kind,
            "occurred_at": self.ts(t),
            "merchant_id": merchant_id,
            "order_id": order_id,
        }

    def _scan(
        self, t: int, zone: tuple[str, int], mid: str, order_id: str, number: str, status: str
    ) -> dict[str, Any]:
        return {
            "event_id": "",
            "type": "carrier.scanned",
            "occurred_at": self.ts(t, zone),
            "merchant_id": mid,
            "order_id": order_id,
            "tracking_number": number,
            "status": status,
        }

    def _carrier_name(self, carrier: str) -> str:
        """Usually the canonical name; sometimes spelled differently by the seller's tools."""
        roll = self.rng.random()
        if roll >= 0.02:
            return carrier
        if roll < 0.007:
            return carrier.lower()
        if roll < 0.014:
            return carrier.upper()
        return f"{carrier} "

    def _complaint(
        self,
        t_filed: int,
        mid: str,
        mzone: tuple[str, int],
        order_id: str,
        reason: str,
        value: str,
    ) -> None:
        r = self.rng.random
        push = self.push
        self.complaint_count += 1
        complaint_id = f"c-{self.complaint_count:06d}"
        filed = self._order_event(t_filed, "complaint.filed", mid, order_id)
        filed["complaint_id"] = complaint_id
        filed["reason"] = reason
        if reason in ("not_received", "delivered_not_received"):
            photos = 0 if r() < 0.9 else 1
        else:
            roll = r()
            photos = 0 if roll < 0.25 else 1 if roll < 0.6 else 2 if roll < 0.85 else 3
        if photos or r() < 0.5:
            filed["photos"] = photos
        if r() < 0.4:
            messages = _MESSAGES[reason]
            filed["message"] = messages[int(r() * len(messages))]
        if r() < 0.6:
            filed["requested"] = _REQUESTED[
                bisect_right(self.requested_cum, r() * self.requested_total)
            ][0]
        push(t_filed, _PLAIN, filed)

        outcome = ""
        t_resolved = 0
        if r() < 0.93:
            t_answer = t_filed + self.hours(1, 60, 10)
            t_answer -= t_answer % _SEC
            answer = self._order_event(t_answer, "complaint.responded", mid, order_id)
            answer["occurred_at"] = self.ts(t_answer, mzone)
            answer["complaint_id"] = complaint_id
            push(t_answer, _PLAIN, answer)
            if r() < 0.6:
                outcome = _OUTCOMES[bisect_right(self.outcome_cum, r() * self.outcome_total)][0]
                t_resolved = t_answer + self.hours(1, 168, 24)
        elif r() < 0.7:  # unanswered: the platform decides, usually with a refund
            outcome = "refund"
            t_resolved = t_filed + self.hours(48, 72, 50)
        if not outcome:
            return
        resolved = self._order_event(t_resolved, "complaint.resolved", mid, order_id)
        resolved["complaint_id"] = complaint_id
        resolved["outcome"] = outcome
        push(t_resolved, _PLAIN, resolved)
        if outcome in ("refund", "return"):
            t_refund = t_resolved + (
                self.hours(0.1, 4, 0.5)
                if outcome == "refund"
                else self.hours(5 * 24, 14 * 24, 8 * 24)
            )
            refund = self._order_event(t_refund, "order.refunded", mid, order_id)
            refund["amount"] = value
            refund["reason"] = reason
            push(t_refund, _PLAIN, refund)

    # -- inventory ---------------------------------------------------------------------------

    def inventory(self, t: int, sku: _Sku) -> dict[str, Any] | None:
        """Restock ``sku`` if low and schedule its next check; its stock report at ``t``.

        About 10 % of SKUs never report (``None``): the processor has no stock signal for them.
        """
        r = self.rng.random
        if (
            sku.available - sku.pending < sku.reorder
            and t >= sku.restock_after
            and r() < sku.restock_chance
        ):
            sku.available += sku.restock
        self.push(t + self.hours(12, 36, 24), _TICK, sku)
        if not sku.reports:
            return None
        event: dict[str, Any] = {
            "event_id": "",
            "type": "inventory.updated",
            "occurred_at": self.ts(t, sku.merchant.zone),
            "merchant_id": sku.merchant.id,
            "sku": sku.id,
            "available": max(0, sku.available),
        }
        if r() < 0.7:
            event["warehouse_id"] = sku.warehouse
        return event

    # -- the stream --------------------------------------------------------------------------

    def run(self) -> Iterator[dict[str, Any]]:
        """Yield the stream: lifecycles merged by time, arrival shuffled within the lateness."""
        rng = self.rng
        r = rng.random
        expovariate = rng.expovariate
        heap = self.heap
        heappop = heapq.heappop
        heappush = heapq.heappush
        # Inventory: the first stock check of every SKU within 6 hours of the start.
        if self.orders:
            for sku in self.skus:
                first = self.start + int(r() * 6 * _HOUR) // _SEC * _SEC
                self.push(first, _TICK, sku)
        out: list[tuple[int, int, dict[str, Any]]] = []  # arrival heap
        lateness = self.lateness
        rate = self.rate
        next_order = self.start
        placed = 0
        last_placed = self.start
        emitted = 0
        arrivals = 0
        while True:
            if placed < self.orders and (not heap or heap[0][0] >= next_order):
                self.order(next_order)
                last_placed = next_order
                placed += 1
                hour = (next_order // _HOUR) % 24
                next_order += max(1, int(expovariate(rate * _HOURLY[hour])))
                continue
            if not heap:
                break
            t, _, kind, payload = heappop(heap)
            if kind == _PLAIN:
                event = payload
            elif kind == _SHIP:
                event, sku, quantity = payload
                sku.pending -= quantity
                sku.available -= quantity
            else:
                if placed >= self.orders and t > last_placed:
                    continue  # no inventory reports after the last order
                report = self.inventory(t, payload)
                if report is None:
                    continue
                event = report
            emitted += 1
            event["event_id"] = f"e-{emitted:06d}"
            while out and out[0][0] <= t:
                yield heappop(out)[2]
            arrivals += 1
            heappush(out, (t + int(r() * lateness), arrivals, event))
            if r() < 0.005:  # delivered twice
                arrivals += 1
                heappush(out, (t + int(r() * lateness), arrivals, dict(event)))
        while out:
            yield heappop(out)[2]


def generate_events(
    *,
    seed: int = 1,
    orders: int = 1000,
    start: datetime = DEFAULT_START,
    merchants: int = 20,
    skus_per_merchant: int = 25,
    orders_per_hour: float = 40.0,
    lateness: timedelta = timedelta(minutes=2),
) -> Iterator[dict[str, Any]]:
    """Yield a realistic, deterministic stream of input events for ``orders`` orders.

    The same arguments always give the same stream. Orders are placed from ``start`` on at
    about ``orders_per_hour``; the stream ends when the last order's lifecycle does (weeks after
    the last placement). Events come in ``occurred_at`` order except that each is delayed by a
    random amount strictly below ``lateness`` (``timedelta(0)`` gives strict order), and about
    0.5 % are repeated verbatim. Each event is a new ``dict`` the caller may keep or change.

    Raises ``ValueError`` for a naive ``start`` or out-of-range counts.
    """
    simulation = _Simulation(
        seed=seed,
        orders=orders,
        start=start,
        merchants=merchants,
        skus_per_merchant=skus_per_merchant,
        orders_per_hour=orders_per_hour,
        lateness=lateness,
    )
    return simulation.run()


_COMPACT: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


class _Drop:
    """Marks a field that :func:`bad_lines` leaves out."""


_DROP: Final = _Drop()


def bad_lines(rng: random.Random) -> list[bytes]:
    """A varied set of malformed input lines (no newline in any), all distinct.

    Each line is unusable under the contract for a different reason: not JSON, truncated JSON,
    a JSON array, scalar or ``null``, an empty object, a missing common or type-specific field,
    wrong types, a timestamp without offset or impossible date, an unknown ``type``, invalid
    UTF-8, a negative quantity, price or stock, bad currency or country codes, values outside the
    contract's enumerations, and strings over their length limits. Ids, times and prices are drawn
    from ``rng`` so calls with different generators differ; event ids start with ``bad-`` so they
    never collide with generated events.
    """
    n = rng.randrange(10**6)
    day = rng.randint(5, 25)
    when = f"2026-01-{day:02d}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:00Z"
    merchant = f"m-{rng.randint(1, 20):03d}"
    order = f"o-{rng.randrange(10**6):06d}"
    sku = f"sku-{rng.randint(1, 25):03d}"
    price = f"{rng.randint(2, 149)}.99"

    def event(index: int, kind: str, **fields: Any) -> dict[str, Any]:
        base: dict[str, Any] = {
            "event_id": f"bad-{n:06d}-{index:02d}",
            "type": kind,
            "occurred_at": when,
            "merchant_id": merchant,
        }
        base.update(fields)
        return {k: v for k, v in base.items() if v is not _DROP}

    def placed(index: int, **changes: Any) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "order_id": order,
            "sku": sku,
            "quantity": 1,
            "unit_price": price,
            "shipping_price": "1.99",
            "currency": "USD",
            "destination_country": "US",
        }
        fields.update(changes)
        return event(index, "order.placed", **fields)

    def dump(value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    ok = placed(0)
    lines = [
        f"not json at all {n}".encode(),
        dump(ok)[:-12],  # truncated in the middle
        b"[" + dump(ok) + b"]",  # a JSON array holding an event
        dump(f"order.placed {order}"),  # a JSON string
        str(n).encode(),  # a JSON number
        b"null",
        b"{}",
        f"{merchant},{order},{sku},1,{price},USD".encode(),  # CSV, not JSON
        dump(placed(1, sku=_DROP)),  # missing sku
        dump(placed(2, event_id=_DROP)),  # missing event_id
        dump(placed(3, type=_DROP)),  # missing type
        dump(placed(4, quantity="two")),  # wrong type
        dump(placed(5, quantity=1.5)),  # not an integer
        dump(placed(6, quantity=-rng.randint(1, 3))),  # negative quantity
        dump(placed(7, quantity=0)),
        dump(placed(8, unit_price=f"-{price}")),  # negative price
        dump(placed(9, unit_price=price.replace(".", ","))),  # decimal comma
        dump(placed(10, currency=rng.choice(["usd", "US$", "DOLLAR", "XYZ1"]))),
        dump(placed(11, destination_country=rng.choice(["USA", "uk", "XX", "U"]))),
        dump(placed(12, occurred_at=when[:-1])),  # timestamp without offset
        dump(placed(13, occurred_at=f"2026-02-30T{when[11:]}")),  # no such day
        dump(placed(14, occurred_at=when[:10])),  # a date, no time
        dump(placed(15, occurred_at=1767571200 + rng.randrange(86400))),  # epoch seconds
        dump(placed(16, merchant_id=None)),
        dump(placed(17, event_id="")),
        dump(placed(18, event_id="x" * 129)),  # longer than 128 characters
        dump(placed(19, program=rng.choice(["priority", "EXPRESS"]))),
        dump(event(20, rng.choice(["order.shipped", "order.updated", "payment.captured"]))),
        dump(event(21, "inventory.updated", sku=sku, available=-rng.randint(1, 50))),
        dump(event(22, "carrier.scanned", order_id=order, tracking_number="LX1CN", status="lost")),
        dump(event(23, "order.cancelled", order_id=order, cancelled_by="seller")),
        dump(event(24, "order.refunded", order_id=order, amount=price, reason="changed_mind")),
        dump(event(25, "complaint.filed", order_id=order, reason="damaged", photos=1)),
        dump(
            event(
                26,
                "complaint.filed",
                order_id=order,
                complaint_id=f"c-bad-{n}",
                reason="broken",
            )
        ),
        dump(
            event(
                27,
                "complaint.filed",
                order_id=order,
                complaint_id=f"c-bad-{n}",
                reason="damaged",
                photos=-1,
            )
        ),
        dump(
            event(
                28,
                "complaint.filed",
                order_id=order,
                complaint_id=f"c-bad-{n}",
                reason="other",
                message="Where is my parcel? " * 205,  # over 4000 characters
            )
        ),
        dump(event(29, "complaint.resolved", order_id=order, complaint_id="c-1", outcome="ok")),
        dump(event(30, "tracking.submitted", order_id=order, carrier="USPS")),  # no number
        # Invalid UTF-8: a Latin-1 byte inside a string.
        dump(placed(31))[:-1] + b',"note":"caf\xe9"}',
        b'{"event_id":"bad-\xff\xfe","type":"order.placed"}',
    ]
    return lines


def write_jsonl(
    events: Iterable[dict[str, Any]],
    path_or_file: str | os.PathLike[str] | IO[bytes] | IO[str],
    *,
    bad_line_every: int = 0,
    seed: int = 1,
) -> int:
    """Write ``events`` as compact JSON Lines; return the number of lines written.

    ``path_or_file`` is a path (created or truncated) or an open file: binary, or text with a
    binary ``buffer`` (such as ``sys.stdout``). With ``bad_line_every = N > 0`` a malformed line
    from :func:`bad_lines` (cycled in an order drawn from ``seed``) follows every Nth event.
    """
    if bad_line_every < 0:
        raise ValueError("bad_line_every must be >= 0")
    if isinstance(path_or_file, str | os.PathLike):
        with open(path_or_file, "wb") as file:
            return _write(events, file, bad_line_every, seed)
    if isinstance(path_or_file, io.TextIOBase):
        path_or_file.flush()
        binary: IO[bytes] = path_or_file.buffer  # type: ignore[attr-defined]
        count = _write(events, binary, bad_line_every, seed)
        binary.flush()
        return count
    return _write(events, path_or_file, bad_line_every, seed)  # type: ignore[arg-type]


def _write(events: Iterable[dict[str, Any]], file: IO[bytes], every: int, seed: int) -> int:
    bad: list[bytes] = []
    if every:
        rng = random.Random(seed)
        bad = bad_lines(rng)
        rng.shuffle(bad)
    encode = _COMPACT.encode
    chunk: list[bytes] = []
    lines = 0
    for count, event in enumerate(events, 1):
        chunk.append(encode(event).encode("utf-8"))
        if every and count % every == 0:
            chunk.append(bad[(count // every - 1) % len(bad)])
        if len(chunk) >= 4096:
            file.write(b"\n".join(chunk) + b"\n")
            lines += len(chunk)
            chunk.clear()
    if chunk:
        file.write(b"\n".join(chunk) + b"\n")
        lines += len(chunk)
    return lines
