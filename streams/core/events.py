"""Input events of the contract (section 2) as pydantic v2 models, and their decoding.

Every input message is one JSON object whose ``type`` selects the model. Validation is strict
where the contract is (timezone-aware RFC 3339 timestamps, ISO codes, bounds, lengths) and
ignores unknown extra fields. :func:`decode_event` turns raw bytes into either an event or a
:class:`~streams.core.outputs.Rejection` (a reason code and one sentence explaining what is
wrong), and never raises.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Final, Literal, TypeAlias

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

from streams.core.iso_codes import COUNTRY_CODES, CURRENCY_CODES
from streams.core.outputs import Rejection, RejectionReason

__all__ = [
    "COMPLAINT_REASONS",
    "EVENT_TYPES",
    "CarrierScanned",
    "ComplaintFiled",
    "ComplaintReason",
    "ComplaintResolved",
    "ComplaintResponded",
    "InputEvent",
    "InventoryUpdated",
    "OrderCancelled",
    "OrderEvent",
    "OrderPlaced",
    "OrderRefunded",
    "TrackingSubmitted",
    "decode_event",
    "describe_validation_error",
]


def _check_currency(code: str) -> str:
    if code not in CURRENCY_CODES:
        raise ValueError("must be an ISO 4217 currency code in capitals, such as USD")
    return code


def _check_country(code: str) -> str:
    if code not in COUNTRY_CODES:
        raise ValueError("must be an ISO 3166-1 alpha-2 country code in capitals, such as US")
    return code


Id128 = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=128)]
Text = Annotated[str, StringConstraints(strict=True, min_length=1)]


def _bounded_utc(moment: datetime) -> datetime:
    if not _EARLIEST_YEAR <= moment.year <= _LATEST_YEAR:
        raise ValueError(
            f"must be a time between {_EARLIEST_YEAR} and {_LATEST_YEAR} (year {moment.year} "
            "is out of range)"
        )
    # to_utc, inlined (this runs for every timestamp of every event)
    return moment if moment.tzinfo is UTC else moment.astimezone(UTC)


_EARLIEST_YEAR, _LATEST_YEAR = 1971, 2199
Timestamp = Annotated[AwareDatetime, Strict(), AfterValidator(_bounded_utc)]
# Bounds that keep every sum, conversion and rounding the core makes exact: a money amount of at
# most a billion, with at most 28 significant digits, times a quantity of at most a million
# stays well inside decimal's default 28-digit context.
MAX_MONEY: Final = Decimal(1_000_000_000)
MAX_QUANTITY: Final = 1_000_000
MAX_COUNT: Final = 1_000_000_000
Money = Annotated[Decimal, Field(ge=0, le=MAX_MONEY, max_digits=28, allow_inf_nan=False)]
Count = Annotated[int, Strict(), Field(ge=0, le=MAX_COUNT)]
Currency = Annotated[str, StringConstraints(strict=True), AfterValidator(_check_currency)]
Country = Annotated[str, StringConstraints(strict=True), AfterValidator(_check_country)]

ComplaintReason: TypeAlias = Literal[
    "not_as_described",
    "wrong_item",
    "size_fit",
    "damaged",
    "defective",
    "missing_parts",
    "counterfeit",
    "not_received",
    "delivered_not_received",
    "other",
]
RefundReason: TypeAlias = Literal[ComplaintReason, "auto_refund"]
COMPLAINT_REASONS: Final[tuple[str, ...]] = ComplaintReason.__args__  # type: ignore[attr-defined]


class _Event(BaseModel):
    """Fields every input event has."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: Id128 = Field(description="Unique per event; a repeated event_id is a duplicate.")
    occurred_at: Timestamp = Field(description="Event time, RFC 3339 with an offset.")
    merchant_id: Id128 = Field(description="The seller's store.")


class _OrderScoped(_Event):
    order_id: Text


class OrderPlaced(_OrderScoped):
    """A customer placed an order."""

    type: Literal["order.placed"]
    sku: Text
    quantity: Annotated[int, Strict(), Field(ge=1, le=MAX_QUANTITY)]
    unit_price: Money = Field(description="Per unit; JSON number or decimal string.")
    shipping_price: Money = Field(default=Decimal(0), description="Per unit shipping price.")
    currency: Currency
    destination_country: Country
    program: Literal["standard", "express"] = "standard"
    released_at: Timestamp | None = Field(
        default=None, description="When the platform released the order to the seller."
    )


class OrderCancelled(_OrderScoped):
    """The order was cancelled; it is closed."""

    type: Literal["order.cancelled"]
    cancelled_by: Literal["merchant", "customer", "platform"]


class OrderRefunded(_OrderScoped):
    """The order was refunded; it is closed."""

    type: Literal["order.refunded"]
    amount: Money
    reason: RefundReason


class InventoryUpdated(_Event):
    """The seller's shippable units of one SKU, all warehouses together."""

    type: Literal["inventory.updated"]
    sku: Text
    available: Count
    warehouse_id: str | None = None


class TrackingSubmitted(_OrderScoped):
    """The seller marked the order shipped with a tracking number."""

    type: Literal["tracking.submitted"]
    carrier: Text
    tracking_number: Text


class CarrierScanned(_OrderScoped):
    """The carrier scanned the parcel."""

    type: Literal["carrier.scanned"]
    tracking_number: Text
    status: Literal["accepted", "in_transit", "delivered", "returned", "exception"]


class ComplaintFiled(_OrderScoped):
    """The customer filed a complaint (a ticket) about the order."""

    type: Literal["complaint.filed"]
    complaint_id: Text
    reason: ComplaintReason
    photos: Count = 0
    message: Annotated[str, StringConstraints(strict=True, max_length=4000)] | None = None
    requested: Literal["refund", "return", "replacement", "none"] = "refund"


class ComplaintResponded(_OrderScoped):
    """The seller answered the customer."""

    type: Literal["complaint.responded"]
    complaint_id: Text


class ComplaintResolved(_OrderScoped):
    """The complaint was resolved."""

    type: Literal["complaint.resolved"]
    complaint_id: Text
    outcome: Literal["reshipped", "partial_refund", "refund", "return", "rejected", "withdrawn"]


OrderEvent: TypeAlias = (
    OrderPlaced
    | OrderCancelled
    | OrderRefunded
    | TrackingSubmitted
    | CarrierScanned
    | ComplaintFiled
    | ComplaintResponded
    | ComplaintResolved
)
InputEvent: TypeAlias = Annotated[OrderEvent | InventoryUpdated, Field(discriminator="type")]

INPUT_MODELS: Final[tuple[type[_Event], ...]] = (
    OrderPlaced,
    OrderCancelled,
    OrderRefunded,
    InventoryUpdated,
    TrackingSubmitted,
    CarrierScanned,
    ComplaintFiled,
    ComplaintResponded,
    ComplaintResolved,
)
EVENT_TYPES: Final[tuple[str, ...]] = tuple(
    m.model_fields["type"].annotation.__args__[0]  # type: ignore[union-attr]
    for m in INPUT_MODELS
)

_ADAPTER: Final[TypeAdapter[OrderEvent | InventoryUpdated]] = TypeAdapter(InputEvent)
# The adapter's validator called directly: TypeAdapter.validate_json only passes its defaults on.
_VALIDATE_JSON: Final[Callable[[bytes | str], OrderEvent | InventoryUpdated]] = (
    _ADAPTER.validator.validate_json
)


def decode_event(raw: bytes | str) -> OrderEvent | InventoryUpdated | Rejection:
    """Parse and validate one message value, or say why it cannot be used."""
    try:
        return _VALIDATE_JSON(raw)
    except ValidationError as error:
        if isinstance(raw, bytes | bytearray):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as bad:
                return Rejection(
                    "not_utf8",
                    f"The message is not valid UTF-8 (byte 0x{raw[bad.start]:02x} at position "
                    f"{bad.start}); producers must send UTF-8 encoded JSON.",
                )
        return Rejection(_reason(error), describe_validation_error(error))


def _reason(error: ValidationError) -> RejectionReason:
    """The code of the first problem :func:`describe_validation_error` names."""
    first = error.errors(include_url=False)[0]
    kind: str = first["type"]
    if kind == "json_invalid":
        return "not_json"
    if kind == "model_attributes_type" or (not first["loc"] and kind.endswith("_type")):
        return "not_an_object"
    if kind == "union_tag_invalid":
        return "unknown_type"
    if kind in ("union_tag_not_found", "missing"):
        return "missing_field"
    return "invalid_field"


_MAX_GIVEN = 80


def _given(value: Any) -> str:
    text = repr(value)
    if len(text) > _MAX_GIVEN:
        text = text[: _MAX_GIVEN - 3] + "..."
    return text


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    for kind, name in names.items():
        if isinstance(value, kind):
            return name
    if value is None:
        return "null"
    return "a number"


def _field_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _explain(err: Any) -> str:
    """One clause for one pydantic error entry."""
    kind: str = err["type"]
    loc: tuple[int | str, ...] = tuple(err["loc"])
    given = err.get("input")
    if kind == "json_invalid":
        return f"the message is not valid JSON ({err['ctx']['error']})"
    if kind == "model_attributes_type" or (not loc and kind.endswith("_type")):
        return f"the message must be a JSON object, not {_json_type(given)}"
    if kind == "union_tag_not_found":
        return "field 'type' is missing: every event needs a type such as 'order.placed'"
    if kind == "union_tag_invalid":
        return (
            f"field 'type' is {_given(err['ctx']['tag'])}, which this version does not know; "
            f"expected one of {', '.join(EVENT_TYPES)}"
        )
    # Errors inside a known event type are located under the tag: drop it from the path.
    event_type = loc[0] if loc and isinstance(loc[0], str) and loc[0] in EVENT_TYPES else None
    field = _field_path(loc[1:] if event_type else loc)
    where = f"field '{field}' of {event_type}" if event_type else f"field '{field}'"
    if kind == "missing":
        return f"{where} is required but missing"
    if kind in (
        "timezone_aware",
        "datetime_type",
        "datetime_parsing",
        "datetime_from_date_parsing",
    ):
        return (
            f"{where} must be an RFC 3339 timestamp with an offset, such as "
            f"2026-01-05T10:00:00Z (given {_given(given)})"
        )
    message: str = err["msg"]
    if kind == "value_error":
        message = message.removeprefix("Value error, ")
    else:
        message = message[0].lower() + message[1:]
        message = message.replace("input should", "must").replace("Input should", "must")
    return f"{where} {message} (given {_given(given)})"


def describe_validation_error(error: ValidationError) -> str:
    """A sentence a person can act on: which field, what was wrong, what was given."""
    clauses = list(dict.fromkeys(_explain(err) for err in error.errors(include_url=False)))
    if len(clauses) > 3:
        more = len(clauses) - 3
        clauses = [*clauses[:3], f"and {more} more problem{'s' if more > 1 else ''}"]
    text = "; ".join(clauses)
    return text[0].upper() + text[1:] + "."
