"""Marketplace policy as data: parsed profiles, validated and compiled for the core.

The default profile (``streams/marketplaces/wish.toml``) encodes policy.md's Wish rules. A user's
profile is merged key by key into it (tables merge, values and lists replace), validated as a
whole, and compiled into a frozen :class:`Policy` the core reads. A bad profile raises
:class:`InvalidPolicy` with one line naming the key and the problem.

Pure: :func:`compile_policy` takes profiles already parsed (mappings, as ``tomllib`` gives them);
reading and parsing the files is the shell's (:func:`streams.policy_files.load_policy`).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Annotated, Any, Final, Literal, TypeAlias, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from streams.core.dates import add_business_days
from streams.core.events import ComplaintReason
from streams.core.iso_codes import COUNTRY_CODES, CURRENCY_CODES
from streams.core.outputs import Action, ActionCode, PolicyRef, Reason, Severity
from streams.core.rule_ids import RULE_IDS, RuleId

__all__ = [
    "ActionSpec",
    "InvalidPolicy",
    "Policy",
    "RecommendationSpec",
    "RuleMeta",
    "StoreCheck",
    "StoreMeasure",
    "compile_policy",
]


class InvalidPolicy(ValueError):
    """A profile breaks the policy's schema or a rule's bounds; the message is one line naming
    the profile, the key and the problem (the shell raises it again as its ``PolicyError``)."""


Duration = Annotated[float, Field(ge=0, allow_inf_nan=False)]
PositiveInt = Annotated[int, Field(ge=1)]
Rate = Annotated[Decimal, Field(ge=0, le=1)]
Usd = Annotated[Decimal, Field(ge=0)]
Condition: TypeAlias = Literal["no_photos", "delivery_due_ahead"]
RespondBy: TypeAlias = Literal[
    "fulfillment_due", "confirmed_fulfillment_due", "complaint_response_due"
]
StoreMetric: TypeAlias = Literal[
    "refund_rate",
    "late_confirmed_fulfillment_rate",
    "valid_tracking_rate",
    "pre_fulfillment_cancellation_rate",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class RuleMeta(_Strict):
    """What every rule carries besides its numbers: where it comes from."""

    description: str = ""
    platform: str = ""
    effective_from: date | None = None
    source: str = ""
    derived: bool = False


def _check_countries(value: dict[str, int]) -> dict[str, int]:
    for code in value:
        if code not in COUNTRY_CODES:
            raise ValueError(f"{code!r} is not an ISO 3166-1 alpha-2 country code")
    return value


class _Lateness(RuleMeta):
    minutes: Duration


class _MaxAhead(RuleMeta):
    days: Annotated[float, Field(gt=0, allow_inf_nan=False)]


class _StateTtl(RuleMeta):
    days: Annotated[float, Field(gt=0, allow_inf_nan=False)]


class _Release(RuleMeta):
    hours: Duration


class _Fulfillment(RuleMeta):
    days: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    fine_usd: Usd
    consequence: str


class _FulfillmentWarning(RuleMeta):
    hours_before: Duration


class _ConfirmedFulfillment(RuleMeta):
    hours: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    high_value_hours: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    high_value_threshold_usd: Usd
    fine_rate: Rate
    min_fine_usd: Usd
    consequence: str


class _TrackingScan(RuleMeta):
    hours: Annotated[float, Field(gt=0, allow_inf_nan=False)]


class _Delivery(RuleMeta):
    default_days: PositiveInt
    days_by_country: dict[str, PositiveInt]
    consequence: str

    _countries = field_validator("days_by_country")(_check_countries)


class _ExpressDelivery(RuleMeta):
    business_days: PositiveInt
    business_days_by_country: dict[str, PositiveInt] = {}
    consequence: str

    _countries = field_validator("business_days_by_country")(_check_countries)


class _ComplaintResponse(RuleMeta):
    hours: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    consequence: str


class _SkuReview(RuleMeta):
    threshold: PositiveInt
    window_days: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    reasons: tuple[ComplaintReason, ...]


class _CarrierReview(RuleMeta):
    min_shipments: PositiveInt
    problem_rate: Rate
    window_days: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    complaint_reasons: tuple[ComplaintReason, ...]


class StoreMeasure(_Strict):
    """One store-health measure: ``metric comparison threshold`` raises ``severity``."""

    metric: StoreMetric
    comparison: Literal[">=", ">", "<", "<="]
    threshold: Rate
    severity: Severity


class _StoreHealth(RuleMeta):
    window_days: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    min_orders: PositiveInt
    measures: dict[str, StoreMeasure]


def _rule(rule_id: RuleId) -> Any:
    """The field of a profile's ``[rules]`` table that holds rule ``rule_id``."""
    return Field(alias=rule_id)


class _Rules(_Strict):
    allowed_lateness: _Lateness = _rule("engine.allowed_lateness")
    max_ahead: _MaxAhead = _rule("engine.max_ahead")
    state_ttl: _StateTtl = _rule("engine.state_ttl")
    release: _Release = _rule("wish.release")
    fulfillment: _Fulfillment = _rule("wish.fulfillment")
    fulfillment_warning: _FulfillmentWarning = _rule("wish.fulfillment_warning")
    confirmed_fulfillment: _ConfirmedFulfillment = _rule("wish.confirmed_fulfillment")
    tracking_scan: _TrackingScan = _rule("wish.tracking_scan")
    delivery: _Delivery = _rule("wish.delivery")
    express_delivery: _ExpressDelivery = _rule("wish.express_delivery")
    complaint_response: _ComplaintResponse = _rule("wish.complaint_response")
    stockout: RuleMeta = _rule("wish.stockout")
    listing_review: _SkuReview = _rule("wish.listing_review")
    packaging_review: _SkuReview = _rule("wish.packaging_review")
    carrier_review: _CarrierReview = _rule("wish.carrier_review")
    store_health: _StoreHealth = _rule("wish.store_health")


class ActionSpec(_Strict):
    """An action of a recommendation, optionally only under a condition."""

    code: ActionCode
    when: Condition | None = None


class RecommendationSpec(_Strict):
    """Severity, actions in order, respond_by and rule for one reason code."""

    severity: Severity
    actions: tuple[ActionSpec, ...]
    respond_by: RespondBy | None = None
    #: The actions instead when the clock is already past respond_by at issue (None: the same).
    when_missed: tuple[ActionSpec, ...] | None = None
    rule: str
    #: One sentence: what the platform does if the seller does not act.
    consequence: str

    @field_validator("consequence")
    @classmethod
    def _one_sentence(cls, value: str) -> str:
        text = value.strip()
        if not text or "\n" in text or not text.endswith("."):
            raise ValueError(
                "give one sentence on one line, ending with a full stop: what the platform "
                "does if the seller does not act"
            )
        return text

    @field_validator("actions", "when_missed", mode="before")
    @classmethod
    def _codes_as_specs(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return [{"code": item} if isinstance(item, str) else item for item in value]
        return value


class _Currency(_Strict):
    as_of: date
    usd_per_unit: dict[str, Annotated[Decimal, Field(gt=0)]]

    @field_validator("usd_per_unit")
    @classmethod
    def _iso_codes(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        for code in value:
            if code not in CURRENCY_CODES:
                raise ValueError(f"{code!r} is not an ISO 4217 currency code")
        return value


class _Profile(_Strict):
    name: Annotated[str, Field(min_length=1)]
    version: Annotated[str, Field(min_length=1)]
    platform: str = ""
    description: str = ""


_ORDER_DUES: Final = frozenset({"fulfillment_due", "confirmed_fulfillment_due"})
_COMPLAINT_DUES: Final = _ORDER_DUES | {"complaint_response_due"}
#: Which deadlines a reason knows when it is issued (the default is _ORDER_DUES).
_RESPOND_BY_ALLOWED: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        "STOCKOUT_RISK": frozenset({"fulfillment_due"}),
        "COMPLAINT_RESPONSE_OVERDUE": _COMPLAINT_DUES,
        **{
            reason: _COMPLAINT_DUES
            for reason in get_args(Reason)
            if reason.startswith("COMPLAINT_")
        },
        **{
            reason: frozenset()
            for reason in (
                "LISTING_REVIEW",
                "PACKAGING_REVIEW",
                "CARRIER_REVIEW",
                "STORE_HEALTH_AT_RISK",
            )
        },
    }
)


class _PolicyFile(_Strict):
    profile: _Profile
    currency: _Currency
    rules: _Rules
    recommendations: dict[Reason, RecommendationSpec]
    actions: dict[ActionCode, str]

    @field_validator("recommendations")
    @classmethod
    def _every_reason(cls, value: dict[str, RecommendationSpec]) -> dict[str, RecommendationSpec]:
        missing = sorted(set(Reason.__args__) - set(value))  # type: ignore[attr-defined]
        if missing:
            raise ValueError(f"no entry for reason {', '.join(missing)}")
        return value

    @model_validator(mode="after")
    def _recommendations_fit_their_rules(self) -> _PolicyFile:
        for reason, spec in self.recommendations.items():
            if spec.rule not in RULE_IDS:
                raise ValueError(
                    f"recommendations.{reason}.rule: {spec.rule!r} is not a rule of this policy"
                )
            if spec.when_missed is not None and spec.respond_by is None:
                raise ValueError(
                    f"recommendations.{reason}.when_missed: {reason} has no respond_by to miss; "
                    "set respond_by or leave when_missed out"
                )
            allowed = _RESPOND_BY_ALLOWED.get(reason, _ORDER_DUES)
            if spec.respond_by is not None and spec.respond_by not in allowed:
                choices = ", ".join(sorted(allowed)) or "none (leave it out)"
                raise ValueError(
                    f"recommendations.{reason}.respond_by: {reason} cannot respond by "
                    f"{spec.respond_by!r}; choose {choices}"
                )
        return self

    @field_validator("actions")
    @classmethod
    def _every_action(cls, value: dict[str, str]) -> dict[str, str]:
        missing = sorted(set(ActionCode.__args__) - set(value))  # type: ignore[attr-defined]
        if missing:
            raise ValueError(f"no detail for action {', '.join(missing)}")
        return value


_COMPARISONS: Final[Mapping[str, Callable[[int, int], bool]]] = MappingProxyType(
    {
        ">=": operator.ge,
        ">": operator.gt,
        "<": operator.lt,
        "<=": operator.le,
    }
)


@dataclass(frozen=True, slots=True)
class StoreCheck:
    """A store-health measure compiled for the hot path: exact integer comparison."""

    name: str
    metric: str
    comparison: str
    threshold: Decimal
    severity: Severity
    _top: int
    _bottom: int
    _compare: Callable[[int, int], bool]

    @classmethod
    def compile(cls, name: str, measure: StoreMeasure) -> StoreCheck:
        top, bottom = measure.threshold.as_integer_ratio()
        return cls(
            name=name,
            metric=measure.metric,
            comparison=measure.comparison,
            threshold=measure.threshold,
            severity=measure.severity,
            _top=top,
            _bottom=bottom,
            _compare=_COMPARISONS[measure.comparison],
        )

    def breached(self, numerator: int, denominator: int) -> bool:
        """Whether numerator/denominator is on the wrong side of the threshold."""
        return self._compare(numerator * self._bottom, self._top * denominator)


@dataclass(frozen=True, slots=True)
class SkuReview:
    """A per-SKU complaint-count review (listing or packaging)."""

    rule: RuleId
    threshold: int
    window: timedelta
    reasons: frozenset[str]


@dataclass(frozen=True, slots=True)
class Policy:
    """The compiled policy the core reads: durations as timedeltas, lookups as dicts."""

    ref: PolicyRef
    allowed_lateness: timedelta
    max_ahead: timedelta
    state_ttl: timedelta
    release_delay: timedelta
    fulfillment: timedelta
    fulfillment_fine_usd: Decimal
    fulfillment_warning_before: timedelta
    confirmed_fulfillment: timedelta
    confirmed_fulfillment_high_value: timedelta
    high_value_threshold_usd: Decimal
    confirmed_fine_rate: Decimal
    confirmed_min_fine_usd: Decimal
    tracking_scan: timedelta
    delivery_days_by_country: dict[str, int]
    delivery_default_days: int
    express_business_days: int
    express_business_days_by_country: dict[str, int]
    complaint_response: timedelta
    consequences: dict[RuleId, str]
    listing_review: SkuReview
    packaging_review: SkuReview
    carrier_min_shipments: int
    carrier_problem_rate: Decimal
    carrier_window: timedelta
    carrier_complaint_reasons: frozenset[str]
    store_window: timedelta
    store_min_orders: int
    store_checks: tuple[StoreCheck, ...]
    recommendations: dict[str, RecommendationSpec]
    action_details: dict[str, str]
    #: Each action code's :class:`Action` (its code and detail), built once.
    actions: dict[str, Action]
    usd_per_unit: dict[str, Decimal]
    rates_as_of: date
    rules: dict[str, RuleMeta]

    # -- lookups the core uses ------------------------------------------------------------

    def to_usd(self, amount: Decimal, currency: str) -> Decimal | None:
        """``amount`` in USD through the rate table, or None for a currency it lacks."""
        rate = self.usd_per_unit.get(currency)
        return None if rate is None else amount * rate

    def delivery_due(
        self, placed_at: datetime, released_at: datetime, country: str, program: str
    ) -> tuple[datetime, RuleId]:
        """When delivery is due and the rule that says so."""
        if program == "express":
            days = self.express_business_days_by_country.get(country, self.express_business_days)
            return add_business_days(released_at, days), "wish.express_delivery"
        days = self.delivery_days_by_country.get(country, self.delivery_default_days)
        return placed_at + timedelta(days=days), "wish.delivery"

    def rule_evidence(self, rule_id: str) -> dict[str, Any]:
        """The rule's metadata as shown in evidence: id, platform, effective date, source."""
        meta = self.rules[rule_id]
        evidence: dict[str, Any] = {"id": rule_id, "source": meta.source}
        if meta.platform:
            evidence["platform"] = meta.platform
        if meta.effective_from:
            evidence["effective_from"] = meta.effective_from.isoformat()
        if meta.derived:
            evidence["derived"] = True
        return evidence


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Key-by-key merge into a new dict: tables merge recursively, everything else replaces.

    Neither argument is changed.
    """
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            merged[key] = _merge(current, value)
        else:
            merged[key] = value
    return merged


def _key_path(loc: tuple[int | str, ...]) -> str:
    parts = [f'"{part}"' if isinstance(part, str) and "." in part else str(part) for part in loc]
    return ".".join(parts)


def _one_line(label: str, error: ValidationError) -> str:
    first = error.errors(include_url=False)[0]
    problem = first["msg"].removeprefix("Value error, ")
    if first["type"] == "missing":
        problem = "is required but missing"
    elif first["type"] == "extra_forbidden":
        problem = "is not a known key (check its spelling)"
    elif not isinstance(first.get("input"), dict | list):
        given = repr(first.get("input"))
        given = given if len(given) <= 60 else given[:57] + "..."
        problem = f"{problem[0].lower()}{problem[1:]} (given {given})"
    loc = tuple(part for part in first["loc"] if part != "[key]")
    more = len(error.errors()) - 1
    suffix = f" (and {more} more)" if more else ""
    return f"{label}: {_key_path(loc)}: {problem}{suffix}"


def compile_policy(
    default: Mapping[str, Any],
    user: Mapping[str, Any] | None = None,
    *,
    user_name: str = "",
    user_digest: str = "",
) -> Policy:
    """The default profile, with the ``user`` profile (partial or whole) merged over it.

    ``default`` and ``user`` are parsed profiles (TOML documents as mappings); neither is
    changed. ``user_name`` names the user's profile in errors (its file's path), and
    ``user_digest`` (a short hash of its bytes) is appended to the version, ``1.0+<digest>``,
    unless the user's profile sets its own ``profile.version``. A profile that breaks the schema
    raises :class:`InvalidPolicy` with one line naming the profile, the key and the problem.
    """
    label = "default policy profile"
    user_profile: Any = {}
    document: Mapping[str, Any] = default
    if user is not None:
        label = f"policy file '{user_name}'"
        user_profile = user.get("profile", {})
        document = _merge(default, user)
    try:
        parsed = _PolicyFile.model_validate(document)
    except ValidationError as error:
        raise InvalidPolicy(_one_line(label, error)) from None
    version = parsed.profile.version
    if user_digest and "version" not in user_profile:
        version = f"{version}+{user_digest}"
    return _compile(parsed, PolicyRef(name=parsed.profile.name, version=version))


def _rule_metas(rules: _Rules) -> dict[str, RuleMeta]:
    metas: dict[str, RuleMeta] = {}
    for name, field in _Rules.model_fields.items():
        rule = getattr(rules, name)
        metas[str(field.alias)] = RuleMeta(
            description=rule.description,
            platform=rule.platform,
            effective_from=rule.effective_from,
            source=rule.source,
            derived=rule.derived,
        )
    return metas


def _compile(parsed: _PolicyFile, ref: PolicyRef) -> Policy:
    rules = parsed.rules
    confirmed = rules.confirmed_fulfillment
    return Policy(
        ref=ref,
        allowed_lateness=timedelta(minutes=rules.allowed_lateness.minutes),
        max_ahead=timedelta(days=rules.max_ahead.days),
        state_ttl=timedelta(days=rules.state_ttl.days),
        release_delay=timedelta(hours=rules.release.hours),
        fulfillment=timedelta(days=rules.fulfillment.days),
        fulfillment_fine_usd=rules.fulfillment.fine_usd,
        fulfillment_warning_before=timedelta(hours=rules.fulfillment_warning.hours_before),
        confirmed_fulfillment=timedelta(hours=confirmed.hours),
        confirmed_fulfillment_high_value=timedelta(hours=confirmed.high_value_hours),
        high_value_threshold_usd=confirmed.high_value_threshold_usd,
        confirmed_fine_rate=confirmed.fine_rate,
        confirmed_min_fine_usd=confirmed.min_fine_usd,
        tracking_scan=timedelta(hours=rules.tracking_scan.hours),
        delivery_days_by_country=dict(rules.delivery.days_by_country),
        delivery_default_days=rules.delivery.default_days,
        express_business_days=rules.express_delivery.business_days,
        express_business_days_by_country=dict(rules.express_delivery.business_days_by_country),
        complaint_response=timedelta(hours=rules.complaint_response.hours),
        consequences={
            "wish.fulfillment": rules.fulfillment.consequence,
            "wish.confirmed_fulfillment": confirmed.consequence,
            "wish.delivery": rules.delivery.consequence,
            "wish.express_delivery": rules.express_delivery.consequence,
            "wish.complaint_response": rules.complaint_response.consequence,
        },
        listing_review=SkuReview(
            rule="wish.listing_review",
            threshold=rules.listing_review.threshold,
            window=timedelta(days=rules.listing_review.window_days),
            reasons=frozenset(rules.listing_review.reasons),
        ),
        packaging_review=SkuReview(
            rule="wish.packaging_review",
            threshold=rules.packaging_review.threshold,
            window=timedelta(days=rules.packaging_review.window_days),
            reasons=frozenset(rules.packaging_review.reasons),
        ),
        carrier_min_shipments=rules.carrier_review.min_shipments,
        carrier_problem_rate=rules.carrier_review.problem_rate,
        carrier_window=timedelta(days=rules.carrier_review.window_days),
        carrier_complaint_reasons=frozenset(rules.carrier_review.complaint_reasons),
        store_window=timedelta(days=rules.store_health.window_days),
        store_min_orders=rules.store_health.min_orders,
        store_checks=tuple(
            StoreCheck.compile(name, measure)
            for name, measure in rules.store_health.measures.items()
        ),
        recommendations={str(k): v for k, v in parsed.recommendations.items()},
        action_details={str(k): v for k, v in parsed.actions.items()},
        actions={str(k): Action(code=k, detail=v) for k, v in parsed.actions.items()},
        usd_per_unit=dict(parsed.currency.usd_per_unit),
        rates_as_of=parsed.currency.as_of,
        rules=_rule_metas(rules),
    )
