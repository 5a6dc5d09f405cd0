"""A wall-clock worker's clock is the time: advance-clock messages do not move it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from streams import wire
from streams.settings import load_settings
from streams.worker import OrderwatchWorker


def test_a_wall_clock_worker_ignores_advance_clock_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    worker = OrderwatchWorker(load_settings(clock="wall"))
    future = datetime(2099, 1, 1, tzinfo=UTC)

    with caplog.at_level("WARNING", logger="orderwatch.worker"):
        asyncio.run(worker._clock_message(0, wire.pack(wire.ADVANCE, future)))

    assert worker._clocks == {}
    assert "runs on the wall clock" in caplog.text
