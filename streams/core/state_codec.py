"""Bytes for the worker: per-key states (changelogged tables) and facts (repartition topics).

Every payload is one compact JSON object ``{"v": 2, "k": <kind>, ...}``: ``v`` is the format
version (an unknown one is rejected with :class:`ValueError`), ``k`` names what it holds
(``order``, ``sku``, ``carrier``, ``merchant``; facts: ``demand``, ``sku_complaint``,
``shipment``, ``order_health``), so a payload decoded as the wrong thing fails loudly.

Encoding, fixed for version 2 (version 1 held snapshot facts, before timelines):

- datetimes: integer microseconds since the Unix epoch; they decode as ``datetime.UTC``-aware
  datetimes (the core keeps every time in UTC, so the decoded value is equal to the original);
- Decimals: their ``str`` (exponent and trailing zeros kept, so ``str(value)`` is unchanged);
- sets: sorted lists; tuples: lists, restored as tuples; dicts: JSON objects, insertion order
  kept; heaps and sorted lists: ``[[micros, key], ...]`` in their stored order (still heaps);
- top-level states and facts, and an order's placement: objects keyed by field name; the
  entries of a state's collections (trackings, complaints, open orders), the timeline facts
  (:class:`Shipment`, :class:`OrderHealth`) and crossings: arrays in field order; a
  :class:`RollingSet`: ``[entries, sorted keys]``; a :class:`~streams.core.ledger.Ledger`'s
  head: its clock, totals and pages (``[number, routes from, earliest]``); its pages, apiece:
  ``[[micros, delta, forgets], ...]``. A head stored before ledgers (its timelines in the value,
  ``entries``) decodes as an empty head with those timelines to spill into its pages.

An order's ``resolved`` (breaches resolved, added with ``deadline.resolved``) is written only
when not empty; a state without it (stored before) has none resolved: its open breaches are
resolved by the next event that resolves them.

``Tracking.deadline_key`` and ``Complaint.deadline_key``/``advice_key`` are derived from the
other fields in ``__post_init__``, so they are not stored: the constructors rebuild them.

States (not facts) are stored compressed when that is smaller: a byte ``0x01`` then their
JSON, raw-deflated with the preset dictionary number 1 (:mod:`streams.core.state_codec_dictionary`,
fixed for ever), which holds the names and shapes every state repeats; an order's state shrinks
about six times. Decoding reads both forms.

Decoding yields states equal (``==``) to the ones encoded, and processing can go on from them
exactly as from the originals. Pure: no I/O, no clock.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, TypeVar

from streams.core.carrier import CarrierState
from streams.core.facts import Demand, Fact, OrderHealth, Shipment, SkuComplaint
from streams.core.ledger import Change, Ledger, Page
from streams.core.merchant import MerchantState
from streams.core.order import Complaint, OrderState, Placement, Tracking
from streams.core.sku import SkuState
from streams.core.state_codec_dictionary import DICTIONARY_1
from streams.core.stockqueue import Claim, Position, Slot, StockQueue
from streams.core.window import Crossing, RollingSet

__all__ = [
    "VERSION",
    "as_json",
    "decode_carrier",
    "decode_fact",
    "decode_merchant",
    "decode_order",
    "decode_page",
    "decode_queue_page",
    "decode_sku",
    "encode_carrier",
    "encode_fact",
    "encode_merchant",
    "encode_order",
    "encode_page",
    "encode_queue_page",
    "encode_sku",
]

VERSION: Final = 2

T = TypeVar("T")

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), check_circular=False, allow_nan=False)
_DECODER: Final = json.JSONDecoder()
_ORDER: Final = frozenset({"order"})
_SKU: Final = frozenset({"sku"})
_QUEUE_PAGE: Final = frozenset({"queue_page"})
_CARRIER: Final = frozenset({"carrier"})
_MERCHANT: Final = frozenset({"merchant"})
_PAGE: Final = frozenset({"page"})
_FACTS: Final = frozenset({"demand", "sku_complaint", "shipment", "order_health"})
# What a payload of the right version and kind but the wrong shape raises while decoding
# (ArithmeticError: a bad Decimal string, or a time out of datetime's range).
_BAD_PAYLOAD: Final = (KeyError, TypeError, IndexError, ValueError, AttributeError, ArithmeticError)


# -- values -----------------------------------------------------------------------------------


def _us(moment: datetime) -> int:
    """Microseconds since the epoch (exact; a naive datetime raises TypeError)."""
    return (moment - _EPOCH) // _MICROSECOND


def _dt(micros: int) -> datetime:
    return _EPOCH + timedelta(0, 0, micros)


def _opt_us(moment: datetime | None) -> int | None:
    return None if moment is None else (moment - _EPOCH) // _MICROSECOND


def _opt_dt(micros: int | None) -> datetime | None:
    return None if micros is None else _EPOCH + timedelta(0, 0, micros)


def _timed_out(entries: list[tuple[datetime, str]]) -> list[list[Any]]:
    """A heap or sorted list of (time, key), in its stored order."""
    return [[(moment - _EPOCH) // _MICROSECOND, key] for moment, key in entries]


def _timed_in(raw: list[list[Any]]) -> list[tuple[datetime, str]]:
    return [(_EPOCH + timedelta(0, 0, micros), key) for micros, key in raw]


def _times_out(times: dict[str, datetime]) -> dict[str, int]:
    return {key: (moment - _EPOCH) // _MICROSECOND for key, moment in times.items()}


def _times_in(raw: dict[str, int]) -> dict[str, datetime]:
    return {key: _EPOCH + timedelta(0, 0, micros) for key, micros in raw.items()}


def _crossings_out(crossings: dict[str, Crossing]) -> dict[str, list[Any]]:
    return {name: [crossing.above, crossing.count] for name, crossing in crossings.items()}


def _crossings_in(raw: dict[str, list[Any]]) -> dict[str, Crossing]:
    return {name: Crossing(above, count) for name, (above, count) in raw.items()}


def _opt_decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


# -- payloads ---------------------------------------------------------------------------------


def _dump(payload: dict[str, Any]) -> bytes:
    return _ENCODER.encode(payload).encode("ascii")


#: The first byte of a payload deflated with dictionary 1 (a JSON one starts with ``{``).
_DEFLATED_1: Final = b"\x01"
#: The most a stored state may inflate to: far above any state, far below harm.
_MAX_INFLATED: Final = 64 << 20


def _dump_state(payload: dict[str, Any]) -> bytes:
    """A state's payload, deflated with the preset dictionary when that is smaller."""
    raw = _dump(payload)
    packer = zlib.compressobj(6, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, DICTIONARY_1)
    packed = _DEFLATED_1 + packer.compress(raw) + packer.flush()
    return packed if len(packed) < len(raw) else raw


def _inflate(data: bytes) -> bytes:
    unpacker = zlib.decompressobj(-15, DICTIONARY_1)
    try:
        raw = unpacker.decompress(data[1:], _MAX_INFLATED)
    except zlib.error as error:
        raise ValueError(f"not an orderwatch codec payload: bad deflate data: {error}") from error
    if unpacker.unconsumed_tail or not unpacker.eof:
        raise ValueError("not an orderwatch codec payload: deflate data cut short or too large")
    return raw


def as_json(data: bytes) -> bytes:
    """A payload's JSON, inflated if it was stored deflated (for reading it, or changing it in a
    test); ValueError if it is neither."""
    return _inflate(data) if data[:1] == _DEFLATED_1 else data


def _load(data: bytes, kinds: frozenset[str]) -> dict[str, Any]:
    """The payload object (inflated first if it was deflated), checked for its version and
    kind."""
    try:
        payload = _DECODER.decode(str(as_json(data), "utf-8"))
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(f"not an orderwatch codec payload: {error}") from error
    if not isinstance(payload, dict):
        raise ValueError(
            f"not an orderwatch codec payload: a JSON {type(payload).__name__}, not an object"
        )
    version = payload.get("v")
    if version != VERSION or isinstance(version, bool):
        raise ValueError(
            f"unsupported codec format version {version!r}: this build reads version {VERSION} "
            "only (was the payload written by a newer orderwatch?)"
        )
    kind = payload.get("k")
    if kind not in kinds:
        wanted = " or ".join(sorted(kinds))
        raise ValueError(f"expected a codec payload of kind {wanted}, got kind {kind!r}")
    return payload


def _malformed(kind: str, error: Exception) -> ValueError:
    return ValueError(f"malformed {kind} payload (version {VERSION}): {error!r}")


# -- OrderState -------------------------------------------------------------------------------


def _placement_out(p: Placement) -> dict[str, Any]:
    return {
        "event_id": p.event_id,
        "placed_at": _us(p.placed_at),
        "released_at": _us(p.released_at),
        "sku": p.sku,
        "quantity": p.quantity,
        "unit_price": str(p.unit_price),
        "shipping_price": str(p.shipping_price),
        "currency": p.currency,
        "country": p.country,
        "program": p.program,
        "fulfillment_due": _us(p.fulfillment_due),
        "warning_at": _us(p.warning_at),
        "confirmed_due": _us(p.confirmed_due),
        "delivery_due": _us(p.delivery_due),
        "delivery_rule": p.delivery_rule,
        "unit_total_usd": None if p.unit_total_usd is None else str(p.unit_total_usd),
    }


def _placement_in(raw: dict[str, Any]) -> Placement:
    return Placement(
        event_id=raw["event_id"],
        placed_at=_dt(raw["placed_at"]),
        released_at=_dt(raw["released_at"]),
        sku=raw["sku"],
        quantity=raw["quantity"],
        unit_price=Decimal(raw["unit_price"]),
        shipping_price=Decimal(raw["shipping_price"]),
        currency=raw["currency"],
        country=raw["country"],
        program=raw["program"],
        fulfillment_due=_dt(raw["fulfillment_due"]),
        warning_at=_dt(raw["warning_at"]),
        confirmed_due=_dt(raw["confirmed_due"]),
        delivery_due=_dt(raw["delivery_due"]),
        delivery_rule=raw["delivery_rule"],
        unit_total_usd=_opt_decimal(raw["unit_total_usd"]),
    )


def _complaint_out(c: Complaint) -> list[Any]:
    return [
        c.complaint_id,
        c.filed_event_id,
        _opt_us(c.filed_at),
        c.reason,
        c.photos,
        c.requested,
        _opt_us(c.responded_at),
        _opt_us(c.resolved_at),
        c.outcome,
    ]


def _complaint_in(raw: list[Any]) -> Complaint:
    complaint_id, event_id, filed_at, reason, photos, requested, responded, resolved, outcome = raw
    return Complaint(
        complaint_id,
        event_id,
        _opt_dt(filed_at),
        reason,
        photos,
        requested,
        _opt_dt(responded),
        _opt_dt(resolved),
        outcome,
    )


def _health_out(h: OrderHealth) -> list[Any]:
    return [
        h.subject,
        h.order_id,
        h.merchant_id,
        _us(h.at),
        _us(h.placed_at),
        _opt_us(h.tracked_at),
        _opt_us(h.scanned_at),
        _opt_us(h.refunded_at),
        _opt_us(h.merchant_cancelled_at),
        _opt_us(h.late_confirmed_at),
    ]


def _health_in(raw: list[Any]) -> OrderHealth:
    subject, order_id, merchant_id, at, placed, tracked, scanned, refunded, cancelled, late = raw
    return OrderHealth(
        subject,
        order_id,
        merchant_id,
        _dt(at),
        _dt(placed),
        _opt_dt(tracked),
        _opt_dt(scanned),
        _opt_dt(refunded),
        _opt_dt(cancelled),
        _opt_dt(late),
    )


def _shipment_out(s: Shipment) -> list[Any]:
    return [
        s.subject,
        s.order_id,
        s.merchant_id,
        s.carrier,
        _us(s.at),
        [[_us(moment), key] for moment, key in s.trackings],
        _opt_us(s.problem_at),
    ]


def _shipment_in(raw: list[Any]) -> Shipment:
    subject, order_id, merchant_id, carrier, at, trackings, problem_at = raw
    return Shipment(
        subject,
        order_id,
        merchant_id,
        carrier,
        _dt(at),
        tuple((_dt(moment), key) for moment, key in trackings),
        _opt_dt(problem_at),
    )


def _ledger_out(ledger: Ledger[T], out: Callable[[T], list[Any]]) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "width": ledger.width,
        "now": _us(ledger.now),
        "totals": ledger.totals,
        "pages": [[n, _us(routes), _us(earliest)] for n, routes, earliest in ledger.pages],
        "next": ledger.next_number,
    }
    if ledger.unspilled:
        raw["unspilled"] = {key: out(entry) for key, entry in ledger.unspilled.items()}
    return raw


def _ledger_in(raw: dict[str, Any], read: Callable[[list[Any]], T]) -> Ledger[T]:
    """A ledger's head as stored; or, from a state stored before ledgers (its timelines in
    the value: ``entries``), an empty head at its clock with those timelines to spill."""
    if "entries" in raw:
        return Ledger(
            raw["width"],
            now=_dt(raw["now"]),
            unspilled={key: read(entry) for key, (entry, _, _) in raw["entries"].items()},
        )
    return Ledger(
        raw["width"],
        now=_dt(raw["now"]),
        totals=list(raw["totals"]),
        pages=[(n, _dt(routes), _dt(earliest)) for n, routes, earliest in raw["pages"]],
        next_number=raw["next"],
        unspilled={key: read(entry) for key, entry in raw.get("unspilled", {}).items()},
    )


def encode_page(page: Page) -> bytes:
    """One page of a ledger's scheduled changes as bytes."""
    return _dump_state(
        {
            "v": VERSION,
            "k": "page",
            "changes": [
                [_us(moment), change.delta, change.forgets] for moment, change in page.items()
            ],
        }
    )


def decode_page(data: bytes) -> Page:
    """The page :func:`encode_page` wrote; ValueError if not one."""
    raw = _load(data, _PAGE)
    try:
        return {
            _dt(moment): Change(list(delta), list(forgets))
            for moment, delta, forgets in raw["changes"]
        }
    except _BAD_PAYLOAD as error:
        raise _malformed("page", error) from error


def encode_order(state: OrderState) -> bytes:
    """One order's state as bytes (see the module docstring for the format)."""
    placement, health = state.placement, state.last_health
    return _dump_state(
        {
            "v": VERSION,
            "k": "order",
            "order_id": state.order_id,
            "merchant_id": state.merchant_id,
            "last_event_at": _us(state.last_event_at),
            "placement": None if placement is None else _placement_out(placement),
            "trackings": [
                [_us(t.occurred_at), t.event_id, t.carrier, t.number] for t in state.trackings
            ],
            "first_tracking_at": _opt_us(state.first_tracking_at),
            "first_scan_at": _opt_us(state.first_scan_at),
            "delivered_at": _opt_us(state.delivered_at),
            "scans_by_number": _times_out(state.scans_by_number),
            "complaints": {key: _complaint_out(c) for key, c in state.complaints.items()},
            "closed_at": _opt_us(state.closed_at),
            "refunded_at": _opt_us(state.refunded_at),
            "merchant_cancelled_at": _opt_us(state.merchant_cancelled_at),
            "last_health": None if health is None else _health_out(health),
            "demand_opened": state.demand_opened,
            "demand_closed_at": _opt_us(state.demand_closed_at),
            "fired": sorted(state.fired),
            "settled": sorted(state.settled),
            "seen": sorted(state.seen),
            **({"resolved": sorted(state.resolved)} if state.resolved else {}),
        }
    )


def decode_order(data: bytes) -> OrderState:
    """The :class:`OrderState` that :func:`encode_order` wrote; ValueError if it is not one."""
    raw = _load(data, _ORDER)
    try:
        placement, health = raw["placement"], raw["last_health"]
        return OrderState(
            order_id=raw["order_id"],
            merchant_id=raw["merchant_id"],
            last_event_at=_dt(raw["last_event_at"]),
            placement=None if placement is None else _placement_in(placement),
            trackings=[
                Tracking(_dt(occurred_at), event_id, carrier, number)
                for occurred_at, event_id, carrier, number in raw["trackings"]
            ],
            first_tracking_at=_opt_dt(raw["first_tracking_at"]),
            first_scan_at=_opt_dt(raw["first_scan_at"]),
            delivered_at=_opt_dt(raw["delivered_at"]),
            scans_by_number=_times_in(raw["scans_by_number"]),
            complaints={key: _complaint_in(c) for key, c in raw["complaints"].items()},
            closed_at=_opt_dt(raw["closed_at"]),
            refunded_at=_opt_dt(raw["refunded_at"]),
            merchant_cancelled_at=_opt_dt(raw["merchant_cancelled_at"]),
            last_health=None if health is None else _health_in(health),
            demand_opened=raw["demand_opened"],
            demand_closed_at=_opt_dt(raw["demand_closed_at"]),
            fired=set(raw["fired"]),
            settled=set(raw["settled"]),
            seen=set(raw["seen"]),
            resolved=set(raw.get("resolved", ())),
        )
    except _BAD_PAYLOAD as error:
        raise _malformed("order", error) from error


# -- SkuState ---------------------------------------------------------------------------------


def encode_sku(state: SkuState) -> bytes:
    """One SKU's state as bytes (its queue's head; the pages are :func:`encode_queue_page`'s)."""
    stock_as_of, queue = state.stock_as_of, state.queue
    raw: dict[str, Any] = {
        "v": VERSION,
        "k": "sku",
        "merchant_id": state.merchant_id,
        "sku": state.sku,
        "stock_as_of": None if stock_as_of is None else [_us(stock_as_of[0]), stock_as_of[1]],
        "available": state.available,
        "stock_seen": _ledger_out(state.stock_seen, _moment_out),
        "queue": {
            "slots": [
                [n, _position_out(first), entries, opened, units, _opt_us(oldest)]
                for n, first, entries, opened, units, oldest in queue.slots
            ],
            "next": queue.next_number,
            "boundary": _opt_position_out(queue.boundary),
            "swept": _us(queue.swept),
        },
        "complaints": _ledger_out(state.complaints, _complaint_fact_out),
        "recent": {name: _timed_out(recent) for name, recent in state.recent.items()},
        "crossings": _crossings_out(state.crossings),
    }
    if state.unspilled_complaints:
        raw["unspilled_complaints"] = _windows_out(state.unspilled_complaints)
    if state.unspilled or state.unspilled_boundary is not None:
        raw["unspilled"] = [_entry_out(entry) for entry in state.unspilled]
        raw["unspilled_boundary"] = _opt_position_out(state.unspilled_boundary)
    if state.closed_before:
        raw["closed_before"] = _times_out(state.closed_before)
    return _dump_state(raw)


def decode_sku(data: bytes) -> SkuState:
    """The :class:`SkuState` that :func:`encode_sku` wrote (or a state stored before the queue
    had pages: its claims to spill); ValueError if it is not one."""
    raw = _load(data, _SKU)
    try:
        stock_as_of = raw["stock_as_of"]
        state = SkuState(
            merchant_id=raw["merchant_id"],
            sku=raw["sku"],
            stock_as_of=None if stock_as_of is None else (_dt(stock_as_of[0]), stock_as_of[1]),
            available=raw["available"],
            stock_seen=_stock_seen_in(raw),
            crossings=_crossings_in(raw["crossings"]),
        )
        if "recent" in raw:
            state.complaints = _ledger_in(raw["complaints"], _complaint_fact_in)
            state.recent = {name: _timed_in(recent) for name, recent in raw["recent"].items()}
            state.unspilled_complaints = _windows_in(raw.get("unspilled_complaints", {}))
        else:  # complaint windows stored before ledgers: spilled at the next complaint
            state.unspilled_complaints = _windows_in(raw["complaints"])
        if "open_orders" in raw:
            _legacy_queue(state, raw)
            return state
        queue = raw["queue"]
        state.queue = StockQueue(
            slots=[
                Slot(n, _position_in(first), entries, opened, units, _opt_dt(oldest))
                for n, first, entries, opened, units, oldest in queue["slots"]
            ],
            next_number=queue["next"],
            boundary=_opt_position_in(queue["boundary"]),
            swept=_dt(queue["swept"]),
        )
        state.unspilled = [_entry_in(entry) for entry in raw.get("unspilled", [])]
        state.unspilled_boundary = _opt_position_in(raw.get("unspilled_boundary"))
        state.closed_before = _times_in(raw.get("closed_before", {}))
        return state
    except _BAD_PAYLOAD as error:
        raise _malformed("sku", error) from error


def _legacy_queue(state: SkuState, raw: dict[str, Any]) -> None:
    """A queue stored whole (before pages): its open orders become claims to spill, the
    first order it had at risk the boundary, its closed orders ``closed_before``."""
    claims = sorted(
        ((_dt(placed_at), order_id), Claim(quantity, _dt(due), shortages))
        for order_id, (placed_at, quantity, due, shortages) in raw["open_orders"].items()
    )
    at_risk = set(raw["at_risk"])
    short = [position for position, _ in claims if position[1] in at_risk]
    state.unspilled = claims
    state.unspilled_boundary = short[0] if short else None
    state.closed_before = _times_in(raw["closed_orders"])


def _moment_out(moment: datetime) -> list[Any]:
    return [_us(moment)]


def _moment_in(raw: list[Any]) -> datetime:
    return _dt(raw[0])


def _stock_seen_in(raw: dict[str, Any]) -> Ledger[datetime]:
    """The inventory ids a SKU saw; stored before ledgers (``inventory_seen``), to spill."""
    if "stock_seen" in raw:
        return _ledger_in(raw["stock_seen"], _moment_in)
    return Ledger(0, unspilled=_times_in(raw["inventory_seen"]))


def _windows_out(windows: dict[str, RollingSet]) -> dict[str, list[Any]]:
    return {name: [_timed_out(w.entries), sorted(w.keys)] for name, w in windows.items()}


def _windows_in(raw: dict[str, list[Any]]) -> dict[str, RollingSet]:
    return {
        name: RollingSet(_timed_in(entries), set(keys)) for name, (entries, keys) in raw.items()
    }


def _complaint_fact_out(fact: SkuComplaint) -> list[Any]:
    return [
        fact.subject,
        fact.order_id,
        fact.complaint_id,
        fact.merchant_id,
        fact.sku,
        fact.reason,
        _us(fact.filed_at),
    ]


def _complaint_fact_in(raw: list[Any]) -> SkuComplaint:
    subject, order_id, complaint_id, merchant_id, sku, reason, filed_at = raw
    return SkuComplaint(subject, order_id, complaint_id, merchant_id, sku, reason, _dt(filed_at))


def encode_queue_page(entries: list[tuple[Position, Claim]]) -> bytes:
    """One page of a SKU's claims as bytes."""
    return _dump_state(
        {"v": VERSION, "k": "queue_page", "claims": [_entry_out(e) for e in entries]}
    )


def decode_queue_page(data: bytes) -> list[tuple[Position, Claim]]:
    """The page :func:`encode_queue_page` wrote; ValueError if not one."""
    raw = _load(data, _QUEUE_PAGE)
    try:
        return [_entry_in(entry) for entry in raw["claims"]]
    except _BAD_PAYLOAD as error:
        raise _malformed("queue_page", error) from error


def _position_out(position: Position) -> list[Any]:
    return [_us(position[0]), position[1]]


def _position_in(raw: list[Any]) -> Position:
    return (_dt(raw[0]), raw[1])


def _opt_position_out(position: Position | None) -> list[Any] | None:
    return None if position is None else _position_out(position)


def _opt_position_in(raw: list[Any] | None) -> Position | None:
    return None if raw is None else _position_in(raw)


def _entry_out(entry: tuple[Position, Claim]) -> list[Any]:
    (placed_at, order_id), claim = entry
    return [
        _us(placed_at),
        order_id,
        claim.quantity,
        _us(claim.fulfillment_due),
        claim.shortages,
        _opt_us(claim.closed_at),
    ]


def _entry_in(raw: list[Any]) -> tuple[Position, Claim]:
    placed_at, order_id, quantity, due, shortages, closed_at = raw
    return (_dt(placed_at), order_id), Claim(quantity, _dt(due), shortages, _opt_dt(closed_at))


# -- CarrierState -----------------------------------------------------------------------------


def encode_carrier(state: CarrierState) -> bytes:
    """One store-and-carrier state as bytes."""
    crossing = state.crossing
    return _dump_state(
        {
            "v": VERSION,
            "k": "carrier",
            "merchant_id": state.merchant_id,
            "subject": state.subject,
            "carrier": state.carrier,
            "shipments": _ledger_out(state.shipments, _shipment_out),
            "crossing": [crossing.above, crossing.count],
        }
    )


def decode_carrier(data: bytes) -> CarrierState:
    """The :class:`CarrierState` that :func:`encode_carrier` wrote; ValueError if not one."""
    raw = _load(data, _CARRIER)
    try:
        above, count = raw["crossing"]
        return CarrierState(
            merchant_id=raw["merchant_id"],
            subject=raw["subject"],
            carrier=raw["carrier"],
            shipments=_ledger_in(raw["shipments"], _shipment_in),
            crossing=Crossing(above, count),
        )
    except _BAD_PAYLOAD as error:
        raise _malformed("carrier", error) from error


# -- MerchantState ----------------------------------------------------------------------------


def encode_merchant(state: MerchantState) -> bytes:
    """One store's health state as bytes."""
    return _dump_state(
        {
            "v": VERSION,
            "k": "merchant",
            "merchant_id": state.merchant_id,
            "orders": _ledger_out(state.orders, _health_out),
            "crossings": _crossings_out(state.crossings),
            "evaluated": list(state.evaluated),
        }
    )


def decode_merchant(data: bytes) -> MerchantState:
    """The :class:`MerchantState` that :func:`encode_merchant` wrote; ValueError if not one."""
    raw = _load(data, _MERCHANT)
    try:
        return MerchantState(
            merchant_id=raw["merchant_id"],
            orders=_ledger_in(raw["orders"], _health_in),
            crossings=_crossings_in(raw["crossings"]),
            evaluated=tuple(raw["evaluated"]),
        )
    except _BAD_PAYLOAD as error:
        raise _malformed("merchant", error) from error


# -- facts ------------------------------------------------------------------------------------


def encode_fact(fact: Fact) -> bytes:
    """One internal fact as bytes, its kind tagged in ``k``."""
    if isinstance(fact, Demand):
        payload: dict[str, Any] = {
            "k": "demand",
            "subject": fact.subject,
            "order_id": fact.order_id,
            "merchant_id": fact.merchant_id,
            "sku": fact.sku,
            "placed_at": _us(fact.placed_at),
            "quantity": fact.quantity,
            "fulfillment_due": _us(fact.fulfillment_due),
            "trigger_id": fact.trigger_id,
            "open": fact.open,
            "at": _us(fact.at),
        }
    elif isinstance(fact, SkuComplaint):
        payload = {
            "k": "sku_complaint",
            "subject": fact.subject,
            "order_id": fact.order_id,
            "complaint_id": fact.complaint_id,
            "merchant_id": fact.merchant_id,
            "sku": fact.sku,
            "reason": fact.reason,
            "filed_at": _us(fact.filed_at),
        }
    elif isinstance(fact, Shipment):
        payload = {"k": "shipment", "fact": _shipment_out(fact)}
    elif isinstance(fact, OrderHealth):
        payload = {"k": "order_health", "fact": _health_out(fact)}
    else:
        raise TypeError(f"not a fact: {fact!r}")
    payload["v"] = VERSION
    return _dump(payload)


def decode_fact(data: bytes) -> Fact:
    """The fact that :func:`encode_fact` wrote, of its tagged kind; ValueError if not one."""
    raw = _load(data, _FACTS)
    kind = raw["k"]
    try:
        if kind == "demand":
            return Demand(
                subject=raw["subject"],
                order_id=raw["order_id"],
                merchant_id=raw["merchant_id"],
                sku=raw["sku"],
                placed_at=_dt(raw["placed_at"]),
                quantity=raw["quantity"],
                fulfillment_due=_dt(raw["fulfillment_due"]),
                trigger_id=raw["trigger_id"],
                open=raw["open"],
                at=_dt(raw["at"]),
            )
        if kind == "sku_complaint":
            return SkuComplaint(
                subject=raw["subject"],
                order_id=raw["order_id"],
                complaint_id=raw["complaint_id"],
                merchant_id=raw["merchant_id"],
                sku=raw["sku"],
                reason=raw["reason"],
                filed_at=_dt(raw["filed_at"]),
            )
        if kind == "shipment":
            return _shipment_in(raw["fact"])
        return _health_in(raw["fact"])
    except _BAD_PAYLOAD as error:
        raise _malformed(f"{kind} fact", error) from error
