"""The one rule about time both drivers share: a single event cannot move the clock.

The event-time clock follows the largest ``occurred_at`` seen. An event dated far ahead of the
rest (a mistyped year inside the accepted range) would move it there and fire every other
order's deadlines. So an event more than the policy's ``engine.max_ahead`` (30 days) ahead of
the latest event accepted before it is rejected as from the future: in replay, the latest of
the stream; in the worker, the latest of the partition that owns it (on the wall clock: the
time). The first event of a stream has nothing to be ahead of.
"""

from __future__ import annotations

from datetime import datetime

from streams.core.policy import Policy
from streams.core.timeutil import format_utc

__all__ = ["from_the_future"]


def from_the_future(occurred_at: datetime, latest: datetime | None, policy: Policy) -> str | None:
    """Why an event at ``occurred_at`` is rejected, or None when it is not too far ahead."""
    if latest is None or occurred_at <= latest + policy.max_ahead:
        return None
    days = (occurred_at - latest).days
    limit = policy.max_ahead.total_seconds() / 86400
    return (
        f"Field 'occurred_at' is {format_utc(occurred_at)}, {days} days after the latest event "
        f"before it ({format_utc(latest)}); an event more than {limit:g} days ahead is taken as "
        "a mistyped time: correct occurred_at and send the event again."
    )
