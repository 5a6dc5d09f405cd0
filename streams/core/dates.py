"""Time helpers: UTC normalisation, RFC 3339 formatting and business-day arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["EPOCH", "add_business_days", "format_utc", "to_utc"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SATURDAY = 5


def to_utc(moment: datetime) -> datetime:
    """The same instant with ``datetime.UTC`` as its tzinfo (aware input only)."""
    if moment.tzinfo is UTC:
        return moment
    return moment.astimezone(UTC)


def format_utc(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``; microseconds only when there are any."""
    moment = to_utc(moment)
    if 1000 <= moment.year <= 9999:
        # isoformat() of a UTC time is the same text with "+00:00" for the "Z", and faster
        return moment.isoformat()[:-6] + "Z"
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def add_business_days(start: datetime, days: int) -> datetime:
    """``start`` plus ``days`` business days (Mon-Fri, UTC), at the same time of day.

    Saturdays and Sundays are skipped; a start on a weekend counts from the following Monday
    00:00 UTC (policy ``wish.express_delivery``).
    """
    start = to_utc(start)
    weekday = start.weekday()
    if weekday >= _SATURDAY:
        start = (start + timedelta(days=7 - weekday)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
    weeks, rest = divmod(days, 5)
    moment = start + timedelta(weeks=weeks)
    for _ in range(rest):
        moment += timedelta(days=1)
        while moment.weekday() >= _SATURDAY:
            moment += timedelta(days=1)
    return moment
