"""Kafka outages in the log: one line when the broker is lost, one with its length when it is back.

While a broker is down, every Kafka client in the worker (Faust's consumer and producer, the
table changelogs) retries on its own and logs each failed attempt: thousands of ERROR lines a
second, none saying more than the first. :class:`OutageLog` is a logging filter on the worker's
handlers that lets the first connection failure through, counts the rest, and (through
:meth:`OutageLog.check`, called by a timer) reports the outage's end once failures have stopped
for a few seconds. The worker's ``/ready`` answers 503 while an outage lasts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["OutageLog"]

log = logging.getLogger("orderwatch.worker")

# What Kafka clients say when they cannot reach a broker (aiokafka's and Faust's wording).
_SIGNS = (
    "Unable connect to node",
    "Unable to update metadata",
    "NodeNotReadyError",
    "KafkaConnectionError",
    "Connect call failed",
    "Connection at ",
    "marking coordinator dead",
    "Marking the coordinator dead",
    "Heartbeat session expired",
    "Got error produce response",
    "NotLeaderForPartitionError",
    "Coordinator load in progress",
)
_CLIENTS = ("aiokafka", "faust", "mode")


class OutageLog(logging.Filter):
    """Suppresses repeated connection failures and tells when they began and ended."""

    def __init__(self, quiet: float = 3.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.quiet = quiet
        self._clock = clock
        self.started: float | None = None
        self._last_failure = 0.0
        self.suppressed = 0

    @property
    def active(self) -> bool:
        """A connection failure was seen and the outage has not been reported over."""
        return self.started is not None

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not record.name.startswith(_CLIENTS):
            return True
        message = record.getMessage()
        if not any(sign in message for sign in _SIGNS):
            return True
        now = self._clock()
        self._last_failure = now
        if self.started is None:
            self.started = now
            record.msg = "Kafka unreachable (%s); repeated connection errors are summarised later"
            record.args = (message,)
            return True
        self.suppressed += 1
        return False

    def check(self) -> None:
        """Report the outage over once no failure was seen for ``quiet`` seconds."""
        if self.started is None or self._clock() - self._last_failure < self.quiet:
            return
        lasted = self._last_failure - self.started
        log.warning(
            "Kafka reachable again: connection errors for %.1f s (%d more of them not logged)",
            lasted,
            self.suppressed,
        )
        self.started = None
        self.suppressed = 0
