"""The worker's codecs: every state and fact survives bytes exactly, and processing goes on alike.

States come from a real run: ``Engine(load_policy())`` over ``examples/orders.jsonl``.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache, partial
from pathlib import Path
from typing import Any

import pytest

from streams.core import state_codec
from streams.core.carrier import CarrierState, view_shipment
from streams.core.engine import Engine, Output
from streams.core.events import InventoryUpdated, OrderEvent, decode_event
from streams.core.facts import Demand, Fact, OrderHealth, Shipment, SkuComplaint
from streams.core.ledger import DictPages, Ledger
from streams.core.merchant import MerchantState
from streams.core.order import Complaint, OrderState, Placement, Tracking
from streams.core.output_json import serialize
from streams.core.outputs import Rejection
from streams.core.policy import Policy
from streams.core.sku import SkuState
from streams.core.state_codec_dictionary import DICTIONARY_1
from streams.core.window import Crossing
from streams.policy_files import load_policy
from streams.tools.simulator import generate_events

ORDERS_EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "orders.jsonl"
POLICY = load_policy()

Event = OrderEvent | InventoryUpdated
T = datetime(2026, 1, 5, 8, 30, 15, 123456, tzinfo=UTC)


@cache
def example_events() -> tuple[Event, ...]:
    """The example's valid events, in file order (rejected lines skipped)."""
    decoded = (decode_event(line) for line in ORDERS_EXAMPLE.read_bytes().splitlines())
    events = tuple(event for event in decoded if not isinstance(event, Rejection))
    assert len(events) > 1000
    return events


class RecordingEngine(Engine):
    """An engine that keeps every internal fact it routes."""

    def __init__(self) -> None:
        super().__init__(POLICY, relay=self._record)
        self.facts: list[Fact] = []

    def _record(self, fact: Fact) -> Fact:
        self.facts.append(fact)
        return fact


class KafkaLikeEngine(Engine):
    """An engine whose internal facts travel as bytes, as through the repartition topics."""

    def __init__(self, policy: Policy) -> None:
        super().__init__(
            policy, relay=lambda fact: state_codec.decode_fact(state_codec.encode_fact(fact))
        )


def _round_trip_every_state(engine: Engine) -> None:
    """What a worker restart does: every table's state back from its changelogged bytes."""
    for key, order in engine.orders.items():
        engine.orders[key] = state_codec.decode_order(state_codec.encode_order(order))
    for key, sku in engine.skus.items():
        engine.skus[key] = state_codec.decode_sku(state_codec.encode_sku(sku))
    for key, carrier in engine.carriers.items():
        engine.carriers[key] = state_codec.decode_carrier(state_codec.encode_carrier(carrier))
    for key, merchant in engine.merchants.items():
        engine.merchants[key] = state_codec.decode_merchant(state_codec.encode_merchant(merchant))


def _lines(outputs: list[Output]) -> list[str]:
    return [serialize(output) for output in outputs]


# -- real states ------------------------------------------------------------------------------


@dataclass
class Seen:
    """Which interesting shapes of state the round-tripped states covered."""

    shapes: set[str] = field(default_factory=set)

    def note(self, shape: str, present: object) -> None:
        if present:
            self.shapes.add(shape)


def _assert_round_trips(
    state: Any, encode: Callable[[Any], bytes], decode: Callable[[bytes], Any]
) -> Any:
    data = encode(state)
    back = decode(data)
    assert type(back) is type(state)
    assert back == state
    # Equal bytes again: dict and list order (heaps) survived too, which == does not check.
    assert encode(back) == data
    return back


def _checkpoints() -> Iterator[tuple[str, Engine]]:
    """One engine at several points of the example: a third, two thirds, the end, and later."""
    engine = Engine(POLICY)
    events = example_events()
    marks = {len(events) // 3: "a third", 2 * len(events) // 3: "two thirds"}
    for number, event in enumerate(events, start=1):
        engine.process(event)
        if number in marks:
            yield marks[number], engine
    yield "the end", engine
    assert engine.max_seen is not None
    engine.advance_to(engine.max_seen + timedelta(hours=36))
    yield "a day and a half after the end", engine


def test_every_state_of_a_real_run_round_trips_exactly() -> None:
    seen = Seen()
    for _, engine in _checkpoints():
        for order in engine.orders.values():
            back = _assert_round_trips(order, state_codec.encode_order, state_codec.decode_order)
            assert back.last_event_at.tzinfo is UTC
            seen.note("order fired", order.fired)
            seen.note("order settled", order.settled)
            seen.note("order complaints", order.complaints)
            seen.note(
                "order answered complaint", any(c.responded_at for c in back.complaints.values())
            )
            seen.note("order trackings", order.trackings)
            seen.note("order closed", order.closed_at)
            seen.note("order health", order.last_health)
            seen.note("order placement", order.placement)
            seen.note("order without placement", order.placement is None)
            seen.note("order demand closed", order.demand_closed_at)
        for key, sku in engine.skus.items():
            _assert_round_trips(sku, state_codec.encode_sku, state_codec.decode_sku)
            pages = engine.queue_pages(key)
            for slot in sku.queue.slots:
                page = pages.queue_page(slot.number)
                _assert_round_trips(
                    page, state_codec.encode_queue_page, state_codec.decode_queue_page
                )
                seen.note("sku shortage counted", any(c.shortages for _, c in page or ()))
            seen.note("sku stock", sku.stock_as_of)
            seen.note("sku open orders", sku.queue.open_orders)
            seen.note("sku short", sku.queue.boundary)
            seen.note("sku closed orders", any(s.oldest_close for s in sku.queue.slots))
            seen.note("sku window", any(sku.complaints.totals))
            seen.note("sku crossed", any(c.above for c in sku.crossings.values()))
        for carrier in engine.carriers.values():
            _assert_round_trips(carrier, state_codec.encode_carrier, state_codec.decode_carrier)
            seen.note("carrier shipments", carrier.shipments.totals[0])
            seen.note("carrier problems", carrier.shipments.totals[1])
            seen.note("carrier changes ahead", carrier.shipments.pages)
            seen.note("carrier crossed", carrier.crossing.count)
        for merchant in engine.merchants.values():
            _assert_round_trips(merchant, state_codec.encode_merchant, state_codec.decode_merchant)
            seen.note("merchant orders", merchant.orders.totals[0])
            seen.note("merchant changes ahead", merchant.orders.pages)
            seen.note("merchant scan checked", merchant.orders.totals[5])
            seen.note("merchant evaluated", merchant.evaluated)
    assert seen.shapes >= {
        "order fired",
        "order settled",
        "order complaints",
        "order answered complaint",
        "order trackings",
        "order closed",
        "order health",
        "order placement",
        "order demand closed",
        "sku stock",
        "sku open orders",
        "sku short",
        "sku shortage counted",
        "sku closed orders",
        "sku window",
        "sku crossed",
        "carrier shipments",
        "carrier problems",
        "carrier crossed",
        "carrier changes ahead",
        "merchant orders",
        "merchant changes ahead",
        "merchant scan checked",
        "merchant evaluated",
    }


def test_every_fact_of_a_real_run_round_trips_exactly() -> None:
    engine = RecordingEngine()
    for event in example_events():
        engine.process(event)
    assert {type(fact) for fact in engine.facts} == {Demand, SkuComplaint, Shipment, OrderHealth}
    for fact in engine.facts:
        _assert_round_trips(fact, state_codec.encode_fact, state_codec.decode_fact)


# -- going on from decoded states ---------------------------------------------------------------


def _finish(engine: Engine) -> list[Output]:
    """Past every deadline and the states' expiry (which closes the demand still open)."""
    assert engine.max_seen is not None
    return engine.advance_to(engine.max_seen + POLICY.state_ttl + timedelta(days=1))


def _snapshot(engine: Engine) -> dict[str, dict[str, bytes]]:
    """Every state's bytes (bytes compare dict and heap order too, which == does not)."""
    return {
        "orders": {key: state_codec.encode_order(state) for key, state in engine.orders.items()},
        "skus": {key: state_codec.encode_sku(state) for key, state in engine.skus.items()},
        "carriers": {
            key: state_codec.encode_carrier(state) for key, state in engine.carriers.items()
        },
        "merchants": {
            key: state_codec.encode_merchant(state) for key, state in engine.merchants.items()
        },
    }


@cache
def _reference_run() -> tuple[tuple[str, ...], dict[str, dict[str, bytes]]]:
    """The outputs of a run that never went through bytes, and its states after the last event."""
    engine = Engine(POLICY)
    lines: list[str] = []
    for event in example_events():
        lines += _lines(engine.process(event))
    snapshot = _snapshot(engine)
    lines += _lines(_finish(engine))
    return tuple(lines), snapshot


@pytest.mark.parametrize("split", [0.25, 0.5, 0.75, 0.9])
def test_processing_goes_on_from_decoded_states_exactly_as_from_the_originals(
    split: float,
) -> None:
    expected, states_at_the_end = _reference_run()
    events = example_events()
    cut = int(len(events) * split)
    engine = Engine(POLICY)
    lines: list[str] = []
    for event in events[:cut]:
        lines += _lines(engine.process(event))
    before = len(lines)

    _round_trip_every_state(engine)

    for event in events[cut:]:
        lines += _lines(engine.process(event))
    assert _snapshot(engine) == states_at_the_end
    lines += _lines(_finish(engine))
    assert len(lines) - before >= 20  # the decoded states had plenty left to do
    assert tuple(lines) == expected


def test_states_and_facts_through_bytes_all_along_change_no_output() -> None:
    """The worker's life: facts through topics, and states restored from bytes again and again."""
    expected, states_at_the_end = _reference_run()
    engine = KafkaLikeEngine(POLICY)
    lines: list[str] = []
    for number, event in enumerate(example_events(), start=1):
        lines += _lines(engine.process(event))
        if number % 25 == 0:
            _round_trip_every_state(engine)
    assert _snapshot(engine) == states_at_the_end
    _round_trip_every_state(engine)
    lines += _lines(_finish(engine))
    assert tuple(lines) == expected


# -- targeted cases -------------------------------------------------------------------------------


FACTS: list[Fact] = [
    Demand("m1/S1", "o1", "m1", "S1", T, 3, T + timedelta(days=5), "e1", True, T),
    Demand("m1/S1", "o1", "m1", "S1", T, 3, T + timedelta(days=5), "e1", False, T + timedelta(1)),
    SkuComplaint("m1/S1", "o1", "c1", "m1", "S1", "damaged", T),
    Shipment("m1/ups", "o1", "m1", "UPS", T, ((T, "ups"),), T + timedelta(days=2)),
    Shipment("m1/ups", "o1", "m1", "UPS", T, ((T, "dhl"), (T + timedelta(1), "ups")), None),
    OrderHealth("m1", "o1", "m1", T, T, refunded_at=T, merchant_cancelled_at=T),
    OrderHealth(
        "m1", "o1", "m1", T, T, T + timedelta(hours=3), T, None, None, T + timedelta(days=7)
    ),
]


@pytest.mark.parametrize("fact", FACTS, ids=lambda fact: type(fact).__name__)
def test_a_fact_of_each_kind_round_trips_with_its_kind(fact: Fact) -> None:
    data = state_codec.encode_fact(fact)
    back = _assert_round_trips(fact, state_codec.encode_fact, state_codec.decode_fact)
    assert json.loads(data)["v"] == 2
    assert isinstance(json.loads(data)["k"], str)
    assert back is not fact


def test_a_handmade_order_with_every_field_set_round_trips() -> None:
    placement = Placement(
        event_id="e1",
        placed_at=T,
        released_at=T + timedelta(hours=2),
        sku="S1",
        quantity=2,
        unit_price=Decimal("1.05E+3"),
        shipping_price=Decimal("0.00"),
        currency="JPY",
        country="JP",
        program="express",
        fulfillment_due=T + timedelta(days=5),
        warning_at=T + timedelta(days=4),
        confirmed_due=T + timedelta(days=7),
        delivery_due=T + timedelta(days=30),
        delivery_rule="wish.express_delivery",
        unit_total_usd=None,
    )
    complaint = Complaint("c1", "e9", T, "damaged", 2, "reship", T, T, "refunded")
    state = OrderState(
        order_id="o1",
        merchant_id="m1",
        last_event_at=T,
        placement=placement,
        trackings=[
            Tracking(T + timedelta(hours=5), "e3", "DHL ", "ABC1"),
            Tracking(T + timedelta(hours=1), "e2", "ups", "Z9"),
        ],
        first_tracking_at=T,
        first_scan_at=T,
        delivered_at=T,
        scans_by_number={"Z9": T, "ABC1": T - timedelta(microseconds=1)},
        complaints={"c2": Complaint("c2"), "c1": complaint},
        closed_at=T,
        refunded_at=T,
        merchant_cancelled_at=T,
        last_health=OrderHealth("m1", "o1", "m1", T, T, refunded_at=T, merchant_cancelled_at=T),
        demand_opened=True,
        demand_closed_at=T,
        fired={"demand", "tracking_scan:e2", "delivery"},
        resolved={"delivery"},
        settled={"fulfillment"},
        seen={"e1", "e2", "e3", "e9", "é"},
    )
    back = _assert_round_trips(state, state_codec.encode_order, state_codec.decode_order)
    assert [t.deadline_key for t in back.trackings] == ["tracking_scan:e3", "tracking_scan:e2"]
    assert back.complaints["c1"].advice_key == "complaint_advice:c1"
    assert back.complaints["c1"].deadline_key == "complaint_response:c1"
    assert list(back.complaints) == ["c2", "c1"]
    assert back.placement is not None
    assert (str(back.placement.unit_price), str(back.placement.value)) == ("1.05E+3", "2100.00")
    assert back.placement.placed_at.tzinfo is UTC
    assert back.scans_by_number["ABC1"] == T - timedelta(microseconds=1)


def test_an_empty_order_round_trips() -> None:
    state = OrderState(order_id="o1", merchant_id="m1", last_event_at=T)
    assert state_codec.decode_order(state_codec.encode_order(state)) == state


def test_an_order_stored_before_resolutions_decodes_with_none_resolved() -> None:
    state = OrderState(order_id="o1", merchant_id="m1", last_event_at=T, fired={"fulfillment"})
    payload = json.loads(state_codec.as_json(state_codec.encode_order(state)))
    assert "resolved" not in payload  # written only when not empty, as before resolutions
    state.resolved.add("fulfillment")
    stored = json.loads(state_codec.as_json(state_codec.encode_order(state)))
    assert stored["resolved"] == ["fulfillment"]
    del stored["resolved"]
    old = state_codec.decode_order(json.dumps(stored).encode())
    assert old.fired == {"fulfillment"}
    assert old.resolved == set()


def test_handmade_aggregates_round_trip() -> None:
    complaints: Ledger[SkuComplaint] = Ledger(2, now=T, totals=[2, 0], pages=[(0, T, T)])
    sku = SkuState(
        merchant_id="m1",
        sku="S1",
        stock_as_of=(T, "e7"),
        available=4,
        complaints=complaints,
        recent={"listing_review": [(T, "o1/c1"), (T, "o2/c1")]},
        crossings={"listing_review": Crossing(above=True, count=2)},
    )
    _assert_round_trips(sku, state_codec.encode_sku, state_codec.decode_sku)
    carrier = CarrierState("m1", "m1/ups", "UPS", crossing=Crossing(True, 1))
    view = partial(view_shipment, timedelta(days=30), "ups")
    pages: DictPages[Shipment] = DictPages()
    shipped, reshipped = FACTS[3], FACTS[4]
    assert isinstance(shipped, Shipment)
    assert isinstance(reshipped, Shipment)
    carrier.shipments.put("o1", shipped, view, pages)
    carrier.shipments.put("o2", reshipped, view, pages)
    back_carrier = _assert_round_trips(
        carrier, state_codec.encode_carrier, state_codec.decode_carrier
    )
    assert back_carrier.shipments.next_change() == carrier.shipments.next_change()
    for number, page in pages.pages.items():
        assert state_codec.decode_page(state_codec.encode_page(page)) == page, number
    carrier.shipments.unspilled = {"o3": shipped}  # a state stored before ledgers, unread
    _assert_round_trips(carrier, state_codec.encode_carrier, state_codec.decode_carrier)
    merchant = MerchantState(merchant_id="m1", evaluated=(1, 0, 1, 0, 0, 0, 0))
    back = _assert_round_trips(merchant, state_codec.encode_merchant, state_codec.decode_merchant)
    assert isinstance(back.evaluated, tuple)
    assert (
        state_codec.decode_merchant(state_codec.encode_merchant(MerchantState("m2"))).evaluated
        == ()
    )


def _with(data: bytes, **changes: Any) -> bytes:
    payload = json.loads(state_codec.as_json(data))
    payload.update(changes)
    return json.dumps(payload).encode()


@pytest.mark.parametrize("version", [1, 3, 0, "2", True, None])
def test_an_unknown_format_version_is_rejected(version: object) -> None:
    state = OrderState(order_id="o1", merchant_id="m1", last_event_at=T)
    data = _with(state_codec.encode_order(state), v=version)
    with pytest.raises(ValueError, match="unsupported codec format version"):
        state_codec.decode_order(data)
    with pytest.raises(ValueError, match="unsupported codec format version"):
        state_codec.decode_fact(_with(state_codec.encode_fact(FACTS[0]), v=version))


def test_a_payload_without_a_version_is_rejected() -> None:
    payload = json.loads(state_codec.as_json(state_codec.encode_sku(SkuState("m1", "S1"))))
    del payload["v"]
    with pytest.raises(ValueError, match="version None"):
        state_codec.decode_sku(json.dumps(payload).encode())


def test_a_payload_of_another_kind_is_rejected() -> None:
    data = state_codec.encode_sku(SkuState("m1", "S1"))
    with pytest.raises(ValueError, match="kind order, got kind 'sku'"):
        state_codec.decode_order(data)
    with pytest.raises(ValueError, match="got kind 'sku'"):
        state_codec.decode_fact(data)
    with pytest.raises(ValueError, match="got kind 'demand'"):
        state_codec.decode_carrier(state_codec.encode_fact(FACTS[0]))


@pytest.mark.parametrize("data", [b"", b"not json", b"[1]", b"\xff\xfe", b'{"v":1'])
def test_bytes_that_are_no_payload_are_rejected(data: bytes) -> None:
    with pytest.raises(ValueError, match="not an orderwatch codec payload"):
        state_codec.decode_merchant(data)


def test_a_malformed_payload_of_the_right_version_is_rejected_as_a_value_error() -> None:
    data = state_codec.encode_carrier(CarrierState("m1", "m1/ups", "UPS"))
    payload = json.loads(state_codec.as_json(data))
    del payload["shipments"]
    with pytest.raises(ValueError, match="malformed carrier payload"):
        state_codec.decode_carrier(json.dumps(payload).encode())
    with pytest.raises(ValueError, match="malformed demand fact payload"):
        state_codec.decode_fact(_with(state_codec.encode_fact(FACTS[0]), at="yesterday"))


# -- states stored deflated with the preset dictionary ----------------------------------------


def test_the_preset_dictionary_never_changes() -> None:
    """Stored states name dictionary 1 by its number: a changed dictionary would make every
    state stored with it unreadable (add a dictionary 2 instead)."""
    digest = hashlib.sha256(DICTIONARY_1).hexdigest()
    assert digest == "604ae4eaac87131e8208239c408a331f3fd4cf08c9260cd81a1cf0e5da028229"


def test_a_state_is_stored_deflated_and_a_plain_one_still_reads() -> None:
    state = OrderState(order_id="o1", merchant_id="m1", last_event_at=T)
    stored = state_codec.encode_order(state)
    assert stored[:1] == b"\x01"
    plain = state_codec.as_json(stored)
    assert plain.startswith(b'{"v":2,"k":"order"')
    assert len(stored) < len(plain) / 2
    assert state_codec.decode_order(stored) == state
    assert state_codec.decode_order(plain) == state  # as an earlier release stored it
    # Facts travel plain: the topics' batches are compressed as a whole.
    assert state_codec.encode_fact(FACTS[0]).startswith(b"{")


def test_the_simulators_orders_are_stored_in_at_most_400_bytes() -> None:
    """Every order of a simulated month (seed 11: not the dictionary's), at every stage of its
    life, key included; deflated they are about a sixth of their JSON."""
    engine = Engine(load_policy())
    sizes: list[int] = []
    plain: list[int] = []
    for number, raw in enumerate(generate_events(seed=11, orders=300)):
        event = decode_event(json.dumps(raw).encode())
        assert not isinstance(event, Rejection)
        engine.process(event)
        if number % 500 == 0:
            for order_id, state in engine.orders.items():
                stored = state_codec.encode_order(state)
                sizes.append(len(order_id) + len(stored))
                plain.append(len(order_id) + len(state_codec.as_json(stored)))
    assert len(sizes) > 1000
    assert max(sizes) <= 400, max(sizes)
    assert sum(sizes) * 4 < sum(plain)


@pytest.mark.parametrize(
    "data", [b"\x01", b"\x01garbage", b"\x01" + zlib.compress(b"{}")], ids=["empty", "bad", "zlib"]
)
def test_a_bad_deflated_payload_is_rejected(data: bytes) -> None:
    with pytest.raises(ValueError, match="not an orderwatch codec payload"):
        state_codec.decode_order(data)


def test_a_deflated_payload_that_would_inflate_past_64_mib_is_rejected() -> None:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, DICTIONARY_1)
    bomb = b"\x01" + packer.compress(b" " * (65 << 20)) + packer.flush()
    assert len(bomb) < 1 << 20
    with pytest.raises(ValueError, match="too large"):
        state_codec.decode_order(bomb)
