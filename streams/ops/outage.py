"""Kafka outages in the log: one line when the broker is lost, one with its length when it is back.

While a broker is down, every Kafka client in the worker (Faust's consumer and producer, the
table changelogs) retries on its own and logs each failed attempt: thousands of ERROR lines a
second, none saying more than the first. :class:`OutageLog` is a logging filter on the worker's
handlers that lets the first connection failure through, counts the rest, and (through
:meth:`OutageLog.check`, called by a timer) reports the outage's end once failures have stopped
for a few seconds. The worker's ``/ready`` answers 503 while an outage lasts.

:class:`CoordinatorWait` does the same for the group coordinator: a new group's first join (and
the first start on a new cluster, while ``__consumer_offsets`` is created) makes aiokafka log an
ERROR for ``GroupCoordinatorNotAvailableError`` at each retry until Kafka has elected one. That is
expected and harmless, so it becomes one INFO line, and a WARNING every 30 s while it lasts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["CoordinatorWait", "OutageLog"]

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


# How aiokafka names the error (its class name and Kafka's error code name).
_COORDINATOR_SIGNS = ("GroupCoordinatorNotAvailableError", "COORDINATOR_NOT_AVAILABLE")


class CoordinatorWait(logging.Filter):
    """Turns aiokafka's errors for a group coordinator not (yet) available into one INFO line,
    repeated as a WARNING every ``remind`` seconds while they go on.

    A wait ends when no such error was seen for ``quiet`` seconds; the next one starts a new
    wait (its own INFO line).
    """

    def __init__(
        self,
        remind: float = 30.0,
        quiet: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.remind = remind
        self.quiet = quiet
        self._clock = clock
        self.started: float | None = None
        self._last_seen = 0.0
        self._last_told = 0.0
        self.suppressed = 0

    @property
    def waiting(self) -> bool:
        """A coordinator error was seen less than ``quiet`` seconds ago."""
        return self.started is not None and self._clock() - self._last_seen < self.quiet

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not record.name.startswith("aiokafka"):
            return True
        message = record.getMessage()
        if not any(sign in message for sign in _COORDINATOR_SIGNS):
            return True
        now = self._clock()
        if not self.waiting:
            self.started = self._last_told = self._last_seen = now
            self.suppressed = 0
            _relevel(record, logging.INFO)
            record.msg = (
                "waiting for the group coordinator (Kafka elects one for a new group or "
                "cluster; aiokafka retries): %s"
            )
            record.args = (message,)
            return logging.getLogger().getEffectiveLevel() <= logging.INFO
        self._last_seen = now
        if now - self._last_told < self.remind:
            self.suppressed += 1
            return False
        assert self.started is not None
        _relevel(record, logging.WARNING)
        record.msg = "still no group coordinator after %.0f s (%d more retries not logged): %s"
        record.args = (now - self.started, self.suppressed, message)
        self._last_told = now
        self.suppressed = 0
        return True


def _relevel(record: logging.LogRecord, level: int) -> None:
    record.levelno = level
    record.levelname = logging.getLevelName(level)
