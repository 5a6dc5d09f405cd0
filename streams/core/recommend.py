"""Builders for output events: the policy decides severity, actions and rule of each reason."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from streams.core.ids import (
    aggregate_recommendation_id,
    breach_id,
    order_recommendation_id,
    resolution_id,
)
from streams.core.outputs import (
    Action,
    DeadlineBreached,
    DeadlineName,
    DeadlineResolved,
    Reason,
    RecommendationIssued,
    Resolution,
    Scope,
    Severity,
)
from streams.core.policy import Policy

__all__ = [
    "make_aggregate_recommendation",
    "make_breach",
    "make_order_recommendation",
    "make_resolution",
    "percent",
]


def percent(value: Decimal) -> str:
    """A rate as a percentage for a sentence: at most one decimal, no trailing zero."""
    text = f"{value * 100:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _actions(
    policy: Policy, reason: str, conditions: Collection[str], *, missed: bool = False
) -> tuple[Action, ...]:
    spec = policy.recommendations[reason]
    items = spec.when_missed if missed and spec.when_missed is not None else spec.actions
    return tuple(
        policy.actions[item.code] for item in items if item.when is None or item.when in conditions
    )


def make_order_recommendation(
    policy: Policy,
    *,
    reason: Reason,
    order_id: str,
    merchant_id: str,
    fact_id: str,
    now: datetime,
    evidence: dict[str, Any],
    due_times: Mapping[str, datetime | None] | None = None,
    conditions: Collection[str] = (),
    rule: str | None = None,
) -> RecommendationIssued:
    """An order-scope recommendation, its id from (order, reason, triggering fact).

    ``due_times`` holds the order's deadlines by name (``fulfillment_due``, …); the policy says
    which of them, if any, is the recommendation's ``respond_by``. Issued with the clock
    already past it, the recommendation says so (``respond_by_passed``) and carries the
    policy's actions for a missed window.
    """
    spec = policy.recommendations[reason]
    respond_by = None
    if spec.respond_by is not None and due_times is not None:
        respond_by = due_times.get(spec.respond_by)
    missed = respond_by is not None and now > respond_by
    rule_id = rule or spec.rule
    return RecommendationIssued.model_construct(
        recommendation_id=order_recommendation_id(order_id, reason, fact_id),
        scope="order",
        subject=order_id,
        merchant_id=merchant_id,
        order_id=order_id,
        reason=reason,
        severity=spec.severity,
        actions=_actions(policy, reason, conditions, missed=missed),
        respond_by=respond_by,
        respond_by_passed=True if missed else None,
        consequence=spec.consequence,
        evidence={**evidence, "rule": policy.rule_evidence(rule_id)},
        rule=rule_id,
        issued_at=now,
        policy=policy.ref,
        type="recommendation.issued",
    )


def make_aggregate_recommendation(
    policy: Policy,
    *,
    reason: Reason,
    scope: Scope,
    subject: str,
    merchant_id: str,
    crossing: int,
    now: datetime,
    evidence: dict[str, Any],
    measure: str | None = None,
    severity: Severity | None = None,
    counts: str | None = None,
) -> RecommendationIssued:
    """A sku/carrier/merchant recommendation, its id from (scope, subject, reason, crossing).

    ``counts`` (the whole counts behind a rate, "3 of 40 orders (7.5 %) refunded") ends each
    action's detail, so the sentence a seller reads carries them.
    """
    actions = _actions(policy, reason, ())
    if counts is not None:
        actions = tuple(
            Action.model_construct(code=a.code, detail=f"{a.detail.rstrip('.')}: {counts}.")
            for a in actions
        )
    spec = policy.recommendations[reason]
    qualified = f"{reason}/{measure}" if measure else reason
    return RecommendationIssued.model_construct(
        recommendation_id=aggregate_recommendation_id(scope, subject, qualified, crossing),
        scope=scope,
        subject=subject,
        merchant_id=merchant_id,
        order_id=None,
        reason=reason,
        severity=severity or spec.severity,
        actions=actions,
        respond_by=None,
        consequence=spec.consequence,
        evidence={**evidence, "crossing": crossing, "rule": policy.rule_evidence(spec.rule)},
        rule=spec.rule,
        issued_at=now,
        policy=policy.ref,
        type="recommendation.issued",
    )


def make_breach(
    *,
    policy: Policy,
    order_id: str,
    merchant_id: str,
    deadline: DeadlineName,
    due_at: datetime,
    now: datetime,
    rule: str,
    consequence: str,
    complaint_id: str | None = None,
) -> DeadlineBreached:
    """A ``deadline.breached`` event with its deterministic id."""
    return DeadlineBreached.model_construct(
        breach_id=breach_id(order_id, deadline, complaint_id),
        order_id=order_id,
        merchant_id=merchant_id,
        deadline=deadline,
        complaint_id=complaint_id,
        due_at=due_at,
        detected_at=now,
        rule=rule,
        consequence=consequence,
        policy=policy.ref,
        type="deadline.breached",
    )


def make_resolution(
    *,
    policy: Policy,
    order_id: str,
    merchant_id: str,
    deadline: DeadlineName,
    rule: str,
    resolution: Resolution,
    resolved_at: datetime,
    now: datetime,
    complaint_id: str | None = None,
) -> DeadlineResolved:
    """A ``deadline.resolved`` event: its id from the id of the breach it resolves."""
    breach = breach_id(order_id, deadline, complaint_id)
    return DeadlineResolved.model_construct(
        resolution_id=resolution_id(breach),
        breach_id=breach,
        order_id=order_id,
        merchant_id=merchant_id,
        deadline=deadline,
        complaint_id=complaint_id,
        rule=rule,
        resolution=resolution,
        resolved_at=resolved_at,
        detected_at=now,
        policy=policy.ref,
        type="deadline.resolved",
    )
