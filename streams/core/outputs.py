"""Output events of the contract (section 3): breaches, their resolutions, recommendations and
rejections.

Timestamps serialise as RFC 3339 UTC with a ``Z``; money inside ``evidence`` is a decimal string.
Optional fields that do not apply are left out of the JSON rather than written as null.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Final, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from streams.core.dates import format_utc

__all__ = [
    "AGGREGATE_REASONS",
    "Action",
    "ActionCode",
    "DeadlineBreached",
    "DeadlineName",
    "DeadlineResolved",
    "EventRejected",
    "FileSource",
    "KafkaSource",
    "OutputEvent",
    "PolicyRef",
    "Reason",
    "RecommendationIssued",
    "Rejection",
    "RejectionReason",
    "Resolution",
    "Scope",
    "Severity",
]

UtcTimestamp = Annotated[datetime, PlainSerializer(format_utc, return_type=str, when_used="json")]

DeadlineName: TypeAlias = Literal[
    "fulfillment", "confirmed_fulfillment", "delivery", "complaint_response"
]
Resolution: TypeAlias = Literal["met_late", "delivered", "refunded", "cancelled"]
"""How a breached order resolved its breach: it met the deadline late, or the order ended."""
Severity: TypeAlias = Literal["info", "warning", "critical"]
Scope: TypeAlias = Literal["order", "sku", "carrier", "merchant"]
Reason: TypeAlias = Literal[
    "FULFILLMENT_AT_RISK",
    "STOCKOUT_RISK",
    "FULFILLMENT_OVERDUE",
    "TRACKING_NOT_SCANNED",
    "CONFIRMATION_OVERDUE",
    "DELIVERY_OVERDUE",
    "COMPLAINT_RESPONSE_OVERDUE",
    "COMPLAINT_NOT_AS_DESCRIBED",
    "COMPLAINT_WRONG_ITEM",
    "COMPLAINT_SIZE_FIT",
    "COMPLAINT_DAMAGED",
    "COMPLAINT_DEFECTIVE",
    "COMPLAINT_MISSING_PARTS",
    "COMPLAINT_COUNTERFEIT",
    "COMPLAINT_NOT_RECEIVED",
    "COMPLAINT_DELIVERED_NOT_RECEIVED",
    "COMPLAINT_OTHER",
    "LISTING_REVIEW",
    "PACKAGING_REVIEW",
    "CARRIER_REVIEW",
    "STORE_HEALTH_AT_RISK",
]
AGGREGATE_REASONS: Final = frozenset(
    {"LISTING_REVIEW", "PACKAGING_REVIEW", "CARRIER_REVIEW", "STORE_HEALTH_AT_RISK"}
)
RejectionReason: TypeAlias = Literal[
    "not_utf8",
    "not_json",
    "not_an_object",
    "unknown_type",
    "missing_field",
    "invalid_field",
    "from_the_future",
    "wrong_topic",
    "processing_failed",
]
"""Why an input went to the dead letter, as a code (the sentence in ``error`` says the rest).

``processing_failed`` is the processor's failure, not the input's: the input may be valid."""
ActionCode: TypeAlias = Literal[
    "CONTACT_CUSTOMER",
    "REQUEST_EVIDENCE",
    "ASK_TO_WAIT",
    "OFFER_RESHIP",
    "OFFER_PARTIAL_REFUND",
    "OFFER_REFUND",
    "OFFER_RETURN",
    "SHIP_NOW",
    "SUBMIT_TRACKING",
    "VERIFY_TRACKING",
    "RESTOCK",
    "FIX_LISTING",
    "IMPROVE_PACKAGING",
    "CHECK_PICKING",
    "QUALITY_CHECK",
    "FILE_CARRIER_CLAIM",
    "CHANGE_CARRIER",
    "DISPUTE_WITH_PROOF",
    "DELIST_SKU",
    "REVIEW_STORE_METRICS",
]


class _Output(BaseModel):
    # Consumers must accept fields added later (the contract grows only by adding), so the
    # published schemas do not forbid unknown properties.
    model_config = ConfigDict(frozen=True, extra="ignore")


class PolicyRef(_Output):
    """The policy profile (name and version) that decided an output."""

    name: str
    version: str


class Action(_Output):
    """One thing to do, most useful first."""

    code: ActionCode
    detail: str


class DeadlineBreached(_Output):
    """A deadline of the policy passed without the event that meets it."""

    type: Literal["deadline.breached"] = "deadline.breached"
    breach_id: str = Field(description="Deterministic from (order_id, deadline, complaint_id).")
    order_id: str
    merchant_id: str
    deadline: DeadlineName
    complaint_id: str | None = Field(default=None, description="Only for complaint_response.")
    due_at: UtcTimestamp
    detected_at: UtcTimestamp = Field(description="The processor's clock when it fired.")
    rule: str = Field(description="The policy rule that set the deadline, e.g. wish.fulfillment.")
    consequence: str = Field(description="What the platform does now.")
    policy: PolicyRef


class DeadlineResolved(_Output):
    """A breached order later met the deadline, or ended (delivered, refunded or cancelled)."""

    type: Literal["deadline.resolved"] = "deadline.resolved"
    resolution_id: str = Field(description="Deterministic from the breach_id it resolves.")
    breach_id: str = Field(description="The deadline.breached this resolves.")
    order_id: str
    merchant_id: str
    deadline: DeadlineName
    complaint_id: str | None = Field(default=None, description="Only for complaint_response.")
    rule: str = Field(description="The breach's rule, e.g. wish.fulfillment.")
    resolution: Resolution = Field(
        description=(
            "met_late: the event that meets the deadline came after the breach (or arrived "
            "after it fired); delivered, refunded, cancelled: the order ended so."
        )
    )
    resolved_at: UtcTimestamp = Field(description="occurred_at of the event that resolved it.")
    detected_at: UtcTimestamp = Field(description="The processor's clock when it was decided.")
    policy: PolicyRef


class RecommendationIssued(_Output):
    """What the seller should do, by when, and why."""

    type: Literal["recommendation.issued"] = "recommendation.issued"
    recommendation_id: str
    scope: Scope
    subject: str = Field(
        description="order_id, merchant_id/sku, merchant_id/carrier or merchant_id."
    )
    merchant_id: str
    order_id: str | None = Field(default=None, description="Order scope only.")
    reason: Reason
    severity: Severity
    actions: tuple[Action, ...]
    respond_by: UtcTimestamp | None = None
    respond_by_passed: bool | None = Field(
        default=None,
        description=(
            "True when the processor's clock was already past respond_by when it issued this "
            "(the actions are then the policy's for a missed window); absent otherwise."
        ),
    )
    consequence: str | None = Field(
        default=None,
        description=(
            "One sentence: what the platform does if the seller does not act (always set by "
            "this version; absent from recommendations written before it)."
        ),
    )
    evidence: dict[str, Any]
    rule: str
    issued_at: UtcTimestamp
    policy: PolicyRef


class KafkaSource(_Output):
    """Where a rejected Kafka message came from."""

    topic: str
    partition: int
    offset: int


class FileSource(_Output):
    """Where a rejected line of a replayed file came from."""

    file: str
    line: int


class EventRejected(_Output):
    """An input that could not be used (the dead letter)."""

    type: Literal["event.rejected"] = "event.rejected"
    rejection_id: str = Field(description="A hash of source and raw.")
    source: KafkaSource | FileSource
    key: str | None
    raw: str = Field(description="The original bytes as UTF-8 (invalid bytes replaced), ≤ 64 KiB.")
    error: str = Field(description="Which field, what was wrong, what was given.")
    rejected_at: UtcTimestamp
    reason: RejectionReason = Field(
        description="The error as a code: what kind of problem (the error sentence says which)."
    )


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why an input cannot be used: a code and a sentence a person can act on."""

    reason: RejectionReason
    error: str


OutputEvent: TypeAlias = DeadlineBreached | DeadlineResolved | RecommendationIssued | EventRejected
