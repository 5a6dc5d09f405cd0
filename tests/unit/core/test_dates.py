"""format_utc (through isoformat for speed) writes what the strftime formats always wrote."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

from streams.core.dates import format_utc


def _by_strftime(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_format_utc_matches_strftime_for_any_instant_and_offset() -> None:
    rng = random.Random(3)
    start = datetime(1, 1, 2, tzinfo=UTC)
    checked = 0
    for _ in range(20_000):
        micros = rng.randrange(1, 1_000_000) if rng.random() < 0.5 else 0
        moment = start + timedelta(
            days=rng.randrange(0, 3_650_000), seconds=rng.randrange(86_400), microseconds=micros
        )
        if rng.random() < 0.3:
            moment = moment.astimezone(timezone(timedelta(minutes=rng.randrange(-900, 900))))
        assert format_utc(moment) == _by_strftime(moment), moment
        checked += 1
    assert checked == 20_000
    assert format_utc(datetime(2026, 1, 5, 10, tzinfo=UTC)) == "2026-01-05T10:00:00Z"
    assert format_utc(datetime(2026, 1, 5, 18, 0, 0, 500, tzinfo=timezone(timedelta(hours=8)))) == (
        "2026-01-05T10:00:00.000500Z"
    )
