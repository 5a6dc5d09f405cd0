"""Deterministic output ids (contract section 3).

An id is the first 128 bits of SHA-256 over its parts, as 32 hex digits, so at-least-once
delivery can never show a consumer two different ids for one fact.
"""

from __future__ import annotations

from hashlib import sha256

__all__ = [
    "aggregate_recommendation_id",
    "breach_id",
    "order_recommendation_id",
    "rejection_id",
    "resolution_id",
]

_SEPARATOR = "\x1f"


def _digest(*parts: str) -> str:
    return sha256(_SEPARATOR.join(parts).encode("utf-8")).hexdigest()[:32]


def breach_id(order_id: str, deadline: str, complaint_id: str | None = None) -> str:
    """At most one breach per (order, deadline, complaint)."""
    return _digest("breach", order_id, deadline, complaint_id or "")


def resolution_id(breach: str) -> str:
    """At most one resolution per breach: from the breach's id."""
    return _digest("resolved", breach)


def order_recommendation_id(order_id: str, reason: str, fact_id: str) -> str:
    """Order scope: from the order, the reason and the id of the fact that triggered it."""
    return _digest("recommendation", "order", order_id, reason, fact_id)


def aggregate_recommendation_id(scope: str, subject: str, reason: str, crossing: int) -> str:
    """Aggregate scope: from the subject, the reason and how many times its threshold was crossed.

    ``reason`` may carry a measure qualifier (``STORE_HEALTH_AT_RISK/refund_rate_warning``) where
    one reason watches several measures.
    """
    return _digest("recommendation", scope, subject, reason, str(crossing))


def rejection_id(source: str, raw: bytes) -> str:
    """From where the input came from and its bytes."""
    digest = sha256(source.encode("utf-8"))
    digest.update(b"\x1f")
    digest.update(raw)
    return digest.hexdigest()[:32]
