"""The policy's rule ids: the keys of a profile's ``[rules]`` table, and the rule an output cites.

Declared once, here. The policy's schema (:mod:`streams.core.policy`) and the order processor
(:mod:`streams.core.order`) name a rule only as a :data:`RuleId`, so a misspelt id is a type
error rather than a missing key at run time.
"""

from __future__ import annotations

from typing import Final, Literal, TypeAlias, get_args

__all__ = ["RULE_IDS", "RuleId"]

RuleId: TypeAlias = Literal[
    "engine.allowed_lateness",
    "engine.max_ahead",
    "engine.state_ttl",
    "wish.release",
    "wish.fulfillment",
    "wish.fulfillment_warning",
    "wish.confirmed_fulfillment",
    "wish.tracking_scan",
    "wish.delivery",
    "wish.express_delivery",
    "wish.complaint_response",
    "wish.stockout",
    "wish.listing_review",
    "wish.packaging_review",
    "wish.carrier_review",
    "wish.store_health",
]

#: Every rule id, in the order a profile lists them.
RULE_IDS: Final[tuple[RuleId, ...]] = get_args(RuleId)
